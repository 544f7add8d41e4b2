"""The staleness probe: change a fact in a document, re-index, ask again.

RAG reads the documents at question time, so it follows the edit; an adapter trained on the old
documents keeps answering the old value until it is retrained. The probe works on a scratch
copy of the task's corpus inside the lab home (`.lab/probe/<corpus>-probe/`): the shipped
corpus is never modified, and every run starts again from the original text.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import ladder
from ..retrieval import index_corpus
from ..tasks import load_task
from .scorers import contains_fact


class ProbeError(ValueError):
    """The task has no [probe] table, or the probe's document or old value is not where it says."""


@dataclass
class Answer:
    text: str
    says_old: bool
    says_new: bool
    generation_id: int | None = None
    sources: list[str] = field(default_factory=list)  # RAG: the passages in the prompt
    passage_has_new: bool | None = None  # RAG: does a passage in the prompt state the new value?
    passage_has_old: bool | None = None  # ... or the old one?


@dataclass
class ProbeResult:
    task: str
    question: str
    doc: str
    old: str
    new: str
    scratch: str
    rag_before: Answer
    rag_after: Answer
    adapter: str | None = None
    tune_before: Answer | None = None
    tune_after: Answer | None = None
    reindex: str = ""

    @property
    def rag_follows(self) -> bool:
        """The RAG answer states the new value (and not the old one)."""
        return self.rag_after.says_new and not self.rag_after.says_old

    @property
    def context_follows(self) -> bool:
        """What RAG answers from changed: the old value before the edit, only the new one after."""
        return bool(
            self.rag_before.passage_has_old and self.rag_after.passage_has_new and not self.rag_after.passage_has_old
        )

    @property
    def adapter_stale(self) -> bool | None:
        """The adapter does not give the new value after the edit (its weights never read it)."""
        return None if self.tune_after is None else not self.tune_after.says_new

    @property
    def adapter_unchanged(self) -> bool | None:
        return None if self.tune_after is None else self.tune_before.text == self.tune_after.text

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "rag_follows": self.rag_follows,
            "context_follows": self.context_follows,
            "adapter_stale": self.adapter_stale,
            "adapter_unchanged": self.adapter_unchanged,
        }

    def to_text(self) -> str:
        def show(label: str, a: Answer | None) -> str:
            if a is None:
                return f"  {label:<18} (no adapter: pass --adapter NAME to probe a tuned model too)"
            mark = (
                "new"
                if a.says_new and not a.says_old
                else "old"
                if a.says_old and not a.says_new
                else "both"
                if a.says_old
                else "neither"
            )
            text = " ".join(a.text.split())[:300]
            if a.passage_has_new is None:
                return f"  {label:<18} answer says {mark}: {text}"
            ctx = (
                "new"
                if a.passage_has_new and not a.passage_has_old
                else "old"
                if a.passage_has_old and not a.passage_has_new
                else "both"
                if a.passage_has_new
                else "neither"
            )
            return (
                f"  {label:<18} answer says {mark}: {text}\n  {'':<18} its passages state {ctx} "
                f"({', '.join(dict.fromkeys(a.sources))})"
            )

        lines = [
            f"Staleness probe · task {self.task}",
            f"  question: {self.question}",
            f"  edit:     {self.doc}: {self.old!r} -> {self.new!r} (scratch copy {self.scratch})",
            f"  re-index: {self.reindex}",
            "",
            "Before the edit:",
            show("RAG", self.rag_before),
            show(f"adapter {self.adapter}" if self.adapter else "adapter", self.tune_before),
            "After the edit (re-indexed):",
            show("RAG", self.rag_after),
            show(f"adapter {self.adapter}" if self.adapter else "adapter", self.tune_after),
            "",
        ]
        if self.rag_follows:
            lines.append(f"RAG follows the edit: it now answers {self.new}.")
        elif self.context_follows:
            lines.append(
                f"RAG's context follows the edit (its passages now say {self.new}), but this model's "
                "answer does not state it: a bigger model reads the passage better."
            )
        else:
            lines.append("RAG did not bring the edited passage into the prompt: retrieval missed it.")
        if self.tune_after is not None:
            same = "the same answer as before" if self.adapter_unchanged else "a different answer"
            lines.append(
                f"The adapter gives {same} and "
                + (
                    f"not {self.new}: what it learned is stale until it is retrained."
                    if self.adapter_stale
                    else f"states {self.new} (unexpected for weights trained on the old text)."
                )
            )
        return "\n".join(lines)


def _answer(lab, gen, row_id, old: str, new: str, passages=None) -> Answer:
    a = Answer(gen.text, bool(contains_fact(gen.text, old)), bool(contains_fact(gen.text, new)), row_id)
    if passages is not None:
        a.sources = [p.source for p in passages]
        a.passage_has_new = any(contains_fact(p.text, new) for p in passages)
        a.passage_has_old = any(contains_fact(p.text, old) for p in passages)
    return a


def run_probe(
    lab, task="acme-facts", adapter: str | None = None, model: str | None = None, k: int = 4, progress: bool = False
) -> ProbeResult:
    """Ask the probe question with RAG (and the adapter, if any) before and after the edit."""
    task = load_task(task, home=lab.home)
    probe = getattr(task, "probe", None)
    if probe is None:
        raise ProbeError(f"task '{task.name}' has no [probe] table (doc, old, new, question) in its task.toml")
    folder = Path(ladder.task_corpus(lab, task))
    folder = folder if folder.is_absolute() else lab.home.corpora / folder
    scratch = lab.home.state / "probe" / f"{folder.name}-probe"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(folder, scratch)
    doc = scratch / probe.doc
    if not doc.is_file():
        raise ProbeError(f"probe doc '{probe.doc}' is not in corpus {folder}")
    text = doc.read_text(encoding="utf-8")
    if probe.old not in text:
        raise ProbeError(f"{folder / probe.doc}: the probe's old value {probe.old!r} does not occur in it")

    options = lab.options(max_tokens=task.max_tokens)
    system = task.instruction or None
    tuned = ladder.resolve_adapter(lab, adapter, model) if adapter else None

    def ask_both():
        ans = lab.answer("rag", probe.question, corpus=scratch, model=model, rag_k=k, system=system, options=options)
        rag = _answer(lab, ans.generation, ans.row_id, probe.old, probe.new, ans.passages)
        tune = None
        if tuned is not None:
            ans = lab.answer("tune", probe.question, adapter=tuned, model=model, options=options)
            tune = _answer(lab, ans.generation, ans.row_id, probe.old, probe.new)
        return rag, tune

    index_corpus(lab, scratch, progress=progress)
    rag_before, tune_before = ask_both()
    doc.write_text(text.replace(probe.old, probe.new), encoding="utf-8")
    report = index_corpus(lab, scratch, progress=progress)
    rag_after, tune_after = ask_both()
    return ProbeResult(
        task.name,
        probe.question,
        probe.doc,
        probe.old,
        probe.new,
        str(scratch),
        rag_before,
        rag_after,
        adapter,
        tune_before,
        tune_after,
        reindex=report.summary() if hasattr(report, "summary") else str(report),
    )
