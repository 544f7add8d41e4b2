#!/usr/bin/env python
"""Certify judge models on the support-tone scenario, end to end through the lab's own engine.

1. Evaluate two arms of `support-tone` on the same held-out messages (`runner.run_eval`, resumable).
2. Rate every pair blind with a scripted rater that checks the rubric's mechanical points (greeting by
   the customer's first name, a short thanks, at most 60 words, no filler apology, the exact sign-off)
   and prefers the reply that meets more of them (a tie when equal). It stands in for you: the house
   style is checkable, so its ratings are reproducible. Its ratings are stored as rater
   "rubric-checker", never as yours.
3. Ask each judge model about every pair in both orders (`judge.judge_pairs`) and print its
   certificate against the checker (`certificate.certificate`): agreement, Cohen's kappa with 95%
   intervals, order flips, unreadable verdicts, and whether the lab would trust it.

    .venv/bin/python scripts/certify_judges.py --home /tmp/cj                   # embedded models
    .venv/bin/python scripts/certify_judges.py --home /tmp/cj --arms few-shot,tune --adapter support-tone
    .venv/bin/python scripts/certify_judges.py --home /tmp/cj --judge openai:http://gpu:8000/v1#qwen
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.engine import Lab  # noqa: E402
from lab.evaluation import certificate, judge, pairwise  # noqa: E402
from lab.evaluation.runner import run_eval  # noqa: E402
from lab.tasks import load_task  # noqa: E402

RATER = "rubric-checker"
SIGN_OFF = "— Maya, Customer Care"
FILLER = re.compile(r"apolog|sorry|inconvenience|value your|do not hesitate|don't hesitate", re.I)


def first_name(message: str) -> str | None:
    """The name the customer signed with: the first word of the last line that looks like a name."""
    for line in reversed([x.strip() for x in message.strip().splitlines() if x.strip()]):
        word = re.match(r"([A-Z][a-z]+)", line)
        if word and not line.lower().startswith(("sent from", "thank", "regards", "best", "cheers", "many")):
            return word.group(1)
    return None


def rubric_points(message: str, reply: str) -> int:
    """How many of the rubric's checkable points a reply meets (0..5)."""
    name = first_name(message)
    text = reply.strip()
    first_line = text.splitlines()[0] if text else ""
    return sum(
        [
            bool(name) and first_line.strip() == f"Hi {name},",
            bool(re.search(r"\bthank", text, re.I)),
            len(text.split()) <= 60,
            not FILLER.search(text),
            text.endswith(SIGN_OFF),
        ]
    )


def rate_by_rubric(lab, pairs) -> None:
    while (shown := pairwise.next_pair(lab, pairs, rater=RATER)) is not None:
        a = rubric_points(shown.pair.question, shown.text("A"))
        b = rubric_points(shown.pair.question, shown.text("B"))
        pairwise.rate(lab, shown, "A" if a > b else "B" if b > a else "tie", rater=RATER)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--home", required=True, help="the lab home to evaluate and log in")
    ap.add_argument("--arms", default="zero-shot,few-shot")
    ap.add_argument("--adapter", help="the tune arm's adapter (when --arms has tune)")
    ap.add_argument("--limit", type=int, default=30, help="held-out messages (>= 20 to certify)")
    ap.add_argument("--judge", action="append", help="judge model(s) (default: both embedded models)")
    args = ap.parse_args()
    lab = Lab(args.home)
    task = load_task("support-tone")
    arms = list(pairwise.two_arms(args.arms))
    t0 = time.perf_counter()
    run_id = run_eval(lab, task, arms, limit=args.limit, adapter=args.adapter, progress=True)
    pairs = pairwise.pairs_for(lab, task, arms, run_id)
    rate_by_rubric(lab, pairs)
    checker = pairwise.preference(lab, pairs, rater=RATER)
    print(f"\n{len(pairs)} pairs of {arms[0]} and {arms[1]} (eval run {run_id}, {time.perf_counter() - t0:.0f} s)")
    print("rubric checker:", checker.sentence.replace("The judge rubric-checker", "The rubric checker", 1))
    for model in args.judge or ["smollm2-135m-instruct", "gemma3-270m"]:
        t1 = time.perf_counter()
        run = judge.judge_pairs(lab, task, pairs, model=model)
        cert = certificate.certificate(lab, pairs, run.judge, rater=RATER)
        said = judge.judge_preference(lab, pairs, run.judge)
        c = cert
        print(f"\njudge {model} ({run.asked} calls, {time.perf_counter() - t1:.0f} s): {said.sentence}")
        print(
            f"  n={c.n}  accuracy {c.accuracy:.2f} [{c.accuracy_lo:.2f}, {c.accuracy_hi:.2f}]  "
            f"kappa {_f(c.kappa)} [{_f(c.kappa_lo)}, {_f(c.kappa_hi)}]  flips {c.flip_rate:.0%}  "
            f"unreadable {c.unparseable_rate:.0%}  -> {'TRUSTED' if c.trusted else 'not trusted'}"
        )
        for reason in c.reasons:
            print(f"  because {reason}")
        weighted = judge.weighted_win_rate(lab, pairs, run.judge)
        if weighted is not None:
            print(f"  probability-weighted win rate of {arms[1]}: {weighted:.2f} (both orders averaged)")
    return 0


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"


if __name__ == "__main__":
    sys.exit(main())
