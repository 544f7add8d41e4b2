"""The command line that serves a base model and the lab's adapters trained on it, on a server
engine the lab then talks to (`openai:URL#BASE`): `lab adapters serve --engine ...`.

Every engine serves the base under the lab's model id and each adapter under the lab's adapter
name, so the lab maps an adapter to the server by name and checks the base by name:
- vllm: the HF weights (the model's own, or the copy the lab dequantised to train on), each PEFT
  folder as `--lora-modules NAME=PATH`; a request's `model` is the adapter's name.
- llama-server (llama.cpp): the GGUF, each `adapter.gguf` as `--lora`, none applied by default;
  a request selects one by id (`GET /lora-adapters` lists them with their paths).
- llama-cpp-python: its server's config file: the base, and one model alias per adapter.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from .adapters import AdapterError, AdapterInfo, list_adapters

ENGINES = ("vllm", "llama-server", "llama-cpp-python")


@dataclass
class ServePlan:
    engine: str
    command: list[str]
    spec: str  # the lab's model spec for the server: openai:URL#BASE
    adapters: list[str]
    config: dict | None = None  # llama-cpp-python: the config file's content
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [shlex.join(self.command)]
        if self.config is not None:
            lines = [f"# {self.command[-1]}:", json.dumps(self.config, indent=2), "", lines[0]]
        lines += [f"# {n}" for n in self.notes]
        lines.append(f"# then: lab eval TASK --model '{self.spec}' --arms zero-shot,few-shot,tune --concurrency 8")
        return "\n".join(lines)


def _lora_rank(adapter: AdapterInfo) -> int:
    try:
        return int(json.loads((adapter.path / "adapter_config.json").read_text()).get("r") or 16)
    except (OSError, ValueError):
        return 16


def serve_plan(
    lab,
    engine: str,
    base: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    n_ctx: int | None = None,
    parallel: int = 8,
    config_path: str = "llama-cpp-server.json",
    only: list[str] | None = None,
) -> ServePlan:
    """The command (and for llama-cpp-python the config) serving `base` (default: the lab's
    default model) with every finished adapter trained on it (`only`: these of them, by name:
    `lab export` serves the one it ships)."""
    if engine not in ENGINES:
        raise AdapterError(f"unknown engine '{engine}': choose from {', '.join(ENGINES)}")
    info = lab.model_info(base)
    if info.format == "openai":
        raise AdapterError(f"{info.id} is already a server: name the local base model the adapters were trained on")
    sha = lab.model_sha(info)
    adapters = [a for a in list_adapters(lab.home.adapters)[0] if a.base_sha == sha]
    if only is not None:
        missing = sorted(set(only) - {a.name for a in adapters})
        if missing:
            raise AdapterError(f"no finished adapter {', '.join(missing)} trained on {info.id}")
        adapters = [a for a in adapters if a.name in only]
    n_ctx = n_ctx or lab.config.n_ctx
    spec = f"openai:http://{host}:{port}/v1#{info.id}"
    plan = ServePlan(engine, [], spec, [a.name for a in adapters])
    if not adapters and only is None:
        plan.notes.append(f"no adapters trained on {info.id} yet (see `lab train`): the base alone is served")
    if engine == "vllm":
        weights = info.hf_path or lab.hf_cache_dir(info)
        if info.hf_path is None and not Path(weights).is_dir():
            plan.notes.append(f"{weights} (the HF copy of the GGUF the adapters train on) appears after `lab train`")
        plan.command = [
            "vllm",
            "serve",
            str(weights),
            "--served-model-name",
            info.id,
            "--host",
            host,
            "--port",
            str(port),
            "--max-model-len",
            str(n_ctx),
        ]
        if adapters:
            plan.command += [
                "--enable-lora",
                "--max-lora-rank",
                str(max(map(_lora_rank, adapters))),
                "--max-loras",
                str(min(len(adapters), 8)),
                "--lora-modules",
                *[f"{a.name}={a.path.resolve()}" for a in adapters],
            ]
    elif engine == "llama-server":
        gguf = _gguf(info)
        plan.command = [
            "llama-server",
            "-m",
            str(gguf),
            "--alias",
            info.id,
            "--host",
            host,
            "--port",
            str(port),
            "-c",
            str(n_ctx * parallel),
            "-np",
            str(parallel),
            "-ngl",
            "99",
        ]
        for a in adapters:
            plan.command += ["--lora", str(_adapter_gguf(a))]
        if adapters:
            plan.command.append("--lora-init-without-apply")  # the base answers unless a request names one
        plan.notes.append(f"-c is shared by the -np {parallel} slots: {n_ctx} tokens each")
    else:
        gguf = _gguf(info)
        common = {"n_ctx": n_ctx, "n_gpu_layers": lab.config.n_gpu_layers if lab.config.n_gpu_layers is not None else 0}
        models = [{"model": str(gguf), "model_alias": info.id, **common}]
        models += [
            {"model": str(gguf), "model_alias": a.name, "lora_path": str(_adapter_gguf(a)), **common} for a in adapters
        ]
        # A new request must not cut the one streaming (its default): the lab sends several at once.
        plan.config = {"host": host, "port": port, "interrupt_requests": False, "models": models}
        plan.command = ["python", "-m", "llama_cpp.server", "--config_file", config_path]
        plan.notes.append("it runs one request at a time and reloads the model to switch between aliases")
    return plan


def _gguf(info) -> Path:
    if info.gguf_path is None:
        raise AdapterError(f"{info.id} has no GGUF for llama.cpp's server: use --engine vllm")
    return Path(info.gguf_path).resolve()


def _adapter_gguf(adapter: AdapterInfo) -> Path:
    if adapter.gguf_path is None:
        raise AdapterError(f"adapter '{adapter.name}' has no adapter.gguf: run `lab adapters export {adapter.name}`")
    return adapter.gguf_path.resolve()
