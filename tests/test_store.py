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
    assert {"generations", "eval_runs", "eval_results", "training_runs", "training_steps",
            "ratings", "embeddings", "_migrations"} <= set(store.db.table_names())
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
    row_id = store.log_generation(_gen("A."), arm="prompt", messages=msgs, options={"temperature": 0},
                                  model_sha="abc", retrieved=[{"chunk_id": 1, "score": 0.5}])
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
    rows = [("2026-01-01T10:00:00.1", "app:evaluate", "boom"), ("2026-01-01T10:00:00.4", "app:evaluate", "boom"),
            ("2026-01-01T10:05:00.0", "app:knowledge", "no such corpus"), ("2026-01-01T10:06:00.0", "zero-shot", None)]
    for ts, arm, error in rows:
        db["generations"].insert({"ts": ts, "arm": arm, "model_id": "m", "error": error})
    monkeypatch.setattr("lab.migrations.MIGRATIONS", MIGRATIONS)
    assert migrate(db)[0] == "m009_app_errors_out_of_generations"
    assert [r["arm"] for r in db["generations"].rows] == ["zero-shot"]
    assert [(r["place"], r["error"]) for r in db["app_errors"].rows] == [("evaluate", "boom"),
                                                                         ("knowledge", "no such corpus")]
