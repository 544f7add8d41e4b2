"""The RAG rung at its best (lab/evaluation/rag_rung.py): every (k, chunk size) measured once as its own
run, each chunk size an index version built once and reused, the retrieval check skipping what
cannot help, rag with worked examples, the race, the pick and how many it was the best of."""

from __future__ import annotations

import json

import pytest

from lab.backends.fake import FakeBackend
from lab.climb import climb
from lab.engine import Lab
from lab.evaluation import run_eval, summarize
from lab.evaluation.rag_rung import (
    RAG_K,
    RagConfig,
    best_rag_config,
    best_rag_for_run,
    candidates,
    measure_rag_rung,
    skip_by_retrieval,
)
from lab.evaluation.runner import EvalError
from lab.evaluation.summary import load_run
from lab.retrieval import index_root, loaded_index, sweep_chunk_sizes
from lab.tasks import load_task


def _config(k, size, own=False, score=None, n=0, **kw) -> RagConfig:
    return RagConfig(k, size, own, None, False, score=score, n=n, **kw)


def test_skip_rules_leave_out_a_k_that_finds_nothing_more_and_a_chunk_size_clearly_behind():
    plan = [_config(k, size, own=size == 160) for size in (80, 160, 256) for k in (2, 4, 8)]
    per_size = {
        80: {2: (0.50, 60), 4: (0.85, 60), 8: (0.85, 60)},  # 8 finds nothing 4 did not
        160: {2: (0.60, 60), 4: (0.90, 60), 8: (0.95, 60)},
        256: {2: (0.10, 60), 4: (0.15, 60), 8: (0.20, 60)},  # clearly behind 160's 95%
    }
    notes = skip_by_retrieval(plan, per_size, own=160)
    skipped = {(c.chunk_tokens, c.k) for c in plan if c.skipped}
    assert skipped == {(80, 8), (256, 2), (256, 4), (256, 8)}
    assert len(notes) == 4 and all(n.startswith("skipped rag, ") for n in notes)
    assert "no more often than 4's (85%)" in next(c.skipped for c in plan if (c.chunk_tokens, c.k) == (80, 8))
    assert "clearly less than chunks of 160" in next(c.skipped for c in plan if c.chunk_tokens == 256)


def test_the_rag_arms_own_configuration_is_never_skipped_and_without_figures_nothing_is():
    plan = [_config(k, 160, own=True) for k in (2, 4)]
    skip_by_retrieval(plan, {160: {2: (0.9, 40), 4: (0.9, 40)}}, own=160)
    assert not [c for c in plan if c.skipped]  # 4 finds no more than 2, but it is the rag arm's own
    plan = [_config(k, s) for s in (80, 160) for k in (2, 4)]
    notes = skip_by_retrieval(plan, {80: {}, 160: {}}, own=160)
    assert not [c for c in plan if c.skipped] and "every configuration is answered" in notes[0]


def test_the_pick_is_the_best_answered_in_full_and_the_cheaper_on_a_tie():
    configs = [
        _config(2, 160, own=True, score=0.5, n=40),
        _config(4, 160, own=True, score=0.6, n=40),
        _config(8, 80, score=0.6, n=40),
        _config(8, 256, score=0.9, n=12, dropped=True),
        _config(4, 256, skipped="behind"),
    ]
    best = best_rag_config(configs)
    assert (best.k, best.chunk_tokens) == (4, 160)  # 0.6 twice: fewer passages wins
    assert candidates(configs) == 4  # the dropped one counts, the skipped one was never answered
    assert best.label() == "rag, 4 passages of 160 tokens"
    with pytest.raises(EvalError, match="no RAG configuration"):
        best_rag_config([_config(4, 160, skipped="x")])


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """acme-facts swept once on the real embedder and the fake model (every answer wrong), shared by
    the tests below: indexing three chunk sizes is the slow part."""
    lab = Lab(home=tmp_path_factory.mktemp("rag-sweep"), default_model="fake")
    lab.fake = FakeBackend(model_id="fake", default="I do not know")
    lab.add_backend(lab.fake)
    notes = []
    configs = measure_rag_rung(lab, "acme-facts", limit=24, on_note=notes.append)
    yield lab, configs, notes
    lab.store.close()


def test_each_configuration_is_one_run_on_an_index_version_built_once(swept):
    """Each chunk size is a version of the acme index built once, the corpus's own untouched; rag at
    4 passages on it is the run `lab eval` makes; each run searched its own chunking; skipped
    configurations never answer; rag with examples gets the few-shot turns."""
    lab, configs, notes = swept
    sizes = sweep_chunk_sizes(lab, "acme")
    assert sizes == [80, 160, 256]
    built = {size: index_root(lab, "acme", size) for size in sizes}
    assert built[160] == lab.home.indexes / "acme"
    assert (built[80].name, built[256].name) == ("acme~80t", "acme~256t")
    versions = {size: loaded_index(lab, "acme", chunk_tokens=size).manifest for size in sizes}
    assert {size: m["chunking"]["chunk_tokens"] for size, m in versions.items()} == {80: 80, 160: 160, 256: 256}
    assert {m["version"] for m in versions.values()} == {1}  # each built once
    answered = [c for c in configs if not c.skipped]
    assert all(c.eval_run_id and c.n for c in answered)
    assert all(c.eval_run_id is None and c.n == 0 for c in configs if c.skipped)
    assert len({c.eval_run_id for c in answered}) == len(answered)  # one run per configuration
    skip_notes = [n for n in notes if n.startswith("skipped")]
    assert skip_notes == [f"skipped {c.label()}: {c.skipped}" for c in configs if c.skipped]
    main = next(c for c in configs if c.k == RAG_K and c.own and not c.shots)
    assert run_eval(lab, "acme-facts", ["rag"], limit=24, progress=False) == main.eval_run_id
    hashes: dict = {}
    for c in answered:
        rows = lab.store.query("select index_hash from generations where eval_run_id = ?", [c.eval_run_id])
        hashes.setdefault(c.chunk_tokens, set()).update(r["index_hash"] for r in rows)
    assert all(len(h) == 1 for h in hashes.values()) and len(set().union(*hashes.values())) == len(hashes)
    shot = next(c for c in configs if c.shots)
    k = load_task("acme-facts").few_shot_k
    assert shot.shots == {"mode": "fixed", "k": k} and f"{k} fixed examples" in shot.label()
    rows = lab.store.query("select messages_json from generations where eval_run_id = ? limit 1", [shot.eval_run_id])
    roles = [m["role"] for m in json.loads(rows[0]["messages_json"])]
    assert roles[0] == "system" and roles[1:3] == ["user", "assistant"] and roles[-1] == "user"


def test_a_second_sweep_resumes_every_run_and_embeds_nothing(swept):
    lab, configs, _ = swept
    calls, misses = len(lab.fake.calls), lab.embedder().misses
    again = measure_rag_rung(lab, "acme-facts", limit=24)
    assert len(lab.fake.calls) == calls and lab.embedder().misses == misses
    assert [c.eval_run_id for c in again] == [c.eval_run_id for c in configs]
    assert loaded_index(lab, "acme", chunk_tokens=80).manifest["version"] == 1


def test_the_advisor_and_the_climb_take_the_rag_rung_at_its_best(swept):
    """The advisor names the RAG rung by the sweep's best configuration, judged as the best of every
    one answered; the climb's rag step measures the sweep (its runs reused) and counts them all."""
    from lab.advisor import recommend_for_run
    from lab.evaluation import latest_run

    lab, configs, _ = swept
    main = next(c for c in configs if c.k == RAG_K and c.own and not c.shots)
    # a sweep's runs are one configuration each: `lab eval` resuming one makes it the task's latest
    assert run_eval(lab, "acme-facts", ["rag"], limit=24, progress=False) == main.eval_run_id
    assert latest_run(lab, "acme-facts")["id"] == main.eval_run_id != max(c.eval_run_id or 0 for c in configs)
    best = best_rag_for_run(lab, load_run(lab, main.eval_run_id))
    assert best is not None and best.candidates == candidates(configs)
    assert best.config.key == best_rag_config(configs).key  # all wrong: the cheapest, 2 passages
    board = summarize(lab, main.eval_run_id)
    rec = recommend_for_run(lab, board)
    shown = [a.arm for a in board.others]
    assert any(name.startswith(f"{best.config.label()} (best of {best.candidates}") for name in shown)
    lines: list[str] = []
    misses = lab.embedder().misses
    result = climb(lab, "acme-facts", limit=24, up_to="rag", progress=False, say=lines.append)
    assert [s["step"] for s in result.path] == ["prompt", "rag"]
    rag = result.path[1]["results"]
    assert "rag" in rag and sum(1 for name in rag if name.startswith("rag, ")) >= 3
    assert lab.embedder().misses == misses  # the index versions were reused
    assert "rag's configurations" in "\n".join(lines)
    assert rec.evidence["choice"]["name"]


def test_lab_eval_best_rag_prints_each_configuration_and_judges_the_pick_as_the_best_of_n(swept):
    from click.testing import CliRunner

    from lab.cli import cli

    lab, configs, _ = swept
    obj = {"lab": lab, "home": str(lab.home.root)}
    r = CliRunner().invoke(cli, ["eval", "acme-facts", "--best-rag", "--limit", "24"], obj=obj)
    assert r.exit_code == 0, r.output
    n = candidates(configs)
    assert (
        f"best RAG configuration: rag, 2 passages of 160 tokens (0.000 on 24 examples, the best of {n} answered)"
        in r.output
    )
    assert all(c.label() in r.output for c in configs if not c.shots)
    assert " fixed examples " in r.output  # rag with examples: the prompt rung's best measured, if any
    assert sum("skipped: " in line for line in r.output.splitlines()) == sum(1 for c in configs if c.skipped)
    r = CliRunner().invoke(cli, ["eval", "acme-facts", "--best-rag", "--chunk-sizes", "big"], obj=obj)
    assert r.exit_code == 2 and "--chunk-sizes takes comma-separated whole numbers" in r.output
    r = CliRunner().invoke(cli, ["eval", "specialty", "--best-rag"], obj=obj)
    assert r.exit_code == 2 and "names no corpus" in r.output
