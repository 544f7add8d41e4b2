import json
import threading

import pytest

from lab.ladder import ArmError, answer


def test_a_cancel_event_reaches_the_backend_and_the_log(fake_lab):
    fake_lab.fake.queue("alpha beta gamma")
    cancel = threading.Event()
    ans = answer(fake_lab, "zero-shot", "hi", cancel=cancel, on_text=lambda piece: cancel.set())
    assert ans.text == "alpha" and ans.generation.finish_reason == "cancelled"
    assert fake_lab.store.db["generations"].get(ans.row_id)["finish_reason"] == "cancelled"


def test_an_arm_asked_after_cancel_does_not_generate(fake_lab):
    cancel = threading.Event()
    cancel.set()
    ans = fake_lab.answer("few-shot", "hi", shots=[("q", "a")], cancel=cancel)
    assert ans.text == "" and ans.generation.finish_reason == "cancelled"


def test_unknown_arm_is_refused(fake_lab):
    with pytest.raises(ArmError, match="unknown arm"):
        answer(fake_lab, "fine-tune", "hi")


# ---- similar examples in a short context ---------------------------------------------------------


class _Embedder:
    """Unit vectors whose cosine with the question "q" is given per text."""

    def __init__(self, cosines: dict[str, float]):
        self.cosines = {"q": 1.0, **cosines}

    def encode(self, texts):
        import math

        return [[self.cosines[t], math.sqrt(1 - self.cosines[t] ** 2)] for t in texts]


def test_a_short_context_drops_the_least_similar_examples_first(tmp_path):
    from lab.backends.fake import FakeBackend
    from lab.engine import Lab
    from lab.ladder import similar_shots
    from lab.tasks import Example

    lab = Lab(home=tmp_path, default_model="small")
    # fake tokens are words: 4 per example, 3 for the question; 2 examples + 4 answer tokens fill 23 - 8
    lab.add_backend(FakeBackend(model_id="small", n_ctx=23))
    lab._embedder = _Embedder({"alpha": 0.3, "beta": 0.9, "gamma": 0.5, "delta": 0.7})
    pool = [Example(w, w, w[0].upper()) for w in ("alpha", "beta", "gamma", "delta")]
    shots = similar_shots(lab, pool, "q", 4)
    assert [s[0] for s in shots] == ["alpha", "gamma", "delta", "beta"]  # the most similar last

    def asked(shots):
        ans = lab.answer("few-shot", "q", shots=shots, options=lab.options(max_tokens=4))
        return ans.shots, [m["content"] for m in lab.backend().calls[-1]["messages"] if m["role"] == "user"]

    assert asked(shots) == (2, ["delta", "beta", "q"])  # the two most similar, the nearest next to q
    assert asked(list(shots)) == (2, ["alpha", "gamma", "q"])  # fixed examples: the front stays (KV prefix)
    lab.store.close()


# ---- the answer's token budget -------------------------------------------------------------------

LONG_LABELS = ["balance_not_updated_after_cheque_or_cash_deposit", "card_arrival"]


def _label_task(folder, labels, max_tokens: int, constrain: bool = False):
    from lab.tasks import load_task

    folder.mkdir(exist_ok=True)
    (folder / "eval.jsonl").write_text(
        "".join(json.dumps({"id": f"e{i}", "input": f"question {i}", "output": x}) + "\n" for i, x in enumerate(labels))
    )
    (folder / "task.toml").write_text(
        f'name = "bank"\noutput_format = "label"\nlabels = {json.dumps(labels)}\n'
        f'eval = "eval.jsonl"\nmax_tokens = {max_tokens}\n'
        f"constrain = {'true' if constrain else 'false'}\n"
    )
    return load_task(folder / "task.toml")


def test_a_label_longer_than_max_tokens_gets_a_budget_that_fits_it(fake_lab, tmp_path):
    from lab.evaluation.runner import matching_run, run_eval
    from lab.ladder import LABEL_ALLOWANCE, answer_budget

    # the fake counts words: the longest label is 8 tokens, max_tokens 4 would always cut it
    task = _label_task(tmp_path / "bank", ["balance not updated after cheque or cash deposit", "card arrival"], 4)
    assert answer_budget(fake_lab, task) == 8 + LABEL_ALLOWANCE
    fake_lab.answer("zero-shot", "my cheque", task=task, options=fake_lab.options(max_tokens=2))
    assert fake_lab.fake.calls[-1]["options"].max_tokens == 8 + LABEL_ALLOWANCE  # raised, whoever set it
    fake_lab.answer("zero-shot", "my cheque", task=task, options=fake_lab.options(max_tokens=100))
    assert fake_lab.fake.calls[-1]["options"].max_tokens == 100  # never lowered
    # the run's identity holds the budget the answers got, so a run under another budget is not resumed
    run_id = run_eval(fake_lab, task, ["zero-shot"], progress=False)
    config = fake_lab.store.query("select config_json from eval_runs where id = ?", [run_id])[0]["config_json"]
    assert json.loads(config)["max_tokens"] == 12 and matching_run(fake_lab, task)["id"] == run_id
    # constrained, a grammar may spell the label a byte a token: its UTF-8 bytes
    assert answer_budget(fake_lab, task, constrain=True) == len(task.labels[0]) + LABEL_ALLOWANCE
    text = task.model_copy(update={"output_format": "text", "labels": None})
    assert answer_budget(fake_lab, text) == 4  # free text: the task's own budget


@pytest.mark.integration
def test_a_long_label_is_answered_whole_with_the_real_tokenizer(shared_home, tmp_path):
    """The real default model, constrained to labels longer than max_tokens (the banking77 case):
    the answer is a whole label and stops on its own instead of running into the budget."""
    from lab.engine import Lab
    from lab.ladder import LABEL_ALLOWANCE, answer_budget

    lab = Lab(home=shared_home)
    task = _label_task(tmp_path / "bank", LONG_LABELS, 4, constrain=True)
    longest = lab.backend().count_tokens(LONG_LABELS[0])
    assert longest > 4 and answer_budget(lab, task) == longest + LABEL_ALLOWANCE
    # constrained, SmolLM2 spells the label in far more tokens than the tokenizer's own split
    assert answer_budget(lab, task, constrain=True) == len(LONG_LABELS[0]) + LABEL_ALLOWANCE
    ans = lab.answer("zero-shot", "I deposited a cheque but my balance did not change", task=task, constrain=True)
    assert ans.text in LONG_LABELS and ans.generation.finish_reason == "stop"
