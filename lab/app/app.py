"""The lab's app: one Gradio Blocks page with a tab per job, served offline on localhost.

    lab serve                      # http://127.0.0.1:7860
    lab serve --host 0.0.0.0 --auth-file ~/.lab-users   # other machines: only with a login

Offline for real: the theme uses system fonts only (no Google Fonts, no font files to
fetch), analytics and the update check are off, server-side rendering (a Node process) and
the run-history page (which can sync to a hub) are off. tests/test_app_browser.py fails on
any request that leaves localhost.

Inside the home for real: Gradio's file cache (every upload, every file the page downloads) is
the home's `.lab/gradio/`, not the system temp folder, and is emptied when the app starts.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from . import (
    _ui,
    bridge,
    demo_block,
    tab_advisor,
    tab_compare,
    tab_evaluate,
    tab_history,
    tab_knowledge,
    tab_tasks,
    tab_train,
)
from .access import check_host

if TYPE_CHECKING:  # the faces are typed by the engine's real class
    from ..engine import Lab

TABS = [
    ("Compare", tab_compare),
    ("New task", tab_tasks),
    ("Evaluate", tab_evaluate),
    ("Train", tab_train),
    ("Knowledge", tab_knowledge),
    ("Advisor", tab_advisor),
    ("History", tab_history),
]

# Plain font names only: gr.themes.GoogleFont would load from fonts.googleapis.com; a plain
# name loads nothing, the browser uses the first one the system has.
SANS = [
    "system-ui",
    "-apple-system",
    "Segoe UI",
    "Roboto",
    "Noto Sans",
    "Liberation Sans",
    "DejaVu Sans",
    "Arial",
    "sans-serif",
]
MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "DejaVu Sans Mono", "monospace"]

CSS = """
/* a tab's introduction: body text (readable), set apart by a thin accent bar */
.lab-lead p { color: var(--body-text-color); font-size: 0.95em; line-height: 1.5; margin: 0; }
.prose.lab-lead { border-left: 3px solid var(--color-accent); padding-left: 10px; }
/* tables (Markdown scoreboards, Dataframes): a line breaks between words, never inside one; a Markdown
   table too wide scrolls; a Dataframe header longer than its column ends in "…" (its title shows it all) */
.prose table th, .prose table td, th, th * { word-break: normal !important; overflow-wrap: normal !important; hyphens: none; }
.prose table th, .prose table td { padding: 6px 10px; }
.prose:has(table) { overflow-x: auto; }
th.header-cell .header { font-size: 0.9em; white-space: normal !important; overflow: hidden; text-overflow: ellipsis; }
th.header-cell .cell-menu-button { position: absolute; right: 0; opacity: 0; }
th.header-cell:hover .cell-menu-button, th.header-cell:focus-within .cell-menu-button { opacity: 1; }
.lab-arm { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px; }
.lab-stats, .lab-sources { font-size: 0.85em; }
.lab-progress { height: 10px; background: var(--background-fill-secondary); border-radius: 5px; overflow: hidden; }
.lab-progress > div { height: 100%; background: var(--color-accent); transition: width 0.3s; }
.lab-progress-label { font-size: 0.85em; color: var(--body-text-color); }
#lab-banner { font-size: 0.9em; }
"""

HEADER = """# The Ladder Lab
**Prompt it, retrieve for it, or fine-tune it?** Run one task through the escalation ladder —
prompt (zero/few-shot) → RAG → LoRA tune — on the same held-out examples, and keep the
cheapest rung that meets your bar. *Facts belong in retrieval; format and behaviour are where
tuning wins.*"""


def theme() -> gr.themes.Base:
    return gr.themes.Default(primary_hue="orange", font=SANS, font_mono=MONO)


# ---- first launch: index the corpora the built-in tasks use -------------------------------------


class Startup:
    """Indexes the sample corpus (and any corpus a built-in task names) once per process, with
    progress in the page's banner. Incremental: a no-change pass takes well under a second."""

    def __init__(self, lab):
        self.lab = lab
        self.lock = threading.Lock()
        self.summary: str | None = None

    def corpora(self) -> list[str]:
        return list(bridge.corpora(self.lab).values())

    def run(self, progress=gr.Progress(track_tqdm=True)) -> str:
        """The first page load indexes and says how it went; a later load (a reload, another
        browser) shows the corpora as they are now, one made in Knowledge since included."""
        with self.lock:  # a second page load waits for the first
            if self.summary is None:
                self.summary = self._index(progress)
                return self.summary
        return self.current()

    def _index(self, progress) -> str:
        from ..retrieval import index_corpus

        lines = []
        corpora = self.corpora()
        if not corpora:
            lines.append(f"No corpus yet: add documents under `{self.lab.home.corpora}` (see Knowledge).")
        for i, ref in enumerate(corpora):
            progress((i, len(corpora)), desc=f"Indexing {Path(ref).name}")
            try:
                report = index_corpus(self.lab, ref, progress=True)
                lines.append(
                    f"Corpus **{report.corpus}**: {report.chunks} chunks from {report.files} files, "
                    f"ready ({report.embedded} embedded now, {report.seconds:.1f} s)."
                )
            except Exception as e:
                _ui.log_error(self.lab, "startup", e)
                lines.append(f"Corpus **{Path(ref).name}** could not be indexed: {_ui.error_text(e)}")
        lines.append(self.model_line())
        return " · ".join(lines)

    def model_line(self) -> str:
        from ..backends.llamacpp import planned_placement

        where = planned_placement(self.lab.config.n_gpu_layers)
        return f"Default model **{self.lab.config.default_model}** (runs on {where}) · lab home `{self.lab.home.root}`"

    def current(self) -> str:
        """The banner as the corpora are now (after an edit or a re-index in Knowledge): chunk
        counts read from each index, nothing re-indexed."""
        from ..retrieval import index_state

        lines = []
        for name, ref in bridge.corpora(self.lab).items():
            try:
                s = index_state(self.lab, ref)
            except Exception as e:
                lines.append(f"Corpus **{name}** could not be read: {_ui.error_text(e)}")
                continue
            state = (
                "not indexed yet"
                if not s["indexed"]
                else "ready"
                if not s["stale"]
                else f"{s['stale']} file(s) changed since: re-index"
            )
            lines.append(
                f"Corpus **{name}**: {s['chunks']} chunks from {s['files']} file{'s' if s['files'] != 1 else ''}, {state}."
            )
        return " · ".join(lines + [self.model_line()])


# ---- Gradio's file cache: inside the lab home ----------------------------------------------------

CACHE_ENV = "GRADIO_TEMP_DIR"  # the one setting Gradio reads for the folder of its file cache


@contextmanager
def cache_in(folder: Path):
    """Name `folder` as Gradio's cache while the block runs: a component reads it when it is made
    (its own cache for the files it serves), the server when it starts (where uploads go) and at
    each request (an upload is only accepted from there). The setting before comes back after."""
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(folder)
    try:
        yield
    finally:
        _restore_cache_env(before, folder)


def _restore_cache_env(before: str | None, ours: Path) -> None:
    if os.environ.get(CACHE_ENV) != str(ours):  # another app named its own since: leave it
        return
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before


def claim_cache(folder: Path):
    """Empty `folder` (last run's uploads and downloads) unless another app serves from it now,
    and hold a shared lock on it for this app's life: the open lock file, for `release_cache`."""
    import fcntl

    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = open(folder.parent / f"{folder.name}.lock", "a+", encoding="utf-8")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # another app on this home: its files stay
        pass
    else:
        if folder.is_symlink() or folder.is_file():
            folder.unlink()
        elif folder.exists():
            shutil.rmtree(folder)
    folder.mkdir(exist_ok=True)
    fcntl.flock(lock, fcntl.LOCK_SH)
    return lock


def release_cache(lock) -> None:
    import fcntl

    if not lock.closed:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


# ---- the page -----------------------------------------------------------------------------------


def build_app(lab: Lab) -> gr.Blocks:
    startup = Startup(lab)
    with cache_in(lab.home.gradio_cache), gr.Blocks(title="Ladder Lab", analytics_enabled=False) as demo:
        gr.Markdown(HEADER)
        banner = gr.Markdown("Getting the sample corpus ready…", elem_id="lab-banner")
        refresh_offer = demo_block.build(lab)  # first launch: "Prepare the demo (about N min)"
        built = {}
        with gr.Tabs():
            for label, module in TABS:
                with gr.Tab(label, id=label.lower(), elem_id=f"tab-{label.lower()}") as tab:
                    built[label] = module.build(lab)
                # what a tab did (an evaluation, an adapter) shows in the demo's offer when another opens
                tab.select(*refresh_offer, show_progress="hidden")
        for event in built.get("Knowledge") or []:  # Knowledge's edits and re-index: the banner's counts follow
            event.then(_ui.guard(lab, "startup", startup.current), None, banner, show_progress="hidden")
        started = demo.load(_ui.guard(lab, "startup", startup.run), outputs=banner)
        tab_compare.when_ready(started, built["Compare"])  # Ask stays disabled until the corpus is indexed
    return demo


def launch_kwargs(host: str, port: int, auth, open_browser: bool) -> dict:
    return dict(
        server_name=host,
        server_port=port,
        auth=auth,
        inbrowser=open_browser,
        share=False,
        theme=theme(),
        css=CSS,
        ssr_mode=False,
        footer_links=[],
        run_history=False,
        show_error=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
        quiet=False,
        app_kwargs={"docs_url": None, "redoc_url": None},
    )


def serve(
    lab: Lab, host: str = "127.0.0.1", port: int = 7860, auth=None, open_browser: bool = False, block: bool = True
) -> gr.Blocks:
    """Start the app. `auth`: None, ("user", "password") or a list of such pairs.
    `block=False` returns the running app (tests, benchmarks); `.close()` stops it.
    Gradio's file cache is the home's `.lab/gradio/`, emptied first; the setting that names it is
    the process's while the app serves (Gradio reads it at each request) and undone on `.close()`."""
    check_host(host, auth)
    folder = lab.home.gradio_cache
    lock = claim_cache(folder)
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(folder)

    def release() -> None:
        _restore_cache_env(before, folder)
        release_cache(lock)

    try:
        demo = build_app(lab)
        demo.queue(default_concurrency_limit=1)
        demo.close = _then(demo.close, release)
        demo.launch(prevent_thread_lock=not block, **launch_kwargs(host, port, auth, open_browser))
    except BaseException:
        release()
        raise
    if block:  # launch returned: the server has stopped
        release()
    return demo


def _then(close, release):
    @functools.wraps(close)
    def closing(*args, **kwargs):
        try:
            return close(*args, **kwargs)
        finally:
            release()

    return closing
