"""EVIDENCE.md: why this rung, measured how, and the commands that measure it again.

The advice (`advisor.recommend_for_run`, the one decision), the scoreboard of the run that measured
the rung, the adapter's side effects (`evaluation.side_effects`), the sha256 of the model, the
adapter and every exported file, and the exact `lab` commands that reproduce it. Nothing in it
depends on when it was written.
"""

from __future__ import annotations

import hashlib


def _side_effects(lab, adapter: str | None, sha: str | None = None) -> list[str]:
    if not adapter:
        return ["The rung has no adapter: the base model answers, as it does everything else."]
    from ..evaluation.side_effects import side_effect_lines, stored_side_effects

    found = stored_side_effects(lab, adapter, sha)  # of this adapter's content, not an older one
    if found is None:
        return [f"Not measured yet: `lab adapters check {adapter} --side-effects` measures them."]
    return side_effect_lines(found)


def reproduce_commands(pick, n: int) -> list[str]:
    """The `lab` commands that measure the rung again on its `n` examples (a sweep's configuration: its sweep)."""
    c, task = pick.config, pick.task.name
    model = f" --model {c['model']}" if c.get("model") else ""
    if c.get("instruction") or c.get("chunk_tokens") or c.get("rag_shots") or c.get("sweep"):
        sweep = "--best-rag" if pick.arm in ("rag", "tune+rag") else "--best-prompt"
        evaluate = f"lab eval {task} {sweep} --limit {n}{model}"
    else:
        flags = [f"--arms {pick.arm}", f"--limit {n}"]
        if pick.arm == "few-shot":
            flags.append(f"--k {c.get('few_shot_k')}" + (" --similar" if c.get("few_shot_mode") == "similar" else ""))
        if pick.arm in ("rag", "tune+rag"):
            flags.append(f"--rag-k {c.get('rag_k', 4)}")
        if pick.adapter:
            flags.append(f"--adapter {pick.adapter}")
        flags.append("--constrain" if c.get("constrain") else "--no-constrain")
        evaluate = f"lab eval {task} {' '.join(flags)}{model}"
    return [evaluate, f"lab advise {task}", f"lab export {task} --rung {pick.rung} --verify"]


def evidence_md(lab, pick, prompt: dict, files: dict[str, str]) -> str:
    """EVIDENCE.md's text for `pick` (an `export.pick.Pick`); `files`: the other files written."""
    from ..advisor import recommend_for_run
    from ..evaluation.summary import summarize

    n = len({r["example_id"] for r in lab.store.eval_scores(pick.eval_run_id, pick.arm)})
    board = summarize(lab, pick.eval_run_id, task=pick.task)
    scoreboard = board.to_text()  # before the advice, which re-judges the board's rows and adds its sweeps' best
    advice = pick.advice or recommend_for_run(lab, board)
    model, adapter = prompt["model"], prompt["adapter"]
    out = [
        f"# Evidence: {pick.task.name}, {pick.name}",
        "",
        f"Exported by `lab export {pick.task.name} --rung {pick.rung}` from eval run {pick.eval_run_id} "
        f"({n} held-out examples answered by this rung).",
        "",
        f"- model: {model['id']}, sha256 {model['sha256']}",
    ]
    if adapter:
        out += [
            f"- adapter: {adapter['name']}, sha256 {adapter['sha256']} (PEFT files), "
            f"{adapter['gguf_sha256']} (adapter.gguf)"
        ]
    out += [*(f"- note: {n}" for n in pick.notes), "", "## The advice", "", "```", advice.to_text(), "```", ""]
    out += ["## The scoreboard", "", "```", scoreboard, "```", ""]
    out += [
        "## Side effects of the adapter",
        "",
        *(f"- {line}" for line in _side_effects(lab, pick.adapter, adapter["sha256"] if adapter else None)),
        "",
    ]
    out += ["## Reproduce", "", "```sh", *reproduce_commands(pick, n), "```", ""]
    out += ["## Files", "", "| file | sha256 |", "|---|---|"]
    out += [f"| {name} | {hashlib.sha256(text.encode()).hexdigest()} |" for name, text in sorted(files.items())]
    return "\n".join(out) + "\n"
