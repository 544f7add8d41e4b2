"""Fault drill: kill the lab's long jobs at random points, feed the CLI malformed files, and load
the app while a trainer writes to the same lab.db; print how many of each it survived.

1. Kills: `lab index`, `lab eval` and `lab train` (subprocesses, as a user runs them) are SIGKILLed
   at random points, N times each, then run again: no duplicate or lost eval rows, one
   generation per result, the last complete index version still serves `lab search`, no half
   adapter (an adapter folder is complete and loadable, or absent), a killed trainer's run is
   marked died, and `lab train --resume` continues from the checkpoint.
2. Bad inputs: malformed JSONL (Hypothesis-drawn breakage), task files, GGUF files, corpora,
   huge lines and ragged CSV/TSV, each through the CLI: exit code 2, a message naming the file
   and the line or field, no traceback, nothing written to the lab home or lab.db.
3. Load: `lab serve` on loopback, concurrent Compare requests over Gradio's HTTP API while a
   training subprocess writes to the same lab.db: every request answered, every generation
   logged once, no "database is locked" anywhere.

    .venv/bin/python scripts/fault_drill.py [--kills 10] [--quick] [--seed 0]

tests/test_faults.py runs the same functions at a small scale (it imports this file).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.fault_inputs import BadCase, bad_cases  # noqa: E402  (the malformed-input corpus)

TASK = "acme-facts"
QUERY = "What warranty does the FL-200 come with?"
LOCKED = "database is locked"


# ---- running the CLI ----------------------------------------------------------------------------


def lab_env() -> dict:
    env = dict(
        os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false"
    )
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("LAB_HOME", None)
    return env


def lab_argv(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "lab", "--home", str(home), *map(str, args)]


def run_lab(home: Path, *args: str, cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        lab_argv(home, *args),
        capture_output=True,
        text=True,
        errors="replace",
        env=lab_env(),
        cwd=str(cwd or home),
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def spawn(home: Path, log: Path, *args: str) -> subprocess.Popen:
    """A lab command in its own process group, its stderr and stdout in `log`."""
    out = open(log, "wb")
    proc = subprocess.Popen(
        lab_argv(home, *args),
        stdout=out,
        stderr=subprocess.STDOUT,
        env=lab_env(),
        cwd=str(home),
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    out.close()
    return proc


def kill_after(proc: subprocess.Popen, delay: float) -> bool:
    """SIGKILL `proc` (and its group) after `delay` s; False when it had finished by then."""
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return True


def make_home(base: Path) -> Path:
    """A fresh lab home with the sample corpus (copied: the drill edits it)."""
    home = Path(tempfile.mkdtemp(prefix="home-", dir=base))
    shutil.copytree(ROOT / "corpora" / "acme", home / "corpora" / "acme")
    return home


def db_rows(home: Path, sql: str, args=()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{home / 'lab.db'}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


@dataclass
class Outcome:
    """One drill's tally: how many tries, how many came through, what went wrong."""

    name: str
    tried: int = 0
    ok: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, problems: list[str], label: str) -> None:
        self.tried += 1
        self.ok += not problems
        self.problems += [f"{label}: {p}" for p in problems]


# ---- kills: eval --------------------------------------------------------------------------------


def eval_invariants(home: Path, run_id: int, expected: int | None) -> list[str]:
    """One result per (example, arm, repeat), each with its own logged generation of the same
    example and arm; with `expected`, exactly that many results."""
    problems = []
    rows = db_rows(
        home,
        "select r.example_id, r.arm, r.generation_id, g.id, g.example_id, g.arm, g.eval_run_id "
        "from eval_results r left join generations g on g.id = r.generation_id "
        "where r.eval_run_id = ?",
        [run_id],
    )
    gen_ids = [r[2] for r in rows if r[2] is not None]
    if len(gen_ids) != len(set(gen_ids)):
        problems.append(f"run {run_id}: two results share a generation")
    for ex, arm, gid, g_id, g_ex, g_arm, g_run in rows:
        if gid is not None and (g_id is None or (g_ex, g_arm, g_run) != (ex, arm, run_id)):
            problems.append(
                f"run {run_id}: result {ex}/{arm} points at generation {gid}, which is "
                + ("missing" if g_id is None else f"{g_ex}/{g_arm} of run {g_run}")
            )
    if expected is not None and len(rows) != expected:
        problems.append(f"run {run_id}: {len(rows)} results after the rerun, expected {expected} (lost rows)")
    return problems


def drill_eval(home: Path, kills: int, rng: random.Random, limit: int = 3, arms: str = "zero-shot,few-shot") -> Outcome:
    """Start a fresh eval run, kill it at a random point, resume it to the end; check the rows."""
    out = Outcome("lab eval")
    args = ["eval", TASK, "--limit", limit, "--arms", arms]
    expected = limit * len(arms.split(","))
    t0 = time.perf_counter()
    base = run_lab(home, *args, "--fresh")
    full_s = time.perf_counter() - t0
    if base.returncode != 0:
        out.problems.append(f"baseline eval failed ({base.returncode}): {base.stderr[-800:]}")
        return out
    for i in range(kills):
        before = db_rows(home, "select max(id) from eval_runs")[0][0]
        proc = spawn(home, home / f"eval-kill-{i}.log", *args, "--fresh")
        killed = kill_after(proc, rng.uniform(0.3, full_s))
        problems = []
        run_id = db_rows(home, "select max(id) from eval_runs")[0][0]
        if run_id != before:
            problems += eval_invariants(home, run_id, None)
        rerun = run_lab(home, *args)
        if rerun.returncode != 0 or "Traceback" in rerun.stderr:
            problems.append(f"the rerun failed ({rerun.returncode}): {rerun.stderr[-800:]}")
        if db_rows(home, "select max(id) from eval_runs")[0][0] != max(run_id or 0, before or 0):
            problems.append("the rerun started a new run instead of resuming the killed one")
        problems += eval_invariants(home, db_rows(home, "select max(id) from eval_runs")[0][0], expected)
        out.add(problems, f"kill {i + 1}" + ("" if killed else " (finished before the kill)"))
    orphans = db_rows(
        home,
        "select count(*) from generations g where eval_run_id is not null and not exists "
        "(select 1 from eval_results r where r.generation_id = g.id)",
    )[0][0]
    out.notes.append(
        f"{orphans} generation(s) of an example in flight at a kill, logged without a result "
        "(the rerun answered it again)"
    )
    return out


# ---- kills: index -------------------------------------------------------------------------------


def live_index(home: Path, corpus: str = "acme") -> tuple[int | None, list[str]]:
    """The version CURRENT names, and what is wrong with it (it must load and answer)."""
    from lab.retrieval.index import LoadedIndex, current_dir

    root = home / ".lab" / "indexes" / corpus
    folder = current_dir(root)
    if folder is None:
        return None, [f"CURRENT in {root} names no complete version"]
    try:
        idx = LoadedIndex(folder)
        import numpy as np

        hits = idx.query(np.ones(idx.manifest["dim"], dtype=np.float32) / idx.manifest["dim"] ** 0.5, 3)
        return idx.manifest["version"], [] if hits else [f"{folder} answers no query"]
    except Exception as e:  # any failure to load is the finding
        return None, [f"{folder} does not load: {type(e).__name__}: {e}"]


def drill_index(home: Path, kills: int, rng: random.Random) -> Outcome:
    """Change the corpus, re-index, kill the build at a random point; the last complete version
    must still load, and `lab search` must answer."""
    out = Outcome("lab index")
    docs = home / "corpora" / "acme"
    t0 = time.perf_counter()
    base = run_lab(home, "index", "acme")
    full_s = time.perf_counter() - t0
    if base.returncode != 0:
        out.problems.append(f"baseline index failed: {base.stderr[-800:]}")
        return out
    for i in range(kills):
        before, _ = live_index(home)
        # new text to embed each time, and every other time new chunking (a full rebuild)
        (docs / "drill").mkdir(exist_ok=True)
        (docs / "drill" / f"note-{i}.md").write_text(
            f"# Drill note {i}\n\n"
            + " ".join(
                rng.choice(["orbit", "tracker", "warranty", "Skylark", "invoice", "thermal", "gimbal"])
                for _ in range(400)
            )
            + "\n"
        )
        chunking = ["--chunk-tokens", "128" if i % 2 else "160"]
        proc = spawn(home, home / f"index-kill-{i}.log", "index", "acme", *chunking)
        killed = kill_after(proc, rng.uniform(0.3, full_s))
        version, problems = live_index(home)
        if version is not None and before is not None and version not in (before, before + 1):
            problems.append(f"live version {version} after a kill of the build over version {before}")
        found = run_lab(home, "search", "acme", QUERY, "-k", "3", "--json")
        if found.returncode != 0 or "Traceback" in found.stderr:
            problems.append(f"lab search failed ({found.returncode}): {found.stderr[-800:]}")
        elif not json.loads(found.stdout or "[]"):
            problems.append("lab search returned no passages")
        out.add(problems, f"kill {i + 1}" + ("" if killed else " (finished before the kill)"))
    return out


# ---- kills: train -------------------------------------------------------------------------------


def small_dataset(folder: Path, n: int = 24) -> Path:
    """A few short input/output examples from the acme-facts training set (fast steps)."""
    src = ROOT / "lab" / "scenarios" / TASK / "train.jsonl"
    lines = [json.loads(line) for line in src.read_text().splitlines()[:n]]
    path = folder / "drill-train.jsonl"
    path.write_text("".join(json.dumps({"input": r["input"], "output": r["output"]}) + "\n" for r in lines))
    return path


TRAIN_ARGS = [
    "--max-steps",
    "8",
    "--batch-size",
    "2",
    "--max-seq-len",
    "96",
    "--save-every",
    "1",
    "--eval-every",
    "1000",
    "--val-fraction",
    "0.1",
    "--force",
    "--no-side-effects",  # the drill kills training; the side effects' own runs resume as eval runs do
]


def adapter_problems(home: Path) -> list[str]:
    """Every non-hidden folder in adapters/ must be a complete adapter that loads."""
    from lab.tuning.adapters import list_adapters

    found, problems = list_adapters(home / "adapters")
    for a in found:
        if a.gguf_path is None or not (a.path / "adapter_model.safetensors").is_file():
            problems.append(f"{a.path}: manifest present but files missing")
    return [f"half adapter: {p}" for p in problems]


def run_status(home: Path, run_ids: set[int]) -> list[str]:
    """The killed trainers' runs, once the lab refreshes them, are not 'running'."""
    from lab.engine import Lab
    from lab.tuning.jobs import refresh_run_status

    lab = Lab(home=home)
    try:
        refresh_run_status(lab)
        rows = {r["id"]: r["status"] for r in lab.store.query("select id, status from training_runs")}
    finally:
        lab.store.close()
    return [
        f"training run {i} is still '{rows[i]}' after its trainer was killed"
        for i in run_ids
        if rows.get(i) == "running"
    ]


def checkpoint_step(home: Path, name: str) -> int | None:
    from types import SimpleNamespace

    from lab.tuning.checkpoint import find_checkpoint

    ckpt = find_checkpoint(SimpleNamespace(home=SimpleNamespace(adapters=home / "adapters")), name)
    return json.loads((ckpt / "state.json").read_text())["step"] if ckpt else None


def drill_train(home: Path, kills: int, rng: random.Random, window: tuple[float, float] = (8.0, 60.0)) -> Outcome:
    """Kill `lab train --resume` at random points; check adapters, run rows and the resumption."""
    out = Outcome("lab train")
    data = small_dataset(home)
    number, name = 0, "drill-0"
    for i in range(kills + 1):  # the last one runs to the end
        if (home / "adapters" / name / "lab_adapter.json").exists():  # finished (maybe killed just after)
            number, name = number + 1, f"drill-{number + 1}"
        step = checkpoint_step(home, name)
        log = home / f"train-{i}.log"
        proc = spawn(home, log, "train", "--data", data, "--name", name, "--resume", *TRAIN_ARGS)
        killed = kill_after(proc, rng.uniform(*window) if i < kills else 900)
        text = log.read_text(errors="replace")
        problems = adapter_problems(home)
        if not killed and proc.returncode != 0:
            problems.append(f"exit {proc.returncode}: {text[-800:]}")
        if step and "resuming" in text and f"from step {step} " not in text:
            problems.append(
                f"checkpoint was at step {step} but the run said: "
                + next(line for line in text.splitlines() if "resuming" in line)
            )
        if step and not killed and "resuming" not in text:
            problems.append(f"finished without resuming the checkpoint at step {step}")
        ids = {r[0] for r in db_rows(home, "select id from training_runs where adapter_name = ?", [name])}
        if killed:
            problems += run_status(home, ids)
        steps = db_rows(
            home,
            "select run_id, step from training_steps where run_id in (%s) order by step"
            % ",".join(map(str, ids or {0})),
        )
        if not killed and [s for _, s in steps] != list(range(1, len(steps) + 1)):
            problems.append(f"training_steps of the finished run are not 1..n once each: {[s for _, s in steps]}")
        if not killed and not (home / "adapters" / name / "lab_adapter.json").exists():
            problems.append(f"the finished run left no adapter in adapters/{name}")
        label = f"kill {i + 1}" if i < kills else "final resume"
        out.add(problems, label + ("" if killed or i == kills else " (finished before the kill)"))
    out.tried -= 1  # the final resume is a check, not a kill
    out.ok -= not any(p.startswith("final resume") for p in out.problems)
    return out


# ---- bad inputs ---------------------------------------------------------------------------------


def snapshot(home: Path) -> tuple[set, dict]:
    """What a run could have written: every file under the home (lab.db aside) and the rows."""
    files = {
        (str(p.relative_to(home)), p.stat().st_size)
        for p in home.rglob("*")
        if p.is_file() and not p.name.startswith("lab.db")
    }
    tables = [r[0] for r in db_rows(home, "select name from sqlite_master where type = 'table'")]
    return files, {t: db_rows(home, f'select count(*) from "{t}"')[0][0] for t in tables}


def check_case(home: Path, case: BadCase, folder: Path) -> list[str]:
    """Run one malformed input through the CLI; what was not clean about it."""
    case.write(folder)
    before = snapshot(home)
    try:
        r = run_lab(home, *case.argv(folder), cwd=folder, timeout=300)
    except subprocess.TimeoutExpired:
        return ["no answer within 300 s"]
    problems = []
    if r.returncode not in case.codes:
        problems.append(f"exit {r.returncode}, expected {' or '.join(map(str, case.codes))}")
    if "Traceback" in r.stderr:
        problems.append("traceback: " + r.stderr.strip().splitlines()[-1][:300])
    missing = [" or ".join(alts) for alts in case.names if not any(a in r.stderr for a in alts)]
    if missing and r.returncode in case.codes:
        problems.append(f"message does not name {missing}: {r.stderr.strip()[:300]!r}")
    if len(r.stderr) > 20_000:
        problems.append(f"{len(r.stderr)} characters of stderr (the bad input echoed?)")
    after = snapshot(home)
    if r.returncode == 2:
        if after[0] - before[0]:
            problems.append(f"wrote files: {sorted(p for p, _ in after[0] - before[0])[:5]}")
        grown = {t: after[1].get(t, 0) - n for t, n in before[1].items() if after[1].get(t, 0) != n}
        if grown:
            problems.append(f"rows written: {grown}")
    return problems


def drill_bad_inputs(home: Path, base: Path, sample: int | None = None, seed: int = 0, workers: int = 1) -> Outcome:
    """Every malformed input through the CLI, each in its own copy of `home` (so `workers` run at
    once and each one's "nothing written" is its own)."""
    from concurrent.futures import ThreadPoolExecutor

    out = Outcome("bad inputs")
    run_lab(home, "log", "-n", "1")  # creates lab.db, so the snapshot has tables to count
    model = json.loads(run_lab(home, "models", "--json").stdout)
    gguf = next(Path(m["path"]) for m in model if m["id"] == "smollm2-135m-instruct")
    cases = bad_cases(gguf, seed=seed)
    if sample is not None:
        cases = random.Random(seed).sample(cases, min(sample, len(cases)))

    def one(i: int) -> list[str]:
        folder, own_home = base / f"case-{i:03d}", base / f"home-{i:03d}"
        folder.mkdir(parents=True)
        shutil.copytree(home, own_home, symlinks=True)
        problems = check_case(own_home, cases[i], folder)
        shutil.rmtree(own_home, ignore_errors=True)
        print(
            f"    [{i + 1}/{len(cases)}] {'ok' if not problems else 'NOT CLEAN'}  {cases[i].name}"
            + "".join(f"\n        ! {p}" for p in problems),
            file=sys.stderr,
            flush=True,
        )
        return problems

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for case, problems in zip(cases, pool.map(one, range(len(cases)))):
            out.add(problems, case.name)
    return out


# ---- load ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, log: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    proc = spawn(home, log, "serve", "--port", port)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            if proc.poll() is not None:
                raise RuntimeError(f"lab serve exited with {proc.returncode}: {log.read_text()[-800:]}") from None
        time.sleep(0.2)
    raise RuntimeError("lab serve did not answer within 300 s")


def compare_request(url: str, question: str, max_tokens: int) -> tuple[float, str | None, str]:
    """One Compare request over Gradio's queue API (POST, then the event stream of its result):
    (seconds, the 'logged as #N' stats text or None, the error if any)."""
    import httpx

    data = [question, "(no task: a free question)", None, ["zero-shot"], None, None, max_tokens]
    t0 = time.perf_counter()
    with httpx.Client(base_url=url, timeout=600) as client:
        r = client.post("gradio_api/call/compare", json={"data": data})
        if r.status_code != 200:
            return time.perf_counter() - t0, None, f"HTTP {r.status_code}: {r.text[:200]}"
        event_id = r.json()["event_id"]
        last, event = None, None
        with client.stream("GET", f"gradio_api/call/compare/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event in ("complete", "generating"):
                    last = json.loads(line[5:])
                elif line.startswith("data:") and event == "error":
                    return time.perf_counter() - t0, None, f"error event: {line[5:200]}"
    stats = next((v for v in last or [] if isinstance(v, str) and "logged as #" in v), None)
    return time.perf_counter() - t0, stats, None if stats else f"no stats in the answer: {str(last)[:200]}"


def drill_load(home: Path, requests: int = 8, max_tokens: int = 24) -> tuple[Outcome, dict]:
    """`lab serve` + `requests` concurrent Compare requests while a trainer writes to lab.db."""
    out = Outcome("load")
    server, url = start_server(home, home / "serve.log")
    trainer = None
    try:
        compare_request(url, "warm-up: hello", 8)  # load the model once, outside the timing
        data = small_dataset(home)
        trainer = spawn(
            home,
            home / "load-train.log",
            "train",
            "--data",
            data,
            "--name",
            "load-train",
            "--restart",
            *TRAIN_ARGS[:1],
            "30",
            *TRAIN_ARGS[2:],
        )
        time.sleep(8)  # let the trainer reach its steps (it writes one row per step)
        results: list = [None] * requests
        marks = [f"drill-{os.getpid()}-{i}" for i in range(requests)]

        def one(i):
            results[i] = compare_request(url, f"[{marks[i]}] What is a star tracker?", max_tokens)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(requests)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        train_steps = db_rows(
            home,
            "select count(*) from training_steps s join training_runs r on r.id = s.run_id "
            "where r.adapter_name = 'load-train'",
        )[0][0]
    finally:
        if trainer is not None and trainer.poll() is None:
            os.killpg(trainer.pid, signal.SIGKILL)
            trainer.wait()
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    logged = 0
    for i, (_secs, stats, error) in enumerate(results):
        problems = [error] if error else []
        rows = db_rows(home, "select id from generations where messages_json like ?", [f"%{marks[i]}%"])
        logged += len(rows)
        if len(rows) != 1:
            problems.append(f"{len(rows)} generation rows for one request")
        elif stats and f"logged as #{rows[0][0]}" not in stats:
            problems.append(f"the answer says {stats!r} but the row is #{rows[0][0]}")
        out.add(problems, f"request {i + 1}")
    for log in ("serve.log", "load-train.log"):
        if LOCKED in (home / log).read_text(errors="replace"):
            out.problems.append(f"'{LOCKED}' in {log}")
    errors = db_rows(home, "select error from app_errors")
    out.problems += [f"app_errors: {e[0][:200]}" for e in errors if e[0]]
    times = sorted(r[0] for r in results)
    figures = {
        "requests": requests,
        "answered": sum(1 for r in results if r[2] is None),
        "p50_s": statistics.median(times),
        "p95_s": times[min(len(times) - 1, int(0.95 * len(times)))],
        "rows_logged": logged,
        "train_steps_meanwhile": train_steps,
    }
    return out, figures


# ---- the report ---------------------------------------------------------------------------------


def print_outcome(o: Outcome, what: str) -> None:
    print(f"  {o.name:<10} {what} {o.ok} / {o.tried}")
    for p in o.problems:
        print(f"      ! {p}")
    for n in o.notes:
        print(f"      . {n}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=10, help="SIGKILLs per job (default 10)")
    ap.add_argument("--quick", action="store_true", help="2 kills per job, a sample of 12 bad inputs, 4 requests")
    ap.add_argument("--requests", type=int, default=8, help="concurrent Compare requests (default 8)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1, help="bad inputs run at once (default 1)")
    ap.add_argument("--only", choices=["kills", "bad", "load"], help="run one part only")
    ap.add_argument("--keep", action="store_true", help="keep the temporary lab homes (their path is printed)")
    args = ap.parse_args(argv)
    kills, sample, requests = (2, 12, 4) if args.quick else (args.kills, None, args.requests)
    rng = random.Random(args.seed)
    base = Path(tempfile.mkdtemp(prefix="fault-drill-"))
    print(f"fault drill · seed {args.seed} · {os.cpu_count()} CPUs · work in {base}", flush=True)
    failed = 0
    try:
        if args.only in (None, "kills"):
            print(f"\nKills (SIGKILL at a random point, {kills} per job, then rerun/resume): kills survived / tried")
            home = make_home(base)
            for drill in (drill_index, drill_eval, drill_train):
                t0 = time.perf_counter()
                o = drill(home, kills, rng)
                print_outcome(o, "survived")
                print(f"      ({time.perf_counter() - t0:.0f} s)", flush=True)
                failed += bool(o.problems)
        if args.only in (None, "bad"):
            print(
                "\nBad inputs (each through the CLI: exit 2, names the file and line/field, no traceback, "
                "nothing written): handled cleanly / tried"
            )
            o = drill_bad_inputs(make_home(base), base / "cases", sample=sample, seed=args.seed, workers=args.workers)
            print_outcome(o, "handled cleanly")
            failed += bool(o.problems)
        if args.only in (None, "load"):
            print(f"\nLoad ({requests} concurrent Compare requests on `lab serve` while a trainer writes lab.db)")
            o, fig = drill_load(make_home(base), requests=requests)
            print_outcome(o, "answered and logged once")
            print(
                f"      requests {fig['requests']}, answered {fig['answered']}, p50 {fig['p50_s']:.1f} s, "
                f"p95 {fig['p95_s']:.1f} s, rows logged {fig['rows_logged']}, "
                f"trainer steps written meanwhile {fig['train_steps_meanwhile']}"
            )
            failed += bool(o.problems)
    finally:
        if args.keep:
            print(f"\nkept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print("\nall clean" if not failed else f"\n{failed} part(s) found problems (listed with !)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
