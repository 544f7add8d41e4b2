import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest
import sqlite_utils

from lab.backends.base import Generation
from lab.migrations import MIGRATIONS, migrate
from lab.store import Store


def _gen(text="hi"):
    return Generation(text, 3, 1, 0.01, 0.02, "prompt", model_id="m")


def test_migrations_from_empty_and_idempotent(tmp_path):
    store = Store(tmp_path / "lab.db")
    assert store.applied == [m.__name__ for m in MIGRATIONS]
    assert {
        "generations",
        "eval_runs",
        "eval_results",
        "training_runs",
        "training_steps",
        "ratings",
        "embeddings",
        "_migrations",
    } <= set(store.db.table_names())
    assert migrate(store.db) == []  # nothing left to do
    store.close()
    again = Store(tmp_path / "lab.db")
    assert again.applied == []
    names = [r["name"] for r in again.db["_migrations"].rows]
    assert names == [m.__name__ for m in MIGRATIONS] and len(set(names)) == len(names)


def test_wal_mode(tmp_path):
    store = Store(tmp_path / "lab.db")
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_log_generation_roundtrip(tmp_path):
    store = Store(tmp_path / "lab.db")
    msgs = [{"role": "user", "content": "Q?"}]
    row_id = store.log_generation(
        _gen("A."),
        arm="prompt",
        messages=msgs,
        options={"temperature": 0},
        model_sha="abc",
        retrieved=[{"chunk_id": 1, "score": 0.5}],
    )
    row = store.db["generations"].get(row_id)
    assert row["output"] == "A." and row["arm"] == "prompt" and row["model_sha"] == "abc"
    assert json.loads(row["messages_json"]) == msgs
    assert json.loads(row["retrieved_json"])[0]["chunk_id"] == 1
    assert row["token_counts"] == "model"  # a local engine's own count (a server backend says how it counted)
    # readable by a plain sqlite3 connection (another process, datasette...)
    assert sqlite3.connect(tmp_path / "lab.db").execute("select count(*) from generations").fetchone()[0] == 1


def test_rows_survive_a_killed_writer(tmp_path):
    """A process killed mid-batch keeps every row it had written (each row is committed)."""
    db = tmp_path / "lab.db"
    script = textwrap.dedent(f"""
        import os, signal, sys
        from lab.store import Store
        from lab.backends.base import Generation
        s = Store({str(db)!r})
        for i in range(5):
            s.log_generation(Generation(f"row {{i}}", 1, 1, 0.0, 0.0, "p", model_id="m"), arm="prompt", messages=[])
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == -9
    rows = Store(db).query("select output from generations order by id")
    assert [r["output"] for r in rows] == [f"row {i}" for i in range(5)]


def test_recent_generations_filters(tmp_path):
    store = Store(tmp_path / "lab.db")
    store.log_generation(_gen("paris"), arm="prompt", messages=[{"role": "user", "content": "france?"}])
    store.log_generation(_gen("berlin"), arm="rag", messages=[{"role": "user", "content": "germany?"}])
    assert [r["output"] for r in store.recent_generations(10)] == ["berlin", "paris"]
    assert [r["output"] for r in store.recent_generations(10, arm="prompt")] == ["paris"]
    assert [r["output"] for r in store.recent_generations(10, search="germ")] == ["berlin"]


def _half_migration(fail):
    """A migration that creates one table, then (when `fail` says so) dies before its second DDL."""

    def m999_half(db):
        db["half_first"].create({"id": int}, pk="id")
        fail()
        db["half_second"].create({"id": int}, pk="id")

    return m999_half


def _migrated(path):
    db = sqlite_utils.Database(sqlite3.connect(str(path)))
    return set(db.table_names()), [r["name"] for r in db["_migrations"].rows]


def test_a_migration_that_fails_halfway_leaves_nothing_and_runs_again(tmp_path, monkeypatch):
    Store(tmp_path / "lab.db").close()

    def boom():
        raise RuntimeError("disk full")

    monkeypatch.setattr("lab.migrations.MIGRATIONS", MIGRATIONS + [_half_migration(boom)])
    with pytest.raises(RuntimeError, match="disk full"):
        Store(tmp_path / "lab.db")
    tables, names = _migrated(tmp_path / "lab.db")
    assert "half_first" not in tables and "m999_half" not in names  # the DDL and the row, rolled back
    monkeypatch.setattr("lab.migrations.MIGRATIONS", MIGRATIONS + [_half_migration(lambda: None)])
    assert Store(tmp_path / "lab.db").applied == ["m999_half"]
    tables, names = _migrated(tmp_path / "lab.db")
    assert {"half_first", "half_second"} <= tables and names[-1] == "m999_half"


def test_a_migration_killed_halfway_reruns_cleanly(tmp_path, monkeypatch):
    """SIGKILL between a migration's two DDL statements (no Python cleanup runs at all)."""
    db = tmp_path / "lab.db"
    script = textwrap.dedent(f"""
        import os, signal
        from lab import migrations
        from lab.store import Store
        def m999_half(db):
            db["half_first"].create({{"id": int}}, pk="id")
            os.kill(os.getpid(), signal.SIGKILL)
        migrations.MIGRATIONS.append(m999_half)
        Store({str(db)!r})
    """)
    assert subprocess.run([sys.executable, "-c", script]).returncode == -9
    tables, names = _migrated(db)
    assert "generations" in tables and "half_first" not in tables and "m999_half" not in names
    monkeypatch.setattr("lab.migrations.MIGRATIONS", MIGRATIONS + [_half_migration(lambda: None)])
    assert Store(db).applied == ["m999_half"]


def test_old_app_error_generation_rows_move_to_app_errors_once_each(tmp_path, monkeypatch):
    """Before m007 the app logged a failed callback as a generation "app:<tab>", some twice."""
    import sqlite_utils

    db = sqlite_utils.Database(tmp_path / "lab.db")
    before = [m for m in MIGRATIONS if m.__name__ < "m009"]
    monkeypatch.setattr("lab.migrations.MIGRATIONS", before)
    migrate(db)
    rows = [
        ("2026-01-01T10:00:00.1", "app:evaluate", "boom"),
        ("2026-01-01T10:00:00.4", "app:evaluate", "boom"),
        ("2026-01-01T10:05:00.0", "app:knowledge", "no such corpus"),
        ("2026-01-01T10:06:00.0", "zero-shot", None),
    ]
    for ts, arm, error in rows:
        db["generations"].insert({"ts": ts, "arm": arm, "model_id": "m", "error": error})
    monkeypatch.setattr("lab.migrations.MIGRATIONS", MIGRATIONS)
    assert migrate(db)[0] == "m009_app_errors_out_of_generations"
    assert [r["arm"] for r in db["generations"].rows] == ["zero-shot"]
    assert [(r["place"], r["error"]) for r in db["app_errors"].rows] == [
        ("evaluate", "boom"),
        ("knowledge", "no such corpus"),
    ]


# ---- the Store's named reads and writes (SQL lives in the store) --------------------------------


def _run(store, task="t", model="m", config=None, h="h1"):
    return store.new_eval_run(task, h, ["zero-shot"], model, config or {})


def test_eval_runs_new_resumed_and_found(tmp_path):
    store = Store(tmp_path / "lab.db")
    first, tagged = _run(store, config={"tag": None}), _run(store, config={"tag": "curve-1", "sample": "held_out"})
    other = _run(store, h="h2")
    row = store.eval_run_row(first)
    assert row["status"] == "running" and row["ts"] and json.loads(row["arms_json"]) == ["zero-shot"]
    assert "results" not in row and store.eval_run_row(999) is None
    store.resume_eval_run(first, ["zero-shot", "rag"], {"tag": None, "adapter": None})
    assert store.eval_run_arms(first) == ["zero-shot", "rag"]
    assert [r["id"] for r in store.eval_runs_matching("t", "h1", "m")] == [tagged, first]
    assert [r["id"] for r in store.eval_runs_matching("t", "h1", "m", newest_first=False)] == [first, tagged]
    assert store.latest_untagged_eval_run("t")["id"] == other
    assert store.latest_tagged_eval_run("t", "h1", "m", "curve-1", "held_out", "first")["id"] == tagged
    assert store.latest_tagged_eval_run("t", "h1", "m", "curve-1", "first", "first") is None
    old = _run(store, config={"tag": "curve-1"})  # a run from before `sample`: read as the default
    assert store.latest_tagged_eval_run("t", "h1", "m", "curve-1", "first", "first")["id"] == old
    store.set_eval_run_status(first, "failed")
    assert store.eval_run_row(first)["status"] == "failed" and store.eval_run_row(first)["finished_ts"] is None
    store.set_eval_run_status(first, "finished", finished=True)
    assert store.eval_run_row(first)["finished_ts"]
    assert store.has_eval_runs() and not Store(tmp_path / "other.db").has_eval_runs()


def test_eval_results_rows_keys_and_scores(tmp_path):
    store = Store(tmp_path / "lab.db")
    run = _run(store)
    gen = store.log_generation(_gen("B"), arm="zero-shot", messages=[])
    for ex, arm, repeat in (("b", "zero-shot", 0), ("a", "zero-shot", 0), ("a", "zero-shot", 1), ("a", "rag", 0)):
        store.add_eval_result(
            {
                "eval_run_id": run,
                "example_id": ex,
                "arm": arm,
                "repeat": repeat,
                "generation_id": gen if ex == "b" else None,
                "scores_json": json.dumps({"primary": 1.0}),
                "extra_json": "{}",
                "ts": "t",
            }
        )
    store.add_eval_result({"eval_run_id": run, "example_id": "b", "arm": "zero-shot", "repeat": 0, "ts": "again"})
    assert store.eval_result_count(run) == 4  # the duplicate was a no-op
    assert store.eval_result_keys(run) == {
        ("b", "zero-shot", 0),
        ("a", "zero-shot", 0),
        ("a", "zero-shot", 1),
        ("a", "rag", 0),
    }
    assert sorted((r["example_id"]) for r in store.eval_scores(run, "zero-shot")) == ["a", "a", "b"]
    assert sorted(r["example_id"] for r in store.eval_scores(run, "zero-shot", repeat=0)) == ["a", "b"]
    rows = store.eval_result_rows(run)
    assert [(r["example_id"], r["arm"], r["repeat"]) for r in rows][:2] == [
        ("b", "zero-shot", 0),
        ("a", "zero-shot", 0),
    ]
    assert rows[0]["output"] == "B" and rows[1]["output"] is None and rows[0]["ts"] == "t"


def test_answer_seconds_asks_what_the_estimates_asked(tmp_path):
    """Same figures as the queries the time estimates ran themselves (curve_run, climb, demo)."""
    store = Store(tmp_path / "lab.db")
    run = _run(store, task="tickets")
    for i in range(7):
        g = Generation(
            "x", 3, 2, 0.01, 0.5 + i if i != 3 else None, "p", model_id="m", extra={"error": "boom"} if i == 5 else None
        )
        store.log_generation(g, arm="rag" if i % 2 else "zero-shot", messages=[], eval_run_id=run if i < 4 else None)
    store.log_generation(Generation("y", 3, 2, 0.01, 9.0, "p", model_id="other"), arm="rag", messages=[])
    q = store.query
    assert store.answer_seconds("m", arm="rag", timed_only=True) == tuple(
        q(
            "select avg(total_s) as s, count(*) as n from generations where arm = ? and model_id = ? and error is null "
            "and total_s is not null",
            ["rag", "m"],
        )[0].values()
    )
    assert (
        store.answer_seconds("m", task="tickets", arm="rag", last=100)[0]
        == q(
            "select avg(total_s) as s from (select g.total_s from generations g join eval_runs e on e.id = "
            "g.eval_run_id where e.task = ? and g.arm = ? and g.model_id = ? and g.error is null order by g.id desc "
            "limit 100)",
            ["tickets", "rag", "m"],
        )[0]["s"]
    )
    assert store.answer_seconds("m", last=2) == ((0.5 + 6 + 0.5 + 4) / 2, 2)  # the newest two without errors
    n_s = q(
        "select count(*) as n, avg(g.total_s) as s from generations g join eval_runs r on g.eval_run_id = r.id "
        "where r.task = ? and g.arm = ? and g.model_id = ? and g.error is null",
        ["tickets", "zero-shot", "m"],
    )[0]
    assert store.answer_seconds("m", task="tickets", arm="zero-shot") == (n_s["s"], n_s["n"])
    assert store.answer_seconds("nobody") == (None, 0)
    speeds = store.answer_speeds("m")
    assert len(speeds) == 5 and speeds[0]["d"] == pytest.approx(6.5 - 0.01) and speeds[0]["p"] == 3


def test_training_runs_and_steps(tmp_path):
    store = Store(tmp_path / "lab.db")
    run = store.new_training_run({"adapter_name": "a", "device": "cpu", "total_steps": 4})
    for step in (1, 2, 3, 3):
        store.log_training_step({"run_id": run, "step": step, "loss": float(step), "ts": "t"})
    store.update_training_run(run, {"status": "done"})
    assert [s["step"] for s in store.training_steps(run)] == [1, 2, 3]
    store.drop_training_steps_after(run, 1)
    # committed at once: another connection (the app, a second process) sees it
    assert sqlite3.connect(tmp_path / "lab.db").execute("select step from training_steps").fetchall() == [(1,)]
    row = store.training_run(run)
    assert row["status"] == "done" and row["ts"] and row["adapter_name"] == "a"


def test_embeddings_cache_in_batches(tmp_path):
    store = Store(tmp_path / "lab.db")
    pairs = [(f"h{i}", bytes([i % 256]) * 4) for i in range(1203)]
    store.save_embeddings("e1", pairs)
    store.save_embeddings("e2", pairs[:1])
    found = store.cached_embeddings("e1", [h for h, _ in pairs] + ["h0", "missing"])
    assert found == dict(pairs)
    assert store.cached_embeddings("e2", ["h0", "h1"]) == {"h0": pairs[0][1]}


def test_curves_open_resume_and_read(tmp_path):
    store = Store(tmp_path / "lab.db")
    first = store.open_curve("t", "h", "m", '{"a": 1}', estimate_s=60.0)
    store.update_curve(first, {"status": "failed", "error": "boom", "wall_s": 5.0})
    assert store.open_curve("t", "h", "m", '{"a": 1}') == first  # resumed, error cleared
    row = store.curve(first)
    assert (row["status"], row["error"], row["wall_s"], row["estimate_s"]) == ("running", None, 5.0, 60.0)
    other = store.open_curve("t", "h", "m", '{"a": 2}')
    assert other != first and store.curve(other)["wall_s"] == 0.0
    assert store.recent_curve_ids("t") == [other, first] and store.recent_curve_ids("t", 1) == [other]
    assert store.curve(999) is None


def test_climbs_and_demo_runs(tmp_path):
    store = Store(tmp_path / "lab.db")
    a = store.new_climb("t", "m1", '{"x": 1}')
    b = store.new_climb("t", "m2", '{"x": 1}')
    c = store.new_climb("t", "m1", '{"x": 2}')
    assert store.climb(a)["steps_json"] == "[]" and store.climb(a)["status"] == "running"
    assert store.latest_climb("t")["id"] == c
    assert store.latest_climb("t", model_id="m1", options_json='{"x": 1}')["id"] == a
    assert store.latest_climb("t", options_json='{"x": 1}')["id"] == b
    assert store.latest_climb("other") is None
    store.update_climb(a, {"eval_run_id": 7, "status": "finished"})
    assert store.latest_climb_of_run(7)["id"] == a and store.latest_climb_of_run(8) is None
    run = store.new_demo_run({"pid": 1, "steps": 3, "estimate_s": 9.0})
    store.update_demo_run(run, {"step": 2})
    latest = store.latest_demo_run()
    assert (latest["id"], latest["status"], latest["step"], latest["steps"]) == (run, "running", 2, 3)


def test_a_log_without_climbs_has_no_climb_of_a_run(tmp_path):
    store = Store(tmp_path / "lab.db")
    store.db["climbs"].drop()  # a log from before the climbs table
    assert store.latest_climb_of_run(1) is None


def test_side_effects_written_and_the_latest_finished_one_read_per_adapter_content(tmp_path):
    store = Store(tmp_path / "lab.db")
    first = store.new_side_effects("tickets", "sha1", "smollm2", "base", '{"passages": 24}')
    assert store.latest_side_effects("tickets") is None  # running: not a measurement to quote yet
    store.update_side_effects(first, {"status": "finished", "result_json": '{"a": 1}', "wall_s": 3.0})
    running = store.new_side_effects("tickets", "sha1", "smollm2", "base", '{"passages": 24}')
    store.update_side_effects(running, {"status": "failed", "error": "boom"})
    assert store.latest_side_effects("tickets", "sha1")["id"] == first
    assert store.latest_side_effects("tickets", "sha2") is None  # retrained since: measured anew
    newer = store.new_side_effects("tickets", "sha2", "smollm2", "base", "{}")
    store.update_side_effects(newer, {"status": "finished", "result_json": "{}"})
    assert store.latest_side_effects("tickets")["id"] == newer and store.latest_side_effects("other") is None
