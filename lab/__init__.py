"""The Ladder Lab: prompt it, retrieve for it, or fine-tune it — measured side by side, offline."""

import os as _os

# Offline for real: set before transformers / huggingface_hub / gradio are imported anywhere,
# so no code path in the lab can try a model hub, telemetry or an update check.
for _name, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "DO_NOT_TRACK": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    _os.environ.setdefault(_name, _value)

# peft imports bitsandbytes whenever it is installed (and transformers and sentence-transformers
# import peft), and bitsandbytes then tries to fetch a CPU kernel from the hub and warns that it
# cannot: always, offline. Drop that one message.
import logging as _logging  # noqa: E402 (after the environment above, on purpose)

_logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(
    lambda record: "kernels-community" not in record.getMessage()
)

__version__ = "0.1.0"
