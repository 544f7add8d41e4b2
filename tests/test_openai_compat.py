"""The server backend against a real OpenAI-compatible server on loopback: llama-cpp-python's own
(`python -m llama_cpp.server`), serving the default GGUF and, as a second alias, the same GGUF with a
LoRA adapter, from the config `lab adapters serve --engine llama-cpp-python` writes. Same weights,
same engine as the local llama.cpp backend: every arm must answer and score the same."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fake_adapters import random_adapter

from lab.backends.base import ServerUnavailable
from lab.engine import Lab
from lab.evaluation.runner import run_eval
from lab.export.server import die_with_parent, free_port  # how `lab export --verify` starts its server
from lab.tuning.serve_commands import serve_plan

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TASK, ADAPTER = "acme-facts", "acme-facts"  # the tune arms use the adapter named after the task
ARMS = ["zero-shot", "few-shot", "rag", "tune", "tune+rag"]


class Server:
    def __init__(self, config: dict, folder: Path):
        self.config_file = folder / "llama-cpp-server.json"
        self.config_file.write_text(json.dumps(config))
        self.log = folder / "server.log"
        self.url = f"http://{config['host']}:{config['port']}/v1"
        self.proc = None

    def start(self, wait_s: float = 180) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "llama_cpp.server", "--config_file", str(self.config_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        deadline = time.time() + wait_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the server did not answer in {wait_s} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only this server
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("serving-home")
    lab = Lab(home=home)
    random_adapter(lab, ADAPTER)
    plan = serve_plan(lab, "llama-cpp-python", port=free_port())
    assert [m["model_alias"] for m in plan.config["models"]] == ["smollm2-135m-instruct", ADAPTER]
    server = Server(plan.config, home)
    server.start()
    spec = plan.spec + "?tokenizer=smollm2-135m-instruct"  # its template and tokenizer: exact counts
    try:
        yield lab, spec, server
    finally:
        server.kill()
        lab.store.close()


def answers(lab, run_id) -> dict:
    rows = lab.store.query(
        "select r.example_id, r.arm, r.scores_json, r.error, g.output from eval_results r "
        "left join generations g on g.id = r.generation_id where r.eval_run_id = ?",
        [run_id],
    )
    return {(r["example_id"], r["arm"]): (r["output"], json.loads(r["scores_json"]), r["error"]) for r in rows}


def test_every_arm_answers_and_scores_the_same_as_the_local_backend(served):
    lab, spec, _ = served
    local = answers(lab, run_eval(lab, TASK, ARMS, limit=2, progress=False, fresh=True))
    remote = answers(lab, run_eval(lab, TASK, ARMS, limit=2, model=spec, progress=False, fresh=True, concurrency=2))
    assert len(local) == len(remote) == 10 and set(local) == set(remote)
    assert not [k for k, v in local.items() if v[2]] and not [k for k, v in remote.items() if v[2]]
    differ = {k: (local[k][0], remote[k][0]) for k in local if local[k] != remote[k]}
    assert not differ
    tuned = [local[(ex, "tune")][0] != local[(ex, "zero-shot")][0] for ex, arm in local if arm == "tune"]
    assert any(tuned)  # the adapter alias really serves the adapter
    served_models = {
        r["model_id"] for r in lab.store.query("select distinct model_id from generations where arm = 'tune'")
    }
    assert served_models == {"smollm2-135m-instruct", "openai:smollm2-135m-instruct"}


def test_token_counts_through_the_servers_tokenize_are_exact(served):
    lab, spec, _ = served
    remote = lab.backend(spec.split("?")[0])  # no local tokenizer: the server's /extras/tokenize
    local = lab.backend()
    assert remote.token_counts == "server"
    for text in ["What is the list price of the FL-200?", "<|im_start|>user\nHi<|im_end|>\n", "é ü 東京 🚀", ""]:
        assert remote.count_tokens(text) == local.count_tokens(text), text


def test_a_served_judge_is_held_to_the_verdict_schema_in_both_orders(served):
    """A judge on an OpenAI-compatible server: the verdict held by the JSON schema (the server cannot
    be held to a label set), read from the JSON, never unreadable; no probabilities from a server."""
    from lab.evaluation import certificate, judge, pairwise
    from lab.tasks import load_task

    lab, spec, _ = served
    task = load_task(TASK)
    run_id = run_eval(lab, task, ["zero-shot", "few-shot"], limit=2, progress=False)
    pairs = pairwise.pairs_for(lab, task, ["zero-shot", "few-shot"], run_id)
    run = judge.judge_pairs(lab, task, pairs, model=spec)
    rows = lab.store.judge_verdicts(run_id, "zero-shot", "few-shot", run.judge)
    assert run.asked == 4 and {r["order"] for r in rows} == {"ab", "ba"}
    outputs = [json.loads(lab.store.generation(r["generation_id"])["output"]) for r in rows]
    assert all(set(o) == {"verdict"} and o["verdict"] in ("A", "B", "tie") for o in outputs)
    assert certificate.certificate(lab, pairs, run.judge).unparseable_rate == 0.0
    assert judge.weighted_win_rate(lab, pairs, run.judge) is None


def test_concurrency_4_loses_and_duplicates_nothing_and_a_killed_server_resumes(served):
    lab, spec, server = served
    rows = []

    def kill_after_two(row):
        rows.append(row)
        if len(rows) == 2:
            server.kill()

    backend = lab.backend(spec)
    backend.client.retries, backend.client.backoff_s = 1, 0.05  # fail fast once it is gone
    with pytest.raises(ServerUnavailable, match="is it running"):
        run_eval(
            lab,
            "specialty",
            ["zero-shot"],
            limit=8,
            model=spec,
            progress=False,
            concurrency=4,
            on_result=kill_after_two,
        )
    run = lab.store.query("select * from eval_runs where task = 'specialty' order by id desc limit 1")[0]
    first = lab.store.query("select example_id from eval_results where eval_run_id = ?", [run["id"]])
    assert run["status"] == "failed" and 2 <= len(first) < 8
    server.start()
    run_id = run_eval(lab, "specialty", ["zero-shot"], limit=8, model=spec, progress=False, concurrency=4)
    keys = [
        r["example_id"] for r in lab.store.query("select example_id from eval_results where eval_run_id = ?", [run_id])
    ]
    assert run_id == run["id"] and len(keys) == len(set(keys)) == 8
    gens = lab.store.query("select count(*) as n from generations where eval_run_id = ? and error is null", [run_id])
    assert gens[0]["n"] == 8  # one logged answer per example: nothing asked twice


def test_a_served_teacher_labels_for_a_local_student_and_is_priced_by_its_tokens(served):
    """`lab distill --teacher openai:...`: the server's answers are the labels (logged under its
    model), the local student trains on them, and the ledger prices the served teacher by its
    tokens at the task's prices and the local student by its time."""
    from lab.distill import ledger_lines, run_distill, settings_for
    from lab.tasks import load_task

    lab, spec, _ = served
    task = load_task("acme-facts")  # free text: any answer is one (a server cannot be held to a label set)
    task = task.model_copy(update={"cost": task.cost.model_copy(update={"price_per_1k_prompt_tokens": 0.5})})
    settings = settings_for(
        task,
        spec + ":few-shot@2",
        name="served-distilled",
        max_inputs=4,
        limit=3,
        gold=False,
        max_steps=2,
        train={"batch_size": 2, "max_seq_len": 256, "threads": 1},
    )
    distill_id = run_distill(lab, task, settings, progress=False, say=lambda m: None)
    ledger = json.loads(lab.store.distill(distill_id)["ledger_json"])
    labelled = lab.store.query(
        "select g.model_id from generations g join eval_runs r on r.id = g.eval_run_id where r.task = ?",
        ["acme-facts~served-distilled"],
    )
    assert len(labelled) == 4 and all(r["model_id"].startswith("openai:") for r in labelled)
    teacher, zero, distilled = ledger["rows"]
    assert teacher["model"].startswith("openai:") and teacher["basis"] == "tokens"
    assert zero["basis"] == distilled["basis"] == "time" and distilled["how"] == "adapter served-distilled"
    assert ledger["labels"]["kept"] + ledger["labels"]["dropped"] == 4 and ledger["labels"]["kept"] > 0
    assert ledger["sentence"] in "\n".join(ledger_lines(ledger))
    from lab.distill import DistillError

    label_task = load_task("specialty")  # a server takes a JSON schema, not a label set: said before anything runs
    with pytest.raises(DistillError, match=r"cannot be held to the task's labels; leave out \+constrained"):
        run_distill(lab, label_task, settings_for(label_task, spec + ":zero-shot+constrained"), progress=False)
