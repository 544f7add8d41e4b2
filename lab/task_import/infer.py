"""What a file's outputs say about the task, before any split: the output format (labels, a JSON
schema, text), the scorers and why, what the task teaches, the answer budget (max_tokens), a
default instruction and a text task's default rubric. `plan.py` makes the plan from these."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import Counter
from typing import Any

from .. import prompts

MAX_LABELS = 30  # more distinct answers than this is not a label set
LABEL_CHARS = 60  # a label is a short single line
FORMATS = ("label", "json", "text")


def normalise(text: str) -> str:
    """The leakage check's key: case, accents' forms, punctuation and spacing ignored."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


# ---- the format ----------------------------------------------------------------------


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _as_text(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    return str(v).strip()


def _as_object(text: str) -> dict | None:
    if not text.startswith("{"):
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def _small_set(counts: Counter, n: int) -> bool:
    """A set of answers that repeats: 2..30 distinct values, each seen twice on average."""
    return 2 <= len(counts) <= MAX_LABELS and len(counts) * 2 <= n


def infer_format(outputs: list[str]) -> tuple[str, list[str] | None, dict | None]:
    """(format, labels, schema) from the outputs alone."""
    objects = [_as_object(o) for o in outputs]
    if outputs and all(o is not None for o in objects):
        return "json", None, derive_schema(objects)
    counts = Counter(outputs)
    if _small_set(counts, len(outputs)) and all(len(o) <= LABEL_CHARS and "\n" not in o for o in counts):
        return "label", [label for label, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))], None
    return "text", None, None


_TYPES = [
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
    (type(None), "null"),
]


def _json_type(v: Any) -> str:
    return next(name for cls, name in _TYPES if isinstance(v, cls))


def derive_schema(objects: list[dict]) -> dict:
    """A JSON schema the objects all satisfy: their keys (required when every object has one),
    each key's types, and an enum for a string key whose values are a small repeating set."""
    keys = list(dict.fromkeys(k for o in objects for k in o))
    props = {}
    for key in keys:
        values = [o[key] for o in objects if key in o]
        types = sorted({_json_type(v) for v in values})
        if "integer" in types and "number" in types:
            types.remove("integer")
        prop: dict[str, Any] = {"type": types[0] if len(types) == 1 else types}
        counts = Counter(values) if types == ["string"] else Counter()
        if counts and _small_set(counts, len(values)):
            prop["enum"] = [v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        props[key] = prop
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": props,
        "required": [k for k in keys if all(k in o for o in objects)],
        "additionalProperties": False,
    }


# ---- scoring and the answer budget ---------------------------------------------------------

# CJK scripts write no spaces between words: each of these characters is a token of its own, here
# and in the scorers ("CJK by character"; lab.evaluation.scorers imports these ranges). Hangul Jamo,
# Hiragana + Katakana (+ their extensions and the halfwidth forms), Hangul compatibility Jamo, CJK
# ideographs (Extension A, the unified block, compatibility ideographs, Extensions B-H), Hangul
# syllables and Jamo extensions.
CJK_CHARS = (
    "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_CJK = re.compile(f"[{CJK_CHARS}]")
# ...and for the token estimate, CJK punctuation and full-width forms too (about a token each)
_WIDE = re.compile(f"{_CJK.pattern[:-1]}\u3000-\u303f\uff00-\uffef]")
# A short factual answer: at most SHORT_WORDS words on one line, a CJK character counting as half a
# word (a Chinese word is about two characters: '1949年10月1日' is 4.5 words, '北京' 1). When at
# least SHORT_SHARE of a text task's outputs are short, the answers are facts, and a model that
# states the fact in a full sentence is right: contains_fact is primary (it takes each example's
# "aliases" too). Token F1 would score 'The capital is Paris.' against 'Paris' at 0.5, a miss.
SHORT_WORDS = 5
SHORT_SHARE = 0.75
# max_tokens of a non-label task: the longest output's estimated tokens x 1.25 + 8, never below
# what `lab task new` gave before (longest characters / 3 + 24, 32 to 512), at most MAX_ANSWER_TOKENS
# (half the default 2048-token context, so the prompt still fits).
BUDGET_MARGIN, BUDGET_EXTRA, MAX_ANSWER_TOKENS = 1.25, 8, 1024


def answer_words(text: str) -> float:
    """Words in an answer as the scorers split them (punctuation dropped, CJK by character), a CJK
    character counting half: the length SHORT_WORDS is measured in."""
    norm = normalise(text)
    cjk = len(_CJK.findall(norm))
    return len(_CJK.sub(" ", norm).split()) + cjk / 2


def estimate_tokens(text: str) -> int:
    """A model's tokens for `text` without loading a model (none is chosen when a task is made):
    ~4 characters a token for ASCII (Latin-script) text, 1 token per CJK character (ideograph,
    kana, hangul syllable, CJK punctuation), ~2 characters a token for any other character (accented
    letters, Cyrillic, Greek, Arabic...), which byte-level tokenizers split more finely."""
    wide = len(_WIDE.findall(text))
    ascii_chars = sum(c.isascii() for c in text)
    return math.ceil(ascii_chars / 4 + wide + (len(text) - wide - ascii_chars) / 2)


def _short_outputs(outputs: list[str]) -> tuple[int, str]:
    """(how many outputs are short facts, the sentence that counts them): see SHORT_WORDS."""
    short = sum(answer_words(o) <= SHORT_WORDS and "\n" not in o for o in outputs)
    return (
        short,
        f"{short} of {len(outputs)} outputs are short (at most {SHORT_WORDS} words, a CJK character half a word)",
    )


def _scorers(fmt: str, outputs: list[str] | None = None) -> tuple[list[str], str, str]:
    """(scorers, primary metric, why) for the format; a text task's from its outputs' lengths."""
    if fmt == "label":
        return ["label_accuracy", "exact_match", "macro_f1"], "label_accuracy", "the outputs are labels"
    if fmt == "json":
        return (
            ["json_valid", "schema_valid", "field_accuracy", "exact_match"],
            "field_accuracy",
            "the outputs are JSON objects",
        )
    outputs = outputs or []
    short, counted = _short_outputs(outputs)
    if outputs and short >= SHORT_SHARE * len(outputs):
        return (
            ["contains_fact", "exact_match", "token_f1"],
            "contains_fact",
            f"{counted}: short facts, so an answer that states the fact counts",
        )
    return ["token_f1", "exact_match", "rouge_l"], "token_f1", f"{counted}: longer text, graded by word overlap"


# What the task teaches (task.toml's `teaches`, which the climb's knowledge/behaviour fork reads),
# guessed from what `lab task new` sees, kept simple and editable in task.toml:
# - label and JSON outputs -> behaviour: the answer's shape and the judgement are what is learned;
# - text with a corpus attached, or whose outputs are mostly short facts (the SHORT_SHARE rule that
#   makes contains_fact primary) -> knowledge: facts the model has or lacks;
# - other text (sentences, a persona's voice, a style) -> behaviour.
# `corpus`: the one `lab task new --corpus` (or the New task tab) attaches, if any.
TEACHES = ("knowledge", "behaviour")


def infer_teaches(fmt: str, outputs: list[str], corpus: str | None = None) -> tuple[str, str]:
    """("knowledge" | "behaviour", why) for a new task, by the rules above."""
    if fmt in ("label", "json"):
        what = "labels" if fmt == "label" else "JSON objects"
        return "behaviour", f"the outputs are {what}: their shape and the judgement are learned, not facts"
    if corpus:
        return "knowledge", f"a text task with a corpus ({corpus}): its answers are facts to look up"
    short, counted = _short_outputs(outputs)
    if outputs and short >= SHORT_SHARE * len(outputs):
        return "knowledge", f"{counted}: short facts"
    return "behaviour", f"{counted}: longer text, so the wording and manner are learned more than facts"


def max_tokens_for(outputs: list[str], fmt: str, labels: list[str] | None = None) -> tuple[int, str]:
    """(max_tokens, why) for a new task, from its longest output (see BUDGET_MARGIN)."""
    longest = max((len(o) for o in outputs), default=0)
    if fmt == "label":
        # A label task gets room for its longest label (+ the end-of-turn token); at run time the
        # ladder raises it to what the longest label needs on the model anyway (ladder.answer_budget).
        longest_label = max((len(x) for x in labels or []), default=0)
        return max(16, longest_label // 3 + 8), "room for the longest label"
    before = min(512, max(32, longest // 3 + 24))  # what `lab task new` gave before: ~3 characters a token
    need = max((estimate_tokens(o) for o in outputs), default=0)
    budget = math.ceil(need * BUDGET_MARGIN) + BUDGET_EXTRA
    max_tokens = min(MAX_ANSWER_TOKENS, max(before, budget))
    why = (
        f"the longest output is ~{need} tokens (estimated: ~4 characters a token, 1 a CJK character), "
        f"x {BUDGET_MARGIN} + {BUDGET_EXTRA} = {budget}"
    )
    if before > budget:
        why += f"; {before} by the older estimate (~3 characters a token + 24), kept as the floor"
    if budget > MAX_ANSWER_TOKENS:
        why += f", capped at {MAX_ANSWER_TOKENS}: longer answers are cut (raise max_tokens and n_ctx to keep them)"
    return max_tokens, why


def default_instruction(
    fmt: str,
    input_column: str,
    output_column: str,
    labels: list[str] | None = None,
    schema: dict | None = None,
    given: str | None = None,
) -> str:
    """What the model is told: the file's own instruction when it has one, else one from the format."""
    inp, out = input_column.replace("_", " "), output_column.replace("_", " ")
    if fmt == "label":
        head = given or f"Read the {inp} and answer with its {out}."
        return (
            f"{head}\nAnswer with exactly one of: {', '.join(labels or [])}.\n"
            f"Answer with the {out} only, no other words."
        )
    if fmt == "json":
        lines = []
        for key, prop in (schema or {}).get("properties", {}).items():
            json_type = prop.get("type")
            what = (
                " or ".join(json.dumps(v, ensure_ascii=False) for v in prop["enum"])
                if "enum" in prop
                else {
                    "string": "text",
                    "integer": "a whole number",
                    "number": "a number",
                    "boolean": "true or false",
                    "array": "a list",
                    "object": "an object",
                }.get(json_type, "a value")
            )
            lines.append(f'"{key}": {what}')
        head = given or f"Read the {inp} and reply with one JSON object and nothing else."
        return head + ("\nKeys, in this order:\n" + "\n".join(lines) if lines else "")
    return given or f"Read the {inp} and reply with the {out} only."


# A text task's answers are also rated blind, two at a time (task.toml's `judge = "pairwise"`), by you or
# a judge model reading the task's `rubric` beside them: what a good answer is, in words. This is the
# rubric `lab task new` and the New task tab start from; edit it in task.toml (house style, tone, a
# persona): it is left out of the task's hash, so rewording it keeps every stored evaluation. Label
# and JSON tasks have exact scorers, so they get neither.
DEFAULT_RUBRIC = prompts.DEFAULT_RUBRIC  # one default: a new task's, and the judge's for a task without one
PAIRWISE = "pairwise"  # task.toml's `judge` for a text task


def default_rubric(fmt: str) -> str:
    """The rubric a new task gets: DEFAULT_RUBRIC for a text task, none ("") for labels and JSON."""
    return DEFAULT_RUBRIC if fmt == "text" else ""


def default_judge(fmt: str) -> str | None:
    """task.toml's `judge` for a new task: pairwise for a text task, None for labels and JSON."""
    return PAIRWISE if fmt == "text" else None
