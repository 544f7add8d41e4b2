"""The lab's app: one Gradio Blocks page with a tab per job, served offline on localhost.

    lab serve                      # http://127.0.0.1:7860
    lab serve --host 0.0.0.0 --auth-file ~/.lab-users   # other machines: only with a login

Offline for real: the theme uses system fonts only (no Google Fonts, no font files to
fetch), analytics and the update check are off, server-side rendering (a Node process) and
the run-history page (which can sync to a hub) are off. tests/test_app_browser.py fails on
any request that leaves localhost.
"""

from __future__ import annotations

import threading
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
.lab-lead p { color: var(--body-text-color-subdued); margin: 0; }
.lab-arm { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px; }
.lab-stats, .lab-sources { font-size: 0.85em; }
.lab-progress { height: 10px; background: var(--background-fill-secondary); border-radius: 5px; overflow: hidden; }
.lab-progress > div { height: 100%; background: var(--color-accent); transition: width 0.3s; }
.lab-progress-label { font-size: 0.85em; color: var(--body-text-color-subdued); }
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
        with self.lock:  # a second page load waits for the first, then reads the summary
            if self.summary is None:
                self.summary = self._index(progress)
        return self.summary

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


# ---- the page -----------------------------------------------------------------------------------


def build_app(lab: Lab) -> gr.Blocks:
    startup = Startup(lab)
    with gr.Blocks(title="Ladder Lab", analytics_enabled=False) as demo:
        gr.Markdown(HEADER)
        banner = gr.Markdown("Getting the sample corpus ready…", elem_id="lab-banner")
        demo_block.build(lab)  # first launch: "Prepare the demo (≈ N min)"
        built = {}
        with gr.Tabs():
            for label, module in TABS:
                with gr.Tab(label, id=label.lower(), elem_id=f"tab-{label.lower()}"):
                    built[label] = module.build(lab)
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
    `block=False` returns the running app (tests, benchmarks); `.close()` stops it."""
    check_host(host, auth)
    demo = build_app(lab)
    demo.queue(default_concurrency_limit=1)
    demo.launch(prevent_thread_lock=not block, **launch_kwargs(host, port, auth, open_browser))
    return demo
