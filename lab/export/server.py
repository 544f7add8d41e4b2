"""llama-cpp-python's OpenAI-compatible server on loopback, started from an exported config
(`llama-cpp-server.json`) for `lab export --verify`: the engine Ollama and llama-server share."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from .pick import ExportError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent() -> None:  # in the server's process: SIGKILL it when its parent dies, whatever way
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def llama_cpp_server(config: dict, wait_s: float = 180) -> Iterator[str]:
    """Serve `config` on a free loopback port; yields the server's /v1 URL, stops it on exit."""
    with tempfile.TemporaryDirectory(prefix="lab-verify-") as tmp:
        config = {**config, "host": "127.0.0.1", "port": free_port()}
        path, log_path = Path(tmp) / "server.json", Path(tmp) / "server.log"
        path.write_text(json.dumps(config))
        url = f"http://127.0.0.1:{config['port']}/v1"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "llama_cpp.server", "--config_file", str(path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
            )
        try:
            _wait(proc, url, log_path, wait_s)
            yield url
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: only this server
            proc.wait(timeout=30)


def _wait(proc: subprocess.Popen, url: str, log_path: Path, wait_s: float) -> None:
    deadline = time.time() + wait_s
    while time.time() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-1500:]
            raise ExportError(f"the exported server did not start (llama-cpp-server.json):\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise ExportError(f"the exported server did not answer in {wait_s:.0f} s")
