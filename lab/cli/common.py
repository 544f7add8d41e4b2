"""What every `lab` command shares: the group, the lab it opens, the user errors, table printing."""

from __future__ import annotations

import sys

import click

# Only the error classes are imported here: the modules behind them load torch, gradio
# or sentence-transformers lazily, inside the commands, so `lab --help` stays fast.
from ..app.access import ServeError
from ..backends import BackendError
from ..config import ConfigError
from ..evaluation.probe import ProbeError
from ..evaluation.scorers import ScorerError
from ..gguf_meta import GGUFError
from ..ladder import ArmError
from ..models import ModelNotFound, ModelPairError
from ..retrieval.corpus import RetrievalError
from ..tasks import TaskError
from ..tuning.adapters import AdapterError
from ..tuning.config import TrainConfigError
from ..tuning.datasets import DatasetError
from ..tuning.trainer import TrainingError

# Errors a user can fix: print the message (it names the path, line or field), exit 2, no traceback.
USER_ERRORS = (
    ModelNotFound,
    ModelPairError,
    GGUFError,
    BackendError,
    ConfigError,
    FileNotFoundError,
    ArmError,
    ProbeError,
    ScorerError,
    TaskError,
    ServeError,
    RetrievalError,
    AdapterError,
    TrainConfigError,
    DatasetError,
    TrainingError,
)


def lab_of(ctx: click.Context, **overrides):
    from ..engine import Lab

    obj = ctx.find_root().obj
    if obj.get("lab") is None:
        obj["lab"] = Lab(obj.get("home"), n_gpu_layers=obj.get("n_gpu_layers"), **overrides)
    return obj["lab"]


class LabGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as e:
            click.secho(f"Error: {e}", fg="red", err=True)
            sys.exit(2)


@click.group(cls=LabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    envvar="LAB_HOME",
    help="Lab home: models/, adapters/, corpora/ and lab.db live here (default: current dir).",
)
@click.option(
    "--n-gpu-layers",
    type=click.IntRange(min=-1),
    envvar="LAB_N_GPU_LAYERS",
    help="llama.cpp layers on the GPU: -1 all, 0 CPU (default: lab.toml, else all when llama.cpp was built with CUDA).",
)
@click.version_option(package_name="ladder-lab")
@click.pass_context
def cli(ctx, home, n_gpu_layers):
    """The Ladder Lab: prompt it, retrieve for it, or fine-tune it?

    Runs one task through the escalation ladder (prompt -> RAG -> LoRA) on a local model,
    offline, logs every generation to SQLite, and says which rung is the cheapest that works.
    """
    ctx.ensure_object(dict)
    ctx.obj["home"] = home
    ctx.obj["n_gpu_layers"] = n_gpu_layers


def table(headers, rows):
    from ..evaluation.summary import text_table

    click.echo("\n".join(text_table(headers, rows)))
