"""The run log: one SQLite file per lab home, written through sqlite-utils.

Every row is committed as it is written, so a process killed mid-batch keeps what it wrote.
WAL mode lets the app read while a training subprocess or an eval writes.
"""
from __future__ import annotations

import datetime
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterable

import sqlite_utils

from .migrations import migrate


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self.db = sqlite_utils.Database(conn)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA busy_timeout=30000")
        self.lock = threading.RLock()  # one connection shared by the app's worker threads
        with self.lock:
            self.applied = migrate(self.db)

    def close(self) -> None:
        self.db.conn.close()

    # -- writes -------------------------------------------------------------------------
    def insert(self, table: str, row: dict, **kw) -> int:
        with self.lock:
            return self.db[table].insert(row, **kw).last_pk

    def upsert(self, table: str, row: dict, pk) -> None:
        with self.lock:
            self.db[table].upsert(row, pk=pk)

    def update(self, table: str, pk, values: dict) -> None:
        with self.lock:
            self.db[table].update(pk, values)

    def log_generation(self, gen, *, arm: str, messages: list[dict], options: Any = None,
                       model_sha: str | None = None, adapter_sha: str | None = None,
                       corpus: str | None = None, index_hash: str | None = None,
                       retrieved: list[dict] | None = None, eval_run_id: int | None = None,
                       example_id: str | None = None, backend: str | None = None) -> int:
        """The only place that writes a generation row."""
        if hasattr(options, "model_dump"):
            options = options.model_dump()
        return self.insert("generations", {
            "ts": now(), "arm": arm, "model_id": gen.model_id, "model_sha": model_sha,
            "adapter_id": gen.adapter_id, "adapter_sha": adapter_sha, "corpus": corpus,
            "index_hash": index_hash, "retrieved_json": _json(retrieved),
            "messages_json": _json(messages), "prompt_text": gen.prompt_text, "output": gen.text,
            "prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens,
            "ttft_s": gen.ttft_s, "total_s": gen.total_s, "finish_reason": gen.finish_reason,
            "options_json": _json(options), "backend": backend,
            "error": gen.extra.get("error") if gen.extra else None,
            "eval_run_id": eval_run_id, "example_id": example_id,
            # local engines count with the model's own tokenizer; a server backend says how it counted
            "token_counts": (gen.extra or {}).get("token_counts", "model"),
        })

    def log_error(self, *, arm: str, model_id: str, messages: list[dict] | None, error: str) -> int:
        """A failed request is logged too, so the history shows what went wrong."""
        return self.insert("generations", {"ts": now(), "arm": arm, "model_id": model_id,
                                           "messages_json": _json(messages), "error": error})

    def log_app_error(self, place: str, error: str, model_id: str | None = None) -> int:
        """A callback of the app that failed (`place` names the tab and action)."""
        return self.insert("app_errors", {"ts": now(), "place": place, "model_id": model_id, "error": error})

    def app_errors(self, n: int = 50) -> list[dict]:
        return self.query("select * from app_errors order by id desc limit ?", [n])

    # -- reads --------------------------------------------------------------------------
    def query(self, sql: str, params: Iterable | dict = ()) -> list[dict]:
        with self.lock:
            return list(self.db.query(sql, params))

    def recent_generations(self, n: int = 20, arm: str | None = None, model: str | None = None,
                           search: str | None = None) -> list[dict]:
        where, params = [], {}
        if arm:
            where.append("arm = :arm")
            params["arm"] = arm
        if model:
            where.append("model_id = :model")
            params["model"] = model
        if search:
            where.append("(messages_json like :q or output like :q)")
            params["q"] = f"%{search}%"
        clause = f"where {' and '.join(where)}" if where else ""
        params["n"] = n
        return self.query(f"select * from generations {clause} order by id desc limit :n", params)

    # -- reads for the app (History, Train tabs) -----------------------------------------
    def eval_runs(self, n: int = 50, task: str | None = None) -> list[dict]:
        """Latest evaluation runs, newest first, with how many results each has."""
        clause = "where r.task = :task" if task else ""
        return self.query(
            "select r.*, (select count(*) from eval_results e where e.eval_run_id = r.id) as results "
            f"from eval_runs r {clause} order by r.id desc limit :n", {"task": task, "n": n})

    def eval_run(self, run_id: int) -> dict | None:
        rows = self.query("select r.*, (select count(*) from eval_results e where e.eval_run_id = r.id) "
                          "as results from eval_runs r where r.id = ?", [run_id])
        return rows[0] if rows else None

    def training_runs(self, n: int = 50, adapter: str | None = None) -> list[dict]:
        """Latest training runs, newest first, with their step count and last losses."""
        clause = "where r.adapter_name = :adapter" if adapter else ""
        return self.query(
            "select r.*, (select count(*) from training_steps s where s.run_id = r.id) as steps, "
            "(select loss from training_steps s where s.run_id = r.id and loss is not null "
            " order by step desc limit 1) as last_loss, "
            "(select val_loss from training_steps s where s.run_id = r.id and val_loss is not null "
            " order by step desc limit 1) as last_val_loss "
            f"from training_runs r {clause} order by r.id desc limit :n", {"adapter": adapter, "n": n})

    def running_training_runs(self) -> list[dict]:
        """Runs marked running, with their last logged step (to tell whether their trainer lives)."""
        return self.query("select r.*, (select max(step) from training_steps s where s.run_id = r.id) as last_step "
                          "from training_runs r where r.status = 'running' order by r.id")

    def training_run(self, run_id: int) -> dict | None:
        rows = self.query("select * from training_runs where id = ?", [run_id])
        return rows[0] if rows else None

    def cpu_training_tokens_per_s(self) -> float | None:
        """The mean tokens/s of this lab's CPU training steps (time estimates), None if none yet."""
        rows = self.query("select avg(s.tokens_per_s) as tps from training_steps s join training_runs r "
                          "on r.id = s.run_id where r.device = 'cpu' and s.tokens_per_s is not null")
        return rows[0]["tps"] if rows and rows[0]["tps"] else None

    def training_steps(self, run_id: int) -> list[dict]:
        return self.query("select * from training_steps where run_id = ? order by step", [run_id])

    def rate(self, generation_id: int, verdict: str) -> int:
        """A person's better/worse verdict on one answer (the Compare tab's buttons)."""
        return self.insert("ratings", {"generation_id": generation_id, "verdict": verdict, "ts": now()})

    def ratings(self, n: int = 50) -> list[dict]:
        return self.query("select r.id, r.ts, r.verdict, r.generation_id, g.arm, g.model_id, g.adapter_id, "
                          "g.output from ratings r left join generations g on g.id = r.generation_id "
                          "order by r.id desc limit ?", [n])
