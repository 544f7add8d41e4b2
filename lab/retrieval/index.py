"""One hnswlib index per corpus, kept in the lab home and updated incrementally.

Layout under `<home>/.lab/indexes/<corpus>/`:

    CURRENT            the name of the live version folder (replaced atomically)
    v000007/           manifest.json, index.bin (hnswlib), texts.json (chunk texts by label)

A build writes a whole new version folder under a temporary name, renames it into place, then
replaces CURRENT; a build killed at any point leaves CURRENT naming a complete, older version.
The manifest records the embedder, chunking and HNSW settings, and every file's hash and chunk
labels, so a re-run reads only the files that changed and embeds only chunks it has not seen.
Every new version is calibrated (`calibrate.py`): exact search below a measured size, else HNSW
with the smallest beam that reaches the recall target; the manifest's "search" says which and why.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import shutil
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .calibrate import RECALL_TARGET, calibrate, exact_topk
from .chunking import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP, Chunk, chunk_document
from .corpus import RetrievalError, SkipFile, file_sha256, read_documents, scan

FORMAT = 1
# Picked with scripts/bench_retrieval.py on 100k embedding-like 384-d vectors: M=32 beats 16 and 24
# (at equal cost it reaches a higher recall). The query-time beam ef is calibrated per build
# (calibrate.py) unless given; DEFAULT_EF is what an index from before calibration queries with.
DEFAULT_M = 32
DEFAULT_EF_CONSTRUCTION = 200
DEFAULT_EF = 96


@dataclass
class IndexSettings:
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS
    overlap: int = DEFAULT_OVERLAP
    M: int = DEFAULT_M
    ef_construction: int = DEFAULT_EF_CONSTRUCTION
    ef: int | None = None  # None: calibrated to reach recall_target
    recall_target: float = RECALL_TARGET


@dataclass
class IndexReport:
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    rebuilt_reason: str | None = None  # why everything was rebuilt (None: incremental or no change)
    seconds: float = 0.0
    corpus: str = ""
    chunks: int = 0  # live chunks in the index now
    files: int = 0  # documents files indexed
    files_changed: int = 0
    embedded: int = 0  # chunks that went through the embedding model (the rest came from the cache)
    note: str = ""  # a setting changed without a rebuild (ef)
    search: str = ""  # exact or HNSW, and why (calibrate.Calibration.summary)
    skipped: list[str] = field(default_factory=list)  # warnings naming skipped files
    index_hash: str = ""
    path: str = ""

    def summary(self) -> str:
        what = f"{self.added} added, {self.changed} changed, {self.removed} removed, {self.unchanged} unchanged"
        if not (self.added or self.changed or self.removed) and not self.rebuilt_reason:
            what = f"no change ({self.unchanged} chunks)"
        if self.note:
            what += f"; {self.note}"
        return (
            f"{self.corpus}: {what}; {self.chunks} chunks from {self.files} files, "
            f"{self.embedded} embedded, in {self.seconds:.2f}s"
            + (f" (full rebuild: {self.rebuilt_reason})" if self.rebuilt_reason else "")
            + (f"\n{self.search}" if self.search else "")
        )


# ---- reading the live version ------------------------------------------------------------


def current_dir(index_root: Path) -> Path | None:
    try:
        name = (index_root / "CURRENT").read_text().strip()
    except FileNotFoundError:
        return None
    folder = index_root / name
    return folder if (folder / "manifest.json").exists() else None


def read_manifest(index_root: Path) -> dict | None:
    folder = current_dir(index_root)
    if folder is None:
        return None
    return json.loads((folder / "manifest.json").read_text())


class LoadedIndex:
    """The live version of one corpus index, in memory, for queries."""

    def __init__(self, folder: Path):
        import hnswlib

        self.folder = folder
        self.manifest = json.loads((folder / "manifest.json").read_text())
        self.texts = {int(k): v for k, v in json.loads((folder / "texts.json").read_text()).items()}
        m = self.manifest
        self.index = hnswlib.Index(space="ip", dim=m["dim"])
        self.index.load_index(str(folder / "index.bin"), max_elements=max(1, m["next_label"]))
        self.index.set_ef(m["hnsw"]["ef"])
        self.exact = (m.get("search") or {}).get("mode") == "exact"
        if self.exact:  # small corpus: one matrix product beats the graph (calibrate.py)
            self.labels = np.asarray(sorted(int(k) for k in m["chunks"]), dtype=np.int64)
            self.matrix = np.asarray(self.index.get_items(self.labels), dtype=np.float32)

    @property
    def hash(self) -> str:
        return self.manifest["manifest_hash"]

    def query(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        live = len(self.manifest["chunks"])
        k = min(k, live)
        if k <= 0:
            return []
        if self.exact:
            rows = exact_topk(self.matrix, vector.reshape(1, -1), k)[0]
            return [(int(self.labels[r]), float(self.matrix[r] @ vector)) for r in rows]
        self.index.set_ef(max(self.manifest["hnsw"]["ef"], k))
        labels, dists = self.index.knn_query(vector.reshape(1, -1), k=k)
        return [(int(lbl), 1.0 - float(d)) for lbl, d in zip(labels[0], dists[0])]  # ip distance = 1 - cos


# ---- building ------------------------------------------------------------------------------


@contextlib.contextmanager
def _build_lock(index_root: Path):
    """One build per corpus at a time (a second one waits), across processes. A build that
    leaves no index (an empty or unreadable corpus) removes the lock file too, so a refused
    `lab index` writes nothing; a waiter that then locks the unlinked file sees the path
    changed and opens it afresh (`home.lock_file`)."""
    from ..home import lock_file, unlock_file

    try:
        import fcntl  # noqa: F401
    except ImportError:  # Windows: no cross-process lock
        yield
        return
    fh = lock_file(index_root.parent / f".{index_root.name}.lock")
    try:
        yield
    finally:
        unlock_file(fh, remove=not index_root.exists())


def manifest_hash(m: dict) -> str:
    """What the index answers from: embedder, settings and chunk contents (not labels or times)."""
    core = {
        "embedder": m["embedder"],
        "dim": m["dim"],
        "chunking": m["chunking"],
        "hnsw": m["hnsw"],
        "search": (m.get("search") or {}).get("mode"),
        "chunks": sorted((c["id"], c["hash"]) for c in m["chunks"].values()),
    }
    return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()[:16]


def _rebuild_reason(old: dict | None, embedder_id: str, s: IndexSettings, root: Path) -> str | None:
    if old is None:
        return "no index yet"
    if old.get("format") != FORMAT:
        return f"index format {old.get('format')} is not {FORMAT}"
    if old["embedder"] != embedder_id:
        return f"embedder changed from {old['embedder']} to {embedder_id}"
    ch = old["chunking"]
    if (ch["chunk_tokens"], ch["overlap"]) != (s.chunk_tokens, s.overlap):
        return (
            f"chunking changed from {ch['chunk_tokens']} tokens / {ch['overlap']} overlap "
            f"to {s.chunk_tokens} / {s.overlap}"
        )
    h = old["hnsw"]
    if (h["M"], h["ef_construction"]) != (s.M, s.ef_construction):
        return (
            f"HNSW settings changed from M={h['M']}, ef_construction={h['ef_construction']} "
            f"to M={s.M}, ef_construction={s.ef_construction}"
        )
    if old.get("corpus_root") != str(root):
        return f"corpus folder changed from {old.get('corpus_root')} to {root}"
    deleted, live = len(old["deleted"]), len(old["chunks"])
    if deleted > max(64, live):
        return f"compacting: {deleted} deleted chunks outnumber the {live} live ones"
    return None


def settings_for(old: dict | None, **given) -> IndexSettings:
    """Settings given explicitly win; otherwise keep the existing index's, else the defaults."""
    s = IndexSettings()
    if old is not None:  # an ef the user gave is kept; a calibrated one is measured again
        h = old["hnsw"]
        s = IndexSettings(
            old["chunking"]["chunk_tokens"],
            old["chunking"]["overlap"],
            h["M"],
            h["ef_construction"],
            h["ef"] if h.get("ef_given") else None,
            (old.get("search") or {}).get("target", RECALL_TARGET),
        )
    for k, v in given.items():
        if v is not None:
            setattr(s, k, v)
    if s.ef == 0:  # `--ef 0`: back to the calibrated beam
        s.ef = None
    return s


def build_index(
    index_root: Path,
    corpus: str,
    root: Path,
    embedder,
    settings: IndexSettings | None = None,
    progress: bool = False,
    **given,
) -> IndexReport:
    """Bring the index of `root` up to date; see the module docstring."""
    t0 = time.perf_counter()
    with _build_lock(index_root):
        old = read_manifest(index_root)
        s = settings or settings_for(old, **given)
        _check_settings(s, embedder)
        reason = _rebuild_reason(old, embedder.id, s, root)
        report = IndexReport(corpus=corpus, rebuilt_reason=reason, path=str(index_root))
        files, skipped = scan(root)
        report.skipped.extend(skipped)
        old_files = {} if reason else old["files"]
        old_chunks = {} if reason else {int(k): v for k, v in old["chunks"].items()}
        scanned_ns = time.time_ns()
        new_files, changed = _changed_files(files, old_files, (old or {}).get("scanned_ns", 0), report)
        removed_files = [rel for rel in old_files if rel not in new_files]

        ef_changed = old is not None and not reason and _search_changed(old, s)
        if ef_changed:
            report.note = f"search settings changed: {_search_changed(old, s)}"
        if old is not None and not reason and not changed and not removed_files and not ef_changed:
            if any(new_files[r] != old_files[r] for r in new_files):
                _refresh_manifest(current_dir(index_root), old, new_files, scanned_ns)
            report.unchanged = report.chunks = len(old["chunks"])
            report.search = _search_summary(old)
            return _done(report, new_files, old["manifest_hash"], t0)

        fresh = _chunk_files(files, changed, new_files, embedder, s, report)
        next_label = 0 if reason else old["next_label"]
        chunks, to_add, gone, next_label = _match_chunks(
            old_files, old_chunks, removed_files, changed, fresh, new_files, next_label, report
        )
        report.files_changed = len(changed) + len(removed_files)
        live = sum(len(e.get("labels", [])) for e in new_files.values())
        if live == 0:
            problems = "".join(f"\n  {w}" for w in report.skipped)
            raise RetrievalError(f"corpus {root} has no readable documents (.md, .txt, .html, .jsonl)" + problems)

        # Embed what is new (the cache answers for text seen before), then write a new version.
        misses = embedder.misses
        vectors = embedder.embed([c.embed_text for _, c in to_add], progress=progress)
        report.embedded = embedder.misses - misses
        manifest = {
            "format": FORMAT,
            "corpus": corpus,
            "corpus_root": str(root),
            "embedder": embedder.id,
            "dim": int(vectors.shape[1]) if len(to_add) else old["dim"],
            "chunking": {"chunk_tokens": s.chunk_tokens, "overlap": s.overlap},
            "hnsw": {
                "space": "ip",
                "M": s.M,
                "ef_construction": s.ef_construction,
                "ef": s.ef,
                "ef_given": s.ef is not None,
            },
            "files": new_files,
            "chunks": {str(k): v for k, v in sorted(chunks.items())},
            "deleted": sorted(set([] if reason else old["deleted"]) | set(gone)),
            "next_label": next_label,
            "version": (old or {}).get("version", 0) + 1,
            "scanned_ns": scanned_ns,
            "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        texts = {} if reason else json.loads((current_dir(index_root) / "texts.json").read_text())
        for label in gone:
            texts.pop(str(label), None)
        texts.update({str(label): c.text for label, c in to_add})
        _write_version(
            index_root,
            None if reason else current_dir(index_root),
            manifest,
            texts,
            [label for label, _ in to_add],
            vectors,
            gone,
            s,
        )
        report.search = _search_summary(manifest)
        if reason:  # everything counts as added in a rebuild
            report.added, report.changed, report.removed, report.unchanged = live, 0, 0, 0
        report.chunks = live
        return _done(report, new_files, manifest["manifest_hash"], t0)


def _search_changed(old: dict, s: IndexSettings) -> str:
    """What changed in the query-time settings (a new version, no re-embedding), or ''."""
    h, cal = old["hnsw"], old.get("search") or {}
    if s.ef is not None and (s.ef != h["ef"] or not h.get("ef_given")):
        return f"ef {h['ef']} -> {s.ef}"
    if s.ef is None and h.get("ef_given"):
        return f"ef {h['ef']} -> calibrated"
    if s.ef is None and cal and abs(cal.get("target", s.recall_target) - s.recall_target) > 1e-9:
        return f"recall target {cal.get('target')} -> {s.recall_target}"
    return ""


def _search_summary(manifest: dict) -> str:
    cal = manifest.get("search")
    if not cal:
        return f"search: HNSW ef={manifest['hnsw']['ef']} (built before calibration)"
    from .calibrate import Calibration

    return Calibration(**cal).summary()


def _check_settings(s: IndexSettings, embedder) -> None:
    if not 0 < s.recall_target <= 1:
        raise RetrievalError(f"the recall target must be in (0, 1], not {s.recall_target}")
    if s.M < 2 or s.ef_construction < 1 or (s.ef is not None and s.ef < 0):
        raise RetrievalError(f"HNSW settings must be positive: M={s.M}, ef_construction={s.ef_construction}, ef={s.ef}")
    if s.chunk_tokens > embedder.max_seq_length:
        raise RetrievalError(
            f"chunk_tokens {s.chunk_tokens} is more than the embedder {embedder.id} "
            f"reads ({embedder.max_seq_length} tokens)"
        )


def _done(report: IndexReport, new_files: dict, index_hash: str, t0: float) -> IndexReport:
    report.files = sum(1 for e in new_files.values() if not e.get("skipped"))
    report.index_hash = index_hash
    report.seconds = time.perf_counter() - t0
    return report


def _changed_files(
    files: list, old_files: dict, last_scan_ns: int, report: IndexReport
) -> tuple[dict[str, dict], dict[str, bytes]]:
    """(every file's manifest entry, the bytes of the new or changed ones). Size and mtime first,
    the content hash when they differ or when the file was modified so close to the last scan
    that its mtime cannot be trusted."""
    racy_ns = last_scan_ns - 2_000_000_000
    new_files: dict[str, dict] = {}
    changed: dict[str, bytes] = {}
    for sf in files:
        prev = old_files.get(sf.rel)
        if prev and prev["size"] == sf.size and prev["mtime_ns"] == sf.mtime_ns and sf.mtime_ns < racy_ns:
            new_files[sf.rel] = prev
            continue
        try:
            data = sf.path.read_bytes()
        except OSError as e:
            report.skipped.append(f"{sf.path}: skipped, unreadable ({e.strerror or e})")
            continue
        sha = file_sha256(data)
        if prev and prev["sha256"] == sha:
            new_files[sf.rel] = {**prev, "size": sf.size, "mtime_ns": sf.mtime_ns}
            continue
        new_files[sf.rel] = {"sha256": sha, "size": sf.size, "mtime_ns": sf.mtime_ns, "labels": []}
        changed[sf.rel] = data
    for rel, entry in new_files.items():
        if entry.get("skipped") and rel not in changed:
            report.skipped.append(entry["skipped"])
    return new_files, changed


def _chunk_files(
    files: list, changed: dict[str, bytes], new_files: dict, embedder, s: IndexSettings, report: IndexReport
) -> dict[str, list[Chunk]]:
    """Read and chunk the changed files; an unreadable one is marked skipped in its entry."""
    by_sf = {sf.rel: sf for sf in files}
    fresh: dict[str, list[Chunk]] = {}
    for rel, data in changed.items():
        try:
            docs = read_documents(by_sf[rel], data, warn=report.skipped.append)
        except SkipFile as e:
            report.skipped.append(str(e))
            new_files[rel]["skipped"] = str(e)
            continue
        fresh[rel] = [c for d in docs for c in chunk_document(d, embedder.count_tokens, s.chunk_tokens, s.overlap)]
    return fresh


def _match_chunks(
    old_files: dict,
    old_chunks: dict[int, dict],
    removed_files: list[str],
    changed: dict,
    fresh: dict[str, list[Chunk]],
    new_files: dict,
    next_label: int,
    report: IndexReport,
):
    """Match new chunks to old ones of the same file by (source, hash): those keep their label
    (and vector). Returns (chunks by label, (label, chunk) pairs to embed, labels gone, next label)."""
    chunks = dict(old_chunks)
    to_add: list[tuple[int, Chunk]] = []
    gone: list[int] = []
    for rel in removed_files:
        gone.extend(old_files[rel]["labels"])
        report.removed += len(old_files[rel]["labels"])
    for rel in changed:
        pool: dict[tuple[str, str], deque[int]] = {}  # a deque: popleft stays linear in the repeats
        for label in (old_files.get(rel) or {}).get("labels", []):
            c = old_chunks[label]
            pool.setdefault((c["source"], c["hash"]), deque()).append(label)
        labels, new_count = [], 0
        for c in fresh.get(rel, []):
            match = pool.get((c.source, c.hash))
            if match:
                label = match.popleft()
                chunks[label] = _chunk_entry(c, chunks[label]["id"])  # same vector, maybe a new span
                report.unchanged += 1
            else:
                label, next_label = next_label, next_label + 1
                to_add.append((label, c))
                new_count += 1
            labels.append(label)
        left = [label for ls in pool.values() for label in ls]
        gone.extend(left)
        both = min(new_count, len(left))
        report.changed += both
        report.added += new_count - both
        report.removed += len(left) - both
        new_files[rel]["labels"] = labels
    report.unchanged += sum(len(e.get("labels", [])) for rel, e in new_files.items() if rel not in changed)
    for label in gone:
        chunks.pop(label, None)
    _assign_ids(chunks, to_add)
    return chunks, to_add, gone, next_label


def _chunk_entry(c: Chunk, chunk_id: str) -> dict:
    return {
        "id": chunk_id,
        "hash": c.hash,
        "source": c.source,
        "file": c.file,
        "title": c.title,
        "heading": c.heading,
        "span": [c.start, c.end],
        "tokens": c.tokens,
    }


def _assign_ids(chunks: dict[int, dict], to_add: list[tuple[int, Chunk]]) -> int:
    """Readable, stable ids: source@hash-prefix (same text in the same source keeps its id); a
    repeat takes the first free `source@hash-prefix~n`, n = 2, 3, …

    Each base id remembers the n its search stopped at, so the k-th repeat of a text does not probe
    n = 2 … k again: the ids taken only grow, so every n below the last one given is still taken,
    and resuming there gives exactly the id a search from the start would. Returns the number of
    ids tried (one per chunk, plus one per id found taken): linear in the chunks and old ids."""
    taken = {c["id"] for c in chunks.values()}
    next_n: dict[str, int] = {}  # base id -> the first n not yet known to be taken
    probes = 0
    for label, c in to_add:
        base = f"{c.source}@{c.hash[:10]}"
        n = next_n.get(base, 1)
        cid = base if n == 1 else f"{base}~{n}"
        probes += 1
        while cid in taken:
            n += 1
            cid = f"{base}~{n}"
            probes += 1
        next_n[base] = n + 1
        taken.add(cid)
        chunks[label] = _chunk_entry(c, cid)
    return probes


def _write_json(path: Path, data) -> None:
    with open(path, "w") as fh:
        json.dump(data, fh, ensure_ascii=False, separators=(",", ":"))
        fh.flush()
        os.fsync(fh.fileno())


def _refresh_manifest(folder: Path, old: dict, files: dict, scanned_ns: int) -> None:
    """Only timestamps changed (a checkout, a touch): update them in place, atomically."""
    tmp = folder / "manifest.json.tmp"
    _write_json(tmp, {**old, "files": files, "scanned_ns": scanned_ns})
    os.replace(tmp, folder / "manifest.json")


def _write_version(
    index_root: Path,
    base: Path | None,
    manifest: dict,
    texts: dict,
    labels: list[int],
    vectors: np.ndarray,
    gone: list[int],
    s: IndexSettings,
) -> None:
    import hnswlib

    index_root.mkdir(parents=True, exist_ok=True)
    for stale in index_root.glob(".tmp-*"):  # left by a killed build (we hold the build lock)
        shutil.rmtree(stale, ignore_errors=True)
    name = f"v{manifest['version']:06d}"
    tmp = index_root / f".tmp-{name}-{os.getpid()}"
    tmp.mkdir()
    index = hnswlib.Index(space="ip", dim=manifest["dim"])
    capacity = max(1, manifest["next_label"])
    if base is None:
        index.init_index(max_elements=capacity, M=s.M, ef_construction=s.ef_construction, random_seed=100)
    else:
        index.load_index(str(base / "index.bin"), max_elements=capacity)
    if labels:
        index.add_items(vectors, np.asarray(labels, dtype=np.int64))
    for label in gone:
        with contextlib.suppress(RuntimeError):  # already deleted
            index.mark_deleted(label)
    live = np.asarray(sorted(int(k) for k in manifest["chunks"]), dtype=np.int64)
    vectors = np.asarray(index.get_items(live), dtype=np.float32) if len(live) else np.zeros((0, manifest["dim"]))
    cal = calibrate(index, live, vectors, target=s.recall_target, ef=s.ef)
    manifest["search"] = cal.as_dict()
    manifest["hnsw"]["ef"] = cal.ef or s.ef or DEFAULT_EF
    manifest["manifest_hash"] = manifest_hash(manifest)
    index.set_ef(manifest["hnsw"]["ef"])
    index.save_index(str(tmp / "index.bin"))
    _write_json(tmp / "texts.json", texts)
    _write_json(tmp / "manifest.json", manifest)
    final = index_root / name
    if final.exists():  # a version folder no CURRENT points at (a build killed after the rename)
        shutil.rmtree(final)
    os.rename(tmp, final)
    pointer = index_root / "CURRENT.tmp"
    pointer.write_text(name + "\n")
    os.replace(pointer, index_root / "CURRENT")  # the switch: atomic on POSIX and Windows
    for old in index_root.glob("v*"):
        if old.name != name and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
