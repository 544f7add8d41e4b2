"""The real page in a real browser: `lab serve` on the real default model, driven by Playwright
with Debian's Chromium. Every request the page makes is routed through the test: one that
leaves localhost fails it (fonts, analytics, CDNs...). Screenshots of each tab land in
test-output/screenshots/ (look at them)."""

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
LOCAL = {"127.0.0.1", "localhost", "::1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`lab serve` in an empty lab home: the sample corpus is read from the checkout (and copied
    into the home on the first edit; the checkout is never written)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (make install-test installs it)")
    home = tmp_path_factory.mktemp("app-home")
    port = _free_port()
    log = open(home / "serve.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.cli", "--home", str(home), "serve", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=str(ROOT),
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 240
    while True:
        try:
            urllib.request.urlopen(url, timeout=5)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(
                    f"lab serve did not come up:\n{(home / 'serve.log').read_text()[-3000:]}"
                ) from None
            time.sleep(0.5)
    yield url, home
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    url, _home = server
    outside: list[str] = []

    def guard(route):
        if urlparse(route.request.url).hostname not in LOCAL:
            outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    def seen(request):
        if urlparse(request.url).hostname not in LOCAL and not request.url.startswith(("data:", "blob:")):
            outside.append(request.url)

    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.route("**/*", guard)
        pg = context.new_page()
        pg.on("request", seen)
        pg.set_default_timeout(60_000)
        pg.goto(url)
        pg.outside = outside
        yield pg
        browser.close()
    assert not outside, f"the page made requests outside localhost: {sorted(set(outside))}"


def _shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _open(page, tab: str) -> None:
    page.get_by_role("tab", name=tab, exact=True).click()


def test_first_launch_indexes_the_sample_corpus(page):
    from playwright.sync_api import expect

    # while the sample corpus is being indexed, Ask cannot be pressed (the other arms would fail)
    page.wait_for_selector("#compare-ask")
    banner, disabled = page.evaluate(
        "() => [document.querySelector('#lab-banner').innerText, document.querySelector('#compare-ask').disabled]"
    )
    assert "chunks from" not in banner, "indexing ended before the page could be looked at"
    assert disabled, "Ask is clickable while the lab is not ready"
    _shot(page, "0-compare-first-launch")
    page.wait_for_selector("#lab-banner:has-text('chunks from')", timeout=300_000)
    expect(page.locator("#compare-ask")).to_be_enabled()
    expect(page.locator("#compare-ask")).to_have_text("Ask every arm")
    # no adapter in the home: the Tune arm is not ticked, so a first answer carries no warning
    arms = page.locator("#compare-arms")
    expect(arms.get_by_label("Tune (LoRA)")).not_to_be_checked()
    expect(arms.get_by_label("RAG", exact=True)).to_be_checked()
    assert "acme" in page.inner_text("#lab-banner")
    # no adapter yet: the Tune column says so and offers the demo adapter with an estimate
    page.wait_for_selector("#tune-offer:has-text('No adapter')")
    assert "min" in page.inner_text("#tune-offer")
    page.wait_for_selector("#train-demo", state="visible")


def test_prepare_the_demo_shows_its_progress_and_cancel_from_the_click_on(page):
    """The job plans for seconds before it writes its row: the page must show the job it started
    (not the previous state) from the click on, through the first polls, without a reload."""
    from playwright.sync_api import expect

    button = page.locator("#demo-prepare")
    expect(button).to_be_visible(timeout=60_000)
    assert re.fullmatch(r"Prepare the demo \(about \d+ min, a first estimate\)", button.inner_text())
    assert "First launch?" in page.inner_text("#demo-offer")
    button.click()
    cancel = page.locator("#demo-cancel")
    expect(cancel).to_be_visible(timeout=5_000)
    status = page.locator("#demo-status")
    # the first 2-second poll has run (before the job has written its row): still the job it started
    expect(status).to_contain_text(re.compile(r"starting|step \d+ of \d+"), timeout=15_000)
    expect(cancel).to_be_visible()
    expect(button).to_be_hidden()
    _shot(page, "0-demo-preparing")
    cancel.click()
    expect(page.locator("#demo-status")).to_contain_text("Stopped", timeout=60_000)
    expect(button).to_be_visible()  # pressing it again continues


def test_compare_answers_in_every_column(page):
    _open(page, "Compare")
    page.wait_for_function("document.querySelector('#compare-task input')?.value === 'acme-facts'")
    page.fill("#compare-question textarea", "What warranty period does the FL-200 come with?")
    page.click("#compare-ask")
    for arm in ("zero-shot", "few-shot", "rag"):
        page.wait_for_selector(f"#stats-{arm}:has-text('logged as')", timeout=300_000)
        assert page.input_value(f"#answer-{arm} textarea").strip(), f"{arm} gave no answer"
        assert "per 1,000" in page.inner_text(f"#stats-{arm}")
    assert ".md" in page.inner_text("#col-rag") or ".txt" in page.inner_text("#col-rag")  # cited sources
    _shot(page, "1-compare")


def test_a_tiny_evaluation_shows_the_scoreboard(page):
    _open(page, "Evaluate")
    page.wait_for_function("document.querySelector('#eval-task input')?.value === 'tickets'")
    page.fill("#eval-limit input", "2")
    page.click("#eval-run")
    page.wait_for_selector("#eval-scoreboard:has-text('95% CI')", timeout=600_000)
    board = page.inner_text("#eval-scoreboard")
    assert "zero-shot" in board and "few-shot" in board
    assert "4 results" in page.inner_text("#eval-status")
    _shot(page, "2-evaluate")


def test_history_finds_those_rows(page):
    _open(page, "History")
    page.click("#history-refresh")
    page.wait_for_selector("#history-table:has-text('few-shot')")
    table = page.inner_text("#history-table")
    assert "zero-shot" in table and "rag" in table and "FL-200" in table
    _shot(page, "6-history")
    page.locator("#history-view").get_by_label("Evaluation runs").check()
    page.wait_for_selector("#history-table:has-text('tickets')")


def _open_documents(page):
    """Open Knowledge's documents accordion (the page is shared by tests: a click on an open one closes it)."""
    if not page.locator("#knowledge-name textarea").is_visible():
        page.get_by_text("Documents: add, upload, edit, delete").click()
    page.locator("#knowledge-name textarea").wait_for(state="visible")


def test_the_other_tabs_render(page):
    from playwright.sync_api import expect

    page.wait_for_selector("#lab-banner:has-text('chunks from')", timeout=300_000)  # first launch indexes
    _open(page, "Knowledge")
    page.wait_for_selector("#knowledge-corpora:has-text('up to date')")
    page.fill("#knowledge-query textarea", "How long is the warranty?")
    page.click("#knowledge-search")
    page.wait_for_selector("#knowledge-hits:has-text('.md')")
    _open_documents(page)
    page.locator("#knowledge-doc input").click()
    page.get_by_role("option", name="policies/warranty.md").click()
    page.wait_for_selector("#knowledge-text:has-text('Warranty')")
    _shot(page, "4-knowledge")
    _open(page, "Advisor")
    page.wait_for_function("document.querySelector('#advisor-run input')?.value.startsWith('#')")
    page.click("#advisor-go")
    page.wait_for_selector("#advisor-out:has-text('The numbers')")
    _shot(page, "5-advisor")
    _open(page, "Train")
    expect(page.locator("#train-name").get_by_role("textbox")).to_have_value("tickets", timeout=60_000)
    _shot(page, "3-train")


def test_the_log_holds_the_rows(server, page):
    from lab.store import Store

    store = Store(Path(server[1]) / "lab.db")
    arms = {r["arm"] for r in store.recent_generations(50)}
    assert {"zero-shot", "few-shot", "rag"} <= arms
    assert store.eval_runs(5)[0]["results"] == 4


def test_no_request_left_localhost(page):
    assert not page.outside, f"the page made requests outside localhost: {sorted(set(page.outside))}"


def test_a_new_task_from_an_uploaded_csv_then_its_evaluation(server, page):
    """The New task panel: upload a CSV, see the preview, the inferred labels and the warnings,
    create; the Evaluate picker lists the task, and a two-example run gives its scoreboard."""
    data = Path(server[1]) / "upload" / "messages.csv"
    data.parent.mkdir()
    teams = {
        "billing": "I was charged twice for invoice {i}",
        "tech": "The app crashes when I open report {i}",
        "sales": "Can I get a quote for {i} more seats",
    }
    lines = ["text,label"] + [f"{text.format(i=i)},{team}" for i in range(8) for team, text in teams.items()]
    data.write_bytes(("\r\n".join(lines + ["Please delete my account,privacy"]) + "\r\n").encode("utf-8-sig"))
    _open(page, "New task")
    page.locator("#newtask-file input[type=file]").set_input_files(str(data))
    page.wait_for_selector("#newtask-plan:has-text('Format: label')", timeout=120_000)
    assert "billing" in page.inner_text("#newtask-preview")
    plan = page.inner_text("#newtask-plan")
    assert "4 labels" in plan and "privacy" in plan and "has no held-out example" in plan
    assert "exactly one of" in page.input_value("#newtask-instruction textarea")
    page.locator("#newtask-name").get_by_role("textbox").fill("support")
    held_out = page.locator("#newtask-eval").get_by_role("textbox")
    held_out.fill("4")
    held_out.blur()
    page.wait_for_selector("#newtask-plan:has-text('eval 4')")
    page.click("#newtask-create")
    page.wait_for_selector("#newtask-result:has-text('Created task')")
    assert (Path(server[1]) / "tasks" / "support" / "task.toml").is_file()
    _shot(page, "7-new-task")
    _open(page, "Advisor")  # every task picker lists the new task without a restart
    page.get_by_text("How many examples?").click()  # the curve's section opens
    for picker in ("#climb-task", "#curve-task"):
        page.locator(f"{picker} input").click()
        page.locator(picker).get_by_role("option", name="support", exact=True).wait_for(timeout=10_000)
        page.locator(f"{picker} input").blur()  # the list closes
    _open(page, "Evaluate")
    page.locator("#eval-task input").click()
    page.get_by_role("option", name="support", exact=True).click()
    page.wait_for_function("document.querySelector('#eval-task input')?.value === 'support'")
    page.fill("#eval-limit input", "2")
    page.click("#eval-run")  # the board of an earlier run may be showing: wait for this task's
    page.wait_for_selector("#eval-scoreboard:has-text('support · run')", timeout=600_000)
    board = page.inner_text("#eval-scoreboard")
    assert "95% CI" in board and "zero-shot" in board and "few-shot" in board and "label_accuracy" in board
    _shot(page, "8-evaluate-new-task")


def test_a_malformed_upload_in_new_task_says_one_thing_naming_the_file_and_line(server, page):
    from playwright.sync_api import expect

    folder = Path(server[1]) / "upload-new-task"
    folder.mkdir(exist_ok=True)
    good = folder / "printers.csv"
    good.write_text(
        "text,label\n" + "".join(f"my {d} number {i} is broken,{d}\n" for i in range(12) for d in ("printer", "screen"))
    )
    ragged = folder / "banking.csv"  # line 7 has a comma in its text and no quotes
    ragged.write_text(
        "text,label\n"
        + "".join(f"card {i} was declined,cards\n" for i in range(5))
        + "Hello, my transfer is late,transfers\n"
        + "".join(f"transfer {i} is late,transfers\n" for i in range(5))
    )
    _open(page, "New task")
    loaded = page.locator("#newtask-file").get_by_role("button", name="Clear")
    if loaded.count():  # the file of the journey before
        loaded.click()
        expect(page.locator("#newtask-plan")).to_contain_text("Upload a file")
    page.locator("#newtask-file input[type=file]").set_input_files(str(good))
    page.wait_for_selector("#newtask-plan:has-text('Format: label')", timeout=120_000)
    assert "printer" in page.inner_text("#newtask-preview")
    page.click("#newtask-create")
    page.wait_for_selector("#newtask-result:has-text('Created task printers')")
    page.click("#newtask-create")  # again: the name is taken, and the fix is this page's box, not --force
    toast = page.locator("[data-testid='toast-body']")
    expect(toast).to_contain_text("tick Replace a task of the same name")  # the box's name, in bold
    assert "--force" not in toast.inner_text() and "**" not in toast.inner_text()
    assert toast.locator("strong", has_text="Replace a task of the same name").count() == 1
    page.wait_for_timeout(800)  # the toast faded in
    _shot(page, "7a-new-task-name-taken")
    toast.get_by_test_id("toast-close").click()
    expect(toast).to_have_count(0)

    # as a user does: clear the file, then drop the next one
    page.locator("#newtask-file").get_by_role("button", name="Clear").click()
    page.locator("#newtask-file input[type=file]").set_input_files(str(ragged))
    plan = page.locator("#newtask-plan")
    expect(plan).to_contain_text("banking.csv, line 7", timeout=60_000)
    page.wait_for_timeout(1500)  # the plan that follows the load has run too
    text = plan.inner_text()
    assert "3 fields, but the header has 2" in text and "gradio" not in text.lower(), text
    body = page.inner_text("body")
    assert body.count("banking.csv, line 7") == 1, body  # one message, not one per field
    assert "not in the list of choices" not in body and "Value:" not in body
    assert page.locator("[data-testid='toast-body']").count() == 0  # no error toast
    assert page.locator("[id^='newtask-'] span.error").count() == 0  # no red Error badge on any field
    assert "printer" not in page.inner_text("#newtask-preview")  # the old file's preview is gone
    assert "Format: label" not in text and "Created task" not in page.inner_text("#newtask-result")  # its summary
    assert page.input_value("#newtask-instruction textarea") == ""  # and its instruction
    for picker in ("#newtask-input", "#newtask-output"):
        assert page.input_value(f"{picker} input") == ""
    _shot(page, "7b-new-task-malformed-upload")

    page.click("#newtask-create")
    toast = page.locator("[data-testid='toast-body']")
    expect(toast).to_have_count(1, timeout=60_000)
    said = toast.inner_text()
    assert page.locator("[id^='newtask-'] span.error").count() <= 1  # at most the result's, not every field's
    assert "banking.csv, line 7" in said and "not in the list of choices" not in said and "gradio" not in said, said
    assert not (Path(server[1]) / "tasks" / "banking").exists()
    page.wait_for_timeout(800)  # the toast faded in
    _shot(page, "7c-new-task-malformed-create")


# ---- Evaluate, Knowledge and History (issue 15) ---------------------------------------------------


def _second_page(page, url):
    """Another browser's page: its own context (cookies, Gradio session), the same offline guard."""
    context = page.context.browser.new_context(viewport={"width": 1400, "height": 1000})

    def guard(route):
        if urlparse(route.request.url).hostname not in LOCAL:
            page.outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", guard)
    other = context.new_page()
    other.set_default_timeout(60_000)
    other.goto(url)
    return other


def _start_eval(pg, task: str, limit: int) -> None:
    _open(pg, "Evaluate")
    pg.wait_for_function("document.querySelector('#eval-task input')?.value")  # the page has loaded its tasks
    pg.locator("#eval-task input").click()
    pg.get_by_role("option", name=task, exact=True).click()
    pg.wait_for_function(f"document.querySelector('#eval-task input')?.value === '{task}'")
    pg.locator("#eval-arms").get_by_label("Prompt · few-shot").uncheck()
    pg.fill("#eval-limit input", str(limit))
    pg.click("#eval-run")


def test_each_browser_owns_its_evaluation(server, page):
    """Two browsers, one evaluation each: Cancel in one leaves the other running; a second Run
    says so at once; the finished run is labelled in words, its outputs shown as text."""
    url, home = server
    page.wait_for_selector("#lab-banner:has-text('chunks from')", timeout=300_000)
    other = _second_page(page, url)
    try:
        _start_eval(page, "tickets", 6)
        page.wait_for_selector("#eval-status .lab-progress-label:has-text('run #')", timeout=300_000)
        _start_eval(other, "acme-facts", 3)
        page.click("#eval-run")  # a second Run on the busy page: answered, not queued
        page.wait_for_selector("#eval-status:has-text('still running')", timeout=30_000)
        page.click("#eval-cancel")
        page.wait_for_selector("#eval-status:has-text('cancelled')", timeout=300_000)
        other.wait_for_function(  # this run's end, not an older run's status
            "/3 of [\\s\\S]*complete as asked/.test(document.querySelector('#eval-status').innerText)", timeout=600_000
        )
        status = other.inner_text("#eval-status")
        assert "3 of" in status and "partial" not in status and "cancelled" not in status
        board = other.inner_text("#eval-scoreboard")
        assert "complete as asked" in board and "time basis: the measured seconds" in board
        assert "too few to tell" in other.inner_text("#eval-significance") or "One arm" in other.inner_text(
            "#eval-significance"
        )
        shown = other.inner_text("#eval-disagree") + other.inner_text("#eval-examples-title")
        assert "&#x27;" not in shown and "&amp;" not in shown and "&quot;" not in shown
        assert "agree on every example" not in shown
        _shot(other, "9-evaluate-second-browser")
        _shot(page, "9-evaluate-cancelled")
    finally:
        other.context.close()
    from lab.store import Store

    runs = {r["task"]: r for r in Store(Path(home) / "lab.db").eval_runs(10)}
    assert runs["tickets"]["status"] == "cancelled" and runs["tickets"]["results"] < 6 * 2  # 6 examples x 2 arms
    assert runs["acme-facts"]["status"] == "partial" and runs["acme-facts"]["results"] == 3


def _tree(folder: Path) -> dict:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _chunks(page) -> int:
    return int(re.search(r"acme: (\d+) chunks", page.inner_text("#lab-banner")).group(1))


def test_knowledge_writes_only_inside_the_lab_home(server, page, tmp_path):
    """Save, create, upload, delete in Knowledge: every write lands in the lab home (the sample
    corpus is copied there first); the checkout's corpora/ is byte for byte what it was; the
    banner's chunk count follows the re-index."""
    from playwright.sync_api import expect

    _url, home = server
    checkout = _tree(ROOT / "corpora")
    page.wait_for_selector("#lab-banner:has-text('chunks from')", timeout=300_000)
    before = _chunks(page)
    _open(page, "Knowledge")
    page.wait_for_selector("#knowledge-corpora:has-text('acme')")
    _open_documents(page)
    page.locator("#knowledge-name textarea").fill("policies/points-club.md")
    page.locator("#knowledge-text .cm-content").click()
    page.keyboard.type(
        "# Loyalty programme\n\nMembers earn one point per dollar spent on FL-200 filters. "
        "Points never expire and can be redeemed for spare parts.\n"
    )
    page.click("#knowledge-save")
    page.wait_for_selector("#knowledge-saved:has-text('Added')")
    assert (Path(home) / "corpora" / "acme" / "policies" / "points-club.md").is_file()
    page.wait_for_selector("#lab-banner:has-text('changed since: re-index')")  # the banner follows the edit
    page.click("#knowledge-reindex")
    expect(page.locator("#lab-banner")).not_to_contain_text(f"acme: {before} chunks", timeout=120_000)
    assert _chunks(page) > before

    page.locator("#knowledge-new-corpus textarea").fill("handbook")
    page.click("#knowledge-create")
    page.wait_for_selector("#knowledge-saved:has-text('Created corpus')")
    upload = tmp_path / "leave.md"
    upload.write_text("# Leave\n\nEveryone gets 25 days of paid leave a year.\n")
    page.locator("#knowledge-upload input[type=file]").set_input_files(str(upload))
    page.wait_for_selector("#knowledge-saved:has-text('Added 1 file')", timeout=120_000)
    assert (Path(home) / "corpora" / "handbook" / "leave.md").is_file()
    page.locator("#knowledge-doc input").click()
    page.get_by_role("option", name="leave.md").click()
    page.wait_for_selector("#knowledge-text:has-text('25 days')")
    _shot(page, "10-knowledge-edits")
    page.click("#knowledge-delete")
    page.wait_for_selector("#knowledge-saved:has-text('Deleted')")
    assert not (Path(home) / "corpora" / "handbook" / "leave.md").exists()
    assert _tree(ROOT / "corpora") == checkout  # nothing outside the lab home changed


def test_history_filters_apply_where_they_can(page):
    _open(page, "History")
    page.locator("#history-view").get_by_label("Generations").check()
    page.click("#history-refresh")
    page.wait_for_selector("#history-table:has-text('zero-shot')", timeout=120_000)
    page.locator("#history-arm input").click()
    page.get_by_role("option", name="rag", exact=True).click()
    page.locator("#history-view").get_by_label("Evaluation runs").check()
    page.wait_for_selector("#history-table:has-text('acme-facts')")  # the arm did not carry over
    assert "nothing logged yet" not in page.inner_text("#history-note")
    page.locator("#history-view").get_by_label("App errors").check()
    page.wait_for_selector("#history-arm", state="hidden")
    _shot(page, "11-history")


# ---- the Train tab: journeys a user takes (real training, a few steps) --------------------------------


def test_a_broken_upload_is_what_gets_validated_and_replaces_nothing(server, page):
    from playwright.sync_api import expect

    broken = Path(server[1]) / "upload" / "broken.jsonl"
    broken.parent.mkdir(exist_ok=True)
    broken.write_text("".join('{"input": "q%d", "output": "a"}\n' % i for i in range(25)) + '{"input": oops}\n')
    _open(page, "Train")
    expect(page.locator("#train-name").get_by_role("textbox")).to_have_value("tickets", timeout=60_000)
    page.locator("#train-upload input[type=file]").set_input_files(str(broken))
    expect(page.locator("#train-dataset input")).to_have_value("(uploaded file)")
    expect(page.locator("#train-name").get_by_role("textbox")).to_have_value("")
    expect(page.locator("#train-instruction textarea")).to_have_value("")
    expect(page.locator("#train-overwrite input")).not_to_be_checked()
    page.click("#train-validate")
    page.wait_for_selector("#train-report:has-text('cannot be trained on')", timeout=120_000)
    assert "broken.jsonl:26" in page.inner_text("#train-report")  # the upload's own error, its line
    _shot(page, "9-train-broken-upload")


def test_climb_plans_then_stops_at_its_budget(page):
    """Advisor tab, Climb the ladder: Plan shows each rung with its time estimate; Climb with a budget
    too small for the first step says so and ends with a finished climb (a real climb of the ladder
    runs in tests/test_climb.py; here, the page's wiring)."""
    import re

    _open(page, "Advisor")
    page.locator("#climb-task input").click()
    page.get_by_role("option", name=re.compile(r"^tickets")).click()
    page.click("#climb-plan")  # the untouched form (0 for "not set") is valid
    page.wait_for_selector("#climb-out:has-text('prompt: always first')", timeout=120_000)
    plan = page.inner_text("#climb-out")
    assert "configurations" in plan and "tune:" in plan and "rag: if the prompt rung misses: skipped" in plan
    page.locator("#climb-budget input").fill("0.01")
    page.locator("#climb-budget input").blur()
    page.click("#climb-go")
    page.wait_for_selector("#climb-out h3:has-text('Climb #')", timeout=120_000)
    out = page.inner_text("#climb-out")
    assert "finished" in out and "Stopped (budget)" in out and "of the budget is left: skipped" in out, out
    _shot(page, "12-climb-budget")


def test_a_run_started_from_the_page_is_followed_stopped_refused_twice_and_resumed(server, page):
    """Start: the page follows the new run at once (its model loading), a second Start for the
    same adapter is refused naming the first, Stop works while the model loads; started again
    and stopped after a few steps, Resume is a button, and the resumed run ends done."""
    _open(page, "Train")
    page.wait_for_selector("text=Defaults for this machine", timeout=60_000)  # the page's defaults are in
    try:
        _train_follow_stop_resume(server, page)
    finally:  # a trainer runs in its own session: one left by a failure must not outlive the test
        _stop_trainers(Path(server[1]))


def _stop_trainers(home: Path) -> None:
    import signal

    from lab.engine import Lab
    from lab.tuning import jobs

    for job in jobs.active_jobs(Lab(home=home)):
        try:
            os.kill(int(job["pid"]), signal.SIGTERM)
        except ProcessLookupError:
            pass


def _train_follow_stop_resume(server, page) -> None:
    import re

    from playwright.sync_api import expect

    if not page.input_value("#train-dataset input").startswith("tickets: "):  # after the upload journey
        page.locator("#train-dataset input").click()
        page.get_by_role("option", name=re.compile(r"^tickets: ")).click()
        # the pick fills the name and instruction the upload cleared: type the name only after that
        expect(page.locator("#train-instruction textarea")).not_to_have_value("")
        page.wait_for_timeout(1_500)  # a busy machine may answer the pick twice: let both land first
    page.locator("#train-name").get_by_role("textbox").fill("browser-tiny")
    expect(page.locator("#train-name").get_by_role("textbox")).to_have_value("browser-tiny")
    page.get_by_text("Hyperparameters").click()
    settings = (("#train-max-steps", "40"), ("#train-batch", "2"), ("#train-max-seq-len", "384"))
    for _ in range(3):  # a late answer to the dataset pick may refill this machine's defaults: set them again
        for field, value in settings:
            if page.input_value(f"{field} input") != value:
                page.locator(f"{field} input").fill(value)
                page.locator(f"{field} input").blur()
        page.wait_for_timeout(1_000)
    for field, value in settings:  # the run is only followed as "of 40" when these stuck
        expect(page.locator(f"{field} input")).to_have_value(value)
    page.click("#train-start")
    page.wait_for_selector("#train-status:has-text('loading the model')")
    assert "steps is very few" not in page.inner_text("#train-started")  # 40 steps: nothing to warn about
    page.click("#train-start")  # a second trainer for the same adapter
    expect(page.get_by_text(re.compile("'browser-tiny' is already being trained by process"))).to_be_visible()
    page.click("#train-stop")  # while its model loads
    page.wait_for_selector("#train-started:has-text('while it was loading the model')")
    page.wait_for_selector("#train-status:has-text('ended before its first step')", timeout=60_000)

    page.click("#train-start")
    page.wait_for_selector("#train-status:has-text('loading the model')")
    page.wait_for_function(
        "/step ([2-9]|\\d\\d+) of 40|ended before/.test(document.querySelector('#train-status').innerText)",
        timeout=600_000,
    )
    assert "ended before" not in page.inner_text("#train-status"), page.input_value("#train-log textarea")
    assert "ETA" in page.inner_text("#train-status")
    assert "gemm_4bit" not in page.input_value("#train-log textarea")  # no bitsandbytes noise
    _shot(page, "10-train-following")
    page.click("#train-stop")
    page.wait_for_selector("#train-status:has-text('interrupted')", timeout=120_000)
    resume = page.locator("#train-resume")
    expect(resume).to_have_text(re.compile(r"Resume from step \d+"), timeout=30_000)
    step = int(re.search(r"\d+", resume.inner_text()).group())
    assert step >= 2
    expect(page.locator("#train-started")).not_to_contain_text("Stopping", timeout=10_000)  # it has stopped
    assert "--resume" not in page.input_value("#train-log textarea")  # the page's words, not the CLI's
    page.click("#train-start")  # Start, not Resume: said in place, with what to press; no error on the way
    expect(page.locator("#train-started")).to_contain_text(f"Resume from step {step}")
    assert "**" not in page.inner_text("#train-started")
    assert page.locator(".toast-body.error").count() == 0  # no error toast
    assert page.locator("#tab-train").get_by_text("Error", exact=True).count() == 0  # no red badge on the tab
    page.locator("#train-max-steps input").fill(str(step + 1))  # one step more, to finish quickly
    page.locator("#train-max-steps input").blur()
    resume.click()
    page.wait_for_selector("#train-started:has-text('Resumed training')")
    page.wait_for_selector("#train-status:has-text('· done')", timeout=600_000)
    status = page.inner_text("#train-status")
    assert f"step {step + 1} of {step + 1}" in status and "ready in Compare" in status
    assert "steps is very few" in status  # said after the run too
    expect(resume).to_be_hidden()
    _shot(page, "11-train-resumed")
    from lab.store import Store

    runs = Store(Path(server[1]) / "lab.db").training_runs(5, adapter="browser-tiny")
    assert len(runs) == 1 and runs[0]["status"] == "done"  # resumed: the same run, not a new one
    _open(page, "History")  # the stop and the resume are there, not only the end
    page.locator("#history-view").get_by_label("Training runs").check()
    page.wait_for_selector(f"#history-table:has-text('resumed at step {step}')")
    assert f"stopped at step {step}" in page.inner_text("#history-table")
    _shot(page, "13-history-training-runs")
