"""The Gradio app: `build_app(lab)` makes the page, `serve(lab, ...)` runs it (see app.py).

Imported lazily: `lab --help` and the other commands never pay for importing gradio.
"""


def __getattr__(name: str):
    if name in ("build_app", "serve"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module 'lab.app' has no attribute '{name}'")
