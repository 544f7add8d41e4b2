"""The `lab` command: a thin face over `lab.engine.Lab` (parse, call, print), one module per rung
of commands; `common` holds the group they hang on."""

from . import basics, climb, curve, demo, distill, evaluate, export, rate, retrieve, tasks, tune  # noqa: F401  (each registers its commands on `cli`)
from .common import USER_ERRORS, cli  # noqa: F401


def main():
    cli(obj={})
