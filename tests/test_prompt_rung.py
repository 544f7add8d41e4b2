"""The prompt rung at its best (lab/evaluation/prompt_rung.py): configurations measured once and
reused, k capped to what fits, the best chosen, constrained runs kept apart from unconstrained
ones, and the advisor judging fine-tuning against the best prompt configuration."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from lab.advisor import recommend_for_run
from lab.evaluation import run_eval, summarize
from lab.evaluation.prompt_rung import (
    PromptConfig,
    best_prompt_config,
    best_prompt_for_run,
    candidate_ks,
    measure_prompt_rung,
)
from lab.evaluation.runner import EvalError
from lab.tasks import load_task

LABELS = ["Dermatologist", "Cardiologist", "Neurologist"]
EVAL = [
    ("itchy rash on my arm", "Dermatologist"),
    ("chest pain when climbing stairs", "Cardiologist"),
    ("constant headaches and numb fingers", "Neurologist"),
    ("dark spot on my skin", "Dermatologist"),
    ("my heart races at night", "Cardiologist"),
    ("I keep forgetting words", "Neurologist"),
    ("a mole that changed colour", "Dermatologist"),
    ("short of breath and chest tightness", "Cardiologist"),
]
POOL = [
    ("acne on my back", "Dermatologist"),
    ("palpitations", "Cardiologist"),
    ("numbness in my leg", "Neurologist"),
    ("eczema flare", "Dermatologist"),
    ("high blood pressure", "Cardiologist"),
    ("migraines", "Neurologist"),
]


def _jsonl(path: Path, pairs, prefix: str) -> None:
    path.write_text(
        "".join(json.dumps({"id": f"{prefix}{i}", "input": a, "output": b}) + "\n" for i, (a, b) in enumerate(pairs))
    )


def write_task(folder: Path, name: str, held_out) -> object:
    """A label task named `name` in `folder`: `held_out` (question, label) pairs and the POOL."""
    folder.mkdir()
    (folder / "task.toml").write_text(
        textwrap.dedent(f"""
        name = "{name}"
        instruction = "Name the doctor specialty."
        output_format = "label"
        labels = {json.dumps(LABELS)}
        scorers = ["label_accuracy"]
        primary_metric = "label_accuracy"
        eval = "eval.jsonl"
        fewshot = "fewshot.jsonl"
        train = "fewshot.jsonl"
        few_shot_k = 4
        max_tokens = 8
    """)
    )
    _jsonl(folder / "eval.jsonl", held_out, "e")
    _jsonl(folder / "fewshot.jsonl", POOL, "f")
    return load_task(folder / "task.toml")


@pytest.fixture
def task(tmp_path):
    return write_task(tmp_path / "docs", "docs", EVAL)


def test_constrained_and_unconstrained_runs_never_mix(fake_lab, task):
    plain = run_eval(fake_lab, task, ["zero-shot"], limit=3, progress=False)
    held = run_eval(fake_lab, task, ["zero-shot"], limit=3, progress=False, constrain=True)
    assert plain != held
    calls = len(fake_lab.fake.calls)
    # each resumes its own run: nothing is generated again
    assert run_eval(fake_lab, task, ["zero-shot"], limit=3, progress=False, constrain=True) == held
    assert run_eval(fake_lab, task, ["zero-shot"], limit=3, progress=False) == plain
    assert len(fake_lab.fake.calls) == calls
    assert fake_lab.fake.calls[-1]["options"].choices == LABELS
    # a run logged before `constrain` existed counts as unconstrained: it resumes, never the constrained one
    row = fake_lab.store.query("select config_json from eval_runs where id = ?", [plain])[0]
    config = json.loads(row["config_json"])
    del config["constrain"]
    fake_lab.store.update("eval_runs", plain, {"config_json": json.dumps(config)})
    assert run_eval(fake_lab, task, ["zero-shot"], limit=3, progress=False) == plain
    # the fake backend enforces nothing, and the scoreboard says so
    assert summarize(fake_lab, held).arm("zero-shot").constrained is False
    assert "zero-shot NO" in summarize(fake_lab, held).to_text()
    assert summarize(fake_lab, plain).arm("zero-shot").constrained is None


def test_constrain_on_a_free_text_task_is_refused(fake_lab):
    with pytest.raises(EvalError, match="free text"):
        run_eval(fake_lab, "acme-facts", ["zero-shot"], limit=1, progress=False, constrain=True)


def test_measure_runs_each_config_once_and_picks_the_best(fake_lab, task):
    # The fake answers "Cardiologist" to every question: 3 of 8 held-out examples are right.
    fake_lab.fake.default = "Cardiologist"
    notes = []
    configs = measure_prompt_rung(fake_lab, task, ks=[2, 4, 9], modes=("fixed",), on_note=notes.append)
    assert [c.label() for c in configs] == [
        "zero-shot",
        "few-shot, 2 fixed examples",
        "few-shot, 4 fixed examples",
        "few-shot, 6 fixed examples",
    ]
    assert notes[0] == "k capped at 6: the few-shot pool has only 6 examples (asked for 9)"
    assert "has one instruction" in notes[1] and "states the output format" in notes[1]
    assert all(c.n == 8 and c.score == pytest.approx(3 / 8) for c in configs)
    # zero-shot and the task's own k share the run `lab eval TASK` makes by default
    assert configs[0].eval_run_id == configs[2].eval_run_id
    calls = len(fake_lab.fake.calls)
    again = measure_prompt_rung(fake_lab, task, ks=[2, 4, 9], modes=("fixed",))
    assert len(fake_lab.fake.calls) == calls  # finished runs are reused
    assert [c.eval_run_id for c in again] == [c.eval_run_id for c in configs]
    # all tied: the cheapest wins (zero-shot)
    assert best_prompt_config(configs).arm == "zero-shot"


def test_best_config_breaks_ties_toward_the_cheaper_one():
    def cfg(arm, mode, k, score):
        return PromptConfig(arm, mode, k, False, 1, score, 10)

    configs = [
        cfg("few-shot", "similar", 4, 0.6),
        cfg("few-shot", "fixed", 8, 0.6),
        cfg("few-shot", "fixed", 4, 0.6),
        cfg("few-shot", "similar", 8, 0.5),
        cfg("zero-shot", "fixed", 0, None),
    ]
    assert best_prompt_config(configs).label() == "few-shot, 4 fixed examples"
    with pytest.raises(EvalError):
        best_prompt_config([cfg("zero-shot", "fixed", 0, None)])


def test_ks_are_capped_at_what_fits_the_context(fake_lab, task):
    fake_lab.fake.n_ctx = 45  # the fake counts words: with the longest question only 3 examples fit
    ks, notes = candidate_ks(fake_lab, task, task.examples("eval"), ks=[2, 4, 8])
    assert ks == [2, 3]  # 4 and 8 become the k that fits
    assert notes == ["k capped at 3: only 3 examples fit the context with the longest question (asked for 4, 8)"]


def _prompt_configs_then_tune(fake_lab, task, monkeypatch, tune_gets: set):
    """Prompt configs measured (similar examples, k=2, right on the first 6 of 8; the rest wrong),
    then this run's few-shot (k=4, fixed: wrong) and tune (right on `tune_gets`). -> (board, best)."""
    from lab import ladder

    right = dict(EVAL)
    best_gets = {q for q, _ in EVAL[:6]}
    real = ladder.answer

    def fake_answer(lab, arm, question, **kw):
        shots = kw.get("shots") or []
        similar = bool(shots) and shots[0][0] == "SIMILAR"
        good = (question in tune_gets) if arm == "tune" else (similar and len(shots) == 2 and question in best_gets)
        fake_lab.fake.queue(right[question] if good else "Neurologist")
        if arm == "tune":  # no adapter to serve: answer as zero-shot, scored under the tune arm
            kw.pop("adapter", None)
            return real(lab, "zero-shot", question, **kw)
        return real(lab, arm, question, **kw)

    adapter = type(
        "Adapter",
        (),
        {
            "name": "docs",
            "sha": "x",
            "base_model": None,
            "instruction": None,
            "wall_s": 1.0,
            "device": "cpu",
            "run_id": None,
        },
    )()
    monkeypatch.setattr(ladder, "answer", fake_answer)
    monkeypatch.setattr(ladder, "similar_shots", lambda lab, pool, q, k: [("SIMILAR", "x")] * k)
    monkeypatch.setattr(ladder, "resolve_adapter", lambda lab, name, model=None: adapter)
    best = best_prompt_config(measure_prompt_rung(fake_lab, task, ks=[2, 4]))
    run_id = run_eval(fake_lab, task, ["few-shot", "tune"], progress=False)  # the task's k=4, fixed
    return summarize(fake_lab, run_id), best


def test_advisor_judges_tuning_against_the_best_prompt_config_and_names_it(fake_lab, task, monkeypatch):
    """Tune beats every prompt config; the advisor's "fine-tuning helped" names the best one
    (similar examples, k=2, answering right on 6 of 8) rather than this run's few-shot."""
    board, best = _prompt_configs_then_tune(fake_lab, task, monkeypatch, tune_gets=set(dict(EVAL)))
    assert best.label() == "few-shot, 2 similar examples" and best.score == pytest.approx(6 / 8)
    found = best_prompt_for_run(fake_lab, board.run, "tune", board.score_type)
    assert found.config.label() == best.label() and found.comparison.diff == pytest.approx(2 / 8)
    rec = recommend_for_run(fake_lab, board)
    text = rec.to_text()
    assert "the best measured prompt configuration (few-shot, 2 similar examples, 0.750, eval run" in text
    assert "tune vs few-shot" not in text  # not judged against this run's weaker few-shot
    assert rec.evidence["best_prompt"]["label"] == "few-shot, 2 similar examples"
    # tune's 8 of 8 only *may* meet 0.8 (its interval reaches 0.69), and "not significantly better" is
    # not "as good": tune stays the pick, as a maybe, and the best config is a row of the scoreboard
    assert rec.rung == "tune" and rec.verdict == "maybe" and "better buy" not in text
    assert rec.headline().startswith("Recommendation: fine-tune (LoRA) may meet the target")
    assert [a.arm for a in board.others] == [f"few-shot, 2 similar examples (best of 5, run {best.eval_run_id})"]


def test_a_better_prompt_config_than_tune_is_recommended_over_it(fake_lab, task, monkeypatch):
    """Tune right on 4 of 8 (2 asked, and 2 whose answer is the wrong-answer label), this run's few-shot on 2,
    the best prompt config on 6: the best so far
    is prompting with that configuration, not tune (which beats only this run's few-shot)."""
    board, best = _prompt_configs_then_tune(fake_lab, task, monkeypatch, tune_gets={q for q, _ in EVAL[:2]})
    rec = recommend_for_run(fake_lab, board)
    assert board.arm("tune").quality.mean > board.arm("few-shot").quality.mean  # on this run's board tune leads
    assert rec.rung == "few-shot" and rec.meets_target is False and rec.verdict == "misses"
    assert "the best is few-shot, 2 similar examples (the prompt rung's best of 5 configurations" in rec.to_text()
    assert "(mean 0.750 on 8 examples)" in rec.to_text()
    # one name from the headline to the last line (issue 21)
    assert rec.headline().endswith(
        "the best so far is prompt (few-shot): few-shot, 2 similar examples (the "
        f"prompt rung's best of 5 configurations, eval run {best.eval_run_id})"
        " (evidence too thin: a first look, not a recommendation)"
    )


def test_cli_best_prompt_and_constrain_flags(fake_lab, task, monkeypatch):
    from click.testing import CliRunner

    from lab import ladder
    from lab.cli import cli

    monkeypatch.setattr(ladder, "similar_shots", lambda lab, pool, q, k: ladder.fixed_shots(pool, k)[::-1])
    fake_lab.fake.default = "Cardiologist"
    obj = {"lab": fake_lab, "home": str(fake_lab.home.root)}
    r = CliRunner().invoke(
        cli, ["eval", str(task.source), "--best-prompt", "--ks", "2,9", "--limit", "4", "--constrain"], obj=obj
    )
    assert r.exit_code == 0, r.output
    assert "few-shot, 2 similar examples, constrained" in r.output and "k capped at 6" in r.output
    assert "best prompt configuration: zero-shot, constrained (0.500 on 4 examples, the best of " in r.output
    r = CliRunner().invoke(cli, ["eval", str(task.source), "--limit", "2", "--constrain"], obj=obj)
    assert r.exit_code == 0 and "Constrained decoding" in r.output, r.output
    r = CliRunner().invoke(cli, ["eval", str(task.source), "--best-prompt", "--ks", "two"], obj=obj)
    assert r.exit_code == 2 and "--ks takes comma-separated whole numbers" in r.output


def test_racing_drops_the_configurations_clearly_behind_and_still_counts_them(fake_lab, tmp_path, monkeypatch):
    """48 held-out examples: every configuration answers 12 first; zero-shot (always wrong)
    is clearly behind similar examples (always right) and stops there; the similar ones answer all
    48. The pick's verdict still counts every configuration tried (issue 21)."""
    from lab import ladder
    from lab.evaluation.prompt_rung import race_slice, racing_drops

    questions = [(f"{q} ({i})", a) for i in range(6) for q, a in EVAL]
    race = write_task(tmp_path / "race", "race", questions)
    right, real = dict(questions), ladder.answer

    def fake_answer(lab, arm, question, **kw):
        shots = kw.get("shots") or []
        similar = bool(shots) and shots[0][0] == "SIMILAR"
        good = similar or (arm == "few-shot" and question.endswith(("(0)", "(1)")))  # fixed: a third
        fake_lab.fake.queue(right[question] if good else "Urologist")
        return real(lab, arm, question, **kw)

    monkeypatch.setattr(ladder, "answer", fake_answer)
    monkeypatch.setattr(ladder, "similar_shots", lambda lab, pool, q, k: [("SIMILAR", "x")] * k)
    notes = []
    configs = measure_prompt_rung(fake_lab, race, ks=[2, 4], on_note=notes.append)
    assert race_slice(48) == 12 and race_slice(23) is None
    by = {c.label(): c for c in configs}
    assert by["zero-shot"].dropped and by["zero-shot"].n == 12
    assert by["few-shot, 2 similar examples"].n == 48 and not by["few-shot, 2 similar examples"].dropped
    assert any(n.startswith("dropped after 12 examples: zero-shot (0.000") for n in notes), notes
    assert best_prompt_config(configs).label() == "few-shot, 2 similar examples"
    assert racing_drops([by["few-shot, 2 similar examples"], by["few-shot, 4 similar examples"]]) == []
    answered = fake_lab.store.query("select count(*) n from eval_results")[0]["n"]
    dropped = sum(c.dropped for c in configs)
    assert answered == 12 * dropped + 48 * (len(configs) - dropped) < 48 * len(configs)


def test_each_instruction_to_try_is_measured_with_each_example_setting(fake_lab, tmp_path):
    """A task listing another instruction: the sweep runs every example setting under each, each
    its own run whose identity names the instruction, answered with that system prompt; the best is
    picked across all, and adding the instruction kept the task's hash (its runs stay valid)."""
    task = write_task(tmp_path / "two", "two", EVAL)
    before = task.hash()
    toml = task.source.read_text().replace(
        'instruction = "Name the doctor specialty."',
        'instruction = "Name the doctor specialty."\ninstructions = ["Reply with one word: the specialty."]',
    )
    task.source.write_text(toml)
    task = load_task(task.source)
    assert task.hash() == before
    other = "Reply with one word: the specialty."

    def systems():
        return [c["messages"][0]["content"] for c in fake_lab.fake.calls]

    notes = []
    # the variant's answers are right; the task's own instruction's are all wrong
    fake_lab.fake.default = "Cardiologist"
    configs = measure_prompt_rung(fake_lab, task, ks=[2], modes=("fixed",), on_note=notes.append, race=False)
    assert [c.label() for c in configs] == [
        "zero-shot",
        "few-shot, 2 fixed examples",
        "zero-shot, instruction 2",
        "few-shot, 2 fixed examples, instruction 2",
    ]
    assert not any("has one instruction" in n for n in notes)
    assert systems().count(other) == 2 * len(EVAL)
    assert systems().count("Name the doctor specialty.") == 2 * len(EVAL)
    runs = {c.eval_run_id for c in configs}
    assert len(runs) == 4
    stored = {json.loads(r["config_json"]).get("instruction") for r in fake_lab.store.eval_runs(task="two")}
    assert stored == {None, other}
    # re-scored with the variant far ahead: it is the pick, numbered as the task lists it
    for c in configs:
        if c.instruction == other and c.arm == "zero-shot":
            c.score = 1.0
    best = best_prompt_config(configs)
    assert (best.instruction, best.instruction_no, best.label()) == (other, 2, "zero-shot, instruction 2")
    calls = len(fake_lab.fake.calls)
    again = measure_prompt_rung(fake_lab, task, ks=[2], modes=("fixed",), race=False)
    assert len(fake_lab.fake.calls) == calls and {c.eval_run_id for c in again} == runs  # resumed, not rerun
