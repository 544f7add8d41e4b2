"""When the target is not met: why the answers were wrong, and which rung or lever to try next.

The advisor (`advisor.advise_from_scoreboard`) calls `diagnose` with the scoreboard's measured arms
and its pick; it adds reasons and next steps by the failures it sees: format failures are behaviour
(tuning's job), wrong facts with a corpus are retrieval's, and a RAG arm's wrong answers split into
not retrieved (retrieval's levers) and retrieved but not used (a larger model, a reading prompt, or
tuning to use the passages: `evaluation.attribution`).
"""

from __future__ import annotations

from .recommendation import MIN_EXAMPLES, TUNE_RUNGS


def diagnose(
    board,
    measured,
    chosen,
    answers,
    train_examples,
    has_corpus,
    reasons,
    steps,
    change,
    met: bool = False,
    name: str | None = None,
) -> None:
    """When the target is not met: which rung to try next, by why the answers were wrong."""
    arms = {a.arm for a in measured}
    task = board.task
    if met:
        if (
            not arms & TUNE_RUNGS
            and answers
            and answers.cost_or_latency_pressure
            and (train_examples or 0) >= MIN_EXAMPLES
        ):
            steps.append(
                f"cost pressure: measure whether a tuned model's shorter prompts pay back its training: "
                f"`lab train --task {task}`, `lab eval {task} --arms tune`"
            )
        return
    from .evaluation.attribution import NOT_RETRIEVED, NOT_USED
    from .ladder import RAG_ARMS

    fails = {
        f: chosen.failures.get(f, 0)
        for f in ("output invalid", "truncated", NOT_RETRIEVED, NOT_USED, "answer wrong", "request failed")
    }
    total = sum(fails.values()) or 1
    if any(fails.values()):
        reasons.append(
            "Why the best rung's answers were wrong: " + ", ".join(f"{k} {v}" for k, v in fails.items() if v) + "."
        )
    if fails["truncated"]:  # no rung fixes an answer cut off by the budget
        steps.append(f"raise max_tokens in {task}'s task.toml: {fails['truncated']} answers ran into the budget")
    if fails["output invalid"] / total >= 0.5:
        reasons.append(
            "Most failures are format failures: a behaviour problem, which tuning addresses (flowchart step 3)."
        )
        if "tune" not in arms:
            if (train_examples or 0) >= MIN_EXAMPLES:
                steps.append(
                    f"train an adapter ({train_examples} training examples): `lab train --task {task}`, then "
                    f"`lab eval {task} --arms tune`"
                )
            else:
                steps.append(f"collect {MIN_EXAMPLES}+ examples before tuning; prompt meanwhile")
    rag = chosen if chosen.arm in RAG_ARMS else next((a for a in measured if a.arm in RAG_ARMS), None)
    if rag is not None:
        rag_advice(rag, task, arms, train_examples, reasons, steps)
    if has_corpus and "rag" not in arms:
        steps.append(f"the task has a corpus: measure the RAG rung: `lab eval {task} --arms rag`")
    elif not has_corpus and not arms & TUNE_RUNGS and not any("lab train" in x for x in steps):
        # No documents to retrieve: what is missing is behaviour (flowchart steps 2-3 -> 4).
        if (train_examples or 0) >= MIN_EXAMPLES:
            reasons.append(
                f"The task has no corpus, so the gap is behaviour, not knowledge; with {train_examples} "
                f"training examples (200+) the next rung is tuning (flowchart step 4)."
            )
            steps.append(f"train an adapter: `lab train --task {task}`, then `lab eval {task} --arms tune`")
        elif train_examples is not None:
            steps.append(
                f"collect {MIN_EXAMPLES}+ examples (you have {train_examples}) before tuning; prompt meanwhile"
            )
    if not steps:
        steps.append(
            "no rung reaches the target: a larger base model (`lab models`), a lower target, or more training data"
        )
    bound = chosen.verdict.bound if getattr(chosen, "verdict", None) is not None else None
    if bound is not None and bound > 0:  # the rule itself: the interval's lower end, not the mean
        bound = int(bound * 100) / 100  # rounded down: at the target printed, the rule says "meets"
        name = name or chosen.arm  # the pick as the advice names it (the sweep's best configuration)
        change.append(
            f"the target were lowered to {bound:.2f} (the lower end of its interval, as judged here): "
            f"{name} would meet it"
        )


def rag_advice(rag, task: str, arms: set, train_examples: int | None, reasons: list, steps: list) -> None:
    """Where the RAG arm's wrong answers lost the knowledge (evaluation/attribution.py): mostly not
    retrieved -> retrieval's levers (chunking, k, more documents, a better embedder); mostly retrieved
    but not used -> the reader's (a larger model, a reading-focused prompt, tune+rag)."""
    from .evaluation.attribution import rag_split

    missed, unused, by_words = rag_split(rag)
    split = missed + unused
    if not split:
        return  # nothing to split (all right, format failures, or free text without a gold_doc)
    held = "the answer in their passages" if by_words else "a passage from the gold document in their prompt"
    if unused > missed:
        counts = f"{unused} of {split} wrong {rag.arm} answers had {held} (retrieved but not used), {missed} did not"
    else:
        counts = f"{missed} of {split} wrong {rag.arm} answers did not have {held} (not retrieved), {unused} did"
    where = {1: "mostly in retrieval", 0: "as often in retrieval as in the reading", -1: "mostly in the reading"}
    reasons.append(f"Where the knowledge got lost: {counts}; {where[(missed > unused) - (missed < unused)]}.")
    if missed >= unused:
        reasons.append(
            "Fix retrieval before blaming the model: other chunking, a larger k, more documents, a better embedder."
        )
        steps += [
            f"retrieve more passages: `lab eval {task} --arms {rag.arm} --rag-k 8`",
            "re-chunk the corpus (smaller chunks, more overlap): `lab index CORPUS --chunk-tokens 96 --overlap 48`",
            "add the documents that hold the missing answers to the corpus, or try a better embedder "
            "(`embedder` in lab.toml; the index is rebuilt with it)",
        ]
    if unused >= missed:
        reasons.append(
            "Retrieval did its part and the model did not use what it read: the levers are a larger model, a "
            "reading-focused prompt, or tune+rag (tuning to use the context is behaviour, which tuning is for)."
        )
        steps.append(
            f"a reading-focused instruction in {task}'s task.toml (answer only from the numbered passages, "
            f"quote the fact as they state it), or a larger model: `lab eval {task} --arms {rag.arm} -m MODEL` "
            "(`lab models`)"
        )
        if "tune+rag" not in arms:
            steps.append(
                f"tune the model to use its passages: `lab train --task {task}`, then `lab eval {task} --arms tune+rag`"
                if train_examples is None or train_examples >= MIN_EXAMPLES
                else f"collect {MIN_EXAMPLES}+ examples (you have {train_examples}) to tune it to use its passages "
                "(tune+rag)"
            )
