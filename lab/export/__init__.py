"""`lab export`: ship what you measured. The rung the lab recommends (or one named) as a folder
Ollama, llama-server, vLLM or llama-cpp-python run as it was evaluated (`bundle.py`: the pick from
`pick.py`, the prompt from `prompt.py`, the engines' files from `serving.py`, `evidence.py`), and
`verify.py`: that folder served on loopback, answering the evaluated questions the same way."""

from .bundle import Export, default_folder, export_rung
from .pick import RUNGS, ExportError, Pick, pick_rung
from .verify import DEFAULT_N, Verification, verify_export

__all__ = [
    "DEFAULT_N",
    "RUNGS",
    "Export",
    "default_folder",
    "ExportError",
    "Pick",
    "Verification",
    "export_rung",
    "pick_rung",
    "verify_export",
]
