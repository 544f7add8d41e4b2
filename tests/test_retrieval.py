"""The RAG rung: corpus reading, chunking, context packing (unit tests, fakes only for logic), and
real embeddings + a real hnswlib index on the sample corpus (integration)."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lab.backends.base import ContextTooLong
from lab.backends.fake import FakeBackend
from lab.retrieval import CorpusWarning, Passage, RetrievalError, index_corpus, pack_passages, search
from lab.retrieval.chunking import Chunk, chunk_document
from lab.retrieval.corpus import Document, html_to_text, resolve_corpus
from lab.retrieval.index import LoadedIndex, current_dir

REPO = Path(__file__).resolve().parents[1]
ACME = REPO / "corpora" / "acme"
ACME_EVAL = REPO / "lab" / "scenarios" / "acme-facts" / "eval.jsonl"
needs_acme = pytest.mark.skipif(
    not ACME.is_dir() or not ACME_EVAL.exists(), reason="the sample corpus is made by scripts/make_scenarios.py"
)


def words(text: str) -> int:
    return len(text.split())


# ---- chunking -------------------------------------------------------------------------------

DOC = (
    """# Widget manual

Intro paragraph about widgets. It has two sentences.

## Installation

"""
    + " ".join(f"Step {i} says to turn screw number {i} by one quarter turn." for i in range(40))
    + """

## Safety

Do not submerge the widget.

## Warranty

The warranty lasts 3 years.
"""
)


def test_chunks_are_exact_spans_within_budget():
    doc = Document("manual.md", "manual.md", "Widget manual", DOC)
    chunks = chunk_document(doc, words, chunk_tokens=40, overlap=8)
    assert len(chunks) > 3
    for c in chunks:
        assert c.text == DOC[c.start : c.end]  # a citation can point at exact characters
        assert words(c.text) <= 40
        assert c.source == "manual.md" and c.title == "Widget manual"
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(DOC) if not ch.isspace())  # nothing lost


def test_chunks_follow_headings_and_overlap_inside_a_section():
    doc = Document("manual.md", "manual.md", "Widget manual", DOC)
    chunks = chunk_document(doc, words, chunk_tokens=40, overlap=8)
    install = [c for c in chunks if c.heading == "Installation"]
    assert install[0].text.startswith("## Installation")  # a big section starts its own chunk
    assert len(install) > 2
    for a, b in zip(install, install[1:]):
        assert b.start < a.end  # the tail of one chunk opens the next
        assert words(DOC[b.start : a.end]) <= 8
    # Small sections that fit together share a chunk, which still starts at a heading.
    last = chunks[-1]
    assert last.text.startswith("## Safety") and "3 years" in last.text
    # The embedded text carries the title and the section, so a continuation chunk keeps its context.
    assert install[1].embed_text.startswith("Widget manual > Installation\n")


def test_very_long_sentence_is_cut_between_words():
    text = "word " * 500
    chunks = chunk_document(Document("x.txt", "x.txt", "x", text), words, chunk_tokens=50, overlap=0)
    assert all(words(c.text) <= 50 for c in chunks)
    assert sum(words(c.text) for c in chunks) == 500


def test_chunk_hash_follows_content_and_context():
    a = Chunk("a.md", "a.md", "T", "", 0, 5, "hello", 1)
    assert a.hash == Chunk("b.md", "b.md", "T", "", 9, 14, "hello", 1).hash  # same text, same vector
    assert a.hash != Chunk("a.md", "a.md", "T", "", 0, 5, "hellO", 1).hash
    assert a.hash != Chunk("a.md", "a.md", "Other title", "", 0, 5, "hello", 1).hash


def test_bad_chunking_settings_are_refused():
    doc = Document("a.md", "a.md", "a", "text")
    with pytest.raises(ValueError, match="overlap"):
        chunk_document(doc, words, chunk_tokens=40, overlap=30)


def test_html_keeps_headings_and_drops_scripts():
    title, text = html_to_text(
        "<html><head><title>Help</title><script>var x</script></head><body>"
        "<h2>Returns</h2><p>Within <b>45</b> days.</p><ul><li>one</li><li>two</li></ul>"
        "<script>alert(1)</script></body></html>"
    )
    assert title == "Help"
    assert "## Returns" in text and "Within 45 days." in text and "- one" in text
    assert "alert" not in text and "var x" not in text


# ---- corpus errors (no embedding needed: they happen before) --------------------------------


def test_missing_and_empty_corpora_are_clear_errors(tmp_path):
    from lab.engine import Lab

    lab = Lab(home=tmp_path)
    with pytest.raises(RetrievalError, match="no corpus 'nope'"):
        index_corpus(lab, "nope", progress=False)
    (tmp_path / "corpora" / "empty").mkdir(parents=True)
    with pytest.raises(RetrievalError, match=r"corpora/empty has no readable documents"):
        index_corpus(lab, "empty", progress=False)
    junk = tmp_path / "corpora" / "junk"
    junk.mkdir()
    (junk / "a.md").write_bytes(b"\x00\x01binary")
    (junk / "b.txt").write_text("   \n")
    with pytest.raises(RetrievalError) as e:  # the error lists the skipped files
        index_corpus(lab, "junk", progress=False)
    assert "a.md: skipped, binary" in str(e.value) and "b.txt: skipped, empty" in str(e.value)
    assert not [p.name for p in lab.home.indexes.iterdir()]  # refused builds leave no index and no lock file
    assert resolve_corpus(lab.home, junk) == ("junk", junk.resolve())  # a path works too


def test_a_bare_name_the_home_lacks_is_the_sample_corpus_for_every_command(tmp_path):
    """issue 24: `lab index acme` in a fresh home failed while a task naming `acme` found the sample."""
    from types import SimpleNamespace

    from lab import ladder
    from lab.engine import Lab
    from lab.retrieval.corpus import SAMPLE_CORPORA

    if not (SAMPLE_CORPORA / "acme").is_dir():
        pytest.skip("no sample corpus")
    lab = Lab(home=tmp_path)
    sample = (SAMPLE_CORPORA / "acme").resolve()
    assert resolve_corpus(lab.home, "acme") == ("acme", sample)  # what lab index / lab search use
    assert ladder.task_corpus(lab, SimpleNamespace(name="t", corpus="acme")) == str(sample)  # what a task's arms use
    (tmp_path / "corpora" / "acme").mkdir(parents=True)  # the home's own copy wins, for both
    assert resolve_corpus(lab.home, "acme") == ("acme", (tmp_path / "corpora" / "acme").resolve())
    assert ladder.task_corpus(lab, SimpleNamespace(name="t", corpus="acme")) == "acme"
    with pytest.raises(ladder.ArmError, match="task 't': no corpus 'nope'"):
        ladder.task_corpus(lab, SimpleNamespace(name="t", corpus="nope"))


# ---- packing: the context budget ------------------------------------------------------------


def _passages(n, rng=random):
    return [
        Passage(
            " ".join(f"w{i}x{j}" for j in range(rng.randint(5, 120))),
            f"doc{i}.md",
            f"Doc {i}",
            (0, 10),
            1 - i / 100,
            f"doc{i}.md@{i}",
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("seed", range(20))
def test_packing_never_exceeds_the_context(seed):
    rng = random.Random(seed)
    backend = FakeBackend(n_ctx=rng.choice([256, 512, 1024]))
    passages = _passages(rng.randint(0, 12), rng)
    max_tokens = rng.choice([16, 64, 256, 4096])
    messages, kept = pack_passages(backend, "what is w3x4?", passages, "Be brief.", max_tokens=max_tokens)
    used = backend.count_tokens(backend.render(messages))
    assert used + min(max_tokens, backend.n_ctx // 2) <= backend.n_ctx  # room for the answer too
    # Kept passages are the best-ranked ones, in rank order, numbered from [1].
    assert [p.chunk_id for p in kept] == [p.chunk_id for p in passages[: len(kept)]] or (
        len(kept) == 1 and kept[0].text != passages[0].text
    )
    for i in range(1, len(kept) + 1):
        assert f"[{i}] " in messages[0]["content"]


def test_packing_cuts_the_best_passage_when_nothing_else_fits():
    backend = FakeBackend(n_ctx=256)
    big = Passage(" ".join(["fact"] * 1000), "big.md", "Big", (0, 4999), 0.9, "big.md@1")
    messages, kept = pack_passages(backend, "q?", [big], max_tokens=64)
    assert len(kept) == 1 and 20 < len(kept[0].text) < len(big.text)
    assert kept[0].span == (0, len(kept[0].text))
    assert backend.count_tokens(backend.render(messages)) + 64 <= 256


def test_packing_refuses_a_question_longer_than_the_context():
    with pytest.raises(ContextTooLong):
        pack_passages(FakeBackend(n_ctx=256), "why " * 400, _passages(3), max_tokens=16)


# ---- real embeddings, a real index, the sample corpus ---------------------------------------


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One lab (one embedder load) for the integration tests; acme copied into its home."""
    if not ACME.is_dir():
        pytest.skip("no sample corpus")
    from lab.engine import Lab

    home = tmp_path_factory.mktemp("raghome")
    shutil.copytree(ACME, home / "corpora" / "acme")
    # One llama.cpp thread: on a busy machine (CI, other tests) a thread waiting for a core stalls
    # the other at every barrier, and a 135M model gains little from a second thread anyway.
    lab = Lab(home=home, n_threads=1)
    report = index_corpus(lab, "acme", progress=False)
    assert report.rebuilt_reason == "no index yet" and report.chunks == report.added > 40
    return lab


@needs_acme
@pytest.mark.integration
def test_search_finds_the_document_that_answers(lab):
    rows = [json.loads(line) for line in ACME_EVAL.read_text().splitlines() if line.strip()][::3]
    hits = 0
    for row in rows:
        passages = search(lab, "acme", row["input"], k=4)
        assert len(passages) == 4 and passages[0].score >= passages[-1].score
        hits += any(p.source.split("#")[0] == row["gold_doc"] for p in passages)
    assert hits / len(rows) >= 0.85, f"recall@4 {hits}/{len(rows)}"
    p = search(lab, "acme", "How much does the AX-220 Skylark star tracker cost?", k=1)[0]
    assert p.source == "products/ax-220.md" and "$649" in p.text
    text = (lab.home.corpora / "acme" / p.source).read_text()
    assert text[p.span[0] : p.span[1]] == p.text  # the span points into the file


@needs_acme
@pytest.mark.integration
def test_reindex_without_changes_embeds_nothing(lab):
    embedder = lab.embedder()
    before = embedder.misses
    report = index_corpus(lab, "acme", progress=False)
    assert (report.added, report.changed, report.removed, report.embedded) == (0, 0, 0, 0)
    assert report.unchanged == report.chunks and report.rebuilt_reason is None
    assert embedder.misses == before


@needs_acme
@pytest.mark.integration
def test_editing_one_file_reembeds_only_its_chunks(lab):
    corpus = lab.home.corpora / "acme-edit"
    shutil.copytree(ACME, corpus)
    embedder = lab.embedder()
    before = embedder.misses
    first = index_corpus(lab, "acme-edit", progress=False)
    assert embedder.misses == before and first.embedded == 0  # same texts: all from the SQLite cache

    doc = corpus / "products" / "ax-220.md"
    doc.write_text(doc.read_text().replace("$649", "$729"))
    (corpus / "company" / "careers.md").unlink()
    (corpus / "support" / "new-note.txt").write_text("Lab visits\n\nVisitors may tour the lab on Fridays at 14:00.\n")
    report = index_corpus(lab, "acme-edit", progress=False)
    assert report.files_changed == 3
    assert report.changed == 1 and report.added == 1 and report.removed >= 1
    assert embedder.misses - before == report.embedded == 2  # the edited chunk and the new file
    assert report.unchanged == first.chunks - report.changed - report.removed

    sources = {p.source for p in search(lab, "acme-edit", "careers jobs hiring at Acme", k=10)}
    assert "company/careers.md" not in sources  # deleted chunks are never returned
    p = search(lab, "acme-edit", "How much does the AX-220 Skylark star tracker cost?", k=1)[0]
    assert "$729" in p.text and "$649" not in p.text

    again = index_corpus(lab, "acme-edit", progress=False, chunk_tokens=128)
    assert again.rebuilt_reason.startswith("chunking changed from 160 tokens")


@pytest.mark.integration
def test_answer_follows_an_edited_fact(lab):
    """Change a price in the documents, re-index, and the RAG answer (SmolLM2-135M, llama.cpp)
    changes with it. Plain one-line documents: the 135M model copies a fact from prose reliably."""
    corpus = lab.home.corpora / "shop"
    corpus.mkdir()
    (corpus / "prices.md").write_text("# Prices\n\nThe Zorblax 3000 costs $149.\n")
    (corpus / "hours.md").write_text("# Opening hours\n\nThe Acme shop in Lisbon opens at 08:30 on weekdays.\n")
    (corpus / "returns.md").write_text("# Returns\n\nYou can return any Acme product within 45 days.\n")
    index_corpus(lab, "shop", progress=False)
    question = "How much does the Zorblax 3000 cost?"
    before, row_before, passages = _ask(lab, "shop", question)
    assert passages[0].source == "prices.md" and "$149" in before.text

    (corpus / "prices.md").write_text("# Prices\n\nThe Zorblax 3000 costs $899.\n")
    assert index_corpus(lab, "shop", progress=False).changed == 1
    after, row_after, _ = _ask(lab, "shop", question)
    assert "$899" in after.text and "$149" not in after.text

    rows = {
        r["id"]: r for r in lab.store.query("select * from generations where id in (?, ?)", [row_before, row_after])
    }
    assert rows[row_before]["arm"] == "rag" and rows[row_before]["corpus"] == "shop"
    assert rows[row_before]["index_hash"] != rows[row_after]["index_hash"]
    retrieved = json.loads(rows[row_after]["retrieved_json"])
    assert retrieved[0]["source"] == "prices.md" and {"chunk_id", "score"} <= set(retrieved[0])
    assert "[1] (Prices)" in json.loads(rows[row_after]["messages_json"])[0]["content"]


def _ask(lab, corpus, question):
    from lab.retrieval import ask_rag

    return ask_rag(
        lab,
        corpus,
        question,
        k=2,
        options=lab.options(max_tokens=24),
        system="Answer with the short answer only, from the sources.",
    )


@needs_acme
@pytest.mark.integration
def test_real_prompt_fits_a_small_context(lab):
    """The real tokenizer and chat template: with n_ctx 512 the passages are trimmed, never overflow."""
    from lab.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(lab.model_info(), n_ctx=512, n_threads=1)
    passages = search(lab, "acme", "What is the warranty on the SDR-12 and how do returns work?", k=8)
    messages, kept = pack_passages(backend, "What is the warranty on the SDR-12?", passages, max_tokens=128)
    assert 0 < len(kept) < 8
    assert backend.count_tokens(backend.render(messages)) + 128 <= 512
    gen = backend.generate(messages, lab.options(max_tokens=4))  # llama.cpp takes it as it is
    assert gen.prompt_tokens + 128 <= 512


KILLER = textwrap.dedent("""
    import os, sys, time
    import lab.retrieval.index as ix
    from lab.engine import Lab
    from lab.retrieval import index_corpus

    point = sys.argv[3]
    write_json, replace = ix._write_json, os.replace

    def pause(where):
        if where == point:
            print("PAUSED", flush=True)
            time.sleep(120)  # the test kills us here

    def slow_write_json(path, data):
        write_json(path, data)
        pause(path.name)

    def slow_replace(src, dst):
        if str(dst).endswith("CURRENT"):
            pause("CURRENT")
        replace(src, dst)

    ix._write_json = slow_write_json
    os.replace = slow_replace
    index_corpus(Lab(home=sys.argv[1]), sys.argv[2], progress=False)
""")


@needs_acme
@pytest.mark.integration
@pytest.mark.parametrize("point", ["texts.json", "CURRENT"])
def test_a_killed_build_keeps_the_previous_index(lab, tmp_path, point):
    name = f"acme-kill-{point.split('.')[0].lower()}"
    corpus = lab.home.corpora / name
    shutil.copytree(ACME, corpus)
    index_corpus(lab, name, progress=False)
    index_root = lab.home.indexes / name
    live = current_dir(index_root)
    old = LoadedIndex(live)

    (corpus / "policies" / "returns.md").unlink()  # a change that needs no embedding model
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(lab.home.root), name, point], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert proc.stdout.readline().strip() == "PAUSED", "the build never reached the kill point"
        os.kill(proc.pid, signal.SIGKILL)  # killed halfway: after partial writes, before the switch
    finally:
        proc.wait(timeout=30)

    assert current_dir(index_root) == live  # still the previous version
    survivor = LoadedIndex(live)
    assert survivor.hash == old.hash
    passages = search(lab, name, "How many days do I have to return an item?", k=4)
    assert any(p.source == "policies/returns.md" for p in passages)  # the old index still answers

    report = index_corpus(lab, name, progress=False)  # the next build cleans up and finishes
    assert report.removed > 0 and report.embedded == 0
    assert not list(index_root.glob(".tmp-*")) and len(list(index_root.glob("v*"))) == 1
    assert all(
        p.source != "policies/returns.md" for p in search(lab, name, "How many days do I have to return an item?", k=4)
    )


@needs_acme
@pytest.mark.integration
def test_bad_files_are_skipped_with_a_warning_naming_them(lab):
    corpus = lab.home.corpora / "mixed"
    corpus.mkdir()
    (corpus / "good.md").write_text("# Opening hours\n\nThe Lisbon shop opens at 08:30 on weekdays.\n")
    (corpus / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (corpus / "broken.txt").write_bytes(b"caf\xe9 au lait")  # latin-1, not UTF-8
    (corpus / "notes.jsonl").write_text('{"id": "a", "text": "Parking is free after 18:00."}\n{oops\n')
    with pytest.warns(CorpusWarning) as caught:
        report = index_corpus(lab, "mixed", progress=False)
    messages = " ".join(str(w.message) for w in caught)
    assert "photo.png" in messages and "broken.txt: skipped, not UTF-8" in messages
    assert "notes.jsonl: skipped 1 line(s): line 2" in messages
    assert report.chunks == 2 and report.files == 2
    assert search(lab, "mixed", "when can I park for free?", k=1)[0].source == "notes.jsonl#a"


@needs_acme
@pytest.mark.integration
def test_cli_index_and_search(lab):
    from click.testing import CliRunner

    from lab.cli import cli

    runner = CliRunner()
    obj = {"lab": lab, "home": str(lab.home.root)}
    result = runner.invoke(cli, ["index", str(lab.home.corpora / "acme"), "--ef", "80"], obj=obj)
    assert result.exit_code == 0, result.output
    # query-time: no re-embedding; a given ef overrides the calibrated (here: exact) search
    assert re.search(r"acme: no change \(\d+ chunks\); search settings changed: ef \d+ -> 80", result.output)
    assert "search: HNSW ef=80, recall@10" in result.output and "ef=80 given" in result.output
    result = runner.invoke(cli, ["search", "acme", "What does the TD-45 weigh?", "-k", "2", "--json"], obj=obj)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 2 and rows[0]["source"] == "products/td-45.md" and set(rows[0]) >= {"score", "span", "chunk_id"}
    result = runner.invoke(cli, ["search", "no-such-corpus", "x"], obj=obj)
    assert result.exit_code == 2 and "no corpus 'no-such-corpus'" in result.output


@needs_acme
@pytest.mark.integration
def test_small_corpus_is_searched_exactly_and_a_big_one_through_calibrated_hnsw(lab, tmp_path, monkeypatch):
    from lab.retrieval import calibrate as calibration
    from lab.retrieval.index import read_manifest

    index_corpus(lab, "acme", progress=False, ef=0)  # ef 0: back to calibration (an earlier test gave one)
    m = read_manifest(lab.home.indexes / "acme")
    assert m["search"]["mode"] == "exact" and m["search"]["recall_at_10"] == 1.0  # 78 chunks < EXACT_BELOW
    # The same documents with the threshold below their size: HNSW, with a calibrated beam.
    monkeypatch.setattr(calibration, "EXACT_BELOW", 10)
    shutil.copytree(lab.home.corpora / "acme", tmp_path / "acme-big")
    report = index_corpus(lab, tmp_path / "acme-big", progress=False)
    big = read_manifest(lab.home.indexes / "acme-big")
    assert big["search"]["mode"] == "hnsw" and big["search"]["recall_at_10"] >= 0.98
    assert big["hnsw"]["ef"] in calibration.EF_LADDER and "HNSW ef=" in report.summary()
    for question in ("How much does the AX-220 Skylark star tracker cost?", "How long do I have to return an item?"):
        exact = [(p.chunk_id, round(p.score, 4)) for p in search(lab, "acme", question, k=5)]
        graph = [(p.chunk_id, round(p.score, 4)) for p in search(lab, "acme-big", question, k=5)]
        assert exact == graph  # both are cosine over the same unit vectors


@pytest.mark.gpu
def test_the_embedder_runs_on_the_gpu_when_there_is_one():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    from lab.retrieval.embed import Embedder

    assert Embedder().model.device.type == "cuda"


# ---- editing a corpus: only inside the lab home ---------------------------------------------------


def test_corpus_edits_copy_an_outside_corpus_into_the_home_first(tmp_path_factory):
    from lab.home import LabHome
    from lab.retrieval.corpus import add_files, delete_document, home_corpus, write_document

    home = LabHome(tmp_path_factory.mktemp("home"))
    sample = tmp_path_factory.mktemp("checkout") / "acme"
    (sample / "policies").mkdir(parents=True)
    (sample / "policies" / "warranty.md").write_text("# Warranty\nTwo years.\n")
    before = (sample / "policies" / "warranty.md").stat().st_mtime_ns
    path, existed = write_document(home, str(sample), "policies/warranty.md", "# Warranty\nThree years.\n")
    assert existed and path.read_text().endswith("Three years.\n")  # the copy had it
    assert path == (home.corpora / "acme" / "policies" / "warranty.md").resolve()
    assert (sample / "policies" / "warranty.md").read_text() == "# Warranty\nTwo years.\n"  # original untouched
    assert (sample / "policies" / "warranty.md").stat().st_mtime_ns == before
    assert home_corpus(home, str(sample)) == home_corpus(home, "acme") == (home.corpora / "acme").resolve()
    extra = tmp_path_factory.mktemp("uploads") / "notes.txt"
    extra.write_text("A note.")
    added, skipped = add_files(home, "acme", [extra], into="misc")
    assert added == ["misc/notes.txt"] and not skipped
    delete_document(home, "acme", "misc/notes.txt")
    assert not (home.corpora / "acme" / "misc").exists() and sorted(p.name for p in sample.rglob("*")) == [
        "policies",
        "warranty.md",
    ]


def test_corpus_names_and_document_paths_are_checked(tmp_path):
    from lab.home import LabHome
    from lab.retrieval.corpus import RetrievalError, create_corpus, document_path

    home = LabHome(tmp_path)
    folder = create_corpus(home, "hand_book-2")
    assert folder == home.corpora / "hand_book-2" and folder.is_dir()
    for bad in ["", "a b", "../x", ".hidden", "x/y"]:
        with pytest.raises(RetrievalError, match="corpus name"):
            create_corpus(home, bad)
    with pytest.raises(RetrievalError, match="already exists"):
        create_corpus(home, "hand_book-2")
    assert document_path(folder, "a/b.md") == (folder / "a" / "b.md").resolve()
    for bad, why in [("../b.md", "inside the corpus"), ("b.exe", "use one of"), (".b.md", "hidden"), ("", "file name")]:
        with pytest.raises(RetrievalError, match=why):
            document_path(folder, bad)


def test_the_build_lock_serialises_builds_and_survives_its_file_being_removed(tmp_path):
    """A second builder waits for the first; when the first removes the lock file (its build
    left no index), the waiter notices and locks the new file, so a third cannot slip in."""
    import threading

    from lab.retrieval.index import _build_lock

    root = tmp_path / "indexes" / "c"
    order = []

    def second():
        with _build_lock(root):
            order.append("second")

    with _build_lock(root):
        t = threading.Thread(target=second)
        t.start()
        t.join(0.3)
        assert t.is_alive()  # waiting on the lock
        order.append("first")
    t.join(5)
    assert order == ["first", "second"]
    assert not (tmp_path / "indexes" / ".c.lock").exists()  # no index built: no lock file left


# ---- chunk ids: linear in the repeats, exactly the ids of the old quadratic search (issue 23) ----


def _old_assign_ids(chunks, to_add):
    """A copy of `index._assign_ids` before issue 23 (probing n = 2, 3, … from the start for every
    repeat): the ids it gave are in existing indexes, so the new one must give exactly these."""
    from lab.retrieval.index import _chunk_entry

    taken = {c["id"] for c in chunks.values()}
    for label, c in to_add:
        base = f"{c.source}@{c.hash[:10]}"
        cid, n = base, 1
        while cid in taken:
            n += 1
            cid = f"{base}~{n}"
        taken.add(cid)
        chunks[label] = _chunk_entry(c, cid)


def _id_chunk(source: str, hash_: str) -> Chunk:
    return Chunk(source=source, file=source, title="t", heading="", start=0, end=1, text="x", tokens=1, hash=hash_)


def _old_entry(label: int, cid: str) -> tuple[int, dict]:
    return label, {"id": cid, "hash": "", "source": "", "file": "", "title": "", "heading": "", "span": [0, 0]}


def _both_ids(old_chunks: dict, to_add: list) -> tuple[dict, dict, int]:
    """(new ids by label, old-algorithm ids by label, probes of the new one), on copies of the input."""
    import copy

    from lab.retrieval.index import _assign_ids

    new, old = copy.deepcopy(old_chunks), copy.deepcopy(old_chunks)
    probes = _assign_ids(new, to_add)
    _old_assign_ids(old, to_add)
    return {k: v["id"] for k, v in new.items()}, {k: v["id"] for k, v in old.items()}, probes


def test_assign_ids_gives_the_old_ids_for_repeats_interleaved_across_files():
    h, g = "a" * 64, "b" * 64
    order = [("a.md", h), ("b.md", h), ("a.md", h), ("a.md", g), ("b.md", h), ("a.md", h), ("b.md", g)]
    to_add = [(i, _id_chunk(s, x)) for i, (s, x) in enumerate(order)]
    new, old, probes = _both_ids({}, to_add)
    assert new == old
    assert [new[i] for i in range(len(order))] == [
        f"a.md@{'a' * 10}",
        f"b.md@{'a' * 10}",
        f"a.md@{'a' * 10}~2",
        f"a.md@{'b' * 10}",
        f"b.md@{'a' * 10}~2",
        f"a.md@{'a' * 10}~3",
        f"b.md@{'b' * 10}",
    ]
    assert probes == len(order)  # nothing taken beforehand: each repeat goes straight to its n


def test_assign_ids_skips_ids_already_taken_by_the_index_as_the_old_search_did():
    base = f"a.md@{'c' * 10}"
    # the index already has `base~2` and `base~4` (their `base` and `base~3` were removed), and
    # one id that looks like a suffix of another base
    old_chunks = dict([_old_entry(100, f"{base}~2"), _old_entry(101, f"{base}~4"), _old_entry(102, "b.md@x~2")])
    to_add = [(i, _id_chunk("a.md", "c" * 64)) for i in range(5)] + [
        (5, _id_chunk("b.md", "x")),
        (6, _id_chunk("b.md", "x")),
    ]
    new, old, probes = _both_ids(old_chunks, to_add)
    assert new == old
    assert [new[i] for i in range(5)] == [base, f"{base}~3", f"{base}~5", f"{base}~6", f"{base}~7"]
    assert [new[5], new[6]] == ["b.md@x", "b.md@x~3"]
    assert probes == len(to_add) + 3  # ~2 and ~4 skipped once each for a.md, ~2 once for b.md


def test_assign_ids_on_empty_input_changes_nothing():
    from lab.retrieval.index import _assign_ids

    assert _both_ids({}, []) == ({}, {}, 0)
    chunks = dict([_old_entry(3, "a.md@0123456789")])
    assert _assign_ids(chunks, []) == 0 and chunks == dict([_old_entry(3, "a.md@0123456789")])


def test_assign_ids_matches_the_old_search_on_random_inputs():
    """Few sources and hashes (many repeats), old ids with and without suffixes, and hashes with
    a `~` in them, so a suffixed id of one base can be the plain id of another."""
    rng = random.Random(23)
    sources, hashes = ["a.md", "b.md", "c/d.txt"], ["0" * 16, "1" * 16, "2" * 16, "3~2", "3", "3~2~3"]
    for trial in range(300):
        bases = [f"{s}@{h[:10]}" for s in sources for h in hashes]
        ids = {
            rng.choice(bases) + rng.choice(["", "", "~2", "~3", f"~{rng.randint(2, 9)}"])
            for _ in range(rng.randint(0, 12))
        }
        old_chunks = dict(_old_entry(1000 + i, cid) for i, cid in enumerate(sorted(ids)))
        to_add = [(i, _id_chunk(rng.choice(sources), rng.choice(hashes))) for i in range(rng.randint(0, 60))]
        new, old, probes = _both_ids(old_chunks, to_add)
        assert new == old, trial
        assert len(set(new.values())) == len(new)  # every id unique
        # linear: an id is a candidate of at most two bases (itself, and itself less its last `~n`),
        # and each base's search passes a taken id once
        assert probes <= len(to_add) + 2 * (len(old_chunks) + len(to_add))


def test_assign_ids_is_linear_in_the_repeats():
    """20,000 copies of one paragraph in one file (a log, generated text): one probe each, where
    the old search made 200 million; with old ids in the way, one more probe per old id."""
    from lab.retrieval.index import _assign_ids

    n = 20_000
    to_add = [(i, _id_chunk("log.txt", "f" * 64)) for i in range(n)]
    chunks: dict = {}
    assert _assign_ids(chunks, to_add) == n
    base = f"log.txt@{'f' * 10}"
    assert chunks[0]["id"] == base and chunks[1]["id"] == f"{base}~2" and chunks[n - 1]["id"] == f"{base}~{n}"
    assert len({c["id"] for c in chunks.values()}) == n
    old_chunks = dict(_old_entry(n + i, f"{base}~{k}") for i, k in enumerate(range(2, n + 2, 2)))  # every even n
    again = dict(old_chunks)
    assert _assign_ids(again, to_add) == n + len(old_chunks)
    assert [again[i]["id"] for i in range(3)] == [base, f"{base}~3", f"{base}~5"]


# ---- retrieval alone, without the model (`lab index CORPUS --check TASK`) -------------------


def test_retrieval_check_figures_from_constructed_search_results():
    from types import SimpleNamespace

    from lab.evaluation.retrieval_check import score_results

    def ex(output, aliases=(), gold_doc=None):
        extra = {"aliases": list(aliases)} | ({"gold_doc": gold_doc} if gold_doc else {})
        return SimpleNamespace(output=output, extra=extra)

    def p(source, text):
        return {"source": source, "title": "", "heading": "", "text": text}

    examples = [
        ex("12 months", gold_doc="products/fl-200.md"),  # answer and gold doc at rank 1
        ex("$5,000", aliases=["5000 dollars"], gold_doc="company/grants.md"),  # alias at rank 2, doc at rank 2
        ex("87%", gold_doc="company/sustainability.md"),  # a miss: neither in the top 3
        ex("A long free-text answer that is not a short fact at all, by any count", gold_doc="a/b.md"),
        ex("3.5.0"),  # no gold_doc: hit rate only
    ]
    results = [
        [p("products/fl-200.md#0", "The FL-200 comes with a 12 months warranty."), p("x.md", "x"), p("y.md", "y")],
        [p("x.md", "nothing"), p("company/grants.md", "The grant is worth 5000 dollars."), p("y.md", "y")],
        [p("x.md", "recycled 80%"), p("y.md", "y"), p("z.md", "z")],
        [p("x.md", "x"), p("y.md", "y"), p("a/b.md", "free text")],  # gold doc at rank 3
        [p("x.md", "x"), p("y.md", "y"), p("r.md", "Dark mode came in version 3.5.0.")],
    ]
    r1, r2, r3 = score_results(examples, results, [1, 2, 3])
    assert (r1.hit_n, r1.recall_n) == (4, 4)  # the free-text answer has no hit; 4 examples name a gold_doc
    assert r1.hit_rate == 1 / 4 and r2.hit_rate == 2 / 4 and r3.hit_rate == 3 / 4
    assert r1.recall == 1 / 4 and r2.recall == 2 / 4 and r3.recall == 3 / 4
    assert r1.mrr == pytest.approx(1 / 4)
    assert r2.mrr == pytest.approx((1 + 1 / 2) / 4)
    assert r3.mrr == pytest.approx((1 + 1 / 2 + 1 / 3) / 4)
    # a label or JSON task: no hit rate at all
    assert all(r.hit_rate is None and r.hit_n == 0 for r in score_results(examples, results, [1, 3], text_task=False))


@needs_acme
@pytest.mark.integration
def test_lab_index_check_reports_recall_that_search_confirms(lab):
    from click.testing import CliRunner

    from lab.cli import cli
    from lab.evaluation import check_retrieval
    from lab.tasks import load_task

    ks = (1, 2, 4, 8)
    result = CliRunner().invoke(
        cli, ["--home", str(lab.home.root), "index", "acme", "--check", "acme-facts", "--k", "1,2,4,8"], obj={}
    )
    assert result.exit_code == 0, result.output
    assert "0 embedded" in result.output  # the shared index: nothing re-embedded
    assert "chunks of up to 160 tokens, 32 overlap" in result.output

    check = check_retrieval(lab, "acme-facts", ks=ks)
    examples = [e for e in load_task("acme-facts").examples("eval") if e.extra.get("gold_doc")]
    found = []  # rank of the gold document per example, from plain searches
    for e in examples:
        sources = [p.source.split("#")[0] for p in search(lab, "acme", e.input, k=max(ks))]
        found.append(sources.index(e.extra["gold_doc"]) + 1 if e.extra["gold_doc"] in sources else None)
    recalls = [sum(r is not None and r <= k for r in found) / len(found) for k in ks]
    assert check.n == len(examples) and [check.row(k).recall_n for k in ks] == [len(examples)] * len(ks)
    assert [check.row(k).recall for k in ks] == pytest.approx(recalls)
    assert recalls == sorted(recalls) and recalls[-1] >= 0.85  # non-decreasing in k
    for k, recall in zip(ks, recalls):  # the CLI printed the same figures
        assert re.search(rf"^{k}\b.*\b{100 * recall:.1f}% \(n={len(examples)}\)", result.output, re.M), k
    assert all(r.hit_n > 0 for r in check.rows) and check.row(8).hit_rate >= check.row(1).hit_rate

    bad = CliRunner().invoke(cli, ["--home", str(lab.home.root), "index", "acme", "--check", "no-such-task"], obj={})
    assert bad.exit_code == 2 and "unknown task" in bad.output


def _check(size, figures, own=False, hit=True, built_s=None, embedded=0):
    """A RetrievalCheck as the engine returns it: `figures` maps k to the fraction found."""
    from lab.evaluation.retrieval_check import KRow, RetrievalCheck

    rows = [KRow(k, v if hit else None, 10 if hit else 0, v, 10, v) for k, v in figures.items()]
    return RetrievalCheck(
        "acme-facts",
        "acme",
        10,
        rows,
        chunk_tokens=size,
        overlap=min(32, size // 4),
        index_version=1,
        seconds=0.5,
        chunks=12800 // size,
        own=own,
        index_name="acme" if own else f"acme~{size}t",
        built_s=built_s,
        embedded=embedded,
    )


def test_a_chunk_size_sweep_prints_one_table_and_names_the_best_size():
    from lab.evaluation.retrieval_check import RetrievalSweep

    sweep = RetrievalSweep(
        [
            _check(80, {1: 0.5, 4: 0.9}, built_s=3.2, embedded=150),
            _check(160, {1: 0.6, 4: 0.9}, own=True),
            _check(256, {1: 0.7, 4: 0.8}, built_s=1.0, embedded=20),
        ]
    )
    headers, rows = sweep.table()
    assert headers == ["chunk size", "k", "hit rate", "recall@k", "MRR@k"]
    assert [r[:2] for r in rows] == [["80", "1"], ["80", "4 (rag)"], ["160 (own)", "1"], ["160 (own)", "4 (rag)"]] + [
        ["256", "1"],
        ["256", "4 (rag)"],
    ]
    check, k, v = sweep.best()
    assert (check.chunk_tokens, k, v) == (160, 4, 0.9)  # a tie at the rag k keeps the corpus's own index
    text = sweep.to_text()
    assert "at 3 chunk sizes (80, 160, 256 tokens): 10 held-out questions searched at each in 1.5 s" in text
    assert (
        "chunk size 80 (20 overlap): 160 chunks in version acme~80t v1; built now: 150 chunks embedded in 3.2 s" in text
    )
    assert "chunk size 160 (32 overlap): 80 chunks in the corpus's own index v1\n" in text
    assert "best at k=4: chunk size 160 (hit rate 90.0%)" in text
    assert re.search(r"^256\s+4 \(rag\)\s+80\.0% \(n=10\)", text, re.M)
    # not short facts: recall@k is what the sweep ranks and plots; no rag k checked: the largest k
    recall_only = RetrievalSweep([_check(80, {1: 0.4, 2: 0.7}, hit=False), _check(160, {1: 0.5, 2: 0.6}, hit=False)])
    assert recall_only.metric_name() == "recall@k"
    assert recall_only.series()[0][1] == [(1, 0.4), (2, 0.7)]
    check, k, v = recall_only.best()
    assert (check.chunk_tokens, k, v) == (80, 2, 0.7)
    # a single check says a build only when it built one
    assert "built now" in _check(80, {4: 0.9}, built_s=2.0, embedded=9).to_text()
    assert "built now" not in _check(160, {4: 0.9}, own=True).to_text()


@needs_acme
@pytest.mark.integration
def test_a_chunk_size_check_builds_each_version_once_and_leaves_the_own_index_alone(lab):
    from click.testing import CliRunner

    from lab.cli import cli
    from lab.evaluation.retrieval_check import check_chunk_sizes
    from lab.retrieval.index import read_manifest
    from lab.tasks import load_task

    own, version = lab.home.indexes / "acme", lab.home.indexes / "acme~240t"  # 240: a size no other test builds
    before = (current_dir(own), read_manifest(own)["manifest_hash"])
    embedder = lab.embedder()
    misses = embedder.misses
    sweep = check_chunk_sizes(lab, "acme-facts", ks=(1, 4), chunk_sizes=(240, 160))
    first, big = sweep.checks
    assert (first.chunk_tokens, first.own, first.built_s, first.embedded) == (160, True, None, 0)
    assert (big.chunk_tokens, big.overlap, big.own, big.index_name) == (240, 32, False, "acme~240t")
    assert big.built_s is not None and 0 < big.embedded == embedder.misses - misses
    assert big.embedded < big.chunks  # a document short enough for one chunk at either size: cached, not embedded
    assert len(list(version.glob("v0*"))) == 1

    args = ["--home", str(lab.home.root), "index", "acme", "--check", "acme-facts", "--k", "1,4"]
    result = CliRunner().invoke(cli, [*args, "--chunk-sizes", "160,240"], obj={})
    assert result.exit_code == 0, result.output
    # a second check, in a Lab of its own: the version on disk reused, nothing embedded or rebuilt
    assert ", 0 embedded" in result.output and "built now" not in result.output
    for c in sweep.checks:  # one row per chunk size and k, with the same figures
        for r in c.rows:
            pattern = rf"^{c.chunk_tokens}( \(own\))?\s+{r.k}\b.*\b{100 * r.recall:.1f}% \(n={r.recall_n}\)"
            assert re.search(pattern, result.output, re.M), (c.chunk_tokens, r.k)
    assert len(list(version.glob("v0*"))) == 1 and (current_dir(own), read_manifest(own)["manifest_hash"]) == before

    examples = [e for e in load_task("acme-facts").examples("eval") if e.extra.get("gold_doc")]
    found = []  # the gold document's rank per example, from plain searches of the version
    for e in examples:
        sources = [p.source.split("#")[0] for p in search(lab, "acme", e.input, k=4, chunk_tokens=240)]
        found.append(sources.index(e.extra["gold_doc"]) + 1 if e.extra["gold_doc"] in sources else None)
    recalls = [sum(r is not None and r <= k for r in found) / len(found) for k in (1, 4)]
    assert [big.row(k).recall for k in (1, 4)] == pytest.approx(recalls) and big.n == len(examples)
