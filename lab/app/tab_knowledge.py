"""Knowledge: the corpora RAG reads, their index state, documents to add or edit, re-indexing
with progress, a search box that shows what retrieval returns, a retrieval check (a task's held-out
questions searched, no generation: hit rate, recall@k, MRR, at one chunk size or several), and the
staleness probe: edit a fact, re-index, and watch RAG follow it while a tuned adapter does not."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from ..retrieval import index_state
from ..retrieval.corpus import (
    EDITABLE,
    RetrievalError,
    add_files,
    create_corpus,
    delete_document,
    document_path,
    home_corpus,
    write_document,
)
from . import _ui, bridge

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab

NEW_DOC = "(new document)"


def setup(lab: Lab):
    refs = bridge.corpora(lab)
    choices = [(name, ref) for name, ref in refs.items()]
    value = refs.get("acme") or (choices[0][1] if choices else None)
    return gr.update(choices=choices, value=value), corpus_table(lab)


def refresh(lab: Lab):
    return gr.update(choices=list(bridge.corpora(lab).items())), corpus_table(lab)


def corpus_table(lab: Lab) -> str:
    rows = []
    for name, ref in bridge.corpora(lab).items():
        try:
            s = index_state(lab, ref)
        except Exception as e:
            rows.append([name, "", "", f"unreadable: {_ui.error_text(e)}", "", "", ""])
            continue
        state = (
            "not indexed"
            if not s["indexed"]
            else "up to date"
            if not s["stale"]
            else f"{s['stale']} file(s) changed: re-index"
        )
        rows.append(
            [name, s["folder"], s["files"], state, s["chunks"], s.get("version") or "—", s.get("built_at") or "—"]
        )
    if not rows:
        return f"No corpus yet: create one below, or put a folder of .md/.txt/.html/.jsonl files under `{lab.home.corpora}`."
    return _ui.md_table(["corpus", "folder", "files", "index", "chunks", "version", "built"], rows)


def _user_fixable(fn, *args):
    """The engine's corpus errors (a bad name, a path outside the corpus) as a message in the page."""
    try:
        return fn(*args)
    except RetrievalError as e:
        raise gr.Error(str(e), title="Knowledge", print_exception=False) from None


def _folder(lab: Lab, ref: str) -> Path:
    if not ref:
        raise gr.Error("Pick a corpus.")
    return bridge.corpus_folder(lab, ref)


def _doc_choices(lab: Lab, ref: str) -> list[str]:
    folder = _folder(lab, ref)
    return [
        NEW_DOC,
        *sorted(
            p.relative_to(folder).as_posix()
            for p in folder.rglob("*")
            if p.is_file()
            and p.suffix.lower() in EDITABLE
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        ),
    ]


def documents(lab: Lab, ref: str):
    return gr.update(choices=_doc_choices(lab, ref), value=NEW_DOC), "", ""


def open_doc(lab: Lab, ref: str, rel: str):
    if not rel or rel == NEW_DOC:
        return "", ""
    path = _user_fixable(document_path, _folder(lab, ref), rel)
    return rel, path.read_text(encoding="utf-8", errors="replace")


def _edited(lab: Lab, folder: Path):
    """After a write: the corpus picker pointing at the home copy that was written, and the table."""
    return gr.update(choices=list(bridge.corpora(lab).items()), value=folder.name), corpus_table(lab)


def save_doc(lab: Lab, ref: str, rel: str, text: str):
    """Write the document into the corpus's copy in the lab home (made on the first edit)."""
    if not ref:
        raise gr.Error("Pick a corpus.")
    path, existed = _user_fixable(write_document, lab.home, ref, rel, text)
    msg = (
        f"{'Saved' if existed else 'Added'} `{rel}` ({len(text):,} characters) in `{path.parent}`. "
        "Re-index to make RAG see it."
    )
    return msg, *_edited(lab, _user_fixable(home_corpus, lab.home, ref))


def upload(lab: Lab, ref: str, files, into: str):
    """Copy uploaded files into the corpus (its lab-home copy), under the optional sub-folder."""
    if not ref:
        raise gr.Error("Pick a corpus.")
    paths = [getattr(f, "name", f) for f in (files or [])]
    if not paths:
        raise gr.Error("Choose one or more files to add.")
    added, skipped = _user_fixable(add_files, lab.home, ref, paths, into or "")
    folder = _user_fixable(home_corpus, lab.home, ref)
    msg = (
        f"Added {len(added)} file(s) to `{folder}`: "
        + ", ".join(f"`{a}`" for a in added)
        + ". Re-index to make RAG see them."
        if added
        else "No file added."
    )
    msg += "".join(f"\n- skipped {_ui.html.escape(s)}" for s in skipped)
    return msg, *_edited(lab, folder), gr.update(choices=_doc_choices(lab, str(folder)))


def delete_doc(lab: Lab, ref: str, rel: str):
    if not ref:
        raise gr.Error("Pick a corpus.")
    if not rel or rel == NEW_DOC:
        raise gr.Error("Pick the document to delete.")
    _user_fixable(delete_document, lab.home, ref, rel)
    folder = _user_fixable(home_corpus, lab.home, ref)
    table_update = _edited(lab, folder)
    return (
        f"Deleted `{rel}` from `{folder}`. Re-index to drop it from RAG.",
        *table_update,
        gr.update(choices=_doc_choices(lab, str(folder)), value=NEW_DOC),
        "",
        "",
    )


def create(lab: Lab, name: str):
    """A new, empty corpus in the lab home, picked at once (add documents, then re-index)."""
    folder = _user_fixable(create_corpus, lab.home, name)
    return (f"Created corpus `{folder.name}` in `{folder}`: add documents to it, then Re-index.", *_edited(lab, folder))


def reindex(lab: Lab, ref: str, progress=gr.Progress(track_tqdm=True)):
    from ..retrieval import index_corpus

    _folder(lab, ref)
    progress(0, desc="Indexing")
    report = index_corpus(lab, ref, progress=True)
    skipped = "".join(f"\n- {_ui.html.escape(s)}" for s in report.skipped)
    return f"**{_ui.html.escape(report.summary())}**{skipped}", corpus_table(lab)


def search(lab: Lab, ref: str, query: str, k: float):
    from ..retrieval import search as _search

    if not (query or "").strip():
        raise gr.Error("Type what to search for.")
    _folder(lab, ref)
    passages = _search(lab, ref, query.strip(), int(k or 5))
    return [
        [i, round(p.score, 3), p.source, p.heading or p.title, " ".join(p.text.split())[:400]]
        for i, p in enumerate(passages, 1)
    ]


# ---- retrieval alone, without the model ---------------------------------------------------


def check_tasks(lab: Lab, ref: str | None) -> list[str]:
    """The tasks whose corpus is this one (by name), for the retrieval check."""
    if not ref:
        return []
    name = Path(ref).name
    names = []
    for task_name in bridge.task_names(lab):
        try:
            if bridge.task(lab, task_name).corpus == name:
                names.append(task_name)
        except Exception:
            continue
    return names


def check_task_choices(lab: Lab, ref: str | None):
    names = check_tasks(lab, ref)
    return gr.update(choices=names, value=names[0] if names else None)


def check(lab: Lab, ref: str, task_name: str, compare: bool = False, progress=gr.Progress(track_tqdm=True)) -> str:
    """Hit rate, recall@k and MRR for the task's held-out questions on this corpus (no generation);
    `compare`: at half, own and double the index's chunk size, one table with a chunk-size column."""
    from ..evaluation import check_retrieval
    from ..evaluation.retrieval_check import check_chunk_sizes

    _folder(lab, ref)
    if not task_name:
        raise gr.Error("Pick a task whose corpus this is (its task.toml names it).")
    task = bridge.task(lab, task_name)
    if compare:
        progress(0, desc="Searching the held-out questions at each chunk size (a new size is embedded once)")
        r = check_chunk_sizes(lab, task, corpus=ref)
    else:
        progress(0, desc="Searching the held-out questions")
        r = check_retrieval(lab, task, corpus=ref)
    headers, rows = r.table()
    notes = "".join(f"\n\n{_ui.html.escape(n)}" for n in r.footnotes())
    return f"**{_ui.html.escape(r.heading())}**\n\n{_ui.md_table(headers, rows)}{notes}"


# ---- the staleness probe -------------------------------------------------------------------


def probe_tasks(lab: Lab) -> list[str]:
    names = []
    for name in bridge.task_names(lab):
        try:
            if bridge.task(lab, name).probe:
                names.append(name)
        except Exception:
            continue
    return names


def probe_info(lab: Lab, task_name: str) -> str:
    if not task_name:
        return "_No task has a staleness probe._"
    p = bridge.task(lab, task_name).probe
    return (
        f"**Question:** {_ui.html.escape(p.question)}<br>**Document:** `{p.doc}` · "
        f"**fact now:** “{_ui.html.escape(p.old)}” → **after the edit:** “{_ui.html.escape(p.new)}”"
    )


def run_probe(lab: Lab, task_name: str, adapter: str | None, progress=gr.Progress(track_tqdm=True)):
    """Ask with RAG (and the adapter) before and after the edit, on a scratch copy of the corpus."""
    from ..evaluation.probe import run_probe as _run_probe

    if not task_name:
        raise gr.Error("Pick a task with a probe.")
    if not adapter and task_name in bridge.adapter_names(lab):
        adapter = task_name
    progress(0, desc="Asking, editing, re-indexing, asking again")
    return render_probe(_run_probe(lab, bridge.task(lab, task_name), adapter or None, progress=True))


def render_probe(r) -> str:
    def cell(a):
        if a is None:
            return "—", "no adapter (train one, then pick it)"
        mark = (
            "**new** ✓"
            if a.says_new and not a.says_old
            else "**old**"
            if a.says_old and not a.says_new
            else "both"
            if a.says_old
            else "neither"
        )
        return mark, _ui.html.escape(" ".join(a.text.split())[:240])

    rows = []
    for label, before, after in [
        ("RAG", r.rag_before, r.rag_after),
        (f"Tune ({r.adapter})" if r.adapter else "Tune", r.tune_before, r.tune_after),
    ]:
        b, a = cell(before), cell(after)
        rows.append(f"| {label} | {b[0]} · {b[1]} | {a[0]} · {a[1]} |")
    if r.rag_follows:
        verdict = ["RAG follows the edit."]
    elif getattr(r, "context_follows", False):
        verdict = [
            "Retrieval follows the edit (the prompt now holds the new value, not the old one), "
            "but the model did not repeat it."
        ]
    else:
        verdict = ["RAG did not state the new value."]
    if r.adapter_stale is not None:
        verdict.append(
            "The adapter still answers from its training data: stale until retrained."
            if r.adapter_stale
            else "The adapter states the new value (unexpected)."
        )
    esc = _ui.html.escape
    return "\n".join(
        [
            f"**{esc(r.question)}** — `{r.doc}`: “{esc(r.old)}” → “{esc(r.new)}” "
            f"(on a scratch copy; the corpus itself is untouched) · re-index: {_ui.html.escape(r.reindex)}",
            "",
            "| arm | before the edit | after the edit |",
            "|---|---|---|",
            *rows,
            "",
            " ".join(verdict),
        ]
    )


def build(lab: Lab) -> list:
    gr.Markdown(
        "Facts belong in retrieval: edit a document, re-index, and the RAG arm answers with the new "
        "fact at once; an adapter trained on the old facts keeps the old one.",
        elem_classes="lab-lead",
    )
    table = gr.Markdown(elem_id="knowledge-corpora")
    with gr.Row():
        corpus = gr.Dropdown(allow_custom_value=True, label="Corpus", choices=[], scale=2, elem_id="knowledge-corpus")
        reindex_btn = gr.Button("Re-index", variant="primary", scale=1, elem_id="knowledge-reindex")
    index_note = gr.Markdown()
    with gr.Accordion("Search: what retrieval returns", open=True):
        with gr.Row():
            query = gr.Textbox(
                label="Query", placeholder="e.g. How long is the warranty?", scale=4, elem_id="knowledge-query"
            )
            k = gr.Slider(1, 20, value=5, step=1, label="k", scale=1)
            go = gr.Button("Search", scale=1, elem_id="knowledge-search")
        hits = gr.Dataframe(
            headers=["#", "score", "source", "section", "text"],
            interactive=False,
            wrap=True,
            max_height=420,
            column_widths=[40, 70, 190, 200, 620],
            elem_id="knowledge-hits",
        )
    with gr.Accordion("Check retrieval: does search find the answers? (no model)", open=False):
        with gr.Row():
            check_task = gr.Dropdown(
                allow_custom_value=True, label="Task (its held-out questions)", choices=[], scale=3
            )
            check_compare = gr.Checkbox(
                label="Compare chunk sizes (half, own, double; a new size is embedded once)",
                value=False,
                scale=2,
                elem_id="knowledge-check-compare",
            )
            check_go = gr.Button("Check retrieval", scale=1, elem_id="knowledge-check")
        check_out = gr.Markdown(elem_id="knowledge-check-out")
    with gr.Accordion("Documents: add, upload, edit, delete", open=False):
        gr.Markdown(
            "Edits are written to the corpus's folder in the lab home; a corpus the lab found "
            "elsewhere (the checkout's sample `acme`) is copied there on the first edit, and the "
            "original stays as it was.",
            elem_classes="lab-lead",
        )
        with gr.Row():
            doc = gr.Dropdown(label="Document", choices=[NEW_DOC], value=NEW_DOC, scale=2, elem_id="knowledge-doc")
            name = gr.Textbox(
                label="File name (inside the corpus)",
                placeholder="policies/new-policy.md",
                scale=2,
                elem_id="knowledge-name",
            )
        text = gr.Code(label="Text", language="markdown", lines=14, elem_id="knowledge-text")
        with gr.Row():
            save = gr.Button("Save document", variant="primary", elem_id="knowledge-save")
            delete = gr.Button("Delete document", variant="stop", elem_id="knowledge-delete")
        with gr.Row():
            files = gr.File(
                label="Upload files into this corpus (.md, .txt, .html, .jsonl, .pdf)",
                file_count="multiple",
                scale=3,
                elem_id="knowledge-upload",
            )
            into = gr.Textbox(label="Sub-folder (optional)", placeholder="policies", scale=1)
        with gr.Row():
            new_name = gr.Textbox(
                label="New corpus", placeholder="e.g. handbook", scale=3, elem_id="knowledge-new-corpus"
            )
            create_btn = gr.Button("Create corpus", scale=1, elem_id="knowledge-create")
        saved = gr.Markdown(elem_id="knowledge-saved")
    with_probe = probe_tasks(lab)
    with gr.Accordion("Staleness probe", open=False):
        with gr.Row():
            probe_task = gr.Dropdown(
                allow_custom_value=True, label="Task", choices=with_probe, value=(with_probe or [None])[0], scale=1
            )
            probe_adapter = gr.Dropdown(
                allow_custom_value=True, label="Adapter (default: the task's)", choices=[], scale=1
            )
            probe_go = gr.Button("Run the probe", variant="primary", scale=1)
        probe_about = gr.Markdown(probe_info(lab, with_probe[0]) if with_probe else probe_info(lab, ""))
        probe_out = gr.Markdown(elem_id="knowledge-probe")

    _ui.on_load(lab, "knowledge", setup, [corpus, table], lab)
    _ui.on_select(lab, "knowledge", refresh, [corpus, table], lab)
    _ui.on_show(lab, "knowledge", lambda: gr.update(choices=bridge.adapter_names(lab)), [probe_adapter])
    _ui.on_select(lab, "knowledge", lambda: gr.update(choices=probe_tasks(lab)), [probe_task])  # new home tasks
    corpus.change(_ui.wire(lab, "knowledge", documents, lab), corpus, [doc, name, text])
    corpus.change(_ui.wire(lab, "knowledge", check_task_choices, lab), corpus, check_task)
    doc.change(_ui.wire(lab, "knowledge", open_doc, lab), [corpus, doc], [name, text])
    edits = [
        save.click(_ui.wire(lab, "knowledge", save_doc, lab), [corpus, name, text], [saved, corpus, table]),
        delete.click(
            _ui.wire(lab, "knowledge", delete_doc, lab), [corpus, doc], [saved, corpus, table, doc, name, text]
        ),
        files.upload(_ui.wire(lab, "knowledge", upload, lab), [corpus, files, into], [saved, corpus, table, doc]),
        create_btn.click(_ui.wire(lab, "knowledge", create, lab), new_name, [saved, corpus, table]),
        reindex_btn.click(_ui.wire(lab, "knowledge", reindex, lab), corpus, [index_note, table]),
    ]
    go.click(_ui.wire(lab, "knowledge", search, lab), [corpus, query, k], hits, api_name="search")
    query.submit(_ui.wire(lab, "knowledge", search, lab), [corpus, query, k], hits)
    check_go.click(_ui.wire(lab, "knowledge", check, lab), [corpus, check_task, check_compare], check_out)
    probe_task.change(_ui.wire(lab, "knowledge", probe_info, lab), probe_task, probe_about)
    probe_go.click(_ui.wire(lab, "knowledge", run_probe, lab), [probe_task, probe_adapter], probe_out)
    return edits  # app.py refreshes the page's banner (corpus chunk counts) after each
