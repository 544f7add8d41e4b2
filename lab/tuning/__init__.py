"""The tune rung: datasets, LoRA training, adapters (PEFT and GGUF). How a tuned arm answers
is `lab.ladder` (the adapter switched on in the loaded model).

  datasets.py    formats, validation, the report, loss-masked encoding
  config.py      TrainConfig (flags, TOML, code), device_defaults(device)
  vram.py        the GPU memory plan (model_shape.py: the model's shape; vram_estimate.py: the arithmetic)
  plan.py        the one training plan: config, steps, epochs, adapter identity, time estimate
  jobs.py        training in a job process (the app's; the climb, curve and demo wait for theirs)
  trainer.py     train(config, lab) -> AdapterInfo; its parts: run.py (the run's state),
                 loading.py + qlora.py + targets.py (the model), loop.py, checkpoint.py, finish.py
  export_gguf.py PEFT adapter -> adapter.gguf for llama.cpp
  adapters.py    list / find / resolve adapters, base-model checks
  parity.py      llama.cpp + adapter.gguf vs transformers + PEFT, measured (`lab adapters check`)

Importing this package imports neither torch nor transformers (they load when training starts).
"""

from .adapters import AdapterError, AdapterInfo, list_adapters, resolve_adapter  # noqa: F401
from .config import TrainConfig, TrainConfigError, device_defaults, load_train_config, make_config  # noqa: F401
from .datasets import DatasetError, DatasetReport, prepare, read_examples  # noqa: F401
from .trainer import TrainingError, TrainingInterrupted, train, validate  # noqa: F401
