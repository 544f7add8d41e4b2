import socket

import pytest

from lab.backends.fake import FakeBackend
from lab.engine import Lab


@pytest.fixture
def fake_lab(tmp_path):
    """A Lab in a temp home whose default model is a FakeBackend (unit tests of logic)."""
    lab = Lab(home=tmp_path, default_model="fake")
    backend = FakeBackend(model_id="fake")
    lab.add_backend(backend)
    lab.fake = backend
    yield lab
    lab.store.close()


@pytest.fixture
def evaluated_text(fake_lab, tmp_path):
    """(lab, task, eval_run_id): a 24-example text task evaluated on zero-shot and few-shot by the
    fake model, for pairwise rating (tests/text_tasks.py)."""
    from tests.text_tasks import evaluate_text_task

    return evaluate_text_task(fake_lab, tmp_path / "tone")


@pytest.fixture(scope="session")
def shared_home(tmp_path_factory):
    """One lab home for the session's real-model tests, so slow one-off work (e.g. the GGUF ->
    transformers conversion cache) is done once."""
    return tmp_path_factory.mktemp("shared-home")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch, request):
    """Offline for real: any attempt to connect outside loopback fails the test."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (
            host.startswith("127.") or host in ("localhost", "::1", "") or self.family == socket.AF_UNIX
        ):
            raise AssertionError(f"network access attempted: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield
