"""The tune arm: the base model with a LoRA adapter switched on, on the model already loaded.

llama.cpp (GGUF models) serves the exported `adapter.gguf` on the same `Llama`; transformers
serves the PEFT folder on the same loaded model (adapters are disabled again for the other
arms). Either way the generation is logged with the adapter's name and sha256.
"""
from __future__ import annotations

from .. import backends
from ..prompts import zero_shot
from .adapters import AdapterInfo, check_fits, resolve_adapter


def tune_answer(lab, question: str, adapter: str | AdapterInfo, *, model: str | None = None,
                kind: str | None = None, system: str | None = None, options=None, on_text=None,
                messages: list[dict] | None = None, arm: str = "tune", log: dict | None = None):
    """Answer `question` with the adapter on -> (Generation, generation row id).

    `system` defaults to the instruction the adapter was trained with. Pass `messages` to send
    other messages with the adapter on (the tune+rag arm: the RAG messages, `arm="tune+rag"`,
    `log={"corpus":..., "index_hash":..., "retrieved":[...]}`)."""
    if isinstance(adapter, AdapterInfo):
        info = lab.model_info(model or adapter.base_model)
        check_fits(adapter, info, lab.model_sha(info))
    else:
        adapter = resolve_adapter(lab, adapter, model)
    model = model or adapter.base_model
    backend = lab.backend(model, kind)
    served_by = kind or backends.default_backend_for(backend.info)
    if messages is None:
        messages = zero_shot(question, system if system is not None else adapter.instruction)
    return lab.generate(messages, arm=arm, model=model, kind=kind, options=options,
                        adapter=adapter.serve_path(served_by), adapter_sha=adapter.sha256,
                        adapter_id=adapter.name, on_text=on_text, log=log)
