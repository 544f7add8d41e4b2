"""Retrieval alone, without the model: how often the task's held-out questions find what answers them.

    check = check_retrieval(lab, "acme-facts", ks=(1, 2, 4, 8))
    print(check.to_text())

Every held-out question is searched once, at the largest k, with the call and the query the rag
arms use (`retrieval.search`, the example's input); no answer is generated, only the embedder runs.
For each k, over the top-k passages:
- hit rate: the expected answer or an alias, as whole words, in a passage (`scorers.answer_in_context`,
  the scoreboard's context_hit); only for a text task's short facts (`is_short_fact`), else None;
- recall@k: a passage from the example's gold_doc (`scorers.recall_at_k`); MRR@k: the mean of
  1/rank of the first such passage (0 when none is in the top k); only for examples with a gold_doc.
The index is checked as built (one chunking: its chunk size and overlap are reported), or, with
`chunk_tokens`, the version of the corpus chunked at that size (`retrieval.index_root`: built
beside the corpus's own index the first time, brought up to date with the documents after).

    sweep = check_chunk_sizes(lab, "acme-facts")  # half, own and double chunk size
    print(sweep.to_text())  # one table, a chunk-size column; sweep.best(): the size to use

Building a version embeds its chunks once (its time is reported apart: the check's seconds are
the searches' alone); later checks, and the RAG sweep, reuse it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from .scorers import answer_in_context, doc_matches, recall_at_k

DEFAULT_KS = (1, 2, 4, 8)
RAG_K = 4  # the rag arms' passages per question (ladder.answer's rag_k default)


@dataclass
class KRow:
    """The figures at one k; `*_n`: how many examples each figure covers."""

    k: int
    hit_rate: float | None
    hit_n: int
    recall: float | None
    recall_n: int
    mrr: float | None


@dataclass
class RetrievalCheck:
    task: str
    corpus: str
    n: int  # held-out examples searched
    rows: list[KRow]
    chunk_tokens: int | None = None
    overlap: int | None = None
    index_hash: str | None = None
    index_version: int | None = None
    seconds: float = 0.0
    rag_k: int = RAG_K
    notes: list[str] = field(default_factory=list)
    chunks: int | None = None  # chunks in the index version searched
    own: bool = True  # the corpus's own index, not a version chunked otherwise
    index_name: str | None = None  # its folder under indexes/: `acme`, `acme~80t`
    built_s: float | None = None  # seconds building or updating it just now; None: it was ready
    embedded: int = 0  # chunks embedded for it just now

    def row(self, k: int) -> KRow:
        return next(r for r in self.rows if r.k == k)

    def cells(self, r: KRow) -> list[str]:
        return [
            f"{r.k}{' (rag)' if r.k == self.rag_k else ''}",
            _frac(r.hit_rate, r.hit_n),
            _frac(r.recall, r.recall_n),
            "—" if r.mrr is None else f"{r.mrr:.3f}",
        ]

    def version_line(self) -> str:
        """Which index was searched and what readying it cost (a build is said, with its time)."""
        which = "the corpus's own index" if self.own else f"version {self.index_name}"
        line = f"chunk size {self.chunk_tokens} ({self.overlap} overlap): {self.chunks} chunks in {which} v{self.index_version}"
        if self.built_s is not None:
            done = "built now" if self.index_version == 1 else "brought up to date with the documents now"
            line += f"; {done}: {self.embedded} chunks embedded in {self.built_s:.1f} s (once: later checks reuse it)"
        return line

    def table(self) -> tuple[list[str], list[list[str]]]:
        """(headers, rows) of the report, as text cells: the CLI and the app print the same table."""
        return ["k", "hit rate", "recall@k", "MRR@k"], [self.cells(r) for r in self.rows]

    def heading(self) -> str:
        chunking = (
            f"chunks of up to {self.chunk_tokens} tokens, {self.overlap} overlap"
            if self.chunk_tokens is not None
            else "chunking unknown"
        )
        version = f" v{self.index_version}" if self.index_version is not None else ""
        return (
            f"Retrieval check: task {self.task} on corpus {self.corpus} (index{version}, {chunking}): "
            f"{self.n} held-out questions searched in {self.seconds:.1f} s, no generation"
        )

    def footnotes(self) -> list[str]:
        """The lines under the table: a build just made (with its time), then the notes."""
        return [self.version_line()] * (self.built_s is not None) + self.notes

    def to_text(self) -> str:
        return _text(self.heading(), *self.table(), self.footnotes())


@dataclass
class RetrievalSweep:
    """The same check at several chunk sizes (`check_chunk_sizes`), one index version each."""

    checks: list[RetrievalCheck]

    def metric_name(self) -> str:
        """What the chart plots: hit rate, or recall@k when the outputs are not short facts."""
        return "hit rate" if any(r.hit_rate is not None for c in self.checks for r in c.rows) else "recall@k"

    def series(self) -> list[tuple[RetrievalCheck, list[tuple[int, float]]]]:
        """Per chunk size, (k, the metric) where it is known: the chart's lines."""
        hit = self.metric_name() == "hit rate"
        return [
            (c, [(r.k, v) for r in c.rows if (v := r.hit_rate if hit else r.recall) is not None]) for c in self.checks
        ]

    def best(self) -> tuple[RetrievalCheck, int, float] | None:
        """(check, k, figure): the chunk size that finds most at the rag arms' k (else the largest k
        checked); a tie keeps the corpus's own index, then the smaller chunks (less to read)."""
        scored = [(c, *_at_rag_k(pts)) for c, pts in self.series() if pts]
        return max(scored, key=lambda s: (s[2], s[0].own, -(s[0].chunk_tokens or 0)), default=None)

    def table(self) -> tuple[list[str], list[list[str]]]:
        rows = [[f"{c.chunk_tokens}{' (own)' if c.own else ''}", *c.cells(r)] for c in self.checks for r in c.rows]
        return ["chunk size", "k", "hit rate", "recall@k", "MRR@k"], rows

    def heading(self) -> str:
        c = self.checks[0]
        sizes = ", ".join(str(x.chunk_tokens) for x in self.checks)
        return (
            f"Retrieval check: task {c.task} on corpus {c.corpus} at {len(self.checks)} chunk sizes ({sizes} tokens): "
            f"{c.n} held-out questions searched at each in {sum(x.seconds for x in self.checks):.1f} s, no generation"
        )

    def footnotes(self) -> list[str]:
        """The lines under the table: each size's index version (and its build), the best, the notes."""
        lines = [x.version_line() for x in self.checks]
        if (best := self.best()) and len(self.checks) > 1:
            c, k, v = best  # beside the own size's figure: a question or two apart is no reason to rebuild
            own = next(((x, dict(pts).get(k)) for x, pts in self.series() if x.own and x is not c), None)
            said = f"; own size {own[0].chunk_tokens}: {100 * own[1]:.1f}%" if own and own[1] is not None else ""
            lines.append(f"best at k={k}: chunk size {c.chunk_tokens} ({self.metric_name()} {100 * v:.1f}%{said})")
        return lines + list(dict.fromkeys(n for x in self.checks for n in x.notes))

    def to_text(self) -> str:
        return _text(self.heading(), *self.table(), self.footnotes())


def _at_rag_k(points: list[tuple[int, float]]) -> tuple[int, float]:
    return next(((k, v) for k, v in points if k == RAG_K), points[-1])


def _text(heading: str, headers: list[str], rows: list[list[str]], notes: list[str]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = [heading, ""]
    lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines += ["", *notes]
    return "\n".join(lines).rstrip()


def _frac(x: float | None, n: int) -> str:
    return "—" if x is None else f"{100 * x:.1f}% (n={n})"


def _first_gold_rank(passages: Sequence, gold_doc) -> int | None:
    for i, p in enumerate(passages, 1):
        source = p.get("source") if isinstance(p, dict) else getattr(p, "source", None)
        if doc_matches(source, gold_doc):
            return i
    return None


def score_results(examples: Sequence, results: Sequence[Sequence], ks: Sequence[int], text_task: bool = True):
    """The figures per k from each example's passages (best first, at least max(ks) of them when
    the index has that many): pure, no search. `examples` have .output and .extra (aliases,
    gold_doc). Returns [KRow] in the order of `ks`."""
    rows = []
    for k in ks:
        hits, recalls, rrs = [], [], []
        for ex, passages in zip(examples, results):
            extra = getattr(ex, "extra", None) or {}
            top = list(passages)[:k]
            if text_task:
                hit = answer_in_context(top, ex.output, list(extra.get("aliases") or []))
                if hit is not None:
                    hits.append(hit)
            gold_doc = extra.get("gold_doc")
            if gold_doc:
                recalls.append(recall_at_k(top, gold_doc))
                rank = _first_gold_rank(top, gold_doc)
                rrs.append(0.0 if rank is None else 1.0 / rank)
        rows.append(
            KRow(
                k=k,
                hit_rate=sum(hits) / len(hits) if hits else None,
                hit_n=len(hits),
                recall=sum(recalls) / len(recalls) if recalls else None,
                recall_n=len(recalls),
                mrr=sum(rrs) / len(rrs) if rrs else None,
            )
        )
    return rows


def check_retrieval(
    lab, task, ks: Sequence[int] = DEFAULT_KS, corpus=None, progress: bool = False, chunk_tokens: int | None = None
) -> RetrievalCheck:
    """Search every held-out question of `task` once at max(ks) in `corpus` (default: the task's,
    as the rag arms find it), and report hit rate, recall@k and MRR@k for each k. Indexes the
    corpus first if it has no index (as a search does); no model is loaded. `chunk_tokens`: search
    the version of the corpus chunked at that size instead (built or brought up to date first)."""
    from ..ladder import task_corpus
    from ..retrieval import search
    from ..tasks import load_task
    from .sample import held_out

    task = load_task(task, home=lab.home)
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError("k must be 1 or more")
    where = corpus if corpus is not None else task_corpus(lab, task)
    examples = held_out(task)
    idx, ready = _ready_index(lab, where, chunk_tokens, progress)
    lab.embedder().encode(["warm up"])  # the embedder loaded before the clock starts: the time is the searches'
    started = time.perf_counter()
    results = [search(lab, where, ex.input, k=ks[-1], chunk_tokens=chunk_tokens) for ex in examples]
    seconds = time.perf_counter() - started
    chunking = idx.manifest.get("chunking") or {}
    text_task = (getattr(task, "output_format", "text") or "text") == "text"
    rows = score_results(examples, results, ks, text_task=text_task)
    return RetrievalCheck(
        task=task.name,
        corpus=idx.manifest.get("corpus", str(where)),
        n=len(examples),
        rows=rows,
        chunk_tokens=chunking.get("chunk_tokens"),
        overlap=chunking.get("overlap"),
        index_hash=idx.hash,
        index_version=idx.manifest.get("version"),
        seconds=seconds,
        notes=_notes(task, idx, rows, ks),
        chunks=len(idx.manifest.get("chunks", {})),
        **ready,
    )


def check_chunk_sizes(
    lab, task, ks: Sequence[int] = DEFAULT_KS, corpus=None, chunk_sizes: Sequence[int] | None = None, progress=False
) -> RetrievalSweep:
    """`check_retrieval` at each chunk size (default `retrieval.sweep_chunk_sizes`: half, own and
    double): one index version per size, built the first time and reused after; the corpus's own
    index is searched for its own size and never changed."""
    from ..ladder import task_corpus
    from ..retrieval import RetrievalError, sweep_chunk_sizes
    from ..tasks import load_task

    task = load_task(task, home=lab.home)
    where = corpus if corpus is not None else task_corpus(lab, task)
    sizes = sorted({int(n) for n in chunk_sizes}) if chunk_sizes else sweep_chunk_sizes(lab, where)
    longest = lab.embedder().max_seq_length
    if not sizes or sizes[0] < 1 or sizes[-1] > longest:  # before any build: not after the first size
        raise RetrievalError(f"chunk sizes must be 1 to {longest} tokens (what the embedder reads), not {sizes}")
    return RetrievalSweep(
        [check_retrieval(lab, task, ks, corpus=where, progress=progress, chunk_tokens=n) for n in sizes]
    )


def _ready_index(lab, where, chunk_tokens: int | None, progress: bool):
    """The index version to search (built if missing; a version other than the corpus's own also
    brought up to date with the documents) and what readying it cost, as RetrievalCheck fields."""
    from ..retrieval import index_root, loaded_index
    from ..retrieval.corpus import resolve_corpus
    from ..retrieval.index import current_dir

    name, _ = resolve_corpus(lab.home, where, lab.home.indexes)
    root = index_root(lab, name, chunk_tokens)
    own = root == lab.home.indexes / name
    existed = current_dir(root) is not None
    embedder = lab.embedder()
    misses, started = embedder.misses, time.perf_counter()
    idx = loaded_index(lab, where, progress=progress, chunk_tokens=chunk_tokens, update=not own)
    embedded = embedder.misses - misses
    built = time.perf_counter() - started if not existed or embedded else None
    return idx, {"own": own, "index_name": root.name, "built_s": built, "embedded": embedded}


def _notes(task, idx, rows: list[KRow], ks: Sequence[int]) -> list[str]:
    notes = []
    if rows and rows[0].hit_n == 0:
        notes.append("hit rate: — (the expected outputs are not short facts: only recall@k says what was found)")
    if rows and rows[0].recall_n == 0:
        notes.append("recall@k, MRR: — (the examples name no gold_doc)")
    if getattr(task, "corpus", None) and str(task.corpus) != idx.manifest.get("corpus"):
        notes.append(f"note: the task names corpus '{task.corpus}'; this checked '{idx.manifest.get('corpus')}'")
    if RAG_K in ks:
        notes.append(f"(rag): the k the rag arms use ({RAG_K} passages, before packing fits them to the context)")
    return notes
