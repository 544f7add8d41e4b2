"""`python -m lab.tuning --home H --config RUN.json [--resume | --restart] [--overwrite]`: one training job
(started by `lab.tuning.jobs.start`). Exit 0 when the adapter is written, 2 on bad input (the
message says what), 130 when stopped (the checkpoint is kept: run again with --resume)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..engine import Lab
from ..gguf_meta import GGUFError
from ..models import ModelNotFound
from . import AdapterError, DatasetError, TrainConfigError, TrainingError, TrainingInterrupted, make_config, train

USER_ERRORS = (
    json.JSONDecodeError,
    FileNotFoundError,
    ModelNotFound,
    GGUFError,
    AdapterError,
    DatasetError,
    TrainConfigError,
    TrainingError,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.tuning", description=__doc__)
    parser.add_argument("--home", required=True, help="the lab home")
    parser.add_argument("--config", required=True, help="a JSON file of TrainConfig fields")
    parser.add_argument("--resume", action="store_true", help="continue from the run's checkpoint")
    parser.add_argument("--restart", action="store_true", help="delete the run's checkpoint and start afresh")
    parser.add_argument("--overwrite", action="store_true", help="replace an adapter of the same name")
    args = parser.parse_args(argv)
    try:
        values = json.loads(Path(args.config).read_text(encoding="utf-8"))
        config = make_config(args.config, **values)
        adapter = train(
            config, Lab(args.home), resume=args.resume, overwrite=args.overwrite, restart=args.restart, progress=False
        )
    except TrainingInterrupted as e:
        print(e, file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    print(f"adapter '{adapter.name}' -> {adapter.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
