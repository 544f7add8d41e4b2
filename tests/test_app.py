"""The app's callbacks, wired to a FakeBackend: what each tab shows and what it writes.

The browser test (test_app_browser.py) drives the real page on the real model; these check the
logic behind each button quickly."""

import csv
import json
import re
import signal
import subprocess
import sys
import time

import gradio as gr
import pytest
from fake_adapters import write_fake_adapter

from lab.app import _ui, bridge, tab_advisor, tab_compare, tab_evaluate, tab_history, tab_knowledge, tab_train
from lab.app._ui import guard
from lab.app.access import ServeError, check_host, read_auth
from lab.app.app import build_app
from lab.backends.fake import FakeBackend
from lab.tuning import TrainConfigError
from lab.tuning.run import process_started


def _last(gen):
    out = None
    for out in gen:  # noqa: B007 (the last value is the one wanted)
        pass
    return out


def _column(out, arm):
    """(answer, stats, sources) of one arm's column in a Compare yield."""
    i = 1 + 3 * tab_compare.ARMS.index(arm)
    return out[i], out[i + 1], out[i + 2]


# ---- the page -----------------------------------------------------------------------------------


def test_build_app_has_every_tab_and_named_endpoints(fake_lab):
    demo = build_app(fake_lab)
    labels = {b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)}
    assert labels == {"Compare", "New task", "Evaluate", "Train", "Knowledge", "Advisor", "History"}
    api = {fn.api_name for fn in demo.fns.values()}
    assert {"compare", "evaluate", "search", "advise", "new_task"} <= api
    assert {"distill-plan", "distill-run", "distill-cancel"} <= {b.elem_id for b in demo.blocks.values()}


def test_a_failing_callback_shows_a_message_and_logs_a_row(fake_lab):
    def broken():
        raise FileNotFoundError("corpora/nope: no such folder")

    with pytest.raises(gr.Error) as e:
        guard(fake_lab, "knowledge", broken)()
    assert "corpora/nope" in str(e.value) and "Traceback" not in str(e.value)
    row = fake_lab.store.app_errors(1)[0]
    assert row["place"] == "knowledge" and "FileNotFoundError" in row["error"]
    assert fake_lab.store.recent_generations(1) == []  # an app error is not a generation
    table, _note = tab_history.show(fake_lab, "App errors", tab_history.ANY, "", 10)
    assert "corpora/nope" in str(table["value"])


def test_a_failing_streaming_callback_too(fake_lab):
    def broken():
        yield "partial"
        raise RuntimeError("boom")

    with pytest.raises(gr.Error, match="boom"):
        list(guard(fake_lab, "compare", broken)())


# ---- Compare ------------------------------------------------------------------------------------


def test_compare_streams_every_arm_into_its_column_and_logs_each(fake_lab):
    fake_lab.fake.default = "Ticket filed for the missing order"
    outs = list(
        tab_compare.answer(
            fake_lab, "My order never arrived", "tickets", "fake", ["zero-shot", "few-shot"], None, None, 64
        )
    )
    partial = [o for o in outs if _column(o, "zero-shot")[0] and "logged" not in _column(o, "zero-shot")[1]]
    assert partial, "the answer should appear piece by piece before it is done"
    final = outs[-1]
    for arm in ("zero-shot", "few-shot"):
        answer, stats, _ = _column(final, arm)
        assert answer == "Ticket filed for the missing order"
        assert "tokens in" in stats and "per 1,000 such requests" in stats
        row = fake_lab.store.db["generations"].get(final[0][arm])
        assert row["arm"] == arm and "My order never arrived" in row["messages_json"]
    few = json.loads(fake_lab.store.db["generations"].get(final[0]["few-shot"])["messages_json"])
    assert sum(m["role"] == "assistant" for m in few) >= 1  # the task's few-shot pool went in
    assert _column(final, "rag") == ("", "", "")  # an arm not asked for stays empty


def test_compare_shows_a_missing_prerequisite_in_that_column_only(fake_lab):
    final = _last(
        tab_compare.answer(
            fake_lab, "hello", tab_compare.NO_TASK, "fake", ["zero-shot", "few-shot", "tune"], None, None, 32
        )
    )
    assert _column(final, "zero-shot")[0] == "fake answer"
    assert "pick a task" in _column(final, "few-shot")[1]
    assert "no adapter chosen" in _column(final, "tune")[1]


def test_compare_refuses_an_empty_question(fake_lab):
    with pytest.raises(gr.Error, match="question"):
        _last(tab_compare.answer(fake_lab, "  ", "tickets", "fake", ["zero-shot"], None, None, 32))


def test_rating_is_saved_against_the_generation(fake_lab):
    final = _last(tab_compare.answer(fake_lab, "hi", tab_compare.NO_TASK, "fake", ["zero-shot"], None, None, 16))
    assert "Saved: worse" in tab_compare.rate(fake_lab, final[0], "zero-shot", "worse")
    rating = fake_lab.store.ratings(1)[0]
    assert rating["generation_id"] == final[0]["zero-shot"] and rating["verdict"] == "worse"
    with pytest.raises(gr.Error, match="no rag answer to rate"):
        tab_compare.rate(fake_lab, final[0], "rag", "better")


def test_compare_setup_offers_the_demo_adapter_when_there_is_none(fake_lab, monkeypatch):
    task, model, corpus, adapter, note, button, arms = tab_compare.setup(fake_lab)
    assert task["value"] == "acme-facts" and model["value"] == "fake"
    assert dict((v, k) for k, v in corpus["choices"])[corpus["value"]] == "acme"
    assert note["visible"] and "demo adapter" in note["value"] and "min" in note["value"]
    assert arms["value"] == ["zero-shot", "few-shot", "rag"]  # no adapter: the tune arm is not ticked


def test_compare_ticks_only_the_arms_that_can_answer():
    assert tab_compare.answerable_arms(True, True, True) == ["zero-shot", "few-shot", "rag", "tune"]
    assert tab_compare.answerable_arms(False, False, False) == ["zero-shot"]
    assert tab_compare.answerable_arms(True, False, True) == ["zero-shot", "few-shot", "tune"]


def test_ask_is_refused_until_the_lab_is_ready_and_shows_a_question_runs():
    with pytest.raises(gr.Error, match="getting ready"):
        tab_compare.busy(False)
    assert tab_compare.busy(True) == gr.update(interactive=False, value="Answering…")
    assert tab_compare.idle(True)["interactive"] is True
    assert tab_compare.idle(False)["interactive"] is False  # Stop during the first launch enables nothing


def test_a_mistyped_task_keeps_the_controls_and_clears_the_answers(fake_lab, monkeypatch):
    warned = []
    monkeypatch.setattr(gr, "Warning", lambda message, *a, **k: warned.append(message))
    example, corpus, adapter, row_ids, *answers = tab_compare.task_changed(fake_lab, "tickts")
    assert example == corpus == adapter == gr.update()  # left as they were, no error badge
    assert row_ids == {} and answers == [""] * 3 * len(tab_compare.ARMS)
    assert warned and "tickts" in warned[0]
    example, *_ = tab_compare.task_changed(fake_lab, "tickets")
    assert example["choices"]  # a real task still fills the examples


def test_a_compare_answer_says_it_is_queued_behind_a_running_evaluation(fake_lab, monkeypatch):
    import queue as queue_mod

    assert tab_compare.queued_note(fake_lab) is None
    run_id = fake_lab.store.insert("eval_runs", {"ts": "t", "task": "tickets", "status": "running"})
    assert f"evaluation run #{run_id}" in tab_compare.queued_note(fake_lab)
    monkeypatch.setattr(tab_compare, "QUEUED_AFTER_S", 0.0)
    monkeypatch.setattr(tab_compare, "IDLE_YIELD_S", 0.01)
    events = queue_mod.Queue()
    text, stats, sources = ({a: "" for a in tab_compare.ARMS} for _ in range(3))
    stats["zero-shot"] = tab_compare.WAITING
    stream = tab_compare._stream_columns(
        events,
        ["zero-shot"],
        None,
        text,
        stats,
        sources,
        {},
        lambda: dict(stats),
        waiting=lambda: tab_compare.queued_note(fake_lab),
    )
    next(stream)
    assert "queued behind evaluation" in next(stream)["zero-shot"]
    events.put(("zero-shot", "piece", "Hi"))
    assert next(stream)["zero-shot"] == "_generating…_"


def test_picking_an_example_fills_the_question(fake_lab):
    examples, corpus, *_ = tab_compare.task_changed(fake_lab, "acme-facts")
    label, ex_id = examples["choices"][0]
    assert corpus["value"].endswith("acme")
    question = tab_compare.pick_example(fake_lab, "acme-facts", ex_id)["value"]
    assert question and question in label


# ---- Evaluate -----------------------------------------------------------------------------------


def test_evaluate_runs_shows_progress_then_the_scoreboard(fake_lab):
    jobs = tab_evaluate.Jobs()
    outs = list(tab_evaluate.run(fake_lab, jobs, "tickets", ["zero-shot", "few-shot"], 2, None, "fixed", False))
    assert any("lab-progress" in str(o[0]) for o in outs[1:-1])
    status, scoreboard, plot, significance, failures, title, table = outs[-1]
    assert "2 of " in status and "complete as asked" in status and "4 results: 2 examples × 2 arms" in status
    assert "partial" not in status + scoreboard
    assert "zero-shot" in scoreboard and "[95% CI]" in scoreboard
    assert "$" in scoreboard and "(time basis)" in scoreboard  # a cost says its currency and basis
    assert "time basis: the measured seconds per request" in scoreboard  # ... and what the basis means
    # two examples are never evidence: the verdict says so, whatever the scores
    assert "few-shot vs zero-shot" in significance and "too few examples to tell" in significance
    assert "**significant**" not in significance
    assert "output invalid" in failures and "not in the required format" in failures  # explained
    assert plot is not None and plot.axes[0].get_xlim()[0] == 0 and plot.axes[0].get_ylim()[0] == 0
    assert not jobs.running  # nothing left running
    run = fake_lab.store.eval_runs(1)[0]
    assert run["task"] == "tickets" and run["results"] == 4


def test_when_every_arm_fails_everywhere_the_page_says_so_and_shows_the_outputs(fake_lab):
    fake_lab.fake.default = "I'm not sure what you mean"  # never a valid ticket
    outs = list(
        tab_evaluate.run(fake_lab, tab_evaluate.Jobs(), "tickets", ["zero-shot", "few-shot"], 2, None, "fixed", False)
    )
    live = [o for o in outs[1:-1] if isinstance(o[-1], dict) and o[-1].get("value")]
    assert live and "I'm not sure" in live[-1][-1]["value"][0][2]  # the live table: text, not HTML entities
    assert "&#x27;" not in str(live[-1][-1]["value"])
    _status, _board, _plot, significance, _failures, title, table = outs[-1]
    assert "agree on every example" not in title and "Every arm failed on every example" in title
    assert len(table["value"]) == 2 and "I'm not sure" in table["value"][0][3]
    assert "Both few-shot and zero-shot failed on every one of the 2 examples" in significance


def test_evaluate_with_one_example_shows_a_wide_interval_instead_of_crashing(fake_lab):
    outs = list(
        tab_evaluate.run(fake_lab, tab_evaluate.Jobs(), "tickets", ["zero-shot", "few-shot"], 1, None, "fixed", False)
    )
    status, scoreboard, plot, significance, failures, title, table = outs[-1]
    assert "2 results" in status and plot is not None
    # one graded score still gets an interval, as wide as one example deserves (issue 21: no zero widths)
    assert "[—]" not in scoreboard and "| no |" in scoreboard
    assert "1 example" in significance


def test_evaluate_cancel_stops_and_run_again_resumes(fake_lab):
    jobs = tab_evaluate.Jobs()
    gen = tab_evaluate.run(fake_lab, jobs, "tickets", ["zero-shot"], 5, None, "fixed", False)
    next(gen)  # started
    next(gen)  # one result in
    assert "Cancelling" in tab_evaluate.cancel(jobs)
    status = _last(gen)[0]
    assert "cancelled" in status and "resumes" in status
    done = fake_lab.store.eval_runs(1)[0]["results"]
    assert 1 <= done < 5
    final = _last(tab_evaluate.run(fake_lab, jobs, "tickets", ["zero-shot"], 5, None, "fixed", False))
    runs = fake_lab.store.eval_runs(10)
    assert len(runs) == 1 and runs[0]["results"] == 5  # same run, continued, no duplicates
    assert "5 results" in final[0]


def test_each_page_owns_its_evaluation(fake_lab, monkeypatch):
    """Page A's Cancel does not stop page B's run; a second Run on a page is refused with a
    message (not queued), and so is the same task from another page."""
    generate = fake_lab.fake.generate

    def slowly(*args, **kwargs):  # long enough that page A is still running when it cancels
        time.sleep(0.3)
        return generate(*args, **kwargs)

    monkeypatch.setattr(fake_lab.fake, "generate", slowly)
    jobs = tab_evaluate.Jobs()
    a = tab_evaluate.run(fake_lab, jobs, "tickets", ["zero-shot"], 4, None, "fixed", False, "page-a")
    b = tab_evaluate.run(fake_lab, jobs, "specialty", ["zero-shot"], 4, None, "fixed", False, "page-b")
    next(a), next(b)
    again = list(tab_evaluate.run(fake_lab, jobs, "specialty", ["zero-shot"], 4, None, "fixed", False, "page-a"))
    assert len(again) == 1 and "This page&#x27;s evaluation of tickets" in again[0][0]
    same_task = list(tab_evaluate.run(fake_lab, jobs, "tickets", ["zero-shot"], 4, None, "fixed", False, "page-c"))
    assert "Another page is evaluating tickets" in same_task[0][0]
    assert all(isinstance(x, dict) and set(x) <= {"__type__"} for x in again[0][1:])  # the board is left alone
    assert "no evaluation running" in tab_evaluate.cancel(jobs, "page-c")
    assert "Cancelling" in tab_evaluate.cancel(jobs, "page-a")
    assert "cancelled" in _last(a)[0]
    final_b = _last(b)[0]
    assert "4 of" in final_b and "complete as asked" in final_b and "cancelled" not in final_b
    assert not jobs.running


def test_a_stored_run_can_be_shown_again(fake_lab):
    _last(tab_evaluate.run(fake_lab, tab_evaluate.Jobs(), "specialty", ["zero-shot"], 2, None, "fixed", False))
    run_id = fake_lab.store.eval_runs(1)[0]["id"]
    out = tab_evaluate.show_run(fake_lab, run_id)
    assert f"Run #{run_id}" in out[0] and "specialty" in out[1] and len(out) == 7


# ---- History ------------------------------------------------------------------------------------


def test_history_filters_and_exports(fake_lab):
    fake_lab.answer("zero-shot", "What is the refund window?")
    fake_lab.answer("zero-shot", "Something else entirely")
    table, note = tab_history.show(fake_lab, "Generations", tab_history.ANY, "refund", 10)
    assert "1 row(s)" in note and "refund window" in str(table["value"])
    path = tab_history.export(fake_lab, "Generations", tab_history.ANY, "refund", 10, "json")["value"]
    rows = json.loads(open(path).read())
    assert len(rows) == 1 and rows[0]["arm"] == "zero-shot" and "messages_json" in rows[0]
    with open(tab_history.export(fake_lab, "Generations", "zero-shot", "", 10, "csv")["value"], newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 2 and table[0]["question"] == "Something else entirely"


def test_history_lists_eval_and_training_runs(fake_lab):
    _last(tab_evaluate.run(fake_lab, tab_evaluate.Jobs(), "tickets", ["zero-shot"], 1, None, "fixed", False))
    table, _ = tab_history.show(fake_lab, "Evaluation runs", tab_history.ANY, "tickets", 10)
    assert table["value"][0][2] == "tickets"
    assert tab_history.show(fake_lab, "Evaluation runs", tab_history.ANY, "tickets", 10)[0]["value"][0][6] == (
        "complete as asked"  # a one-example run: the words Evaluate and the Advisor use, not "partial"
    )
    run_id = fake_lab.store.insert(
        "training_runs", {"ts": "t", "adapter_name": "demo", "status": "running", "peak_mem": 3 * 2**30}
    )
    fake_lab.store.training_event(run_id, "stopped", 4)
    fake_lab.store.training_event(run_id, "resumed", 4)
    table, _ = tab_history.show(fake_lab, "Training runs", tab_history.ANY, "", 10)
    row = dict(zip(tab_history.TRAIN_COLUMNS, table["value"][0]))
    assert row["adapter_name"] == "demo" and row["peak memory"] == "3.0 GB"  # not 3221225472
    assert re.fullmatch(
        r"stopped at step 4 \(\d\d:\d\d:\d\d\), resumed at step 4 \(\d\d:\d\d:\d\d\)", row["stops and resumes"]
    )


def test_history_arm_filter_applies_only_where_it_can_and_says_when_it_hides_rows(fake_lab):
    _last(tab_evaluate.run(fake_lab, tab_evaluate.Jobs(), "tickets", ["zero-shot"], 1, None, "fixed", False))
    # an arm left over from the Generations view does not empty the training runs or app errors
    fake_lab.store.insert("training_runs", {"ts": "t", "adapter_name": "demo", "status": "running"})
    table, note = tab_history.show(fake_lab, "Training runs", "prompt", "", 10)
    assert table["value"][0][2] == "demo" and "1 row(s)" in note
    # where it does apply and hides every row, the note says so instead of "nothing logged yet"
    table, note = tab_history.show(fake_lab, "Evaluation runs", "rag", "", 10)
    assert "none match the filters (arm **rag**)" in note and "1 without them" in note
    assert "nothing logged yet" not in note
    assert "nothing logged yet" in tab_history.show(fake_lab, "Ratings", tab_history.ANY, "", 10)[1]
    # changing the view resets the filter, and hides it where it does not apply
    assert tab_history.arm_filter("App errors") == {
        "__type__": "update",
        "choices": [tab_history.ANY],
        "value": tab_history.ANY,
        "visible": False,
    }
    assert "prompt" not in tab_history.arm_filter("Evaluation runs")["choices"]
    assert tab_history.arm_filter("Generations")["visible"]


# ---- Knowledge ----------------------------------------------------------------------------------


@pytest.fixture
def corpus_lab(fake_lab):
    folder = fake_lab.home.corpora / "notes"
    folder.mkdir(parents=True)
    (folder / "a.md").write_text("# Refunds\nRefunds within 30 days.\n")
    return fake_lab


def test_knowledge_lists_corpora_and_their_index_state(corpus_lab):
    choices, table = tab_knowledge.setup(corpus_lab)
    assert ("notes", "notes") in choices["choices"]
    assert "notes" in table and "not indexed" in table


def test_knowledge_edits_documents_inside_the_corpus_only(corpus_lab):
    docs, _, _ = tab_knowledge.documents(corpus_lab, "notes")
    assert "a.md" in docs["choices"]
    name, text = tab_knowledge.open_doc(corpus_lab, "notes", "a.md")
    assert "30 days" in text
    msg, _, _ = tab_knowledge.save_doc(corpus_lab, "notes", "a.md", text.replace("30", "45"))
    assert "Saved" in msg and "45 days" in (corpus_lab.home.corpora / "notes" / "a.md").read_text()
    msg, _, _ = tab_knowledge.save_doc(corpus_lab, "notes", "sub/new.txt", "New fact.")
    assert "Added" in msg and (corpus_lab.home.corpora / "notes" / "sub" / "new.txt").exists()
    for bad, why in [
        ("../escape.md", "stay inside the corpus"),
        ("/etc/passwd.md", "stay inside the corpus"),
        ("notes.exe", "use one of"),
        (".hidden.md", "hidden files"),
    ]:
        with pytest.raises(gr.Error, match=why):
            tab_knowledge.save_doc(corpus_lab, "notes", bad, "x")


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_with_an_empty_home_editing_the_sample_corpus_edits_a_copy_in_the_home(fake_lab):
    from lab.retrieval.corpus import SAMPLE_CORPORA as REPO_CORPORA

    before = _tree(REPO_CORPORA)
    choices, _table = tab_knowledge.setup(fake_lab)
    sample = choices["value"]
    assert sample == str((REPO_CORPORA / "acme").resolve())  # the home has none: the checkout's is offered
    msg, picker, table = tab_knowledge.save_doc(fake_lab, sample, "policies/new.md", "# New\nA new policy.\n")
    copy = fake_lab.home.corpora / "acme"
    assert (copy / "policies" / "new.md").is_file() and str(copy) in msg
    assert picker["value"] == "acme" and ("acme", "acme") in picker["choices"]  # the picker moves to the copy
    assert (copy / "policies" / "warranty.md").is_file()  # the whole sample was copied first
    # the next edit, from the old choice too, lands in the same copy
    tab_knowledge.save_doc(fake_lab, sample, "policies/new.md", "# New\nChanged.\n")
    assert "Changed" in (copy / "policies" / "new.md").read_text()
    assert _tree(REPO_CORPORA) == before  # the checkout is untouched


def test_knowledge_creates_a_corpus_uploads_into_it_and_deletes_a_document(fake_lab, tmp_path):
    msg, picker, table = tab_knowledge.create(fake_lab, "handbook")
    assert "Created corpus `handbook`" in msg and picker["value"] == "handbook" and "handbook" in table
    with pytest.raises(gr.Error, match="already exists"):
        tab_knowledge.create(fake_lab, "handbook")
    with pytest.raises(gr.Error, match="letters, digits"):
        tab_knowledge.create(fake_lab, "../up")
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "leave.md").write_text("# Leave\n25 days a year.\n")
    (uploads / "tool.exe").write_bytes(b"MZ")
    msg, _picker, _table, docs = tab_knowledge.upload(
        fake_lab, "handbook", [str(uploads / "leave.md"), str(uploads / "tool.exe")], "hr"
    )
    assert "`hr/leave.md`" in msg and "tool.exe" in msg and "skipped" in msg
    folder = fake_lab.home.corpora / "handbook"
    assert (folder / "hr" / "leave.md").read_text().startswith("# Leave") and not (folder / "hr" / "tool.exe").exists()
    assert (
        "hr/leave.md" in docs["choices"]
        and "hr/leave.md" in tab_knowledge.documents(fake_lab, "handbook")[0]["choices"]
    )
    out = tab_knowledge.delete_doc(fake_lab, "handbook", "hr/leave.md")
    assert "Deleted `hr/leave.md`" in out[0] and not (folder / "hr").exists()  # its emptied folder too
    assert out[3]["choices"] == [tab_knowledge.NEW_DOC]
    with pytest.raises(gr.Error, match="no such document"):
        tab_knowledge.delete_doc(fake_lab, "handbook", "hr/leave.md")
    with pytest.raises(gr.Error, match="inside the corpus"):
        tab_knowledge.delete_doc(fake_lab, "handbook", "../../lab.db.md")


def test_a_home_corpus_that_links_outside_the_home_is_never_written(fake_lab, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere")  # fake_lab's home is tmp_path: this is outside it
    (outside / "a.md").write_text("# A\n")
    fake_lab.home.corpora.mkdir(exist_ok=True)
    (fake_lab.home.corpora / "linked").symlink_to(outside)
    with pytest.raises(gr.Error, match="outside the lab home"):
        tab_knowledge.save_doc(fake_lab, "linked", "b.md", "x")
    assert sorted(p.name for p in outside.iterdir()) == ["a.md"]


def test_probe_info_names_the_edit(fake_lab):
    assert "acme-facts" in tab_knowledge.probe_tasks(fake_lab)
    text = tab_knowledge.probe_info(fake_lab, "acme-facts")
    assert "Question" in text and "→" in text


# ---- Advisor ------------------------------------------------------------------------------------


def test_advisor_from_the_questionnaire_names_the_next_experiment(fake_lab):
    out = tab_advisor.advise(fake_lab, 0, True, tab_advisor.UNKNOWN, True, False, 40, False, False)
    assert "Recommendation: RAG" in out and "provisional" in out and "Next" in out


def test_advisor_from_an_eval_run_shows_its_numbers(fake_lab):
    _last(
        tab_evaluate.run(fake_lab, tab_evaluate.Jobs(), "tickets", ["zero-shot", "few-shot"], 2, None, "fixed", False)
    )
    run_id = fake_lab.store.eval_runs(1)[0]["id"]
    out = tab_advisor.advise(fake_lab, run_id, True, "no", False, True, 300, False, False)
    assert f"eval run {run_id}" in out and "The numbers" in out and "quality [95% CI]" in out
    assert "evidence too thin" in out and "The evidence is too thin: only 2 examples per arm" in out


# ---- Advisor: Distill ---------------------------------------------------------------------------


@pytest.fixture
def distill_lab(fake_lab, monkeypatch):
    """The fake lab answering every question "Urologist" (a valid label of `specialty`), with
    `lab.distill.run._train` writing an adapter folder whose manifest matches its config (as
    test_curve's `curve_lab`); `fake_lab.gate`, when set, holds the trainer until Cancel."""
    import threading

    from lab import ladder
    from lab.app import distill_block
    from lab.distill import run as distill_run
    from lab.tuning.adapters import find_adapter

    def fake_train(lab, cfg, cancel, progress, say):
        if lab.gate is not None:
            lab.gate.set()  # training has started: the test cancels now
            cancel.wait(30)
            return  # stopped: no adapter, as an interrupted run leaves a checkpoint only
        write_fake_adapter(lab, cfg)

    monkeypatch.setattr(distill_run, "_train", fake_train)
    monkeypatch.setattr(distill_block, "_DISTILLS", {})  # no thread of another test's lab
    monkeypatch.setattr(ladder, "resolve_adapter", lambda lab, name, model=None: find_adapter(lab.home.adapters, name))
    fake_lab.fake.default = "Urologist"
    fake_lab.gate = None
    fake_lab.threading = threading
    return fake_lab


DISTILL_FORM = ("specialty", "default:best-prompt", "fake", 6, 3, 0)  # task, teacher, student, inputs, limit, margin


def _distill_finish(lab, form=DISTILL_FORM):
    from lab.app import distill_block

    distill_block.CONFIRM_ABOVE_S = 0  # any estimate asks for a second press
    try:
        msg, key, _timer = distill_block.distill_run(lab, *form, "")
        running = distill_block._DISTILLS.get("specialty")
        assert "press **Run** again" in msg and key and not (running and running[0].is_alive())
        msg, key, _timer = distill_block.distill_run(lab, *form, key)
        assert msg.startswith("Started") and key == ""
    finally:
        distill_block.CONFIRM_ABOVE_S = 300
    thread, _cancel = distill_block._DISTILLS["specialty"]
    thread.join(120)
    assert not thread.is_alive()


def test_app_distill_plans_runs_and_shows_the_ledger(distill_lab):
    from lab.app import distill_block

    plan = distill_block.distill_plan(distill_lab, *DISTILL_FORM)
    assert plan.startswith("**About") and "6 inputs for the teacher" in plan
    assert "adapter specialty-distilled" in plan and "as specialty-distilled-gold" in plan and "5 points" in plan
    _distill_finish(distill_lab)
    bar, ledger, timer = distill_block.distill_watch(distill_lab, "specialty")
    assert "specialty-distilled: finished" in bar and "width:100.0%" in bar
    sentence = distill_lab.store.latest_distill("specialty")
    stored = json.loads(sentence["ledger_json"])["sentence"]
    assert ledger.startswith(f"**{stored}**")
    assert (
        "| teacher | fake | few-shot" in ledger
        and "| student, distilled | fake | adapter specialty-distilled |" in ledger
    )
    assert "| student, tuned on the gold answers |" in ledger and "label_accuracy [95% CI]" in ledger
    assert "**One-off costs**" in ledger and "6 inputs answered by the teacher" in ledger
    assert "**Compared**" in ledger and "cheaper than the teacher" in ledger
    assert "`lab" not in ledger and not re.search(r" --[a-z]", ledger)  # the page's words, not the command line's
    assert "**Climb the ladder** below measures the best" in ledger  # no prompt sweep measured yet
    assert "No distillation of this task is running" in distill_block.distill_cancel(distill_lab, "specialty")
    assert not timer.active


def test_app_distill_cancel_stops_it_and_run_again_resumes(distill_lab):
    from lab.app import distill_block

    distill_lab.gate = gate = distill_lab.threading.Event()
    msg, _key, _timer = distill_block.distill_run(distill_lab, *DISTILL_FORM, "")
    assert msg.startswith("Started")  # well under CONFIRM_ABOVE_S: no second press
    assert gate.wait(60)  # the teacher has labelled the inputs; the student is training
    assert (
        "A distillation of this task is already running" in distill_block.distill_run(distill_lab, *DISTILL_FORM, "")[0]
    )
    bar, _ledger, timer = distill_block.distill_watch(distill_lab, "specialty")
    assert "running, step 2 of 7: the student (fake) learns" in bar and timer.active
    assert distill_block.distill_cancel(distill_lab, "specialty").startswith("Stopping")
    thread, _cancel = distill_block._DISTILLS["specialty"]
    thread.join(60)
    assert not thread.is_alive()
    bar, ledger, timer = distill_block.distill_watch(distill_lab, "specialty")
    assert "stopped: Run continues where it stopped" in bar and ledger == "" and not timer.active
    assert distill_lab.store.latest_distill("specialty", finished=False)["status"] == "interrupted"
    asked = len(distill_lab.fake.calls)  # the teacher has answered the 6 inputs
    distill_lab.gate = None
    _distill_finish(distill_lab)  # resumes the same distillation: the teacher's labels are kept
    row = distill_lab.store.latest_distill("specialty")
    assert row["status"] == "finished" and row["id"] == distill_lab.store.latest_distill("specialty", False)["id"]
    assert len(distill_lab.fake.calls) - asked == 4 * 3  # only the ledger's 4 arms on the 3 held-out examples
    assert "specialty-distilled: finished" in distill_block.distill_watch(distill_lab, "specialty")[0]


def test_app_distill_says_what_is_wrong_with_a_teacher_instead_of_a_traceback(distill_lab):
    from lab.app import distill_block

    form = list(DISTILL_FORM)
    form[1] = "default:few-shots"
    msg = distill_block.distill_plan(distill_lab, *form)
    assert msg.startswith("**Cannot distil as asked:**") and "unknown way of answering 'few-shots'" in msg
    assert "Traceback" not in msg
    msg, key, timer = distill_block.distill_run(distill_lab, *form, "")
    assert "unknown way of answering" in msg and key == "" and not timer.active
    assert (
        distill_block._DISTILLS.get("specialty") is None
        and distill_lab.store.latest_distill("specialty", False) is None
    )
    form[1] = "no-such-model:zero-shot"
    msg = distill_block.distill_plan(distill_lab, *form)
    assert "no model 'no-such-model'" in msg and "the **Base model** list" in msg and "`lab" not in msg
    assert distill_block.distill_watch(distill_lab, "specialty")[0] == "No distillation of this task yet."
    said = tab_advisor.app_words("distil it: `lab distill specialty --teacher fake:best-prompt`")
    assert said == "distil it: **Distill** below (teacher fake:best-prompt)"


# ---- Advisor: Export -----------------------------------------------------------------------------


def test_the_advisor_tab_has_the_export_controls(fake_lab):
    from lab.app import export_block
    from lab.export import RUNGS

    demo = build_app(fake_lab)
    ids = {b.elem_id for b in demo.blocks.values()}
    assert {"export-task", "export-rung", "export-folder", "export-check", "export-n", "export-go"} <= ids
    assert [v for _, v in export_block.RUNG_CHOICES] == list(RUNGS)  # every rung the engine takes, in words
    by_id = {b.elem_id: b for b in demo.blocks.values() if b.elem_id}
    assert by_id["export-rung"].value == "auto" and by_id["export-check"].value is True
    assert by_id["export-n"].value == 20
    assert export_block.task_of_run(fake_lab, 0) == gr.update() == export_block.task_of_run(fake_lab, "#x")


def test_app_export_shows_an_export_error_as_a_message_and_an_export_with_its_check(fake_lab, monkeypatch, tmp_path):
    from types import SimpleNamespace

    from lab.app import export_block
    from lab.export import ExportError

    def refuse(lab, task, rung="auto", to=None, copy_models=False):
        raise ExportError(
            f"eval run 3 of '{task}' has no tune answers: run `lab eval {task} --arms tune` first "
            "(or choose --rung auto)"
        )

    import lab.export as export

    monkeypatch.setattr(export, "export_rung", refuse)
    words = tab_advisor.app_words
    out = _last(export_block.export_run(fake_lab, words, "tickets", "tune", "", True, 20))
    assert out.startswith("**Cannot export as asked:**") and "has no tune answers" in out
    assert "use the **Evaluate** tab (arms tune) first" in out and "choose the recommended rung" in out
    assert "`lab" not in out and " --" not in out and "Traceback" not in out
    assert _last(export_block.export_run(fake_lab, words, "", "auto", "", True, 20)) == "Pick a task."

    asked = {}
    folder = tmp_path / "ship"

    def fake_export(lab, task, rung="auto", to=None, copy_models=False):
        asked.update(task=task, rung=rung, to=to)
        pick = SimpleNamespace(rung="few-shot", name="few-shot (fixed, k=4)", eval_run_id=7)
        return SimpleNamespace(
            folder=to,
            pick=pick,
            files={"Modelfile": "a" * 64, "prompt.json": "b" * 64, "export.json": "c" * 64},
            notes=["the advice's pick does not meet the target: run `lab climb tickets` to measure more"],
            commands={
                "ollama": f"ollama create tickets -f {to}/Modelfile",
                "llama-server": "llama-server -m /models/base.gguf --port 8080",
                "verify": f"lab export tickets --rung few-shot --to {to} --verify",
            },
        )

    def fake_verify(lab, folder, n=20, progress=None):
        asked.update(verified=folder, n=n)
        return SimpleNamespace(
            ok=False,
            lines=lambda: [
                f"does NOT reproduce the evaluation: {n - 1} of {n} answers identical to the evaluated ones",
                "score on these 5: evaluated 0.800, exported 0.600",
            ],
        )

    monkeypatch.setattr(export, "export_rung", fake_export)
    monkeypatch.setattr(export, "verify_export", fake_verify)
    frames = list(export_block.export_run(fake_lab, words, "tickets", "auto", str(folder), True, 5))
    out = frames[-1]
    assert asked == {"task": "tickets", "rung": "auto", "to": folder, "verified": folder, "n": 5}
    assert frames[0].startswith("Exporting tickets")
    assert out.startswith("### Exported: few-shot (fixed, k=4)") and f"`{folder}`" in out and "eval run #7" in out
    assert "- `Modelfile` (sha256 `aaaaaaaaaaaa…`)" in out and "`export.json`" in out
    assert "**Climb the ladder** below" in out  # the note in the page's words
    assert f"```sh\nollama create tickets -f {folder}/Modelfile\n```" in out and "llama-server -m" in out
    assert "vLLM" not in out and "--verify" not in out and "`lab" not in out  # no vLLM line here; no CLI line
    assert "**Check: ✗ does NOT reproduce the evaluation: 4 of 5 answers identical" in out
    assert "- score on these 5: evaluated 0.800, exported 0.600" in out

    out = _last(export_block.export_run(fake_lab, words, "tickets", "few-shot", "ship", False, 5))
    assert asked["to"] == fake_lab.home.exports / "ship" and "Check" not in out  # relative: in the home's exports


# ---- Train --------------------------------------------------------------------------------------


def test_train_setup_defaults_to_the_demo_dataset(fake_lab):
    dataset, name, instruction, base, note, run, timer, job = tab_train.setup(fake_lab)
    assert dataset["value"].endswith("tickets/train.jsonl") and name["value"] == "tickets"
    assert re.search(r"\*\*(cpu|cuda)\*\*", note)  # the defaults of this machine's device
    name, instruction = tab_train.dataset_changed(fake_lab, dataset["value"])
    assert name["value"] == "tickets" and "JSON" in instruction["value"]


def test_starting_training_writes_a_config_the_trainer_reads(fake_lab, monkeypatch):
    from lab.tuning.config import make_config

    started = {}

    class FakePopen:
        pid = 4242

        def __init__(self, cmd, **kw):
            started.update(cmd=cmd, **kw)

        def poll(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    values = [
        bridge.train_datasets()[-1][1],
        None,
        "tickets",
        "fake",
        'Say "JSON"\nonly. 🙂',
        "auto",
        8,
        16,
        1e-3,
        1.0,
        5,
        4,
        1,
        256,
        "q_proj,v_proj",
        False,
    ]
    msg, runs, timer, job, progress, resume, _, report = tab_train.start(fake_lab, None, True, False, *values)
    assert report == ""  # an earlier validation's report goes: it was about the form before this run
    assert "process 4242" in msg and timer.active
    assert job["pid"] == 4242 and "loading the model" in progress  # the page follows it from now on
    assert "5 steps" in msg and "steps is very few" in msg  # said before the run
    cmd = started["cmd"]
    assert cmd[:3] == [sys.executable, "-m", "lab.tuning"] and "--overwrite" in cmd
    assert started["start_new_session"]  # closing the page or stopping the app leaves it running
    config_file = cmd[cmd.index("--config") + 1]
    cfg = make_config(config_file, **json.loads(open(config_file, encoding="utf-8").read()))
    assert cfg.name == "tickets" and cfg.max_steps == 5 and cfg.instruction == 'Say "JSON"\nonly. 🙂'
    assert cfg.target_modules == ["q_proj", "v_proj"]


def test_a_bad_hyperparameter_is_refused_before_any_process_starts(fake_lab, monkeypatch):
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("must not start"))
    values = [
        bridge.train_datasets()[-1][1],
        None,
        "bad name!",
        "fake",
        "",
        "auto",
        8,
        16,
        1e-3,
        1.0,
        5,
        4,
        1,
        256,
        "q_proj",
        False,
    ]
    msg, *_ = tab_train.start(fake_lab, None, True, False, *values)  # said in place, in the form's words
    assert msg.startswith("⚠️ **Adapter name**:") and "field" not in msg
    values[10] = -3
    values[2] = "ok"
    msg, *_ = tab_train.start(fake_lab, None, True, False, *values)
    assert msg.startswith("⚠️ **max steps**: Input should be greater than or equal to 1 (0 trains by epochs)")
    assert "**max steps**" in tab_train.validate(fake_lab, *values) and "dataset" not in tab_train.validate(
        fake_lab, *values
    )
    with pytest.raises(TrainConfigError, match="field 'max_steps'"):  # the engine's own words name the field
        bridge.train_config(tab_train._config(fake_lab, *values))


def test_start_with_a_checkpoint_offers_the_resume_button_and_resume_passes_it_on(fake_lab, monkeypatch):
    from lab.models import sha256_of
    from lab.tuning.run import checkpoint_dir

    started = []

    class FakePopen:
        pid = 4243

        def __init__(self, cmd, **kw):
            started.append(cmd)

        def poll(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    values = [
        bridge.train_datasets()[-1][1],
        None,
        "tickets",
        "fake",
        "",
        "auto",
        8,
        16,
        1e-3,
        1.0,
        5,
        4,
        1,
        256,
        "q_proj",
        False,
    ]
    assert tab_train.resume_offer(fake_lab, "tickets")[0] == gr.update(visible=False)  # no checkpoint yet
    cfg = bridge.train_config(tab_train._config(fake_lab, *values))
    saved = cfg.to_json() | {"data": str(cfg.data.resolve())}
    ckpt = checkpoint_dir(fake_lab, "tickets")
    ckpt.mkdir(parents=True)
    (ckpt / "state.json").write_text(json.dumps({"step": 4, "config": saved, "dataset_sha": sha256_of(cfg.data)}))
    button, note = tab_train.resume_offer(fake_lab, "tickets")
    assert button == gr.update(value="Resume from step 4", visible=True) and note == ""
    job = {"pid": 1, "name": "earlier"}
    msg, runs, timer, kept, progress, button, note, report = tab_train.start(fake_lab, job, True, False, *values)
    assert "Resume from step 4**" in msg and msg.startswith("⚠️") and kept is job  # said in place: no error
    assert button == gr.update(value="Resume from step 4", visible=True)
    assert started == [] and (ckpt / "state.json").exists()  # nothing started, nothing deleted
    msg, *_ = tab_train.resume(fake_lab, None, True, "tickets", 6)
    assert "Resumed" in msg and "--resume" in started[-1] and "--restart" not in started[-1]
    resumed = json.loads(open(started[-1][started[-1].index("--config") + 1], encoding="utf-8").read())
    assert resumed["max_steps"] == 6 and resumed["target_modules"] == ["q_proj"]  # its own settings, longer
    tab_train.start(fake_lab, None, True, True, *values)  # "start over" ticked
    assert "--restart" in started[-1] and "--resume" not in started[-1]
    (ckpt / "state.json").write_text(json.dumps({"step": 4, "config": saved, "dataset_sha": "other"}))
    button, note = tab_train.resume_offer(fake_lab, "tickets")
    assert not button["visible"] and "data changed" in note


def test_the_train_tab_polls_the_curve_and_eta_from_sqlite(fake_lab):
    run_id = fake_lab.store.insert(
        "training_runs", {"ts": "t", "adapter_name": "demo", "status": "running", "device": "cpu", "total_steps": 10}
    )
    for step, loss in enumerate([2.0, 1.5, 1.1], 1):
        fake_lab.store.upsert(
            "training_steps",
            {"run_id": run_id, "step": step, "loss": loss, "tokens_per_s": 300.0, "eta_s": 7.0 * (10 - step)},
            pk=("run_id", "step"),
        )
    run, plot, status, tail, timer, resume, _, _ = tab_train.poll(fake_lab, run_id, None, "demo")
    assert "step 3 of 10" in status and "loss 1.100" in status and "ETA" in status
    assert plot is not None and timer.active
    fake_lab.store.update("training_runs", run_id, {"status": "done", "wall_s": 30.0})
    _, _, status, _, timer, *_ = tab_train.poll(fake_lab, run_id, None, "demo")
    assert not timer.active  # a finished run stops the polling
    assert "steps is very few" in status  # 10 steps: said after the run too


def test_stop_sends_sigterm_to_the_training_process(fake_lab):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run_id = fake_lab.store.insert(
            "training_runs",
            {
                "ts": "t",
                "adapter_name": "demo",
                "status": "running",
                "pid": proc.pid,
                "pid_started": process_started(proc.pid),
            },
        )
        assert "Stopping" in tab_train.stop(fake_lab, None, run_id)
        assert proc.wait(timeout=10) == -signal.SIGTERM
    finally:
        proc.kill()


def test_the_train_tab_shows_a_run_killed_from_outside_as_died(fake_lab):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    run_id = fake_lab.store.insert(
        "training_runs",
        {
            "ts": "t",
            "adapter_name": "demo",
            "status": "running",
            "device": "cpu",
            "total_steps": 10,
            "pid": proc.pid,
            "pid_started": process_started(proc.pid),
        },
    )
    fake_lab.store.upsert("training_steps", {"run_id": run_id, "step": 4, "loss": 1.0}, pk=("run_id", "step"))
    timer = tab_train.poll(fake_lab, run_id, None, "demo")[4]
    assert timer.active  # alive: still polled
    proc.kill()
    proc.wait(timeout=10)
    _, _, status, _, timer, *_ = tab_train.poll(fake_lab, run_id, None, "demo")
    assert "died" in status and "last step 4" in status and "no checkpoint" in status and not timer.active


def test_the_demo_offer_gives_an_estimate(fake_lab):
    text = bridge.demo_training_offer(fake_lab)
    assert "tickets" in text and "min" in text and "background" in text and "first guess" in text
    cfg = bridge.demo_config(fake_lab)
    run_id = fake_lab.store.insert(
        "training_runs",
        {
            "ts": "t",
            "adapter_name": "x",
            "status": "done",
            "device": "cpu",
            "dataset_path": cfg["data"],
            "config_json": json.dumps(
                {"batch_size": 4, "grad_accum": 1, "max_seq_len": cfg["max_seq_len"], "instruction": cfg["instruction"]}
            ),
        },
    )
    for step in range(1, 5):  # a minute a step, measured here
        fake_lab.store.upsert(
            "training_steps",
            {"run_id": run_id, "step": step, "ts": f"2026-01-01T00:0{step}:00+00:00"},
            pk=("run_id", "step"),
        )
    text = bridge.demo_training_offer(fake_lab)
    assert "3 steps measured on this machine, validation included" in text
    assert "about **61 min**" in text  # 60 steps x 60 s + a minute to load


def test_uploading_selects_the_upload_and_clears_name_instruction_and_replace(fake_lab):
    dataset, name, instruction, replace, note = tab_train.upload_changed("/tmp/broken.jsonl")
    assert dataset["value"] == tab_train.UPLOAD and name["value"] == "" and instruction["value"] == ""
    assert replace["value"] is False and "name the adapter" in note
    assert tab_train.upload_changed(None)[0] == gr.update()  # cleared: nothing changes
    name, instruction = tab_train.dataset_changed(fake_lab, tab_train.UPLOAD)
    assert name["value"] == "" and instruction["value"] == ""


def test_validate_shows_a_broken_upload_in_the_report_not_the_built_in_set(fake_lab, tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"input": "a", "output": "b"}\n{"input": "c", oops}\n')
    values = [tab_train.UPLOAD, str(broken), "", None, "", "auto", 8, 16, 1e-3, 1.0, 5, 4, 1, 256, "q_proj", True]
    report = tab_train.validate(fake_lab, *values)
    assert "cannot be trained on" in report and "broken.jsonl:2" in report


def test_start_never_replaces_an_adapter_unless_ticked(fake_lab, monkeypatch):
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("must not start"))
    (fake_lab.home.adapters / "tickets").mkdir(parents=True)
    values = [
        bridge.train_datasets()[-1][1],
        None,
        "tickets",
        "fake",
        "",
        "auto",
        8,
        16,
        1e-3,
        1.0,
        5,
        4,
        1,
        256,
        "q_proj",
        False,
    ]
    msg, *_ = tab_train.start(fake_lab, None, False, False, *values)
    assert re.search("already exists.*replace", msg)


def _sleeping_job(fake_lab, name="demo") -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    return proc, {"pid": proc.pid, "pid_started": process_started(proc.pid), "name": name, "log": None}


def test_the_page_follows_its_job_while_the_model_loads_and_stop_stops_it(fake_lab):
    old = fake_lab.store.insert("training_runs", {"ts": "t", "adapter_name": "old", "status": "done"})
    proc, job = _sleeping_job(fake_lab)
    try:
        run, plot, status, _, timer, resume, _, _ = tab_train.poll(fake_lab, old, job, "demo")
        assert "loading the model" in status and timer.active and plot is None  # not the old run
        assert "while it was loading the model" in tab_train.stop(fake_lab, job, None)  # not 'pick the run'
        assert proc.wait(timeout=10) == -signal.SIGTERM
        _, _, status, _, timer, *_ = tab_train.poll(fake_lab, None, job, "demo")
        assert "ended before its first step" in status and not timer.active
    finally:
        proc.kill()


def test_the_page_follows_its_job_into_its_run_row(fake_lab):
    proc, job = _sleeping_job(fake_lab)
    try:
        run_id = fake_lab.store.insert(
            "training_runs",
            {
                "ts": "t",
                "adapter_name": "demo",
                "status": "running",
                "total_steps": 50,
                "pid": proc.pid,
                "pid_started": job["pid_started"],
            },
        )
        run, _, status, _, timer, *_ = tab_train.poll(fake_lab, None, job, "demo")
        assert run["value"] == run_id and f"#{run_id} demo" in status and timer.active
        assert "Stopping run" in tab_train.stop(fake_lab, job, run_id)
        assert proc.wait(timeout=10) == -signal.SIGTERM
    finally:
        proc.kill()


def test_a_reloaded_page_follows_a_trainer_still_loading_its_model(fake_lab):
    from lab.tuning import trainer_lock

    fake_lab.store.insert("training_runs", {"ts": "t", "adapter_name": "old", "status": "done"})
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(fake_lab.home.root), "demo"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        *_, run, timer, job = tab_train.setup(fake_lab)
        assert job["pid"] == holder.pid and job["name"] == "demo" and timer.active and run["value"] is None
        assert trainer_lock.holder(fake_lab, "demo")["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert trainer_lock.holder(fake_lab, "demo") is None  # killed: the lock went with it


HOLD_LOCK = """
import sys, time
from lab.engine import Lab
from lab.tuning import trainer_lock
lock = trainer_lock.acquire(Lab(home=sys.argv[1]), sys.argv[2], log="demo.log")
print("locked", flush=True)
time.sleep(60)
"""


def test_the_eta_counts_down_and_says_when_the_trainer_is_finishing():
    import datetime

    ts = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    last = {"step": 5, "eta_s": 60.0, "ts": ts.isoformat()}
    assert tab_train.eta_text(last, 10, now=ts.timestamp() + 15) == "ETA **45.0 s** (validation included)"
    assert "any moment" in tab_train.eta_text(last, 10, now=ts.timestamp() + 120)
    assert "finishing" in tab_train.eta_text(dict(last, step=10), 10, now=ts.timestamp())


# ---- serving ------------------------------------------------------------------------------------


def test_serving_beyond_loopback_needs_a_login(tmp_path):
    check_host("127.0.0.1", None)
    check_host("localhost", None)
    check_host("::1", None)
    with pytest.raises(ServeError, match="--auth"):
        check_host("0.0.0.0", None)
    check_host("0.0.0.0", [("a", "b")])
    f = tmp_path / "users"
    f.write_text("# team\nann:s3cret\nbob:pa:ss\n")
    assert read_auth(None, str(f)) == [("ann", "s3cret"), ("bob", "pa:ss")]
    assert read_auth("me:pw") == [("me", "pw")]
    f.write_text("ann\n")
    with pytest.raises(ServeError, match=r"users:1: expected user:password"):
        read_auth(None, str(f))


def test_lab_serve_refuses_a_public_interface_without_auth(tmp_path):
    from click.testing import CliRunner

    from lab.cli import cli

    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "serve", "--host", "0.0.0.0"], obj={})
    assert result.exit_code == 2 and "without a login" in result.output


def test_reopening_a_tab_refreshes_lists_but_keeps_the_users_choices(fake_lab):
    task, model, corpus, adapter, note, button = tab_compare.refresh(fake_lab, None)
    assert "value" not in task and "value" not in corpus and "tickets" in task["choices"]
    task, adapters, runs = tab_evaluate.refresh(fake_lab)
    assert "value" not in task and "value" not in runs


@pytest.mark.integration
def test_validate_shows_the_dataset_report_and_the_gpu_memory_plan(shared_home):
    from lab.engine import Lab

    lab = Lab(home=shared_home)
    values = [
        bridge.train_datasets()[-1][1],
        None,
        "tickets",
        lab.config.default_model,
        "",
        "auto",
        8,
        16,
        1e-3,
        1.0,
        5,
        4,
        1,
        256,
        "q_proj,v_proj",
        False,
    ]
    text = tab_train.validate(lab, *values)
    assert "examples" in text and "**On a GPU** (none here)" in text and "VRAM estimate: llama" in text
    assert "vram_gb" not in text  # no setting the form does not have


# ---- New task -----------------------------------------------------------------------------------


def test_new_task_tab_previews_plans_and_creates_a_task_the_pickers_list(fake_lab, tmp_path):
    from lab.app import tab_tasks

    data = tmp_path / "Support Mail.csv"
    rows = [(f"mail {i}: my {device} is broken again", device) for i in range(18) for device in ("printer", "screen")]
    with data.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text", "label"), *rows])
    preview, inp, out, name = tab_tasks.load_file(str(data))
    assert preview["headers"] == ["text", "label"] and len(preview["value"]) == 8
    assert (inp["value"], out["value"], name["value"]) == ("text", "label", "support-mail")
    plan, instruction, rubric = tab_tasks.show_plan(str(data), "mail", "text", "label", "infer", "", 0)
    assert "Format: label" in plan and "printer, screen" in instruction["value"]
    assert rubric["visible"] is False and "value" not in rubric  # a label task has no rubric box
    wrong, _, _ = tab_tasks.show_plan(str(data), "mail", "text", "text", "infer", "", 0)
    assert "both 'text'" in wrong  # a bad pick is shown in place, not raised
    assert "mail" not in bridge.task_names(fake_lab)
    done = tab_tasks.create(fake_lab, str(data), "mail", "text", "label", "infer", "6", 0, "Say the part.", False)
    assert "Created task mail" in done and "eval 6" in done
    assert bridge.task(fake_lab, "mail").instruction == "Say the part."
    assert "mail" in bridge.task_names(fake_lab)
    assert "mail" in tab_compare.refresh(fake_lab, None)[0]["choices"]  # the picker lists it when reopened
    assert any(path.endswith("mail/train.jsonl") for _, path, _ in bridge.train_datasets(fake_lab))
    with pytest.raises(Exception, match="already exists"):
        tab_tasks.create(fake_lab, str(data), "mail", "text", "label", "infer", "", 0, "", False)


def test_the_train_tab_trains_from_an_uploaded_csv(fake_lab, monkeypatch, tmp_path):
    """A CSV upload becomes the input/output JSONL the trainer reads (same reader as `lab task new`)."""
    started = {}

    class FakePopen:
        pid = 4343

        def __init__(self, cmd, **kw):
            started.update(cmd=cmd)

        def poll(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    csv_file = tmp_path / "mail.csv"
    csv_file.write_text("text,label\n" + "".join(f"message {i},{'a' if i % 2 else 'b'}\n" for i in range(30)))
    values = [
        tab_train.UPLOAD,
        str(csv_file),
        "mail",
        "fake",
        "",
        "lora",
        8,
        16,
        1e-3,
        1.0,
        5,
        4,
        1,
        256,
        "q_proj,v_proj",
        False,
    ]
    tab_train.start(fake_lab, None, False, False, *values)
    cmd = started["cmd"]
    config = json.loads(open(cmd[cmd.index("--config") + 1], encoding="utf-8").read())
    rows = [json.loads(line) for line in open(config["data"], encoding="utf-8")]
    assert config["data"].endswith("mail.jsonl") and len(rows) == 30
    assert rows[0] == {"input": "message 0", "output": "b"}


class _UntilCancelled(FakeBackend):
    """Streams until its cancel event is set (a long answer holding the one model lock)."""

    def generate(self, messages, options=None, on_text=None, adapter=None, adapter_sha=None, cancel=None):
        self.cancel = cancel
        deadline = time.monotonic() + 10
        while not cancel.is_set() and time.monotonic() < deadline:
            on_text("more ")
            time.sleep(0.02)
        return super().generate(messages, options, adapter=adapter, cancel=cancel)


def test_closing_the_compare_stream_cancels_the_generation_and_logs_it(tmp_path):
    from lab.engine import Lab

    lab = Lab(home=tmp_path, default_model="fake")
    lab.add_backend(backend := _UntilCancelled(model_id="fake"))
    outs = tab_compare.answer(
        lab, "My order never arrived", "tickets", "fake", ["zero-shot", "few-shot"], None, None, 512
    )
    while "more" not in _column(next(outs), "zero-shot")[0]:
        pass
    t0 = time.monotonic()
    outs.close()  # what Gradio does when the page closes or Stop is pressed
    assert backend.cancel.wait(1)
    deadline = time.monotonic() + 2
    while not (rows := lab.store.recent_generations(5)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert time.monotonic() - t0 < 2 and [r["finish_reason"] for r in rows] == ["cancelled"]
    assert len(rows) == 1  # the few-shot arm, not yet asked, never ran
    lab.store.close()


def test_a_progress_bar_counts_whole_steps_and_draws_the_fraction():
    """issue 24: the demo's bar read "1.1111111111111112 / 10"."""
    bar = _ui.progress_bar(1 + 1 / 9, 10, "training")
    assert "training 1 / 10" in bar and "width:11.1%" in bar


def test_new_task_a_malformed_upload_says_one_thing_naming_the_users_file(fake_lab, tmp_path):
    """Issue 24 item 3: a ragged CSV uploaded (Gradio's copy: /tmp/gradio/<hash>/banking.csv) after a
    good one clears the preview, the pickers and the instruction without raising; the plan says
    once what is wrong, naming banking.csv and its line (not the temporary folder); Create says
    the same, with no Gradio validation text."""
    from lab.app import tab_tasks

    good = tmp_path / "gradio" / "1111aaaa" / "printers.csv"
    good.parent.mkdir(parents=True)
    good.write_text("text,label\n" + "".join(f"my {d} {i} is broken,{d}\n" for i in range(10) for d in ("pc", "tv")))
    assert tab_tasks.load_file(str(good))[1]["value"] == "text"
    upload = tmp_path / "gradio" / "2222bbbb" / "banking.csv"
    upload.parent.mkdir(parents=True)
    upload.write_text("text,label\n" + "card declined,cards\n" * 5 + "Hello, my transfer is late,transfers\n")
    preview, inp, out, name = tab_tasks.load_file(str(upload))  # no exception: no error badge on every field
    assert preview["value"] == [] and name["value"] == "banking"
    for picker in (inp, out):  # cleared together: no 'not in the list of choices' on the next event
        assert picker["choices"] == [] and picker["value"] is None
    plan, instruction, _ = tab_tasks.show_plan(str(upload), "banking", None, None, "infer", "", 0)
    assert "banking.csv, line 7: 3 fields, but the header has 2" in plan and "2222bbbb" not in plan
    assert plan.count("banking.csv") == 1 and instruction["value"] == ""  # the previous file's is gone
    with pytest.raises(gr.Error) as e:
        _ui.wire(fake_lab, "new task", tab_tasks.create, fake_lab)(
            str(upload), "banking", None, None, "infer", "", 0, "", False
        )
    assert "banking.csv, line 7: 3 fields" in e.value.message and "2222bbbb" not in e.value.message
    assert "upload it again" in e.value.message
    assert not (fake_lab.home.root / "tasks" / "banking").exists()


def test_new_task_words_its_errors_in_its_own_controls(fake_lab, tmp_path):
    """Issue 24 item 5: the tab's fixes name its controls (the Replace box, the column pickers, Held
    out), never the command line's --force, --input/--output or --eval-size."""
    from lab.app import tab_tasks

    data = tmp_path / "gradio" / "3333cccc" / "mail.csv"
    data.parent.mkdir(parents=True)
    data.write_text("text,label\n" + "".join(f"mail {i} about the {d},{d}\n" for i in range(10) for d in ("pc", "tv")))
    args = ("text", "label", "infer", "", 0, "", False)
    assert "Created task mail" in tab_tasks.create(fake_lab, str(data), "mail", *args)
    with pytest.raises(gr.Error) as e:
        _ui.wire(fake_lab, "new task", tab_tasks.create, fake_lab)(str(data), "mail", *args)
    assert (
        "tick <strong>Replace a task of the same name</strong>" in e.value.message and "--force" not in e.value.message
    )
    assert "Created task mail" in tab_tasks.create(fake_lab, str(data), "mail", *args[:-1], True)
    odd = data.with_name("odd.csv")
    odd.write_text("body,part\nx,a\ny,b\nz,a\n")
    plan, _, _ = tab_tasks.show_plan(str(odd), "odd", None, None, "infer", "", 0)
    assert "odd.csv: which columns" in plan and "**Input column**" in plan and "--input" not in plan
    assert "3333cccc" not in plan
    plan, _, _ = tab_tasks.show_plan(str(data), "mail", "text", "label", "infer", "1.5", 0)
    assert "**Held out** 1.5" in plan and "--eval-size" not in plan


def test_new_task_clearing_the_file_clears_both_pickers_as_gradio_applies_them(tmp_path):
    """Gradio pops "value" out of an update dict as it applies it: one dict shared by both pickers
    left the output picker's old value on the page ("Value: label is not in the list of choices: []"
    on the next event, issue 24 item 3). Applied one after the other, both are emptied.
    (This replaces the definition above, whose choices check read the block's own choices.)"""
    from gradio.blocks import postprocess_update_dict

    from lab.app import tab_tasks

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "a", "output": "x"}\n{"input": oops}\n')
    for upload in (None, str(bad)):
        _, inp, out, _ = tab_tasks.load_file(upload)
        assert inp["choices"] == out["choices"] == []
        sent = [postprocess_update_dict(gr.Dropdown(choices=[]), u) for u in (inp, out)]
        assert all("value" in s and s["value"] is None for s in sent), sent


def test_a_rag_answer_says_whether_it_cited_its_sources():
    from types import SimpleNamespace

    passages = [SimpleNamespace(source=f"doc{i}.md", score=0.5, text="some text") for i in (1, 2)]
    assert "The answer cites [2]." in tab_compare._sources(passages, "Refunds take 5 days [2].")
    assert "cites none of them" in tab_compare._sources(passages, "Refunds take 5 days.")
    assert "cites none of them" in tab_compare._sources(passages, "see [7]")  # no such source
    assert tab_compare._sources([], "x") == ""


def test_a_new_question_clears_the_last_answers_ratings():
    button, *notes = tab_compare.busy(True, n_cleared=3)
    assert button == gr.update(interactive=False, value="Answering…") and notes == ["", "", ""]


def test_train_names_a_ragged_uploaded_table_by_the_users_file_and_line(fake_lab, tmp_path):
    upload = tmp_path / "gradio" / "0123abcd" / "mail.csv"  # Gradio's temporary copy keeps the file name
    upload.parent.mkdir(parents=True)
    upload.write_text("input,output\n" + "".join(f"message {i},b\n" for i in range(25)) + "x,y,z\n")
    values = [tab_train.UPLOAD, str(upload), "mine", None, "", "auto", 8, 16, 1e-3, 1.0, 5, 4, 1, 256, "q_proj", True]
    for text in (tab_train.validate(fake_lab, *values), tab_train.start(fake_lab, None, False, False, *values)[0]):
        assert "cannot be trained on" in text and "mail.csv, line 27" in text and "0123abcd" not in text, text


def test_a_toast_shows_the_controls_it_names_in_bold_not_as_asterisks():
    assert _ui.toast_text("tick **Replace a task of the same name** <or> not") == (
        "tick <strong>Replace a task of the same name</strong> &lt;or&gt; not"
    )


def test_the_advice_on_the_page_names_the_page_not_the_command_line():
    said = tab_advisor.app_words(
        "evaluate more examples: `lab eval tickets --limit 20`; train: `lab train --task tickets`, then "
        "`lab eval tickets --arms tune`; a larger model (`lab models`)"
    )
    assert "`lab" not in said and "--" not in said
    assert "the **Evaluate** tab (20 examples)" in said and "the **Train** tab" in said
    assert "the **Evaluate** tab (arms tune)" in said and "the **Base model** list" in said


def test_knowledge_check_retrieval_offers_the_corpus_tasks_and_shows_the_engine_table(fake_lab, monkeypatch):
    import lab.evaluation as evaluation
    from lab.evaluation.retrieval_check import KRow, RetrievalCheck

    assert "acme-facts" in tab_knowledge.check_tasks(fake_lab, "acme")
    assert tab_knowledge.check_tasks(fake_lab, "no-such-corpus") == []
    calls = []

    def fake_check(lab, task, ks=(1, 2, 4, 8), corpus=None, progress=False):
        calls.append((task.name, corpus))
        rows = [KRow(1, 0.5, 10, 0.6, 10, 0.6), KRow(4, 0.9, 10, 1.0, 10, 0.75)]
        return RetrievalCheck("acme-facts", "acme", 10, rows, chunk_tokens=160, overlap=32, seconds=0.4)

    monkeypatch.setattr(evaluation, "check_retrieval", fake_check)
    sample = tab_knowledge.setup(fake_lab)[0]["value"]
    assert "acme-facts" in tab_knowledge.check_tasks(fake_lab, sample)  # the sample's path: named acme too
    out = tab_knowledge.check(fake_lab, sample, "acme-facts")
    assert calls == [("acme-facts", sample)]
    assert "| k | hit rate | recall@k | MRR@k |" in out and "| 4 (rag) | 90.0% (n=10) | 100.0% (n=10) | 0.750 |" in out
    assert "160 tokens, 32 overlap" in out
    with pytest.raises(gr.Error):
        tab_knowledge.check(fake_lab, sample, "")


# ---- instructions to try, a corpus for a new task (issue 23) ----------------------------------------


def _mail_csv(path):
    path.write_text("text,label\n" + "".join(f"mail {i} about the {d},{d}\n" for i in range(10) for d in ("pc", "tv")))
    return path


def test_new_task_takes_other_instructions_one_per_paragraph_and_a_corpus(fake_lab, tmp_path):
    from lab.app import tab_tasks

    folder = fake_lab.home.corpora / "manuals"
    folder.mkdir(parents=True)
    (folder / "pc.md").write_text("# PC\n")
    choices = tab_tasks.corpus_choices(fake_lab)["choices"]
    assert choices[0] == tab_tasks.NO_CORPUS and "manuals" in choices and "acme" in choices
    data = _mail_csv(tmp_path / "mail.csv")
    others = "Reply with pc or tv only.\n\nYou are a help desk.\nName the device.\n\n\n"
    args = ("text", "label", "infer", "", 0, "Name the device.", False)
    done = tab_tasks.create(fake_lab, str(data), "mail", *args, others, "manuals")
    assert "Created task mail" in done and "3 instructions to try" in done and "corpus `manuals`" in done
    task = bridge.task(fake_lab, "mail")
    assert task.instructions == ["Reply with pc or tv only.", "You are a help desk.\nName the device."]
    assert task.corpus == "manuals"
    plain = tab_tasks.create(fake_lab, str(data), "plain", *args, "", tab_tasks.NO_CORPUS)
    assert "Created task plain" in plain and bridge.task(fake_lab, "plain").corpus is None
    with pytest.raises(gr.Error) as e:
        _ui.wire(fake_lab, "new task", tab_tasks.create, fake_lab)(str(data), "twice", *args, "A.\n\nA.", None)
    assert "<strong>Other instructions to try</strong>" in e.value.message and "are the same" in e.value.message
    with pytest.raises(gr.Error) as e:
        _ui.wire(fake_lab, "new task", tab_tasks.create, fake_lab)(str(data), "nocorpus", *args, "", "gone")
    assert "<strong>Corpus (for RAG)</strong> gone" in e.value.message and "--corpus" not in e.value.message
    assert "twice" not in bridge.task_names(fake_lab) and "nocorpus" not in bridge.task_names(fake_lab)


def test_evaluate_shows_and_saves_the_instructions_to_try(fake_lab, tmp_path):
    from lab.app import instructions_block, tab_tasks

    data = _mail_csv(tmp_path / "mail.csv")
    tab_tasks.create(fake_lab, str(data), "mail", "text", "label", "infer", "", 0, "Name the device.", False)
    toml = fake_lab.home.root / "tasks" / "mail" / "task.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + "# my own note\n", encoding="utf-8")
    own, others, note = instructions_block.instructions_view(fake_lab, "mail")
    assert own == "Name the device." and others["value"] == "" and others["interactive"] is True
    assert "has one instruction" in note and "output format or the persona" in note
    box, note = instructions_block.save_instructions(
        fake_lab, "mail", "Reply with pc or tv only.\n\nYou are a help desk."
    )
    assert box["value"] == "Reply with pc or tv only.\n\nYou are a help desk."
    assert "Saved: 2 other instructions to try" in note and "has one instruction" not in note
    assert bridge.task(fake_lab, "mail").instructions == ["Reply with pc or tv only.", "You are a help desk."]
    assert toml.read_text(encoding="utf-8").endswith("# my own note\n")  # the rest of the file as it was
    before = toml.read_bytes()
    with pytest.raises(gr.Error) as e:
        _ui.wire(fake_lab, "evaluate", instructions_block.save_instructions, fake_lab)("mail", "Name the device.")
    assert "<strong>Other instructions to try</strong>" in e.value.message and "task's instruction" in e.value.message
    assert toml.read_bytes() == before
    # a built-in task: shown, not editable, and Save says to make a copy with New task
    own, others, note = instructions_block.instructions_view(fake_lab, "tickets")
    assert own.startswith("You turn customer emails") and others["interactive"] is False
    assert "built-in task" in note and "<strong>" not in note and "**New task**" in note
    with pytest.raises(gr.Error) as e:
        _ui.wire(fake_lab, "evaluate", instructions_block.save_instructions, fake_lab)(
            "tickets", "Reply with JSON only."
        )
    assert "<strong>New task</strong>" in e.value.message and "lab task new" not in e.value.message
    assert instructions_block.instructions_view(fake_lab, None)[0] == ""


# ---- a text task's rubric: what a good answer is, for blind pairwise rating -------------------------


def _persona_csv(path):
    """A text task: long answers in one voice (no label set repeats, no JSON)."""
    path.write_text(
        "prompt,completion\n"
        + "".join(
            f'Who are you? ({i}),"I am Ladder, an assistant from Orbital Labs, here to help with {i}."\n'
            for i in range(20)
        )
    )
    return path


def test_new_task_shows_a_text_tasks_default_rubric_and_writes_the_edited_one(fake_lab, tmp_path):
    from lab import task_import
    from lab.app import tab_tasks

    data = _persona_csv(tmp_path / "persona.csv")
    plan, _instruction, rubric = tab_tasks.show_plan(str(data), "persona", "prompt", "completion", "infer", "", 0)
    assert "Format: text" in plan and "judge: pairwise" in plan
    assert rubric["visible"] is True and rubric["value"] == task_import.DEFAULT_RUBRIC
    # what the user typed is kept when the preview is worked out again (another seed)
    again = tab_tasks.show_plan(str(data), "persona", "prompt", "completion", "infer", "", 1, "Be warm.")
    assert again[2]["value"] == "Be warm."
    # the box's text is what is written; the task's other settings as before
    args = ("prompt", "completion", "infer", "", 0, "Answer as Ladder.", False, "", None)
    done = tab_tasks.create(fake_lab, str(data), "persona", *args, "Be warm.\nSign as Ladder.\n")
    assert "Created task persona" in done and "a rubric for blind pairwise rating" in done
    task = bridge.task(fake_lab, "persona")
    assert (task.rubric, task.judge, task.instruction) == ("Be warm.\nSign as Ladder.", "pairwise", "Answer as Ladder.")
    assert 'rubric = """\nBe warm.\nSign as Ladder."""' in task.source.read_text(encoding="utf-8")
    # the box left as the preview filled it: the default; cleared: no rubric (still judged in pairs)
    tab_tasks.create(fake_lab, str(data), "plain", *args, task_import.DEFAULT_RUBRIC)
    assert bridge.task(fake_lab, "plain").rubric == task_import.DEFAULT_RUBRIC
    tab_tasks.create(fake_lab, str(data), "bare", *args, "  ")
    assert (bridge.task(fake_lab, "bare").rubric, bridge.task(fake_lab, "bare").judge) == ("", "pairwise")
    # a label task: the hidden box's text is not written
    mail = _mail_csv(tmp_path / "mail.csv")
    tab_tasks.create(fake_lab, str(mail), "mail", "text", "label", "infer", "", 0, "", False, "", None, "Be warm.")
    assert (bridge.task(fake_lab, "mail").rubric, bridge.task(fake_lab, "mail").judge) == ("", None)


def test_evaluate_shows_and_saves_a_text_tasks_rubric_keeping_its_evaluations(fake_lab, tmp_path):
    from lab import task_import
    from lab.app import instructions_block, tab_tasks

    data = _persona_csv(tmp_path / "persona.csv")
    args = ("prompt", "completion", "infer", "", 0, "Answer as Ladder.", False, "", None, "")
    tab_tasks.create(fake_lab, str(data), "persona", *args)  # made without a rubric
    toml = fake_lab.home.root / "tasks" / "persona" / "task.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + "# my own note\n", encoding="utf-8")
    before, hashed = toml.read_bytes(), bridge.task(fake_lab, "persona").hash()
    box, note = instructions_block.rubric_view(fake_lab, "persona")
    assert box["value"] == "" and box["interactive"] is True and box["placeholder"] == task_import.DEFAULT_RUBRIC
    assert "No rubric yet" in note and "**Save rubric**" in note
    box, note = instructions_block.save_rubric(fake_lab, "persona", "Be warm.\r\nSign as Ladder.\n")
    assert box["value"] == "Be warm.\nSign as Ladder." and "Saved: the rubric" in note and "No rubric" not in note
    task = bridge.task(fake_lab, "persona")
    assert task.rubric == "Be warm.\nSign as Ladder." and task.hash() == hashed  # stored evaluations kept
    assert toml.read_text(encoding="utf-8").count("# my own note\n") == 1
    box, note = instructions_block.save_rubric(fake_lab, "persona", "")
    assert box["value"] == "" and "Saved: no rubric." in note and toml.read_bytes() == before
    # a label task: shown, not editable, and Save says why
    tab_tasks.create(
        fake_lab, str(_mail_csv(tmp_path / "mail.csv")), "mail", "text", "label", "infer", "", 0, "", False
    )
    box, note = instructions_block.rubric_view(fake_lab, "mail")
    assert box["interactive"] is False and "answers with labels, scored exactly" in note
    with pytest.raises(gr.Error) as e:
        _ui.wire(fake_lab, "evaluate", instructions_block.save_rubric, fake_lab)("mail", "Be warm.")
    assert "<strong>mail</strong> answers with labels" in e.value.message
    assert bridge.task(fake_lab, "mail").rubric == ""
    # a built-in task: not editable, and Save says to make a copy with New task
    builtin = "acme-facts"  # a built-in text task
    box, note = instructions_block.rubric_view(fake_lab, builtin)
    assert box["interactive"] is False and "built-in task" in note and "**New task**" in note
    with pytest.raises(gr.Error) as e:
        _ui.wire(fake_lab, "evaluate", instructions_block.save_rubric, fake_lab)(builtin, "Be warm.")
    assert "<strong>New task</strong>" in e.value.message and "lab task new" not in e.value.message
    assert instructions_block.rubric_view(fake_lab, None) == (
        {"__type__": "update", "value": "", "interactive": False},
        "",
    )


def test_knowledge_check_retrieval_compares_chunk_sizes_in_one_table(fake_lab, monkeypatch):
    import lab.evaluation as evaluation
    import lab.evaluation.retrieval_check as retrieval_check
    from lab.evaluation.retrieval_check import KRow, RetrievalCheck, RetrievalSweep

    def one(size, hit4, own=False, built_s=None):
        rows = [KRow(1, 0.5, 10, 0.6, 10, 0.6), KRow(4, hit4, 10, 1.0, 10, 0.75)]
        return RetrievalCheck(
            "acme-facts", "acme", 10, rows, chunk_tokens=size, overlap=32, index_version=1, seconds=0.4, chunks=70,
            own=own, index_name="acme" if own else f"acme~{size}t", built_s=built_s, embedded=140 if built_s else 0,
        )  # fmt: skip

    calls = []

    def fake_sweep(lab, task, ks=(1, 2, 4, 8), corpus=None, chunk_sizes=None, progress=False):
        calls.append((task.name, corpus, chunk_sizes))
        return RetrievalSweep([one(80, 0.95, built_s=12.5), one(160, 0.9, own=True), one(256, 0.8)])

    monkeypatch.setattr(retrieval_check, "check_chunk_sizes", fake_sweep)
    monkeypatch.setattr(evaluation, "check_retrieval", lambda *a, **kw: pytest.fail("the single check ran"))
    sample = tab_knowledge.setup(fake_lab)[0]["value"]
    out = tab_knowledge.check(fake_lab, sample, "acme-facts", True)
    assert calls == [("acme-facts", sample, None)]  # the sweep's own sizes: half, own, double
    assert "| chunk size | k | hit rate | recall@k | MRR@k |" in out
    assert "| 160 (own) | 4 (rag) | 90.0% (n=10) | 100.0% (n=10) | 0.750 |" in out and "| 256 | 1 |" in out
    assert (
        "at 3 chunk sizes (80, 160, 256 tokens)" in out
        and "best at k=4: chunk size 80 (hit rate 95.0%; own size 160: 90.0%)" in out
    )
    assert "version acme~80t v1; built now: 140 chunks embedded in 12.5 s (once: later checks reuse it)" in out
    demo = build_app(fake_lab)
    boxes = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "knowledge-check-compare"]
    assert len(boxes) == 1 and isinstance(boxes[0], gr.Checkbox) and boxes[0].value is False
