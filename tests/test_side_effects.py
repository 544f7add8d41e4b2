"""An adapter's side effects (`lab.evaluation.side_effects`): the statistics and their words on
constructed numbers (a loss, no change, a gain), the whole measurement on a fake backend that scores
text (stored, read back by the scoreboard, the advisor, the report and the app), and on the real
embedded model with real random adapters: one that changes nothing (ratio exactly 1) and one that
must raise the perplexity significantly."""

from __future__ import annotations

import json
import math
import re
import threading

import pytest
from click.testing import CliRunner

from lab.backends.base import BackendError
from lab.backends.fake import FakeBackend
from lab.cli import cli
from lab.engine import Lab
from lab.evaluation import side_effects as se
from lab.evaluation import stats, verdict
from lab.evaluation.runner import run_eval
from lab.evaluation.summary import summarize
from lab.tasks import load_task
from lab.tuning import adapters as adapters_module

# ---- the general text --------------------------------------------------------------------------


def test_the_passages_are_fixed_cut_between_words_and_span_the_modules():
    first = se.stdlib_passages(24)
    assert first == se.stdlib_passages(24) and len(set(first)) == 24
    assert all(0 < len(p) <= se.PASSAGE_CHARS and p == p.strip() for p in first)
    assert first[0].startswith("Command-line parsing library")  # argparse's own docstring opens it
    assert se.stdlib_passages(3) == first[:3]  # a smaller count is a prefix: the same passages
    for bad in (0, 100_000):
        with pytest.raises(se.SideEffectsError, match="passages must be between 1 and"):
            se.stdlib_passages(bad)


# ---- the statistics and their words, on constructed numbers -----------------------------------


def _nll(n=12, shift=0.0):
    base = [2.5 + 0.1 * (i % 5) for i in range(n)]
    return base, [b + shift * (1 + 0.1 * (i % 3)) for i, b in enumerate(base)]


def test_the_perplexity_ratio_is_exp_of_the_mean_paired_difference_with_its_interval():
    base, tuned = _nll(shift=0.08)
    c = stats.compare(base, tuned, "graded", name_a="base", name_b="tuned")
    ratio, lo, hi = stats.ratio_of(c)
    assert ratio == pytest.approx(math.exp(sum(t - b for b, t in zip(base, tuned)) / len(base)))
    assert 1 < lo <= ratio <= hi and c.significant
    text = verdict.perplexity_text(c, "Python standard-library docstrings")
    assert text.startswith(f"Perplexity on Python standard-library docstrings: {ratio:.2f}x the base's [")
    assert text.endswith("(12 passages), significantly higher") and verdict.perplexity_rose(c)
    same = stats.compare(base, base, "graded")
    assert stats.ratio_of(same) == (1.0, 1.0, 1.0)
    assert verdict.perplexity_text(same, "x").endswith(
        "1.00x the base's [1.00, 1.00] (12 passages), the same on every passage"
    )
    lower = stats.compare(*_nll(shift=-0.1), "graded")
    assert verdict.perplexity_text(lower, "x").endswith("significantly lower") and not verdict.perplexity_rose(lower)
    near = verdict.perplexity_text(stats.compare(*_nll(shift=-0.004), "graded"), "x")
    assert re.search(r": 0\.99\dx the base's \[0\.99\d, 0\.99\d\]", near)  # 3 decimals, not a rounded 1.00
    few = stats.compare(*_nll(n=4, shift=0.3), "graded")
    assert verdict.perplexity_text(few, "x").endswith("(4 passages), too few passages to tell")


def test_a_task_line_says_a_loss_no_change_a_gain_or_not_significant():
    base = [1.0] * 20
    loss = stats.compare(base, [1.0] * 8 + [0.0] * 12, "binary")
    text = verdict.side_effect_text(loss, "tickets", "label_accuracy", 1.0, 0.4)
    assert text.startswith("tickets: label_accuracy 1.00 \u2192 0.40, \u22120.60 [\u2212")
    assert text.endswith(", a significant loss (n=20)") and verdict.lost(loss)
    same = stats.compare(base, base, "binary")
    assert verdict.side_effect_text(same, "t", "m", 1.0, 1.0).endswith("the same score on every example (n=20)")
    gain = stats.compare([0.0] * 20, [0.0] * 8 + [1.0] * 12, "binary")
    assert verdict.side_effect_text(gain, "t", "m", 0.0, 0.6).endswith("a significant gain (n=20)")
    assert not verdict.lost(gain)
    small = stats.compare([1, 0] * 10, [1, 0] * 9 + [0, 1], "binary")
    assert verdict.side_effect_text(small, "t", "m", 0.5, 0.5).endswith(", not significant (n=20)")
    few = stats.compare([1.0] * 4, [0.0] * 4, "binary")
    assert verdict.side_effect_text(few, "t", "m", 1.0, 0.0).endswith("too few examples to tell (n=4)")
    assert not verdict.lost(few)


def _result(ppl_shift: float, task_scores: dict) -> dict:
    """A stored measurement made of constructed numbers, Holm-corrected as a real one is."""
    base, tuned = _nll(n=24, shift=ppl_shift)
    result = {
        "adapter": "narrow",
        "base_model": "smollm2-135m-instruct",
        "perplexity": {"source": se.SOURCE, "comparison": stats.compare(base, tuned, "graded").as_dict()},
        "tasks": [
            {"task": name, "metric": "label_accuracy", "base": stats.mean(a), "tuned": stats.mean(b)}
            | {"comparison": stats.compare(a, b, "binary").as_dict()}
            for name, (a, b) in task_scores.items()
        ],
        "skipped": [{"task": "tickets", "why": "the adapter's own task: its tune arm on the scoreboard"}],
        "status": "finished",
    }
    se._holm(result)
    return result


def test_the_lines_and_the_losses_of_a_measurement_holm_corrected_across_its_tests():
    borderline = ([1.0] * 6, [0.0] * 6)  # 6 losses of 6: p = 0.031 alone; two of them, 0.062 after Holm
    clear = ([1.0] * 20, [1.0] * 6 + [0.0] * 14)
    result = _result(0.1, {"specialty": clear, "acme-facts": borderline, "support": borderline})
    lines = se.side_effect_lines(result)
    assert lines[0].startswith("Perplexity on Python standard-library docstrings: 1.1")
    assert lines[0].endswith("(24 passages), significantly higher")
    assert lines[1].startswith("specialty: label_accuracy 1.00 \u2192 0.30") and "a significant loss" in lines[1]
    assert (
        lines[2]
        == "acme-facts: label_accuracy 1.00 \u2192 0.00, \u22121.00 [\u22121.00, \u22120.45], not significant (n=6)"
    )
    assert lines[4] == "tickets: not measured (the adapter's own task: its tune arm on the scoreboard)"
    assert lines[5] == (
        "Each figure paired with the base model smollm2-135m-instruct on the same text and examples; "
        "significance Holm-corrected across its 4 tests."
    )
    acme = result["tasks"][1]["comparison"]
    assert acme["p_value"] < 0.05 < acme["p_adjusted"] and not acme["significant"]
    assert se.losses(result) == [lines[0], lines[1]]
    calm = _result(0.0, {"specialty": ([1.0] * 20, [1.0] * 20)})
    assert se.losses(calm) == [] and "the same on every passage" in se.side_effect_lines(calm)[0]


# ---- the whole measurement on a fake backend that scores text -----------------------------------


class ScoringFake(FakeBackend):
    """A fake model that reads a text's likelihood, and answers the built-in tasks' held-out
    questions right on its own; an adapter named `narrow` makes every token less likely and every
    answer wrong (a narrow adapter that costs elsewhere), any other changes nothing."""

    def __init__(self):
        super().__init__(model_id="fake")
        self.gold = {e.input: e.output for name in BUILTINS for e in _eval(name)}

    def token_nll(self, text, adapter=None, adapter_sha=None):
        shift = 0.2 * (1 + len(text) % 3) if adapter and "narrow" in adapter else 0.0
        return [2.0 + 0.1 * (len(w) % 5) + shift for w in text.split()]

    def generate(self, messages, options=None, on_text=None, adapter=None, adapter_sha=None, cancel=None):
        hurt = adapter is not None and "narrow" in adapter
        self.default = "no idea" if hurt else self.gold.get(messages[-1]["content"], "?")
        return super().generate(messages, options, on_text, adapter, adapter_sha, cancel)


# every built-in scenario is "another task" to an adapter of none of them
BUILTINS = ["acme-facts", "specialty", "support-tone", "tickets"]


def _eval(name):
    return load_task(name).examples("eval")


def _adapter(lab, name: str, instruction: str = "You sort narrow things.") -> None:
    folder = lab.home.adapters / name
    folder.mkdir(parents=True)
    (folder / "adapter.gguf").write_bytes(name.encode())
    manifest = {
        "base_model": {"id": "fake", "sha256": "fake"},
        "adapter": {"sha256": name * 4},
        "config": {"instruction": instruction},
    }
    (folder / "lab_adapter.json").write_text(json.dumps(manifest))


@pytest.fixture
def scoring_lab(tmp_path, monkeypatch):
    lab = Lab(home=tmp_path, default_model="fake")
    lab.add_backend(ScoringFake())
    # the fake base model is no file to resolve and hash: the adapter by name, as the curve's tests do
    monkeypatch.setattr(
        adapters_module,
        "resolve_adapter",
        lambda lab, name, model=None: adapters_module.find_adapter(lab.home.adapters, name),
    )
    _adapter(lab, "narrow")
    _adapter(lab, "harmless")
    yield lab
    lab.store.close()


def test_a_narrow_adapter_shows_its_losses_everywhere_the_adapter_is_judged(scoring_lab):
    lab = scoring_lab
    said = []
    result = se.measure_side_effects(lab, "narrow", passages=8, limit=8, progress=said.append)
    assert result["status"] == "finished" and result["own_task"] is None and result["tests"] == 5
    assert [t["task"] for t in result["tasks"]] == BUILTINS
    # (the wrong answer "no idea" shares a word with a support-tone reply now and then)
    assert all(t["base"] == 1.0 and t["tuned"] < 0.05 and t["comparison"]["n"] == 8 for t in result["tasks"])
    assert result["perplexity"]["passages"] == 8 and said[0].startswith("perplexity: passage 1 of 8")
    assert len(se.losses(result)) == 5  # the perplexity and the four tasks, each significant after Holm
    assert se.stored_side_effects(lab, "narrow") == json.loads(json.dumps(result))
    # the tune arm was asked with each task's own instruction, not the adapter's
    tuned = [c for c in lab.backend("fake").calls if c["adapter"]]
    assert tuned and all(c["messages"][0]["content"] != "You sort narrow things." for c in tuned)
    assert {c["messages"][0]["content"] for c in tuned} == {load_task(n).instruction for n in BUILTINS}

    # the scoreboard, under the tuned arm; the advisor, as a cost; the report, as a section
    run_id = run_eval(lab, "specialty", ["zero-shot", "tune"], limit=8, adapter="narrow", progress=False)
    board = summarize(lab, run_id)
    text = board.to_text()
    assert "tune: side effects, what adapter narrow costs elsewhere:" in text
    assert "  specialty: label_accuracy 1.00 \u2192 0.00" in text
    from lab.advisor import recommend_for_run
    from lab.report import render_html, tuned_side_effects

    rec = recommend_for_run(lab, board)
    assert rec.evidence["side_effects"]["measured"] and len(rec.evidence["side_effects"]["losses"]) == 5
    assert any(r.startswith("A cost to weigh beside what tuning gains here: ") for r in rec.reasons)
    html = render_html(board, rec, side_effects=tuned_side_effects(lab, board))
    assert "<h2>Side effects of the adapter narrow</h2>" in html and "a significant loss" in html


def test_an_adapter_that_changes_nothing_and_an_unmeasured_one(scoring_lab):
    lab = scoring_lab
    result = se.measure_side_effects(lab, "harmless", passages=6, limit=6, tasks=["specialty", "tickets"])
    lines = se.side_effect_lines(result)
    assert "1.00x the base's [1.00, 1.00] (6 passages), the same on every passage" in lines[0]
    assert (
        lines[1]
        == "specialty: label_accuracy 1.00 \u2192 1.00, +0.00 [\u22120.39, +0.39], the same score on every example (n=6)"
    )
    assert se.losses(result) == []
    run_id = run_eval(lab, "specialty", ["zero-shot", "tune"], limit=6, adapter="narrow", progress=False)
    assert (
        "tune: side effects: not measured yet (lab adapters check narrow --side-effects)"
        in summarize(lab, run_id).to_text()
    )
    from lab.app import side_effects_block

    shown, _timer = side_effects_block.show(lab, "harmless")
    assert "**Side effects of `harmless`**" in shown and "- specialty: label_accuracy" in shown
    assert "not measured yet" in side_effects_block.show(lab, "narrow")[0]
    started, _timer = side_effects_block.measure(lab, "narrow")  # the button: the engine in a thread
    assert started.startswith("Measuring the side effects of `narrow`")
    side_effects_block._RUNS["narrow"]["thread"].join(timeout=60)
    assert "significantly higher" in side_effects_block.show(lab, "narrow")[0]


def test_the_adapters_own_task_is_skipped_and_a_cancelled_measurement_is_not_the_stored_one(scoring_lab):
    lab = scoring_lab
    _adapter(lab, "ticketer", instruction=load_task("tickets").instruction)
    result = se.measure_side_effects(lab, "ticketer", passages=6, limit=6, tasks=["tickets"])
    assert result["own_task"] == "tickets" and result["tasks"] == []
    assert result["skipped"] == [{"task": "tickets", "why": "the adapter's own task: its tune arm on the scoreboard"}]
    stop = threading.Event()
    stop.set()
    cancelled = se.measure_side_effects(lab, "narrow", passages=6, limit=6, cancel=stop)
    assert cancelled["status"] == "cancelled" and cancelled["perplexity"]["passages"] == 0 and not cancelled["tasks"]
    assert se.stored_side_effects(lab, "narrow") is None
    assert "a partial measurement" in se.side_effect_lines(cancelled)[-1]


def test_the_runner_asks_the_tune_arm_with_the_adapters_instruction_unless_told_the_tasks(scoring_lab):
    from lab.evaluation.runner import EvalError

    with pytest.raises(EvalError, match="tune_instruction must be None or 'task'"):
        run_eval(scoring_lab, "specialty", ["tune"], limit=1, adapter="narrow", tune_instruction="adapter")
    run_eval(scoring_lab, "specialty", ["tune"], limit=1, adapter="narrow", progress=False)
    assert scoring_lab.backend("fake").calls[-1]["messages"][0]["content"] == "You sort narrow things."


def test_a_backend_that_cannot_score_text_says_so(fake_lab, monkeypatch):
    monkeypatch.setattr(
        adapters_module,
        "resolve_adapter",
        lambda lab, name, model=None: adapters_module.find_adapter(lab.home.adapters, name),
    )
    _adapter(fake_lab, "narrow")
    with pytest.raises(BackendError, match="cannot score a text's likelihood.*measure it on a local model"):
        se.measure_side_effects(fake_lab, "narrow", passages=6)
    assert se.stored_side_effects(fake_lab, "narrow") is None


def test_the_command_refuses_bad_names_and_sizes_with_exit_2(tmp_path):
    home = ["--home", str(tmp_path)]
    result = CliRunner().invoke(cli, [*home, "adapters", "check", "nope", "--side-effects"], obj={})
    assert result.exit_code == 2 and "no adapter 'nope'" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(
        cli, [*home, "adapters", "check", "nope", "--side-effects", "--passages", "5000"], obj={}
    )
    assert result.exit_code == 2 and "passages must be between 1 and" in result.output
    result = CliRunner().invoke(cli, [*home, "adapters", "check", "nope", "--side-effects", "--limit", "0"], obj={})
    assert result.exit_code == 2 and "--limit" in result.output
    helps = CliRunner().invoke(cli, ["train", "--help"], obj={}).output
    assert "--no-side-effects" in helps and "12 passages, 8 examples" in " ".join(helps.split())


# ---- the real embedded model, real random adapters ----------------------------------------------


@pytest.fixture(scope="module")
def real_lab(tmp_path_factory):
    from fake_adapters import random_adapter

    lab = Lab(home=tmp_path_factory.mktemp("side-effects-home"))
    random_adapter(lab, "noop", b_std=0.0)  # B = 0: the adapter adds exactly nothing
    random_adapter(lab, "strong", b_std=0.3)
    yield lab
    lab.store.close()


@pytest.mark.integration
@pytest.mark.slow
def test_an_adapter_of_zeros_leaves_the_perplexity_exactly_as_it_was(real_lab):
    lab = real_lab
    before = lab.answer("zero-shot", "Name a planet.", options=lab.options(max_tokens=12, temperature=0)).text
    result = se.measure_side_effects(lab, "noop", passages=8, limit=4, tasks=["specialty"])
    ppl = result["perplexity"]
    assert ppl["base_nll"] == ppl["tuned_nll"] and len(ppl["base_nll"]) == 8 and ppl["tokens"] > 8 * 80
    assert stats.ratio_of(se.comparison(ppl["comparison"])) == (1.0, 1.0, 1.0)
    assert result["tasks"][0]["comparison"]["diff"] == 0.0 and se.losses(result) == []
    assert "1.00x the base's [1.00, 1.00] (8 passages), the same on every passage" in se.side_effect_lines(result)[0]
    # scoring left no cache behind: the next answer is the one given before
    assert lab.answer("zero-shot", "Name a planet.", options=lab.options(max_tokens=12, temperature=0)).text == before


@pytest.mark.integration
@pytest.mark.slow
def test_a_strong_random_adapter_raises_the_perplexity_significantly(real_lab):
    result = se.measure_side_effects(real_lab, "strong", passages=8, tasks=[])
    c = se.comparison(result["perplexity"]["comparison"])
    ratio, lo, _hi = stats.ratio_of(c)
    assert lo > 1.5 and c.significant and c.wins == 8  # measured: 11.8x [9.8, 14.6] on 24 passages
    assert se.losses(result) == [se.side_effect_lines(result)[0]]
