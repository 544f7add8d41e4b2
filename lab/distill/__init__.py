"""`lab distill`: when tuning wins on cost. A teacher (a bigger model, or the task's expensive
prompt) answers the inputs, a cheap student is tuned on its answers, and the ledger says on the
same held-out examples whether the student is as good for less (`run.py`, `ledger.py`; the
teacher spec: `spec.py`)."""

from .ledger import ledger_lines
from .run import (
    DistillInterrupted,
    DistillSettings,
    distill_progress,
    estimate,
    latest_ledger,
    run_distill,
    settings_for,
)
from .spec import SPEC_HELP, DistillError, parse_teacher

__all__ = [
    "SPEC_HELP",
    "DistillError",
    "DistillInterrupted",
    "DistillSettings",
    "distill_progress",
    "estimate",
    "latest_ledger",
    "ledger_lines",
    "parse_teacher",
    "run_distill",
    "settings_for",
]
