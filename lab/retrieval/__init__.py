"""The RAG rung: index a folder of documents, search it, answer with numbered sources.

    index_corpus(lab, "corpora/acme")          -> IndexReport (incremental; atomic)
    search(lab, "acme", "refund window?", k=4) -> [Passage(text, source, title, span, score, chunk_id)]
    ask_rag(lab, "acme", "refund window?")     -> (Generation, row_id, passages in the prompt)

A corpus name means `<home>/corpora/<name>/`; a path to any folder works too (the index is
named after the folder). The first search of a corpus without an index builds it.
"""

from __future__ import annotations

import threading
import time
import warnings
import weakref
from pathlib import Path

from .chunking import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP
from .corpus import CorpusWarning, RetrievalError, resolve_corpus, scan
from .index import IndexReport, IndexSettings, LoadedIndex, build_index, current_dir, read_manifest
from .packing import Passage, pack_passages

__all__ = [
    "index_corpus",
    "search",
    "ask_rag",
    "IndexReport",
    "IndexSettings",
    "Passage",
    "RetrievalError",
    "CorpusWarning",
    "pack_passages",
    "loaded_index",
    "index_state",
    "index_root",
    "chunk_size_of",
    "sweep_chunk_sizes",
]

_LOADED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # lab -> {corpus: LoadedIndex}
_LOCK = threading.Lock()


def index_corpus(
    lab,
    corpus: str | Path,
    progress: bool = True,
    *,
    M: int | None = None,
    ef_construction: int | None = None,
    ef: int | None = None,
    chunk_tokens: int | None = None,
    overlap: int | None = None,
    recall_target: float | None = None,
) -> IndexReport:
    """Build or update the index of `corpus`: embeds only new or changed chunks, marks removed
    ones deleted, rebuilds everything (saying why) when the embedder or settings change.
    Settings left None keep the existing index's (or the defaults)."""
    name, root = resolve_corpus(lab.home, corpus, lab.home.indexes)
    if root is None:
        raise RetrievalError(f"the folder of corpus '{name}' is gone; pass the path of its documents")
    report = build_index(
        lab.home.indexes / name,
        name,
        root,
        lab.embedder(),
        progress=progress,
        M=M,
        ef_construction=ef_construction,
        ef=ef,
        chunk_tokens=chunk_tokens,
        overlap=overlap,
        recall_target=recall_target,
    )
    for message in report.skipped:
        warnings.warn(message, CorpusWarning, stacklevel=2)
    return report


def chunk_size_of(lab, corpus: str | Path) -> int:
    """The chunk size (tokens) of the corpus's own index: its manifest's, else the default."""
    name, _ = resolve_corpus(lab.home, corpus, lab.home.indexes)
    m = read_manifest(lab.home.indexes / name)
    return int(m["chunking"]["chunk_tokens"]) if m else DEFAULT_CHUNK_TOKENS


def sweep_chunk_sizes(lab, corpus: str | Path) -> list[int]:
    """The chunk sizes the RAG sweep and the retrieval check try: half the corpus's own, its own,
    and double it up to what the embedder reads whole (MiniLM truncates at 256 word pieces)."""
    own = chunk_size_of(lab, corpus)
    longest = int(getattr(lab.embedder(), "max_seq_length", 256) or 256)
    return sorted({max(32, own // 2), own, min(2 * own, longest)})


def index_root(lab, name: str, chunk_tokens: int | None = None) -> Path:
    """Where the index of corpus `name` chunked at `chunk_tokens` lives: the corpus's own index when
    None or its own chunk size; else `<name>~<N>t` beside it, a version of the same documents
    chunked otherwise (the RAG sweep's), built and updated incrementally like the corpus's own."""
    own = lab.home.indexes / name
    if chunk_tokens is None or chunk_tokens == chunk_size_of(lab, name):
        return own
    return lab.home.indexes / f"{name}~{int(chunk_tokens)}t"


def _index_chunked(lab, corpus: str | Path, chunk_tokens: int, progress: bool = False) -> IndexReport:
    """Build or update the version of `corpus` chunked at `chunk_tokens` tokens (its overlap scaled
    down with it), leaving the corpus's own index as it is."""
    name, root = resolve_corpus(lab.home, corpus, lab.home.indexes)
    if root is None:
        raise RetrievalError(f"the folder of corpus '{name}' is gone; pass the path of its documents")
    return build_index(
        index_root(lab, name, chunk_tokens),
        name,
        root,
        lab.embedder(),
        progress=progress,
        chunk_tokens=chunk_tokens,
        overlap=min(DEFAULT_OVERLAP, chunk_tokens // 4),
    )


def index_state(lab, corpus: str | Path) -> dict:
    """What the index of `corpus` holds and how many of its files changed since it was built
    (`stale`: new, edited or deleted files; a missing index counts every file)."""
    name, folder = resolve_corpus(lab.home, corpus, lab.home.indexes)
    m = read_manifest(lab.home.indexes / name)
    files, _skipped = scan(folder) if folder else ([], [])
    state = {"corpus": name, "folder": str(folder) if folder else None, "files": len(files)}
    if m is None:
        return {**state, "indexed": False, "chunks": 0, "stale": len(files), "built_at": None, "version": None}
    known = m.get("files", {})
    stale = sum(
        1
        for f in files
        if f.rel not in known or known[f.rel].get("size") != f.size or known[f.rel].get("mtime_ns") != f.mtime_ns
    )
    stale += sum(1 for rel in known if rel not in {f.rel for f in files})
    return {
        **state,
        "indexed": True,
        "chunks": len(m.get("chunks", {})),
        "stale": stale,
        "built_at": m.get("built_at"),
        "version": m.get("version"),
        "embedder": m.get("embedder"),
        "index_hash": m.get("manifest_hash"),
    }


def loaded_index(
    lab, corpus: str | Path, progress: bool = False, chunk_tokens: int | None = None, update: bool = False
) -> LoadedIndex:
    """The live index of `corpus` (chunked at `chunk_tokens`: `index_root`), kept in memory per lab;
    built first if there is none (`update`: brought up to date with the documents first), and
    reloaded when another process (or `lab index`) has switched it to a new version."""
    name, root = resolve_corpus(lab.home, corpus, lab.home.indexes)
    where = index_root(lab, name, chunk_tokens)
    if update or current_dir(where) is None:
        if root is None and current_dir(where) is None:
            raise RetrievalError(f"no index and no folder for corpus '{name}'")
        if root is not None and where == lab.home.indexes / name:
            index_corpus(lab, root, progress=progress)
        elif root is not None:
            _index_chunked(lab, root, chunk_tokens, progress=progress)
    key = where.name
    with _LOCK:
        cache = _LOADED.setdefault(lab, {})
        for _ in range(3):  # a concurrent build may delete the version we just named: look again
            folder = current_dir(where)
            idx = cache.get(key)
            if idx is not None and folder == idx.folder:
                return idx
            if folder is not None:
                try:
                    cache[key] = LoadedIndex(folder)
                    return cache[key]
                except FileNotFoundError:
                    pass
            time.sleep(0.05)
    raise RetrievalError(f"the index of '{name}' in {where} is unreadable; run `lab index` on the corpus again")


def search(
    lab, corpus: str | Path, query: str, k: int = 4, progress: bool = False, chunk_tokens: int | None = None
) -> list[Passage]:
    """The k chunks of `corpus` (chunked at `chunk_tokens`, default its own index's) closest to
    `query` (cosine), best first."""
    return _search(lab, loaded_index(lab, corpus, progress=progress, chunk_tokens=chunk_tokens), query, k)


def _search(lab, idx: LoadedIndex, query: str, k: int) -> list[Passage]:
    embedder = lab.embedder()
    if idx.manifest["embedder"] != embedder.id:
        raise RetrievalError(
            f"the index of '{idx.manifest['corpus']}' was built with {idx.manifest['embedder']} "
            f"but the lab's embedder is {embedder.id}: run `lab index` on it again"
        )
    vector = _query_vector(lab, embedder, query)
    out = []
    for label, score in idx.query(vector, k):
        c = idx.manifest["chunks"][str(label)]
        out.append(
            Passage(idx.texts[label], c["source"], c["title"], tuple(c["span"]), score, c["id"], c.get("heading", ""))
        )
    return out


QUERY_CACHE = 4096  # query vectors kept per lab: a sweep searches each held-out question once per configuration


def _query_vector(lab, embedder, query: str):
    """The query's embedding, encoded once per lab and embedder (the chunks' cache is on disk; a
    question is searched again by every RAG configuration and the retrieval check)."""
    cache = lab.__dict__.setdefault("_query_vectors", {})
    key = (embedder.id, query)
    if key not in cache:
        if len(cache) >= QUERY_CACHE:
            cache.clear()
        cache[key] = embedder.encode([query])[0]
    return cache[key]


def ask_rag(
    lab,
    corpus: str | Path,
    question: str,
    model: str | None = None,
    k: int = 4,
    system: str | None = None,
    options=None,
    on_text=None,
    adapter: str | None = None,
    arm: str = "rag",
    log_extra: dict | None = None,
    engine: str | None = None,
    adapter_sha: str | None = None,
    adapter_id: str | None = None,
    cancel=None,
    chunk_tokens: int | None = None,
    shots: list | None = None,
):
    """The `rag` arm: retrieve k passages, fit them into the model's context (numbered [1]..),
    generate, and log the corpus, index hash and retrieved chunks with the generation.
    `chunk_tokens`: search the version of the corpus chunked at that size (`index_root`); `shots`:
    worked examples as (input, output) turns before the question (rag with few-shot examples).
    Returns (Generation, row_id, the passages the prompt holds, in citation order)."""
    idx = loaded_index(
        lab, corpus, chunk_tokens=chunk_tokens
    )  # one version for both the passages and the logged index hash
    retrieved = _search(lab, idx, question, k)
    backend = lab.backend(model, engine)
    options = options or lab.options()
    messages, kept = pack_passages(
        backend, question, retrieved, instruction=system, max_tokens=options.max_tokens, shots=shots
    )
    in_prompt = {p.chunk_id for p in kept}
    log = {
        "corpus": idx.manifest["corpus"],
        "index_hash": idx.hash,
        "retrieved": [
            {
                "chunk_id": p.chunk_id,
                "source": p.source,
                "score": round(p.score, 4),
                "in_prompt": p.chunk_id in in_prompt,
            }
            for p in retrieved
        ],
        **(log_extra or {}),
    }
    gen, row_id = lab.generate(
        messages,
        arm=arm,
        model=model,
        engine=engine,
        options=options,
        adapter=adapter,
        adapter_sha=adapter_sha,
        adapter_id=adapter_id,
        on_text=on_text,
        log=log,
        cancel=cancel,
    )
    return gen, row_id, kept
