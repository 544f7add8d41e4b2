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
The index is checked as built (one chunking: its chunk size and overlap are reported).
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

    def row(self, k: int) -> KRow:
        return next(r for r in self.rows if r.k == k)

    def table(self) -> tuple[list[str], list[list[str]]]:
        """(headers, rows) of the report, as text cells: the CLI and the app print the same table."""
        headers = ["k", "hit rate", "recall@k", "MRR@k"]
        rows = [
            [
                f"{r.k}{' (rag)' if r.k == self.rag_k else ''}",
                _frac(r.hit_rate, r.hit_n),
                _frac(r.recall, r.recall_n),
                "—" if r.mrr is None else f"{r.mrr:.3f}",
            ]
            for r in self.rows
        ]
        return headers, rows

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

    def to_text(self) -> str:
        headers, rows = self.table()
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
        lines = [self.heading(), ""]
        lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
        lines += ["", *self.notes]
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


def check_retrieval(lab, task, ks: Sequence[int] = DEFAULT_KS, corpus=None, progress: bool = False) -> RetrievalCheck:
    """Search every held-out question of `task` once at max(ks) in `corpus` (default: the task's,
    as the rag arms find it), and report hit rate, recall@k and MRR@k for each k. Indexes the
    corpus first if it has no index (as a search does); no model is loaded."""
    from ..ladder import task_corpus
    from ..retrieval import loaded_index, search
    from ..tasks import load_task
    from .sample import held_out

    task = load_task(task, home=lab.home)
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError("k must be 1 or more")
    where = corpus if corpus is not None else task_corpus(lab, task)
    examples = held_out(task)
    idx = loaded_index(lab, where, progress=progress)
    lab.embedder().encode(["warm up"])  # the embedder loaded before the clock starts: the time is the searches'
    started = time.perf_counter()
    results = [search(lab, where, ex.input, k=ks[-1]) for ex in examples]
    seconds = time.perf_counter() - started
    chunking = idx.manifest.get("chunking") or {}
    text_task = (getattr(task, "output_format", "text") or "text") == "text"
    rows = score_results(examples, results, ks, text_task=text_task)
    notes = []
    if rows and rows[0].hit_n == 0:
        notes.append("hit rate: — (the expected outputs are not short facts: only recall@k says what was found)")
    if rows and rows[0].recall_n == 0:
        notes.append("recall@k, MRR: — (the examples name no gold_doc)")
    if getattr(task, "corpus", None) and str(task.corpus) != idx.manifest.get("corpus"):
        notes.append(f"note: the task names corpus '{task.corpus}'; this checked '{idx.manifest.get('corpus')}'")
    if RAG_K in ks:
        notes.append(f"(rag): the k the rag arms use ({RAG_K} passages, before packing fits them to the context)")
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
        notes=notes,
    )
