"""Knowledge: the corpora RAG reads, their index state, documents to add or edit, re-indexing
with progress, a search box that shows what retrieval returns, and the staleness probe:
edit a fact, re-index, and watch RAG follow it while a tuned adapter does not."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from ..retrieval import index_state
from . import _ui, bridge

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab

DOC_TYPES = (".md", ".txt", ".html", ".jsonl")
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
        state = ("not indexed" if not s["indexed"] else
                 "up to date" if not s["stale"] else f"{s['stale']} file(s) changed: re-index")
        rows.append([name, s["folder"], s["files"], state, s["chunks"], s.get("version") or "—",
                     s.get("built_at") or "—"])
    if not rows:
        return f"No corpus yet: put a folder of .md/.txt/.html/.jsonl files under `{lab.home.corpora}`."
    return _ui.md_table(["corpus", "folder", "files", "index", "chunks", "version", "built"], rows)


def _folder(lab: Lab, ref: str) -> Path:
    if not ref:
        raise gr.Error("Pick a corpus.")
    return bridge.corpus_folder(lab, ref)


def documents(lab: Lab, ref: str):
    folder = _folder(lab, ref)
    docs = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.suffix.lower() in DOC_TYPES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    return gr.update(choices=[NEW_DOC, *docs], value=NEW_DOC), "", ""


def _doc_path(folder: Path, rel: str) -> Path:
    """A document path inside the corpus folder, never outside it."""
    rel = (rel or "").strip()
    if not rel:
        raise gr.Error("Give the document a file name, e.g. notes/new-policy.md")
    path = (folder / rel).resolve()
    if folder.resolve() not in path.parents:
        raise gr.Error(f"{rel}: a document must stay inside the corpus folder {folder}")
    if path.suffix.lower() not in DOC_TYPES:
        raise gr.Error(f"{rel}: use one of {', '.join(DOC_TYPES)}")
    if any(part.startswith(".") for part in Path(rel).parts):
        raise gr.Error(f"{rel}: hidden files are not indexed")
    return path


def open_doc(lab: Lab, ref: str, rel: str):
    if not rel or rel == NEW_DOC:
        return "", ""
    path = _doc_path(_folder(lab, ref), rel)
    return rel, path.read_text(encoding="utf-8", errors="replace")


def save_doc(lab: Lab, ref: str, rel: str, text: str):
    folder = _folder(lab, ref)
    path = _doc_path(folder, rel)
    existed = path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # never a half-written document
    msg = f"{'Saved' if existed else 'Added'} `{rel}` ({len(text):,} characters). Re-index to make RAG see it."
    return msg, corpus_table(lab)


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
    return [[i, round(p.score, 3), p.source, p.heading or p.title, " ".join(p.text.split())[:400]]
            for i, p in enumerate(passages, 1)]


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
    return (f"**Question:** {_ui.html.escape(p.question)}<br>**Document:** `{p.doc}` · "
            f"**fact now:** “{_ui.html.escape(p.old)}” → **after the edit:** “{_ui.html.escape(p.new)}”")


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
        mark = ("**new** ✓" if a.says_new and not a.says_old else "**old**" if a.says_old and not a.says_new
                else "both" if a.says_old else "neither")
        return mark, _ui.html.escape(" ".join(a.text.split())[:240])

    rows = []
    for label, before, after in [("RAG", r.rag_before, r.rag_after),
                                 (f"Tune ({r.adapter})" if r.adapter else "Tune", r.tune_before, r.tune_after)]:
        b, a = cell(before), cell(after)
        rows.append(f"| {label} | {b[0]} · {b[1]} | {a[0]} · {a[1]} |")
    if r.rag_follows:
        verdict = ["RAG follows the edit."]
    elif getattr(r, "context_follows", False):
        verdict = ["Retrieval follows the edit (the prompt now holds the new value, not the old one), "
                   "but the model did not repeat it."]
    else:
        verdict = ["RAG did not state the new value."]
    if r.adapter_stale is not None:
        verdict.append("The adapter still answers from its training data: stale until retrained."
                       if r.adapter_stale else "The adapter states the new value (unexpected).")
    esc = _ui.html.escape
    return "\n".join([
        f"**{esc(r.question)}** — `{r.doc}`: “{esc(r.old)}” → “{esc(r.new)}” "
        f"(on a scratch copy; the corpus itself is untouched) · re-index: {_ui.html.escape(r.reindex)}", "",
        "| arm | before the edit | after the edit |", "|---|---|---|", *rows, "", " ".join(verdict)])


def build(lab: Lab) -> None:
    gr.Markdown("Facts belong in retrieval: edit a document, re-index, and the RAG arm answers with the new "
                "fact at once; an adapter trained on the old facts keeps the old one.", elem_classes="lab-lead")
    table = gr.Markdown(elem_id="knowledge-corpora")
    with gr.Row():
        corpus = gr.Dropdown(allow_custom_value=True, label="Corpus", choices=[], scale=2, elem_id="knowledge-corpus")
        reindex_btn = gr.Button("Re-index", variant="primary", scale=1, elem_id="knowledge-reindex")
    index_note = gr.Markdown()
    with gr.Accordion("Search: what retrieval returns", open=True):
        with gr.Row():
            query = gr.Textbox(label="Query", placeholder="e.g. How long is the warranty?", scale=4,
                               elem_id="knowledge-query")
            k = gr.Slider(1, 20, value=5, step=1, label="k", scale=1)
            go = gr.Button("Search", scale=1, elem_id="knowledge-search")
        hits = gr.Dataframe(headers=["#", "score", "source", "section", "text"], interactive=False, wrap=True,
                            max_height=420, column_widths=[40, 70, 190, 200, 620], elem_id="knowledge-hits")
    with gr.Accordion("Documents: add or edit", open=False):
        with gr.Row():
            doc = gr.Dropdown(label="Document", choices=[NEW_DOC], value=NEW_DOC, scale=2, elem_id="knowledge-doc")
            name = gr.Textbox(label="File name (inside the corpus)", placeholder="policies/new-policy.md", scale=2)
        text = gr.Code(label="Text", language="markdown", lines=14, elem_id="knowledge-text")
        with gr.Row():
            save = gr.Button("Save document", variant="primary")
        saved = gr.Markdown()
    with_probe = probe_tasks(lab)
    with gr.Accordion("Staleness probe", open=False):
        with gr.Row():
            probe_task = gr.Dropdown(allow_custom_value=True, label="Task", choices=with_probe,
                                     value=(with_probe or [None])[0], scale=1)
            probe_adapter = gr.Dropdown(allow_custom_value=True, label="Adapter (default: the task's)",
                                        choices=[], scale=1)
            probe_go = gr.Button("Run the probe", variant="primary", scale=1)
        probe_about = gr.Markdown(probe_info(lab, with_probe[0]) if with_probe else probe_info(lab, ""))
        probe_out = gr.Markdown(elem_id="knowledge-probe")

    _ui.on_load(lab, "knowledge", setup, [corpus, table], lab)
    _ui.on_select(lab, "knowledge", refresh, [corpus, table], lab)
    _ui.on_show(lab, "knowledge", lambda: gr.update(choices=bridge.adapter_names(lab)), [probe_adapter])
    _ui.on_select(lab, "knowledge", lambda: gr.update(choices=probe_tasks(lab)), [probe_task])  # new home tasks
    corpus.change(_ui.wire(lab, "knowledge", documents, lab), corpus, [doc, name, text])
    doc.change(_ui.wire(lab, "knowledge", open_doc, lab), [corpus, doc], [name, text])
    save.click(_ui.wire(lab, "knowledge", save_doc, lab), [corpus, name, text], [saved, table])
    reindex_btn.click(_ui.wire(lab, "knowledge", reindex, lab), corpus, [index_note, table])
    go.click(_ui.wire(lab, "knowledge", search, lab), [corpus, query, k], hits, api_name="search")
    query.submit(_ui.wire(lab, "knowledge", search, lab), [corpus, query, k], hits)
    probe_task.change(_ui.wire(lab, "knowledge", probe_info, lab), probe_task, probe_about)
    probe_go.click(_ui.wire(lab, "knowledge", run_probe, lab), [probe_task, probe_adapter], probe_out)
