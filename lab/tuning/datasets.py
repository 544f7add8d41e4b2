"""Training data: the formats people already have, checked line by line before any training.

Accepted JSONL formats (detected from the keys; one format per file):
  chat               {"messages": [{"role": "system"|"user"|"assistant", "content": ...}, ...]}  (OpenAI)
  prompt-completion  {"prompt": ..., "completion": ...}
  alpaca             {"instruction": ..., "input": ..., "output": ...}  (input optional)
  input-output       {"input": ..., "output": ...}  (the lab's task files; the instruction is the system turn)
Every example becomes chat messages ending in the assistant turn to learn. The loss is taken on
assistant tokens only, rendered with the model's own chat template (`encode`).
"""

from __future__ import annotations

import json
import random
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from ..models import sha256_of

FORMATS = ("chat", "prompt-completion", "alpaca", "input-output")
MIN_EXAMPLES = 20  # below this, refuse unless forced
FEW_EXAMPLES = 200  # below this, warn (the seeds' rule of thumb)
IGNORE = -100  # label for tokens that carry no loss (the prompt)
_ROLES = {"system", "user", "assistant", "developer"}


class DatasetError(ValueError):
    """A training file that cannot be used. `.problems` lists (line, message) pairs."""

    def __init__(self, path: str | Path, problems: list[tuple[int | None, str]]):
        self.path, self.problems = Path(path), problems
        shown = [f"{path}:{line}: {msg}" if line else f"{path}: {msg}" for line, msg in problems[:5]]
        more = f"\n... and {len(problems) - 5} more problems" if len(problems) > 5 else ""
        super().__init__("\n".join(shown) + more)


@dataclass
class TrainExample:
    messages: list[dict]  # ends with the assistant turn to learn
    line: int  # 1-based line in the file
    weights: list[int] = field(default_factory=list)  # per assistant turn: 0 = no loss (OpenAI "weight")


def detect_format(obj: dict) -> str | None:
    if "messages" in obj:
        return "chat"
    if "prompt" in obj and "completion" in obj:
        return "prompt-completion"
    if "instruction" in obj and "output" in obj:
        return "alpaca"
    if "input" in obj and "output" in obj:
        return "input-output"
    return None


def _text(value, what: str) -> str:
    """Strings stay; JSON values (a task's structured output) become compact JSON text."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, int, float, bool)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))  # as lab.tasks does
    raise ValueError(f"'{what}' must be a string, got {type(value).__name__}")


def _chat(obj: dict) -> tuple[list[dict], list[int]]:
    msgs = obj["messages"]
    if not isinstance(msgs, list) or not msgs:
        raise ValueError("'messages' must be a non-empty list")
    out, weights = [], []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise ValueError(f"messages[{i}] must be an object with 'role' and 'content'")
        role = m.get("role")
        if role not in _ROLES:
            raise ValueError(f"messages[{i}].role is {role!r}; expected system, user or assistant")
        if m.get("tool_calls") or m.get("function_call"):
            raise ValueError(f"messages[{i}] has tool calls, which LoRA training here does not support")
        content = m.get("content")
        if not isinstance(content, str):
            raise ValueError(f"messages[{i}].content must be a string, got {type(content).__name__}")
        role = "system" if role == "developer" else role
        if role == "assistant":
            weight = m.get("weight", 1)
            if weight not in (0, 1):
                raise ValueError(f"messages[{i}].weight must be 0 or 1, got {weight!r}")
            weights.append(int(weight))
        out.append({"role": role, "content": content})
    if out[-1]["role"] != "assistant":
        raise ValueError("the last message must be the assistant's answer (the text to learn)")
    if not out[-1]["content"].strip():
        raise ValueError("the last assistant message is empty")
    if not any(weights):
        raise ValueError("every assistant message has weight 0: nothing to learn")
    return out, weights


def _convert(obj: dict, fmt: str, instruction: str | None) -> tuple[list[dict], list[int]]:
    if fmt == "chat":
        msgs, weights = _chat(obj)
    else:
        if fmt == "prompt-completion":
            user, answer = _text(obj["prompt"], "prompt"), _text(obj["completion"], "completion")
        elif fmt == "alpaca":
            inp = _text(obj.get("input") or "", "input")
            user = _text(obj["instruction"], "instruction") + (f"\n\n{inp}" if inp.strip() else "")
            answer = _text(obj["output"], "output")
        else:
            user, answer = _text(obj["input"], "input"), _text(obj["output"], "output")
        if not user.strip():
            raise ValueError("the prompt/input is empty")
        if not answer.strip():
            raise ValueError("the completion/output is empty")
        msgs, weights = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}], [1]
    if instruction and msgs[0]["role"] != "system":
        msgs = [{"role": "system", "content": instruction}] + msgs
    return msgs, weights


def read_examples(path: str | Path, instruction: str | None = None) -> tuple[str, list[TrainExample]]:
    """(format, examples) from a JSONL file. Every bad line is reported by number; if any line is
    bad, nothing is returned (a DatasetError lists them), so nothing trains on a broken file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training data {path} does not exist")
    problems: list[tuple[int | None, str]] = []
    examples: list[TrainExample] = []
    fmt, fmt_line = None, 0
    data = path.read_bytes()
    try:
        lines = data.decode("utf-8-sig").splitlines()  # a leading BOM is not text
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1  # the line, for the user to find it
        raise DatasetError(path, [(line, f"not UTF-8 text ({e.reason}: byte 0x{data[e.start]:02x})")]) from None
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            problems.append((n, f"not valid JSON: {e.msg} (column {e.colno})"))
            continue
        if not isinstance(obj, dict):
            problems.append((n, f"expected a JSON object, got {type(obj).__name__}"))
            continue
        line_fmt = detect_format(obj)
        if line_fmt is None:
            problems.append(
                (
                    n,
                    'unknown format: expected {"messages": [...]}, {"prompt", "completion"}, '
                    '{"instruction", "input", "output"} or {"input", "output"}; '
                    f"found keys {sorted(obj)}",
                )
            )
            continue
        if fmt is None:
            fmt, fmt_line = line_fmt, n
        elif line_fmt != fmt:
            problems.append((n, f"this line is {line_fmt} but line {fmt_line} is {fmt}: use one format per file"))
            continue
        try:
            msgs, weights = _convert(obj, fmt, instruction)
        except (ValueError, TypeError) as e:
            problems.append((n, str(e)))
            continue
        examples.append(TrainExample(msgs, n, weights))
    if problems:
        raise DatasetError(path, problems)
    if not examples:
        raise DatasetError(path, [(None, "no examples (the file is empty)")])
    return fmt, examples


# ---- tokens: the model's own chat template, loss on the answer only ---------------------------


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]  # IGNORE where no loss
    length: int  # before truncation
    line: int = 0

    @property
    def n_answer(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def _render(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def _segments(tokenizer, messages: list[dict], weights: list[int]) -> list[tuple[str, bool]]:
    """The rendered example cut into (text, learn?) pieces: the prompt parts masked, each
    assistant answer (with its end-of-turn marker) learned, exactly as the template writes them."""
    if getattr(tokenizer, "chat_template", None):
        pieces: list[tuple[str, bool]] = []
        done = ""
        turn = 0
        stable = True
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            before = _render(tokenizer, messages[:i], True)
            after = _render(tokenizer, messages[: i + 1], False)
            if not (before.startswith(done) and after.startswith(before)):
                stable = False  # the template rewrites history (some do): learn the last turn only
                break
            pieces += [(before[len(done) :], False), (after[len(before) :], bool(weights[turn]))]
            done, turn = after, turn + 1
        if stable:
            return [p for p in pieces if p[0]]
        before = _render(tokenizer, messages[:-1], True)
        after = _render(tokenizer, messages, False)
        if after.startswith(before):
            return [(before, False), (after[len(before) :], True)]
        return [(before, False), (messages[-1]["content"] + (tokenizer.eos_token or ""), True)]
    # No chat template (a base model): the lab's plain "Input:/Output:" format, as served.
    from ..backends.base import plain_render

    return [
        (plain_render(messages[:-1]), False),
        (" " + messages[-1]["content"].strip() + (tokenizer.eos_token or ""), True),
    ]


def encode(tokenizer, messages: list[dict], max_seq_len: int, weights: list[int] | None = None) -> Encoded:
    weights = weights or [1] * sum(m["role"] == "assistant" for m in messages)
    ids: list[int] = []
    labels: list[int] = []
    segments = _segments(tokenizer, messages, weights)
    # Like llama.cpp: a BOS token unless the template already wrote one.
    bos = tokenizer.bos_token
    if bos and getattr(tokenizer, "add_bos_token", False) and not segments[0][0].startswith(bos):
        ids.append(tokenizer.bos_token_id)
        labels.append(IGNORE)
    for text, learn in segments:
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += piece
        labels += piece if learn else [IGNORE] * len(piece)
    length = len(ids)
    return Encoded(ids[:max_seq_len], labels[:max_seq_len], length)


# ---- the report ---------------------------------------------------------------------------------


@dataclass
class DatasetReport:
    path: str
    format: str
    sha256: str
    count: int  # examples read (before dropping duplicates)
    duplicates: int  # exact duplicates, dropped so none leaks from train into validation
    n_train: int
    n_val: int
    max_seq_len: int
    lengths: dict = field(default_factory=dict)  # tokens per example: min, median, p95, max, mean
    truncated: int = 0  # examples longer than max_seq_len (cut from the end)
    unusable: int = 0  # examples with no answer token left after truncation (skipped)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def summary(self) -> str:
        lines = [
            f"{self.path}: {self.count} examples ({self.format}), sha256 {self.sha256[:12]}",
            f"  duplicates dropped: {self.duplicates}   train/val split: {self.n_train}/{self.n_val}",
        ]
        if self.lengths:
            ln = self.lengths
            lines.append(
                f"  tokens per example: min {ln['min']}, median {ln['median']}, p95 {ln['p95']}, "
                f"max {ln['max']}; {self.truncated} longer than max_seq_len {self.max_seq_len}"
            )
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded train/validation split; at least one validation example when asked for any."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_val = 0 if val_fraction <= 0 or n < 2 else min(n - 1, max(1, round(n * val_fraction)))
    return sorted(order[n_val:]), sorted(order[:n_val])


@dataclass
class PreparedData:
    report: DatasetReport
    train: list[Encoded]
    val: list[Encoded]


def prepare(
    path: str | Path,
    tokenizer=None,
    *,
    max_seq_len: int = 512,
    val_fraction: float = 0.1,
    seed: int = 0,
    instruction: str | None = None,
    force: bool = False,
) -> PreparedData:
    """Read, check and (with a tokenizer) encode a training file, with its report.
    Raises DatasetError on a malformed line, or on fewer than 20 examples unless `force`."""
    path = Path(path)
    fmt, examples = read_examples(path, instruction)
    count = len(examples)
    seen, unique = set(), []
    for ex in examples:
        key = json.dumps(ex.messages, sort_keys=True, ensure_ascii=False)
        if key not in seen:
            seen.add(key)
            unique.append(ex)
    warnings = []
    if count < MIN_EXAMPLES and not force:
        raise DatasetError(
            path,
            [
                (
                    None,
                    f"only {count} examples: fewer than {MIN_EXAMPLES} is too few to tune "
                    "on (it will overfit or do nothing). Add examples, or pass --force "
                    "to train anyway.",
                )
            ],
        )
    if count < FEW_EXAMPLES:
        warnings.append(
            f"only {count} examples: under {FEW_EXAMPLES}, tuning is likely to overfit or do "
            "little; try few-shot prompting first and collect more examples"
        )
    if len(unique) < count:
        warnings.append(f"{count - len(unique)} exact duplicate examples dropped")
    train_idx, val_idx = split_indices(len(unique), val_fraction, seed)
    report = DatasetReport(
        str(path),
        fmt,
        sha256_of(path),
        count,
        count - len(unique),
        len(train_idx),
        len(val_idx),
        max_seq_len,
        warnings=warnings,
    )
    if tokenizer is None:
        return PreparedData(report, [], [])
    encoded = []
    for ex in unique:
        enc = encode(tokenizer, ex.messages, max_seq_len, ex.weights)
        enc.line = ex.line
        encoded.append(enc)
    lengths = sorted(e.length for e in encoded)
    report.lengths = {
        "min": lengths[0],
        "median": int(statistics.median(lengths)),
        "p95": lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))],
        "max": lengths[-1],
        "mean": round(statistics.fmean(lengths), 1),
    }
    report.truncated = sum(1 for n in lengths if n > max_seq_len)
    if report.truncated:
        warnings.append(
            f"{report.truncated} examples are longer than max_seq_len={max_seq_len} tokens and "
            "are cut at the end; raise --max-seq-len if the answers matter there"
        )
    bad = [e.line for e in encoded if e.n_answer == 0]
    if bad:
        report.unusable = len(bad)
        warnings.append(
            f"{len(bad)} examples have no answer tokens within max_seq_len and are skipped "
            f"(lines {', '.join(map(str, bad[:10]))}{'...' if len(bad) > 10 else ''})"
        )
    train = [encoded[i] for i in train_idx if encoded[i].n_answer]
    val = [encoded[i] for i in val_idx if encoded[i].n_answer]
    if not train:
        raise DatasetError(path, [(None, "no example has an answer within max_seq_len: raise --max-seq-len")])
    report.n_train, report.n_val = len(train), len(val)
    return PreparedData(report, train, val)
