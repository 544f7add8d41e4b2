import threading

import pytest

from lab.backends.base import ContextTooLong
from lab.backends.fake import FakeBackend
from lab.engine import Lab


def test_answer_logs_one_row_per_generation(fake_lab):
    fake_lab.fake.queue("Paris.")
    ans = fake_lab.answer("zero-shot", "Capital of France?", system="Be brief.")
    row = fake_lab.store.db["generations"].get(ans.row_id)
    assert ans.text == row["output"] == "Paris."
    assert row["arm"] == "zero-shot" and row["model_id"] == "fake"
    assert fake_lab.fake.calls[0]["messages"][0] == {"role": "system", "content": "Be brief."}


def test_failed_generation_is_logged_and_raised(tmp_path):
    lab = Lab(home=tmp_path, default_model="tiny")
    lab.add_backend(FakeBackend(model_id="tiny", n_ctx=4))
    with pytest.raises(ContextTooLong):
        lab.answer("zero-shot", "a question far longer than four tokens")
    row = lab.store.recent_generations(1)[0]
    assert "ContextTooLong" in row["error"] and row["output"] is None


def test_options_merge_config_and_overrides(fake_lab):
    opts = fake_lab.options(max_tokens=12, temperature=None)
    assert opts.max_tokens == 12 and opts.temperature == 0.0


@pytest.mark.integration
def test_a_model_is_loaded_once_even_when_asked_from_many_threads(tmp_path):
    lab = Lab(home=tmp_path)
    got = []
    threads = [threading.Thread(target=lambda: got.append(lab.backend())) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len({id(b) for b in got}) == 1
    assert lab.backend("smollm2") is got[0]
