"""The exported rung as the engines users run it: an Ollama `Modelfile`, the `llama-server` and
vLLM command lines (`tuning.serve_commands.serve_plan`, the one place those are built, limited to
the exported adapter), llama-cpp-python's server config (what `lab export --verify` starts), and
`SERVE.md` saying how to send a question the way the lab asked it.

The lab renders prompts with the GGUF's own chat template (`backends.llamacpp`), as Ollama,
llama-server and llama-cpp-python do by default, so no template is written for a model that has
one; a GGUF without one was prompted in the lab's plain format (`backends.base.plain_render`), so
the Modelfile then carries a TEMPLATE that writes exactly that, and the servers get the prompt as text.
"""

from __future__ import annotations

import json
import shlex

from ..backends.base import PLAIN_STOPS
from ..prompts import few_shot

MODELFILE_TEMPLATE_PLAIN = (
    # plain_render as a Go template: the system text, then "Input: ..." / "Output: ..." turns, then
    # "Output:" (Go templates cannot trim: plain_render's strip() of each text is not repeated)
    '{{ range .Messages }}{{ if eq .Role "system" }}{{ .Content }}\n\n{{ else if eq .Role "user" }}Input: '
    '{{ .Content }}\n{{ else if eq .Role "assistant" }}Output: {{ .Content }}\n\n{{ end }}{{ end }}Output:'
)

# plain_render as a Jinja chat template, for llama-server's --chat-template-file (same text, same turns)
JINJA_TEMPLATE_PLAIN = (
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] | trim }}\n\n"
    "{% elif m['role'] == 'user' %}Input: {{ m['content'] | trim }}\n"
    "{% else %}Output: {{ m['content'] | trim }}\n\n{% endif %}{% endfor %}Output:"
)


def _quote(text: str) -> str:
    """A Modelfile string: triple quotes hold anything but three quotes in a row."""
    if '"""' in text:
        raise ValueError("a text with three double quotes in a row cannot go in a Modelfile")
    return f'"""{text}"""'


def modelfile(prompt: dict, model_path: str, adapter_gguf: str | None, has_template: bool, stop: str | None) -> str:
    """The Ollama Modelfile: FROM the base GGUF, ADAPTER the adapter's, SYSTEM, MESSAGE pairs for
    fixed examples, PARAMETER as evaluated; TEMPLATE only for a GGUF without a chat template."""
    o = prompt["options"]
    lines = [f"# {prompt['task']}: {prompt['name']} (eval run {prompt['eval_run_id']}), written by `lab export`"]
    lines.append(f"FROM {model_path}")
    if adapter_gguf:
        lines.append(f"ADAPTER {adapter_gguf}")
    if not has_template:
        lines += [
            "# the GGUF has no chat template: the lab prompted it in its plain format, written out here",
            f"TEMPLATE {_quote(MODELFILE_TEMPLATE_PLAIN)}",
        ]
    if prompt["instruction"]:
        lines.append(f"SYSTEM {_quote(prompt['instruction'])}")
    shots = prompt["examples"]
    if shots and shots["mode"] == "fixed":
        for pair in shots["pairs"]:
            lines += [f"MESSAGE user {_quote(pair['input'])}", f"MESSAGE assistant {_quote(pair['output'])}"]
    elif shots:
        lines.append(
            f"# the evaluated rung chose the {shots['k']} most similar examples per question: Ollama cannot, so "
            "none are here (prompt.json has the pool; a client that picks them per request reproduces it)"
        )
    lines += [
        f"PARAMETER temperature {o['temperature']:g}",
        f"PARAMETER top_p {o['top_p']:g}",
        f"PARAMETER seed {o['seed']}",
        f"PARAMETER repeat_penalty {o['repeat_penalty']:g}",
        f"PARAMETER num_ctx {prompt['n_ctx']}",
        f"PARAMETER num_predict {o['max_tokens']}",
    ]
    stops = list(o["stop"]) + ([stop] if stop else []) + ([] if has_template else PLAIN_STOPS)
    lines += [f"PARAMETER stop {json.dumps(s)}" for s in dict.fromkeys(stops)]
    c = prompt["constraint"]
    if c and "labels" in c:
        lines.append("# constrained to the labels when evaluated: Ollama has no grammar; send format (a JSON")
        lines.append("# schema) per request for JSON, or use llama-server with grammar.gbnf (SERVE.md)")
    elif c:
        lines.append("# constrained to schema.json when evaluated: send it as `format` in each Ollama request")
    return "\n".join(lines) + "\n"


def server_plans(lab, prompt: dict, model_id: str, adapter: str | None, has_hf: bool, has_template: bool) -> dict:
    """{engine: ServePlan} for llama-server, llama-cpp-python and (with HF weights) vLLM, serving
    the base and only the exported adapter; llama-server gets the lab's plain format as its chat
    template when the GGUF has none."""
    from ..tuning.serve_commands import serve_plan

    only = [adapter] if adapter else []
    engines = ["llama-server", "llama-cpp-python"] + (["vllm"] if has_hf else [])
    plans = {e: serve_plan(lab, e, model_id, only=only, parallel=1) for e in engines}
    if not has_template:
        plans["llama-server"].command += ["--jinja", "--chat-template-file", "chat_template.jinja"]
        plans["llama-cpp-python"].notes.append(
            "the GGUF has no chat template and this server takes none from a file: --verify will flag the "
            "prompt it renders (serve with llama-server and chat_template.jinja instead)"
        )
    c = prompt["constraint"]
    if c and "labels" in c:
        plans["llama-server"].command += ["--grammar-file", "grammar.gbnf"]
    elif c:
        plans["llama-server"].command += ["--json-schema-file", "schema.json"]
    return plans


def request_body(prompt: dict, served_name: str, question: str, engine: str) -> dict:
    """One chat request as the lab sent it (fixed examples; similar ones are the client's to pick)."""
    shots = prompt["examples"]
    pairs = [(p["input"], p["output"]) for p in shots["pairs"]] if shots and shots["mode"] == "fixed" else []
    messages = few_shot(question, pairs, prompt["instruction"])  # the few-shot arm's messages (zero-shot without pairs)
    o = prompt["options"]
    body = {
        "model": served_name,
        "messages": messages,
        "temperature": o["temperature"],
        "top_p": o["top_p"],
        "seed": o["seed"],
        "max_tokens": o["max_tokens"],
    }
    if engine != "vllm":
        body["repeat_penalty"] = o["repeat_penalty"]  # llama.cpp's servers default to 1.1
    c = prompt["constraint"] or {}
    if "labels" in c:
        body.update({"structured_outputs": {"choice": c["labels"]}} if engine == "vllm" else {"grammar": c["grammar"]})
    elif "json_schema" in c:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": c["json_schema"]}}
    return body


def serve_md(prompt: dict, plans: dict, served_name: str, example_question: str, rag: dict | None) -> str:
    """SERVE.md: each engine's command and one request, as the lab evaluated the rung."""
    out = [f"# Serving {prompt['task']}: {prompt['name']}", ""]
    out += [
        "## Ollama",
        "",
        "```sh",
        f"ollama create {prompt['task']} -f Modelfile",
        f"ollama run {prompt['task']} {shlex.quote(example_question)}",
        "```",
        "",
    ]
    for engine, title in (("llama-server", "llama.cpp's llama-server"), ("vllm", "vLLM")):
        if engine not in plans:
            continue
        body = request_body(prompt, served_name, example_question, engine)
        out += [f"## {title}", "", "```sh", plans[engine].text(), "```", ""]
        out += ["One question (the fixed examples and options as evaluated):", "", "```sh"]
        url = plans[engine].spec.split("#")[0][len("openai:") :]
        out += [f"curl -s {url}/chat/completions -H 'Content-Type: application/json' -d @- <<'EOF'"]
        out += [json.dumps(body, indent=2, ensure_ascii=False), "EOF", "```", ""]
    if "vllm" in plans and (prompt["constraint"] or {}).get("labels"):
        out += ["vLLM before 0.10 takes the label set as `guided_choice` instead of `structured_outputs`.", ""]
    out += [
        "## llama-cpp-python (what `lab export --verify` starts)",
        "",
        "```sh",
        "python -m llama_cpp.server --config_file llama-cpp-server.json",
        "```",
        "",
    ]
    if rag:
        out += [
            "## Retrieval",
            "",
            f"The rung searched `{rag['corpus']}` ({rag['corpus_folder']}) with {rag['embedder']}, "
            f"{rag['k']} passages per question from index version {rag['index_version']} "
            f"(hash {rag['index_hash']}). None of the servers above retrieves: your application "
            "searches (any vector store over the same chunks and embedder) and packs the passages as "
            "rag.json says, or calls the lab (`lab ask --rag`) as a service.",
            "",
        ]
    return "\n".join(out)
