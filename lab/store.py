"""The run log: one SQLite file per lab home, written through sqlite-utils.

Every row is committed as it is written, so a process killed mid-batch keeps what it wrote.
WAL mode lets the app read while a training subprocess or an eval writes.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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

    def log_generation(
        self,
        gen,
        *,
        arm: str,
        messages: list[dict],
        options: Any = None,
        model_sha: str | None = None,
        adapter_sha: str | None = None,
        corpus: str | None = None,
        index_hash: str | None = None,
        retrieved: list[dict] | None = None,
        eval_run_id: int | None = None,
        example_id: str | None = None,
        backend: str | None = None,
    ) -> int:
        """The only place that writes a generation row."""
        if hasattr(options, "model_dump"):
            options = options.model_dump()
        return self.insert(
            "generations",
            {
                "ts": now(),
                "arm": arm,
                "model_id": gen.model_id,
                "model_sha": model_sha,
                "adapter_id": gen.adapter_id,
                "adapter_sha": adapter_sha,
                "corpus": corpus,
                "index_hash": index_hash,
                "retrieved_json": _json(retrieved),
                "messages_json": _json(messages),
                "prompt_text": gen.prompt_text,
                "output": gen.text,
                "prompt_tokens": gen.prompt_tokens,
                "completion_tokens": gen.completion_tokens,
                "ttft_s": gen.ttft_s,
                "total_s": gen.total_s,
                "finish_reason": gen.finish_reason,
                "options_json": _json(options),
                "backend": backend,
                "error": gen.extra.get("error") if gen.extra else None,
                "eval_run_id": eval_run_id,
                "example_id": example_id,
                # local engines count with the model's own tokenizer; a server backend says how it counted
                "token_counts": (gen.extra or {}).get("token_counts", "model"),
            },
        )

    def log_error(self, *, arm: str, model_id: str, messages: list[dict] | None, error: str) -> int:
        """A failed request is logged too, so the history shows what went wrong."""
        return self.insert(
            "generations",
            {"ts": now(), "arm": arm, "model_id": model_id, "messages_json": _json(messages), "error": error},
        )

    def log_app_error(self, place: str, error: str, model_id: str | None = None) -> int:
        """A callback of the app that failed (`place` names the tab and action)."""
        return self.insert("app_errors", {"ts": now(), "place": place, "model_id": model_id, "error": error})

    def app_errors(self, n: int = 50) -> list[dict]:
        return self.query("select * from app_errors order by id desc limit ?", [n])

    # -- reads --------------------------------------------------------------------------
    def query(self, sql: str, params: Iterable | dict = ()) -> list[dict]:
        with self.lock:
            return list(self.db.query(sql, params))

    def generation(self, row_id: int) -> dict | None:
        """One generations row, as written."""
        return self._first("select * from generations where id = ?", [row_id])

    def recent_generations(
        self, n: int = 20, arm: str | None = None, model: str | None = None, search: str | None = None
    ) -> list[dict]:
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
            f"from eval_runs r {clause} order by r.id desc limit :n",
            {"task": task, "n": n},
        )

    def eval_run(self, run_id: int) -> dict | None:
        rows = self.query(
            "select r.*, (select count(*) from eval_results e where e.eval_run_id = r.id) "
            "as results from eval_runs r where r.id = ?",
            [run_id],
        )
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
            f"from training_runs r {clause} order by r.id desc limit :n",
            {"adapter": adapter, "n": n},
        )

    def running_training_runs(self) -> list[dict]:
        """Runs marked running, with their last logged step (to tell whether their trainer lives)."""
        return self.query(
            "select r.*, (select max(step) from training_steps s where s.run_id = r.id) as last_step "
            "from training_runs r where r.status = 'running' order by r.id"
        )

    def training_run(self, run_id: int) -> dict | None:
        rows = self.query("select * from training_runs where id = ?", [run_id])
        return rows[0] if rows else None

    def cpu_training_tokens_per_s(self) -> float | None:
        """The mean tokens/s of this lab's CPU training steps (time estimates), None if none yet."""
        rows = self.query(
            "select avg(s.tokens_per_s) as tps from training_steps s join training_runs r "
            "on r.id = s.run_id where r.device = 'cpu' and s.tokens_per_s is not null"
        )
        return rows[0]["tps"] if rows and rows[0]["tps"] else None

    def training_steps(self, run_id: int) -> list[dict]:
        return self.query("select * from training_steps where run_id = ? order by step", [run_id])

    def rate(self, generation_id: int, verdict: str) -> int:
        """A person's better/worse verdict on one answer (the Compare tab's buttons)."""
        return self.insert("ratings", {"generation_id": generation_id, "verdict": verdict, "ts": now()})

    def ratings(self, n: int = 50) -> list[dict]:
        return self.query(
            "select r.id, r.ts, r.verdict, r.generation_id, g.arm, g.model_id, g.adapter_id, "
            "g.output from ratings r left join generations g on g.id = r.generation_id "
            "order by r.id desc limit ?",
            [n],
        )

    # -- blind pairwise preference (pair_ratings, judge_verdicts) ---------------------------
    def record_pair_rating(self, row: dict) -> None:
        """A rater's preference on one pair; rating the same pair again replaces it (the unique
        index on pair and rater makes INSERT OR REPLACE a replace)."""
        self.insert("pair_ratings", {"seconds": None, **row, "ts": now()}, replace=True)

    def pair_ratings(self, eval_run_id: int, arm_a: str, arm_b: str, rater: str | None = None) -> list[dict]:
        """The ratings of one run's pairs of these two arms (one rater's, when given), oldest first."""
        where, params = "eval_run_id = ? and arm_a = ? and arm_b = ?", [eval_run_id, arm_a, arm_b]
        if rater is not None:
            where, params = where + " and rater = ?", [*params, rater]
        return self.query(f"select * from pair_ratings where {where} order by id", params)

    def pair_sets(self, eval_run_id: int) -> list[tuple[str, str]]:
        """The arm pairs of one run that someone rated or a judge judged."""
        rows = self.query(
            "select arm_a, arm_b from pair_ratings where eval_run_id = ? union "
            "select arm_a, arm_b from judge_verdicts where eval_run_id = ?",
            [eval_run_id, eval_run_id],
        )
        return [(r["arm_a"], r["arm_b"]) for r in rows]

    def add_judge_verdict(self, row: dict) -> None:
        """One judge verdict on one pair in one order; an existing one is kept (a resumed run)."""
        self.insert("judge_verdicts", {**row, "ts": now()}, ignore=True)

    def judge_verdicts(self, eval_run_id: int, arm_a: str, arm_b: str, judge: str) -> list[dict]:
        return self.query(
            "select * from judge_verdicts where eval_run_id = ? and arm_a = ? and arm_b = ? and judge = ? order by id",
            [eval_run_id, arm_a, arm_b, judge],
        )

    def judges_of(self, eval_run_id: int, arm_a: str, arm_b: str) -> list[str]:
        """The judges that gave verdicts on these pairs, newest first."""
        rows = self.query(
            "select judge from judge_verdicts where eval_run_id = ? and arm_a = ? and arm_b = ? "
            "group by judge order by max(id) desc",
            [eval_run_id, arm_a, arm_b],
        )
        return [r["judge"] for r in rows]

    def _first(self, sql: str, params: Iterable | dict = ()) -> dict | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    # -- answer timings (time estimates) -------------------------------------------------
    def answer_seconds(
        self,
        model_id: str,
        *,
        arm: str | None = None,
        task: str | None = None,
        last: int | None = None,
        timed_only: bool = False,
    ) -> tuple[float | None, int]:
        """(mean total_s, rows counted) of the model's answers that did not fail: of `arm`, of
        `task`'s evaluations, the `last` N only, only the timed ones (`timed_only`), as asked."""
        join = " join eval_runs e on e.id = g.eval_run_id" if task is not None else ""
        asked = [
            (c, v) for c, v in (("e.task = ?", task), ("g.arm = ?", arm), ("g.model_id = ?", model_id)) if v is not None
        ]
        # a judge's one-word verdict is no answer: it would make every answer look fast
        where, params = [c for c, _ in asked] + ["g.error is null", "g.arm != 'judge'"], [v for _, v in asked]
        if timed_only:
            where.append("g.total_s is not null")
        rows = f"select g.total_s from generations g{join} where {' and '.join(where)}"
        if last is not None:
            rows, params = rows + " order by g.id desc limit ?", [*params, last]
        row = self.query(f"select avg(total_s) as s, count(*) as n from ({rows})", params)[0]
        return row["s"], row["n"]

    def answer_speeds(self, model_id: str, last: int = 200) -> list[dict]:
        """The model's last answers that show their speeds: prompt tokens `p` in ttft `t`,
        completion tokens `c` in decode seconds `d` (newest first)."""
        return self.query(
            "select prompt_tokens as p, ttft_s as t, completion_tokens as c, total_s - ttft_s as d from generations "
            "where model_id = ? and error is null and completion_tokens > 1 and ttft_s > 0 and total_s > ttft_s "
            "order by id desc limit ?",
            [model_id, last],
        )

    # -- evaluation runs (eval_runs) and their rows (eval_results) ----------------------------
    def new_eval_run(self, task: str, task_hash: str, arms: list[str], model_id: str, config: dict) -> int:
        """A new evaluation run, marked running."""
        return self.insert(
            "eval_runs",
            {
                "ts": now(),
                "task": task,
                "task_hash": task_hash,
                "arms_json": _json(arms),
                "model_id": model_id,
                "config_json": _json(config),
                "status": "running",
            },
        )

    def resume_eval_run(self, run_id: int, arms: list[str], config: dict) -> None:
        """A matching run continued: its arms (new ones joined) and config, marked running again."""
        self.update("eval_runs", run_id, {"arms_json": _json(arms), "config_json": _json(config), "status": "running"})

    def set_eval_run_status(self, run_id: int, status: str, *, finished: bool = False) -> None:
        """The run's status; `finished` stamps its finished_ts too."""
        self.update("eval_runs", run_id, {"status": status, **({"finished_ts": now()} if finished else {})})

    def eval_run_row(self, run_id: int) -> dict | None:
        """The eval_runs row as stored (`eval_run` adds its result count)."""
        return self._first("select * from eval_runs where id = ?", [run_id])

    def eval_run_arms(self, run_id: int) -> list[str]:
        return json.loads(self.query("select arms_json from eval_runs where id = ?", [run_id])[0]["arms_json"])

    def has_eval_runs(self) -> bool:
        return bool(self.query("select id from eval_runs limit 1"))

    def eval_runs_matching(self, task: str, task_hash: str, model_id: str, *, newest_first: bool = True) -> list[dict]:
        """Every run of these task files on this model."""
        return self.query(
            "select * from eval_runs where task = ? and task_hash = ? and model_id = ? "
            f"order by id {'desc' if newest_first else 'asc'}",
            [task, task_hash, model_id],
        )

    def latest_untagged_eval_run(self, task: str) -> dict | None:
        """The task's newest run that is not a learning curve's point (no `tag` in its config), one
        no sweep marked for a configuration of its own (no `sweep`) before any that one did."""
        return self._first(
            "select * from eval_runs where task = ? and json_extract(config_json, '$.tag') is null "
            "order by json_extract(config_json, '$.sweep') is null desc, id desc limit 1",
            [task],
        )

    def latest_tagged_eval_run(
        self, task: str, task_hash: str, model_id: str, tag: str, sample: str, sample_default: str
    ) -> dict | None:
        """The newest run tagged `tag` whose config's `sample` (`sample_default` when it has none) is `sample`."""
        return self._first(
            "select * from eval_runs where task = ? and task_hash = ? and model_id = ? and "
            "json_extract(config_json, '$.tag') = ? and "
            "coalesce(json_extract(config_json, '$.sample'), ?) = ? order by id desc limit 1",
            [task, task_hash, model_id, tag, sample_default, sample],
        )

    def add_eval_result(self, row: dict) -> None:
        """One scored (example, arm, repeat); the primary key makes a duplicate a no-op."""
        self.insert("eval_results", row, ignore=True)

    def eval_result_keys(self, run_id: int) -> set[tuple[str, str, int]]:
        """(example_id, arm, repeat) of every row the run holds."""
        return {
            (r["example_id"], r["arm"], r["repeat"])
            for r in self.query("select example_id, arm, repeat from eval_results where eval_run_id = ?", [run_id])
        }

    def eval_result_count(self, run_id: int) -> int:
        return self.query("select count(*) as n from eval_results where eval_run_id = ?", [run_id])[0]["n"]

    def eval_scores(self, run_id: int, arm: str, repeat: int | None = None) -> list[dict]:
        """example_id, scores_json, extra_json of the run's rows for `arm` (one repeat, when given)."""
        clause, params = ("", [run_id, arm]) if repeat is None else (" and repeat = ?", [run_id, arm, repeat])
        return self.query(
            f"select example_id, scores_json, extra_json from eval_results where eval_run_id = ? and arm = ?{clause}",
            params,
        )

    def eval_result_rows(self, run_id: int) -> list[dict]:
        """The run's rows in the order written, each with its generation's output, tokens and timings."""
        return self.query(
            "select r.*, g.output, g.prompt_tokens, g.completion_tokens, g.total_s, g.ttft_s, g.adapter_id, "
            "g.finish_reason "
            "from eval_results r left join generations g on g.id = r.generation_id "
            "where r.eval_run_id = ? order by r.rowid",
            [run_id],
        )

    # -- training (training_runs, training_steps) -----------------------------------------
    def new_training_run(self, values: dict) -> int:
        """A new training run, marked running."""
        return self.insert("training_runs", {"ts": now(), **values, "status": "running"})

    def update_training_run(self, run_id: int, values: dict) -> None:
        self.update("training_runs", run_id, values)

    def training_event(self, run_id: int, event: str, step: int | None) -> None:
        """Append what happened to a run besides its end (stopped, resumed, died) to its
        events_json, so History shows a run stopped and resumed, not only its final state."""
        with self.lock:
            row = self.training_run(run_id) or {}
            events = json.loads(row.get("events_json") or "[]") + [{"ts": now(), "event": event, "step": step}]
            self.update("training_runs", run_id, {"events_json": json.dumps(events)})

    def log_training_step(self, row: dict) -> None:
        """One step's losses and speed (a step done again after a resume replaces its row)."""
        self.upsert("training_steps", row, pk=("run_id", "step"))

    def drop_training_steps_after(self, run_id: int, step: int) -> None:
        """Forget the steps after `step` (a resumed run redoes them), committed at once."""
        with self.lock:
            self.db.execute("delete from training_steps where run_id = ? and step > ?", [run_id, step])
            self.db.conn.commit()

    # -- embeddings cache ----------------------------------------------------------------
    def cached_embeddings(self, embedder_id: str, hashes: list[str]) -> dict[str, bytes]:
        """{content hash: vector bytes} of the hashes this embedder has cached."""
        found: dict[str, bytes] = {}
        unique = list(dict.fromkeys(hashes))
        for b in range(0, len(unique), 500):  # stay under SQLite's bound-parameter limit
            part = unique[b : b + 500]
            for r in self.query(
                f"select content_hash, vector from embeddings where embedder_id = ? "
                f"and content_hash in ({','.join('?' * len(part))})",
                [embedder_id, *part],
            ):
                found[r["content_hash"]] = r["vector"]
        return found

    def save_embeddings(self, embedder_id: str, vectors: Iterable[tuple[str, bytes]]) -> None:
        """Cache (content hash, vector bytes) pairs, all in one transaction."""
        rows = [{"content_hash": h, "embedder_id": embedder_id, "vector": v} for h, v in vectors]
        with self.lock, self.db.conn:
            self.db["embeddings"].insert_all(rows, replace=True)

    # -- learning curves (curves) --------------------------------------------------------
    def open_curve(
        self, task: str, task_hash: str, model_id: str, settings_json: str, estimate_s: float | None = None
    ) -> int:
        """The newest curve with these settings, marked running again (its error cleared), else a new one."""
        row = self._first(
            "select id from curves where task = ? and task_hash = ? and model_id = ? and "
            "settings_json = ? order by id desc limit 1",
            [task, task_hash, model_id, settings_json],
        )
        if row:
            self.update_curve(row["id"], {"status": "running", "error": None})
            return row["id"]
        return self.insert(
            "curves",
            {
                "ts": now(),
                "task": task,
                "task_hash": task_hash,
                "model_id": model_id,
                "settings_json": settings_json,
                "status": "running",
                "estimate_s": estimate_s,
                "wall_s": 0.0,
            },
        )

    def curve(self, curve_id: int) -> dict | None:
        return self._first("select * from curves where id = ?", [curve_id])

    def recent_curve_ids(self, task: str, n: int = 5) -> list[int]:
        return [r["id"] for r in self.query("select id from curves where task = ? order by id desc limit ?", [task, n])]

    def update_curve(self, curve_id: int, values: dict) -> None:
        self.update("curves", curve_id, values)

    # -- distillations (distills) --------------------------------------------------------
    def open_distill(self, task: str, name: str, settings_json: str) -> int:
        """The newest distillation with these settings, marked running again, else a new one."""
        row = self._first(
            "select id from distills where task = ? and name = ? and settings_json = ? order by id desc limit 1",
            [task, name, settings_json],
        )
        if row:
            self.update("distills", row["id"], {"status": "running", "error": None})
            return row["id"]
        values = {"ts": now(), "task": task, "name": name, "settings_json": settings_json, "status": "running"}
        return self.insert("distills", {**values, "wall_s": 0.0})

    def distill(self, distill_id: int) -> dict | None:
        return self._first("select * from distills where id = ?", [distill_id])

    def latest_distill(self, task: str, finished: bool = True) -> dict | None:
        """The task's newest distillation (with a ledger, when `finished`)."""
        done = " and ledger_json is not null" if finished else ""
        return self._first(f"select * from distills where task = ?{done} order by id desc limit 1", [task])

    def update_distill(self, distill_id: int, values: dict) -> None:
        self.update("distills", distill_id, values)

    # -- climbs (climbs) -----------------------------------------------------------------
    def new_climb(self, task: str, model_id: str, options_json: str) -> int:
        """A new climb, running, with an empty path."""
        return self.insert(
            "climbs",
            {
                "ts": now(),
                "task": task,
                "model_id": model_id,
                "options_json": options_json,
                "status": "running",
                "steps_json": "[]",
                "wall_s": 0.0,
            },
        )

    def climb(self, climb_id: int) -> dict | None:
        return self._first("select * from climbs where id = ?", [climb_id])

    def latest_climb(self, task: str, *, model_id: str | None = None, options_json: str | None = None) -> dict | None:
        """The task's newest climb (on `model_id`, with `options_json`, when given)."""
        where, params = ["task = ?"], [task]
        for column, value in (("model_id", model_id), ("options_json", options_json)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        return self._first(f"select * from climbs where {' and '.join(where)} order by id desc limit 1", params)

    def latest_climb_of_run(self, eval_run_id: int) -> dict | None:
        """The newest climb whose evidence is eval run `eval_run_id` (None in a log without climbs)."""
        if "climbs" not in self.db.table_names():
            return None
        return self._first("select * from climbs where eval_run_id = ? order by id desc limit 1", [eval_run_id])

    def climb_history(self, climb_id: int) -> list[dict]:
        """Climb `climb_id` and the task's climbs before it that it may have reused: the same
        model and options, or the same eval run; oldest first."""
        return self.query(
            "select h.* from climbs h join climbs c on c.id = ? where h.task = c.task and h.id <= c.id"
            " and ((h.model_id = c.model_id and h.options_json = c.options_json) or h.eval_run_id = c.eval_run_id)"
            " order by h.id",
            [climb_id],
        )

    def update_climb(self, climb_id: int, values: dict) -> None:
        self.update("climbs", climb_id, values)

    # -- demo preparation (demo_runs) ----------------------------------------------------
    def new_demo_run(self, values: dict) -> int:
        """A new demo preparation, running, at step 0."""
        return self.insert("demo_runs", {"ts": now(), **values, "status": "running", "step": 0})

    def update_demo_run(self, run_id: int, values: dict) -> None:
        self.update("demo_runs", run_id, values)

    def latest_demo_run(self) -> dict | None:
        return self._first("select * from demo_runs order by id desc limit 1")

    # -- an adapter's side effects (side_effects) ------------------------------------------
    def new_side_effects(
        self, adapter: str, adapter_sha: str, base_model: str, base_sha: str, settings_json: str
    ) -> int:
        """A new measurement of what adapter `adapter` (this content) costs elsewhere, running."""
        return self.insert(
            "side_effects",
            {
                "ts": now(),
                "adapter": adapter,
                "adapter_sha": adapter_sha,
                "base_model": base_model,
                "base_sha": base_sha,
                "settings_json": settings_json,
                "status": "running",
            },
        )

    def update_side_effects(self, side_effects_id: int, values: dict) -> None:
        self.update("side_effects", side_effects_id, values)

    def latest_side_effects(self, adapter: str, adapter_sha: str | None = None) -> dict | None:
        """The newest finished measurement of `adapter` (of this content, when `adapter_sha` is given)."""
        where, params = "adapter = ? and status = 'finished'", [adapter]
        if adapter_sha is not None:
            where, params = where + " and adapter_sha = ?", [adapter, adapter_sha]
        return self._first(f"select * from side_effects where {where} order by id desc limit 1", params)
