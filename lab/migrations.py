"""Schema changes as one ordered list of named functions (the `llm` way).

Opening the store runs every migration not yet recorded in `_migrations`. Never edit or
reorder a migration that has shipped: append a new one.
"""

from __future__ import annotations

import datetime

import sqlite_utils

MIGRATIONS = []


def migration(fn):
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_generations(db: sqlite_utils.Database):
    db["generations"].create(
        {
            "id": int,
            "ts": str,
            "arm": str,
            "model_id": str,
            "model_sha": str,
            "adapter_id": str,
            "adapter_sha": str,
            "corpus": str,
            "index_hash": str,
            "retrieved_json": str,
            "messages_json": str,
            "prompt_text": str,
            "output": str,
            "prompt_tokens": int,
            "completion_tokens": int,
            "ttft_s": float,
            "total_s": float,
            "finish_reason": str,
            "options_json": str,
            "backend": str,
            "error": str,
            "eval_run_id": int,
            "example_id": str,
        },
        pk="id",
    )
    db["generations"].create_index(["ts"])
    db["generations"].create_index(["eval_run_id", "example_id"])


@migration
def m002_evaluation(db: sqlite_utils.Database):
    db["eval_runs"].create(
        {
            "id": int,
            "ts": str,
            "task": str,
            "task_hash": str,
            "arms_json": str,
            "model_id": str,
            "config_json": str,
            "status": str,
            "finished_ts": str,
        },
        pk="id",
    )
    db["eval_results"].create(
        {
            "eval_run_id": int,
            "example_id": str,
            "arm": str,
            "repeat": int,
            "generation_id": int,
            "scores_json": str,
            "ts": str,
        },
        pk=("eval_run_id", "example_id", "arm", "repeat"),
    )


@migration
def m003_training(db: sqlite_utils.Database):
    db["training_runs"].create(
        {
            "id": int,
            "ts": str,
            "adapter_name": str,
            "base_model": str,
            "base_sha": str,
            "dataset_sha": str,
            "config_json": str,
            "status": str,
            "device": str,
            "wall_s": float,
            "peak_mem": int,
            "pid": int,
            "error": str,
            "finished_ts": str,
        },
        pk="id",
    )
    db["training_steps"].create(
        {
            "run_id": int,
            "step": int,
            "loss": float,
            "val_loss": float,
            "lr": float,
            "tokens_per_s": float,
            "epoch": float,
            "eta_s": float,
            "ts": str,
        },
        pk=("run_id", "step"),
    )


@migration
def m004_ratings_embeddings(db: sqlite_utils.Database):
    db["ratings"].create({"id": int, "generation_id": int, "verdict": str, "ts": str}, pk="id")
    db["embeddings"].create(
        {"content_hash": str, "embedder_id": str, "vector": bytes}, pk=("content_hash", "embedder_id")
    )


@migration
def m005_tuning_run_details(db: sqlite_utils.Database):
    # What the app needs to draw a live run and the adapter it produced: the step count to
    # expect, how it trained, where the data and the adapter are, the final losses.
    for column, column_type in [
        ("total_steps", int),
        ("method", str),
        ("engine", str),
        ("dataset_path", str),
        ("adapter_path", str),
        ("adapter_sha", str),
        ("train_loss", float),
        ("val_loss", float),
    ]:
        db["training_runs"].add_column(column, column_type)


@migration
def m006_eval_results_error_extra(db: sqlite_utils.Database):
    # A failed request is still a result (it counts as wrong); extra_json keeps what the
    # scores came from: retrieved passages, the few-shot k actually used, the repeat's seed.
    db["eval_results"].add_column("error", str)
    db["eval_results"].add_column("extra_json", str)
    db["eval_runs"].create_index(["task", "task_hash"])


@migration
def m007_app_errors(db: sqlite_utils.Database):
    # What went wrong in the app (a failed callback) is not a generation: its own table, so
    # every generation row's arm is one of the ladder's arms.
    db["app_errors"].create({"id": int, "ts": str, "place": str, "model_id": str, "error": str}, pk="id")


@migration
def m008_training_pid_started(db: sqlite_utils.Database):
    # A pid alone is not a process: once the trainer dies its pid can be reused. The start
    # time (psutil's create_time) says whether the process at that pid is still the trainer.
    db["training_runs"].add_column("pid_started", float)


@migration
def m009_app_errors_out_of_generations(db: sqlite_utils.Database):
    # Before m007 a failed app callback was logged as a generation with arm "app:<tab>", and
    # some twice (two handlers logged the same failure): move them to app_errors, once each, so
    # History's Generations view holds only answers.
    if "generations" not in db.table_names():
        return
    rows = list(db.query("select ts, arm, model_id, error from generations where arm like 'app:%' order by id"))
    last = None
    for r in rows:
        key = (r["arm"], r["error"], (r["ts"] or "")[:19])  # the same failure in the same second
        if key != last:
            db.execute(
                "insert into app_errors (ts, place, model_id, error) values (?, ?, ?, ?)",
                [r["ts"], r["arm"][len("app:") :], r["model_id"], r["error"]],
            )
        last = key
    db.execute("delete from generations where arm like 'app:%'")


@migration
def m010_demo_runs(db: sqlite_utils.Database):
    # `lab demo prepare` (and the app's "Prepare the demo" job): one row per run, its progress
    # updated as it goes, so the page can poll it and a killed job can be told from a live one.
    db["demo_runs"].create(
        {
            "id": int,
            "ts": str,
            "pid": int,
            "pid_started": float,
            "status": str,
            "step": int,
            "steps": int,
            "message": str,
            "fraction": float,
            "estimate_s": float,
            "wall_s": float,
            "error": str,
            "finished_ts": str,
            "plan_json": str,
        },
        pk="id",
    )


@migration
def m011_climbs(db: sqlite_utils.Database):
    # `lab climb`: one row per climb up the ladder; steps_json is its path (step, why, estimate,
    # wall time, results, decision), so a rerun continues it and the report draws it.
    db["climbs"].create(
        {
            "id": int,
            "ts": str,
            "task": str,
            "model_id": str,
            "options_json": str,
            "status": str,
            "eval_run_id": int,
            "adapter": str,
            "steps_json": str,
            "decision_json": str,
            "recommendation_json": str,
            "wall_s": float,
            "finished_ts": str,
        },
        pk="id",
    )
    db["climbs"].create_index(["task"])


@migration
def m012_curves(db: sqlite_utils.Database):
    # A learning curve (`lab curve`): its settings and where it has got to. Its points are
    # eval runs tagged "curve:..." (the runner's `tag`), so they resume like any evaluation.
    db["curves"].create(
        {
            "id": int,
            "ts": str,
            "task": str,
            "task_hash": str,
            "model_id": str,
            "settings_json": str,
            "status": str,
            "progress_json": str,
            "estimate_s": float,
            "wall_s": float,
            "finished_ts": str,
            "error": str,
        },
        pk="id",
    )
    db["curves"].create_index(["task"])


@migration
def m013_generation_token_counts(db: sqlite_utils.Database):
    # How the lab counted a request's tokens for its context check and RAG packing: "model" (the
    # local engine's own tokenizer), "tokenizer" (a local tokenizer named in a server's spec),
    # "server" (its /tokenize) or "estimated" (~4 characters a token: a server with neither).
    # Rows logged before this column existed say nothing (null).
    db["generations"].add_column("token_counts", str)


@migration
def m014_training_events(db: sqlite_utils.Database):
    # A run stopped and resumed is one row (the resumed trainer takes it over): its stops and
    # resumptions, [{ts, event, step}], so History does not show only the final state.
    db["training_runs"].add_column("events_json", str)


@migration
def m015_distills(db: sqlite_utils.Database):
    # A distillation (`lab distill`): a teacher's answers to the inputs, a student adapter trained
    # on them, and the ledger that compares them. Its answers are eval runs tagged "distill:NAME"
    # (the runner's `tag`) and its training a training run, so each resumes as those do; the row
    # holds the settings, where it has got to, and the ledger once it is done.
    db["distills"].create(
        {
            "id": int,
            "ts": str,
            "task": str,
            "name": str,
            "settings_json": str,
            "status": str,
            "progress_json": str,
            "ledger_json": str,
            "wall_s": float,
            "finished_ts": str,
            "error": str,
        },
        pk="id",
    )
    db["distills"].create_index(["task"])


@migration
def m016_side_effects(db: sqlite_utils.Database):
    # What an adapter costs elsewhere (`lab adapters check NAME --side-effects`): the perplexity on
    # general text and the other tasks' held-out scores, each paired with the base model. Its
    # answers are eval runs tagged "side-effects:NAME", so they resume as those do; the row holds
    # the settings and, once measured, the result. Keyed by the adapter's sha256: a retrained
    # adapter is measured anew.
    db["side_effects"].create(
        {
            "id": int,
            "ts": str,
            "adapter": str,
            "adapter_sha": str,
            "base_model": str,
            "base_sha": str,
            "settings_json": str,
            "result_json": str,
            "status": str,
            "wall_s": float,
            "error": str,
        },
        pk="id",
    )
    db["side_effects"].create_index(["adapter", "adapter_sha"])


@migration
def m017_pairwise(db: sqlite_utils.Database):
    # Blind pairwise preference: one row per (pair, rater), a pair being two arms' answers to one
    # held-out example of one eval run (arm_a before arm_b in ladder order). `shown_first` is the
    # arm that was on the left, so an order bias in the rater can be seen; `preferred` is an arm,
    # "tie" or "both bad". A rater rating a pair again replaces the row.
    db["pair_ratings"].create(
        {
            "id": int,
            "ts": str,
            "task": str,
            "eval_run_id": int,
            "example_id": str,
            "arm_a": str,
            "arm_b": str,
            "generation_a": int,
            "generation_b": int,
            "shown_first": str,
            "preferred": str,
            "rater": str,
            "seconds": float,
        },
        pk="id",
    )
    db["pair_ratings"].create_index(["eval_run_id", "example_id", "arm_a", "arm_b", "rater"], unique=True)
    # A judge model's verdict on one pair in one order ("ab": arm_a shown as A). `judge` names the
    # model and the prompt (rubric included), so a new rubric is a new judge; `verdict` is what it
    # said ("A", "B", "tie"; null: unparseable), `preferred` what that means in arms; `probs_json`
    # the verdicts' probabilities in arms ({arm_a: p, arm_b: p, "tie": p}) where the backend gives them.
    db["judge_verdicts"].create(
        {
            "id": int,
            "ts": str,
            "task": str,
            "eval_run_id": int,
            "example_id": str,
            "arm_a": str,
            "arm_b": str,
            "judge": str,
            "order": str,
            "generation_id": int,
            "verdict": str,
            "preferred": str,
            "probs_json": str,
        },
        pk="id",
    )
    db["judge_verdicts"].create_index(["eval_run_id", "example_id", "arm_a", "arm_b", "judge", "order"], unique=True)


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations in order; return the names applied."""
    if "_migrations" not in db.table_names():
        db["_migrations"].create({"name": str, "applied_at": str}, pk="name", if_not_exists=True)
    done = {row["name"] for row in db["_migrations"].rows}
    return [fn.__name__ for fn in MIGRATIONS if fn.__name__ not in done and _apply(db, fn)]


def _apply(db: sqlite_utils.Database, fn) -> bool:
    """Run one migration and write its `_migrations` row in one explicit transaction, so a
    migration that fails or is killed halfway leaves nothing behind and simply runs again.
    (`with conn:` is not enough: Python's sqlite3 opens no transaction for DDL, so each
    CREATE would commit on its own.) IMMEDIATE takes the write lock first, and the row is
    checked again under it, so two processes opening one lab.db apply a migration once."""
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        if db["_migrations"].count_where("name = ?", [fn.__name__]):
            db.conn.execute("ROLLBACK")  # another process applied it meanwhile
            return False
        fn(db)  # sqlite-utils sees the open transaction and nests its writes in it (savepoints)
        db["_migrations"].insert(
            {"name": fn.__name__, "applied_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}
        )
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")
    return True
