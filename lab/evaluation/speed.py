"""How long one answer takes here: the one estimate the climb, the curve and the demo plan with.

    speed = AnswerSpeed(lab, model_id)
    seconds, basis = speed.seconds(task, "few-shot")

This task's own logged answers of the arm when there are a few; else the model's logged prompt
and answer speeds (tokens/s) applied to the task's prompt size and answer budget; and on a fresh
home, three short probe answers timed now (logged like any other answer, so the next estimate
reads them from the log) rather than a fixed guess.
"""

from __future__ import annotations

import statistics
from functools import cached_property

from .. import ladder

MIN_ROWS = 3  # this task's own answers count once there are this many
RAG_PASSAGES_TOKENS = 4 * 160  # rag_k passages of up to 160 tokens


class AnswerSpeed:
    """Seconds one answer of `model_id` takes here, per task and arm (see the module's doc).
    `probe=True`: with nothing of the model in the log, time three answers now (else a rough
    figure stands in); where an estimate decides something, such as a climb's budget."""

    def __init__(self, lab, model_id: str, probe: bool = False):
        self.lab, self.model_id, self.probe = lab, model_id, probe
        self._rates: tuple[float, float, str] | None = None

    def seconds(self, task, arm: str) -> tuple[float, str]:
        mean, n = self.lab.store.answer_seconds(self.model_id, arm=arm, task=task.name, last=100, timed_only=True)
        if mean and n >= MIN_ROWS:
            return mean, f"this task's earlier {arm} answers"
        if not self._logged_rates:  # answers without token timings (some servers): their mean time
            mean, n = self.lab.store.answer_seconds(self.model_id, last=100, timed_only=True)
            if mean and n >= MIN_ROWS:
                return mean, "this model's earlier answers"
        prefill, decode, basis = self.rates()
        return prompt_tokens(task, arm) / prefill + task.max_tokens / decode, basis

    def rates(self) -> tuple[float, float, str]:
        """(prompt tokens/s, answer tokens/s, basis)."""
        if self._rates is None:
            fresh = self.lab.store.answer_seconds(self.model_id)[1] == 0
            self._rates = (
                self._logged_rates
                or (self._probe() if self.probe and fresh else None)
                or (300.0, 30.0, "a rough figure for a 135M model on 2 cores (no answer timed here yet)")
            )
        return self._rates

    @cached_property
    def _logged_rates(self) -> tuple[float, float, str] | None:
        """The log's rates, read once per estimate (every arm of every step asks)."""
        return self._logged()

    def _logged(self, basis: str = "this model's logged answer speed") -> tuple[float, float, str] | None:
        """Medians over the model's last 200 answers: a model's first answer after loading is
        slow (warm-up), and a prompt prefix in the KV cache is fast; neither is typical."""
        rows = self.lab.store.answer_speeds(self.model_id)
        if not rows:
            return None
        return (
            statistics.median(r["p"] / r["t"] for r in rows),
            statistics.median((r["c"] - 1) / r["d"] for r in rows),
            basis,
        )

    def _probe(self) -> tuple[float, float, str] | None:
        """Three short answers of a built-in task (the first one after loading warms up), logged
        like any other."""
        from ..tasks import builtin_tasks, load_task

        task = load_task(builtin_tasks()[0])
        for ex in task.examples("eval")[:3]:
            messages = [{"role": "system", "content": task.instruction or ""}, {"role": "user", "content": ex.input}]
            self.lab.generate(
                messages,
                arm="zero-shot",
                model=self.model_id,
                options=self.lab.options(max_tokens=24, temperature=0.0, seed=0),
            )
        return self._logged("three probe answers timed just now")


def prompt_tokens(task, arm: str) -> float:
    """A rough prompt length (about 4 characters a token): instruction, question, and the
    few-shot examples or the retrieved passages the arm adds."""
    held_out = task.examples("eval")
    chars = len(task.instruction or "") + sum(len(e.input) for e in held_out) / max(1, len(held_out))
    if arm == "few-shot":
        chars += sum(len(e.input) + len(e.output) for e in ladder.few_shot_pool(task)[: task.few_shot_k])
    tokens = chars / 4
    if arm in ladder.RAG_ARMS:
        tokens += RAG_PASSAGES_TOKENS
    return tokens
