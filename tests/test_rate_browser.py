"""The Rate view in a real browser: the app served in this process on a fake model (fast: no
real model), a text task evaluated on two arms in its home, Debian's Chromium through Playwright.
The keys rate, the picks land in SQLite with the side shown first drawn per pair, Stop then Start
resumes with an unrated pair, and the verdict shows. A screenshot lands in test-output/screenshots/."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest

from lab.app import app as app_module
from lab.app.app import serve
from lab.evaluation import pairwise
from lab.evaluation.runner import run_eval
from lab.tasks import load_task
from tests.text_tasks import text_task

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--disable-quic"]
N = 24
ARMS = ("zero-shot", "few-shot")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def rate_page(fake_lab, monkeypatch):
    """(lab, page): the app on the fake model, task `tone` in its home evaluated on both arms; no
    corpus to index at start (this test is about the Evaluate tab)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (make install-test installs it)")
    from playwright.sync_api import sync_playwright

    task = text_task(fake_lab.home.root / "tasks" / "tone", n=N)
    fake_lab.fake.queue(*[f"answer {i}" for i in range(2 * N)])
    run_eval(fake_lab, task, list(ARMS), progress=False)
    monkeypatch.setattr(app_module.Startup, "corpora", lambda self: [])
    monkeypatch.delenv(app_module.CACHE_ENV, raising=False)
    port = _free_port()
    demo = serve(fake_lab, port=port, block=False)
    outside: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.on("request", lambda r: outside.append(r.url) if urlparse(r.url).hostname not in _LOCAL else None)
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
            yield fake_lab, page
            browser.close()
    finally:
        demo.close()
    assert not [u for u in outside if not u.startswith(("data:", "blob:"))], outside


_LOCAL = {"127.0.0.1", "localhost", "::1", None}


def _open_rating(page) -> None:
    page.get_by_role("tab", name="Evaluate", exact=True).click()
    page.locator("#eval-task input").click()
    page.get_by_role("option", name="tone", exact=True).click()
    page.get_by_role("button", name=re.compile("^Rate answers blind")).click()
    page.wait_for_function("document.querySelector('#rate-arm-b input')?.value === 'few-shot'")
    assert page.input_value("#rate-arm-a input") == "zero-shot"


def _progress(page, done: int) -> None:
    page.wait_for_selector(f"#rate-progress:has-text('{done} of {N} pairs rated')")


def _shown(page, pairs):
    """The pair on screen (by its input) and the texts shown as A and B."""
    question = page.input_value("#rate-question textarea")
    pair = next(p for p in pairs.items if p.question == question)
    return pair, page.input_value("#rate-answer-a textarea"), page.input_value("#rate-answer-b textarea")


def _next_question(page, before: str) -> None:
    page.wait_for_function(
        "q => { const t = document.querySelector('#rate-question textarea'); return t && t.value && t.value !== q; }",
        arg=before,
    )


def test_rate_blind_with_the_keys_stop_and_resume(rate_page):
    lab, page = rate_page
    _open_rating(page)
    page.click("#rate-start")
    _progress(page, 0)
    pairs = pairwise.pairs_for(lab, load_task(lab.home.root / "tasks" / "tone"), list(ARMS))
    rated: dict[str, str] = {}  # example id -> the key pressed
    # blind: the pair's two texts, and no arm named in the pane
    pair, a, b = _shown(page, pairs)
    assert {a, b} == {pair.text_a, pair.text_b}
    assert not re.search(r"zero-shot|few-shot", page.inner_text("#rate-pane"))
    assert "Keys: A, B, T tie, X both bad, S skip" in page.inner_text("#rate")
    # a key typed into a text box rates nothing
    page.focus("#eval-limit input")
    page.keyboard.press("a")
    page.wait_for_timeout(300)
    assert not lab.store.pair_ratings(pairs.eval_run_id, *ARMS)
    page.locator("#rate-progress").click()  # the focus out of the box
    keys = ["a", "b", "t", "x"] + ["a", "b"] * 5
    for done, key in enumerate(keys, 1):
        pair, a, _b = _shown(page, pairs)
        page.keyboard.press(key)
        _progress(page, done)
        rated[pair.example_id] = key
        row = pairwise.ratings(lab, pairs)[pair.example_id]
        shown_first_text = pair.text_a if row["shown_first"] == pair.arm_a else pair.text_b
        assert shown_first_text == a  # the arm stored as shown first is the one the page showed as A
        expect = {
            "a": row["shown_first"],
            "b": next(x for x in ARMS if x != row["shown_first"]),
            "t": "tie",
            "x": "both bad",
        }[key]
        assert row["preferred"] == expect and row["seconds"] is not None
        if done == 1:  # no verdict while rating: it would name the arm just picked
            assert "You preferred" not in page.inner_text("#rate-verdict")
    rows = lab.store.pair_ratings(pairs.eval_run_id, *ARMS)
    assert {r["shown_first"] for r in rows} == set(ARMS), "the side shown first is not drawn per pair"
    # S skips: the next pair shows, nothing stored
    before = page.input_value("#rate-question textarea")
    page.keyboard.press("s")
    _next_question(page, before)
    assert len(lab.store.pair_ratings(pairs.eval_run_id, *ARMS)) == len(keys)
    # Stop hides the pair and says the verdict; Start resumes with a pair not rated yet
    page.click("#rate-stop")
    page.wait_for_selector("#rate-pane", state="hidden")
    assert "You preferred" in page.inner_text("#rate-verdict") and "Stopped" in page.inner_text("#rate-message")
    page.click("#rate-start")
    _progress(page, len(keys))
    pair, _a, _b = _shown(page, pairs)
    assert pair.example_id not in rated
    page.keyboard.press("a")
    _progress(page, len(keys) + 1)
    rows = lab.store.pair_ratings(pairs.eval_run_id, *ARMS)
    assert len(rows) == len({r["example_id"] for r in rows}) == len(keys) + 1  # no pair rated twice
    # the judge (the fake model's answers are no verdict): not trusted, said plainly; your ratings used
    page.click("#rate-judge")
    page.wait_for_selector("#rate-judge-out:has-text('not trusted for this task: your ratings are used')")
    assert "You preferred" in page.inner_text("#rate-judge-out")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "evaluate-rate.png"), full_page=True)
