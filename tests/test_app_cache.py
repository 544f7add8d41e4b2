"""Gradio's file cache lives in the lab home (issue 24): the app's uploads and downloads land in
`.lab/gradio/`, never in the system temp folder's `gradio/`, and the folder is emptied when the
app starts. The app runs for real (a local server, HTTP uploads, Gradio's queue) on a fake model."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import uuid
from pathlib import Path

import gradio as gr
import httpx
import pytest

from lab.app import app as app_module
from lab.app.app import CACHE_ENV, build_app, claim_cache, release_cache, serve


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _system_gradio_files(name: str) -> list[Path]:
    """Files named `name` anywhere under the system temp folder's `gradio/` (Gradio's default cache)."""
    default = Path(tempfile.gettempdir()) / "gradio"
    return list(default.rglob(name)) if default.is_dir() else []


def _fn_index(demo: gr.Blocks, matches) -> int:
    found = [i for i, fn in demo.fns.items() if matches(fn)]
    assert len(found) >= 1, "no such event in the page"
    return found[0]


def _call(client: httpx.Client, fn_index: int, data: list) -> list:
    """One event through Gradio's queue, as the page sends it; its outputs (or the error)."""
    session = uuid.uuid4().hex
    joined = client.post(
        "/gradio_api/queue/join",
        json={"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": None},
    )
    joined.raise_for_status()
    with client.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as events:
        for line in events.iter_lines():
            if not line.startswith("data:"):
                continue
            msg = json.loads(line[5:])
            if msg.get("msg") == "process_completed":
                assert msg.get("success"), f"the event failed: {msg.get('output')}"
                return msg["output"]["data"]
    raise AssertionError("the queue closed without a result")


@pytest.fixture
def served(fake_lab, monkeypatch):
    """The app on a free port, Gradio's setting unset as on a fresh machine; a stale upload from
    a previous run waits in the home's cache."""
    monkeypatch.delenv(CACHE_ENV, raising=False)
    stale = fake_lab.home.gradio_cache / "0123abcd" / "stale-upload.csv"
    stale.parent.mkdir(parents=True)
    stale.write_text("text,label\nold,row\n", encoding="utf-8")
    port = _free_port()
    demo = serve(fake_lab, port=port, block=False)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield demo, client, stale
    finally:
        demo.close()


def test_uploads_and_downloads_land_in_the_lab_home_and_start_empties_it(fake_lab, served):
    demo, client, stale = served
    cache = fake_lab.home.gradio_cache
    assert not stale.exists() and not stale.parent.exists(), "the last run's files stay after a start"
    assert cache.is_dir()

    # an upload through Gradio's own route, as the New task tab's file box sends it
    name = f"upload-{uuid.uuid4().hex[:8]}.csv"
    teams = {"billing": "I was charged twice for invoice {i}", "tech": "The app crashes on report {i}"}
    rows = ["text,label"] + [f"{text.format(i=i)},{team}" for i in range(10) for team, text in teams.items()]
    sent = client.post("/gradio_api/upload", files={"files": (name, "\n".join(rows) + "\n", "text/csv")})
    sent.raise_for_status()
    (uploaded,) = sent.json()
    assert Path(uploaded).resolve().is_relative_to(cache.resolve()), f"the upload went to {uploaded}"
    assert Path(uploaded).is_file()
    assert not _system_gradio_files(name), "the upload was written to the system temp folder"

    # the page accepts it as an upload (Gradio checks the cache at each request) and makes the task
    new_task = _fn_index(demo, lambda fn: fn.api_name == "new_task")
    file_data = {"path": uploaded, "orig_name": name, "meta": {"_type": "gradio.FileData"}}
    (result,) = _call(client, new_task, [file_data, "cached", None, None, "infer", "", 0, "", False, "", None, ""])
    assert "Created task cached" in str(result)
    assert (fake_lab.home.root / "tasks" / "cached" / "task.toml").is_file()

    # a download: History's CSV export, served from the home's cache
    export = _fn_index(
        demo,
        lambda fn: (
            any(getattr(o, "elem_id", None) == "history-export" for o in fn.outputs)
            and "csv" in str([getattr(i, "value", None) for i in fn.inputs])
        ),
    )
    (update,) = _call(client, export, ["Generations", "(any)", "", 100, None])
    path = Path(update["value"]["path"])
    assert path.resolve().is_relative_to(cache.resolve()), f"the download was copied to {path}"
    assert not _system_gradio_files(path.name), "the download was copied to the system temp folder"
    served_file = client.get(update["value"]["url"])  # what the browser fetches
    assert served_file.status_code == 200 and served_file.content == path.read_bytes()


def test_closing_the_app_gives_back_the_setting(fake_lab, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, "/somewhere/else")
    demo = serve(fake_lab, port=_free_port(), block=False)
    assert os.environ[CACHE_ENV] == str(fake_lab.home.gradio_cache)  # while it serves: Gradio reads it per request
    demo.close()
    assert os.environ[CACHE_ENV] == "/somewhere/else"


def test_building_an_app_names_its_own_home_and_leaks_nothing(fake_lab, tmp_path_factory, monkeypatch):
    """Several labs in one process: each page's components keep their own home's cache, and
    building one leaves the process's setting as it was."""
    from lab.backends.fake import FakeBackend
    from lab.engine import Lab

    monkeypatch.delenv(CACHE_ENV, raising=False)
    other = Lab(home=tmp_path_factory.mktemp("other-home"), default_model="fake")
    other.add_backend(FakeBackend(model_id="fake"))
    try:
        first, second = build_app(fake_lab), build_app(other)
        assert CACHE_ENV not in os.environ
        for demo, lab in ((first, fake_lab), (second, other)):
            caches = {b.GRADIO_CACHE for b in demo.blocks.values()} | {demo.GRADIO_CACHE}
            assert caches == {str(lab.home.gradio_cache)}
    finally:
        other.store.close()


def test_a_second_app_on_the_same_home_leaves_the_first_ones_files(tmp_path):
    folder = tmp_path / ".lab" / "gradio"
    first = claim_cache(folder)
    upload = folder / "abc" / "in-use.csv"
    upload.parent.mkdir()
    upload.write_text("x", encoding="utf-8")
    second = claim_cache(folder)  # the first still serves: nothing of its goes
    assert upload.is_file()
    release_cache(first)
    release_cache(second)
    release_cache(claim_cache(folder))  # nobody serves: a start empties it
    assert folder.is_dir() and not any(folder.iterdir())


def test_the_cache_is_inside_the_lab_state_folder(fake_lab):
    assert fake_lab.home.gradio_cache.parent == fake_lab.home.state
    assert app_module.CACHE_ENV == "GRADIO_TEMP_DIR"  # the name Gradio's get_upload_folder reads
