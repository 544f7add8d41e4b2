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
