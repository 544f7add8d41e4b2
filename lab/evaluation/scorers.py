"""Scorers: how good one output is against one expected output.

Every scorer returns a float in [0, 1], or None when it does not apply (no schema, no gold
document, no passages...). None is "not measured", never "wrong": statistics skip it.
`score_example` runs the scorers a task names plus the format checks its output format implies.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from ..task_import.infer import CJK_CHARS

# ---- normalisation -------------------------------------------------------------------

_PUNCT = str.maketrans({c: " " for c in string.punctuation if c not in "$%"})
_ARTICLES = {"a", "an", "the"}
_CJK = re.compile(f"[{CJK_CHARS}]")  # CJK by character: the ranges lab task new measures with


def _unicode_punct_to_spaces(s: str) -> str:
    """Non-ASCII punctuation (Unicode category P*: '，', '。', '！', '「', '·'...) to spaces; ASCII is
    left to the _PUNCT pass, which keeps '$' and '%'."""
    if s.isascii():
        return s
    return "".join(" " if not c.isascii() and unicodedata.category(c).startswith("P") else c for c in s)


def normalize(text: Any) -> str:
    """Lower case, punctuation (ASCII and Unicode) to spaces, articles dropped, whitespace collapsed:
    'The Dermatologist.' == 'dermatologist', '北京。' == '北京'. Non-ASCII text is NFKC-normalised
    first (full-width '，' and 'Ｌ' become ',' and 'L'); ASCII text is exactly as it always was."""
    s = str(text if text is not None else "")
    if not s.isascii():
        s = unicodedata.normalize("NFKC", s)
    s = s.lower().strip()
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)  # 1,200 -> 1200
    # keep decimal points through the punctuation pass ("3.5" is one number, not "3 5"): a
    # placeholder with no punctuation in it (one with underscores was itself turned to spaces)
    s = re.sub(r"(?<=\d)\.(?=\d)", "\x00", s)
    s = _unicode_punct_to_spaces(s.translate(_PUNCT)).replace("\x00", ".")
    return " ".join(w for w in s.split() if w not in _ARTICLES)


def tokens(text: Any) -> list[str]:
    """The tokens token F1, ROUGE-L and contains_fact compare: `normalize`d text split on
    whitespace, CJK by character (each ideograph, kana or hangul syllable is a token of its own,
    since those scripts put no spaces between words), so '您好，我是 Ladder' is
    ['您', '好', '我', '是', 'ladder']. Not the model's tokenizer: scores do not depend on the model.
    ASCII text tokenises exactly as it always did."""
    s = normalize(text)
    if s.isascii():
        return s.split()
    return [w for w in _CJK.sub(r" \g<0> ", s).split() if w not in _ARTICLES]


# ---- exact match and labels ----------------------------------------------------------


def exact_match(pred: str, gold: Any) -> float:
    return float(normalize(pred) == normalize(gold))


def extract_label(pred: str, labels: Sequence[str]) -> str | None:
    """The label a free-form answer names: the whole answer if it is a label, else its first
    line if that is one, else the one label that appears in it (None if zero or several)."""
    norm = {normalize(label): label for label in labels}
    whole = normalize(pred)
    if whole in norm:
        return norm[whole]
    first = normalize((pred or "").strip().splitlines()[0] if (pred or "").strip() else "")
    if first in norm:
        return norm[first]
    padded = f" {whole} "
    found = [label for n, label in norm.items() if n and f" {n} " in padded]
    # 'Orthopedic Surgeon' also contains 'Surgeon': keep only the longest matches
    found = [f for f in found if not any(f != g and normalize(f) in normalize(g) for g in found)]
    return found[0] if len(found) == 1 else None


def label_accuracy(pred: str, gold: Any, labels: Sequence[str] | None = None) -> float:
    if not labels:
        return exact_match(pred, gold)
    return float(normalize(extract_label(pred, labels)) == normalize(gold))


def label_valid(pred: str, labels: Sequence[str] | None) -> float | None:
    """Format check for label tasks: does the answer name exactly one known label?"""
    if not labels:
        return None
    return float(extract_label(pred, labels) is not None)


# ---- JSON ------------------------------------------------------------------------------

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.S)


def _first_object(text: str) -> str | None:
    """The first balanced {...} block, honouring strings and escapes."""
    start = text.find("{")
    while start != -1:
        depth, in_str, esc = 0, False, False
        for i in range(start, len(text)):
            c = text[i]
            if in_str:
                if esc:
                    esc = False
                elif c == "\\":
                    esc = True
                elif c == '"':
                    in_str = False
            elif c == '"':
                in_str = True
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    return text[start : i + 1]
        start = text.find("{", start + 1)  # unbalanced: try the next opening brace
    return None


def extract_json(text: str) -> tuple[Any, str | None]:
    """(object, None) for the JSON in a model's output, else (None, why).
    Accepts the bare output, a ```json fenced block, or the first {...} block in prose."""
    text = (text or "").strip()
    if not text:
        return None, "empty output"
    candidates = [text] + [m.strip() for m in _FENCE.findall(text)]
    block = _first_object(text)
    if block:
        candidates.append(block)
    error = "no JSON object found"
    for c in candidates:
        try:
            return json.loads(c), None
        except json.JSONDecodeError as e:
            error = f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}"
    return None, error


def json_valid(pred: str) -> float:
    obj, _ = extract_json(pred)
    return float(isinstance(obj, dict))


def schema_errors(obj: Any, schema: dict) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(obj)]


def schema_valid(pred: str, schema: dict | None) -> float | None:
    if not schema:
        return None
    obj, _ = extract_json(pred)
    if not isinstance(obj, dict):
        return 0.0
    return float(not schema_errors(obj, schema))


def _gold_object(gold: Any) -> dict | None:
    if isinstance(gold, dict):
        return gold
    obj, _ = extract_json(gold if isinstance(gold, str) else json.dumps(gold))
    return obj if isinstance(obj, dict) else None


def field_scores(
    pred: str, gold: Any, fields: Iterable[str] | None = None, text_fields: Iterable[str] = ()
) -> dict[str, float]:
    """Per field: 1.0 if the predicted value equals the expected one (normalised); free-text
    fields (`text_fields`, e.g. a summary) get token F1 instead. An unparseable output scores 0."""
    gold_obj = _gold_object(gold)
    if gold_obj is None:
        return {}
    fields = list(fields or gold_obj.keys())
    obj, _ = extract_json(pred)
    obj = obj if isinstance(obj, dict) else {}
    text_fields = set(text_fields)
    out = {}
    for f in fields:
        if f not in obj:
            out[f] = 0.0
        elif f in text_fields:
            out[f] = token_f1(str(obj[f]), str(gold_obj.get(f, "")))
        else:
            out[f] = exact_match(_scalar(obj[f]), _scalar(gold_obj.get(f)))
    return out


def _scalar(v: Any) -> str:
    return json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else str(v)


def field_accuracy(
    pred: str, gold: Any, fields: Iterable[str] | None = None, text_fields: Iterable[str] = ()
) -> float | None:
    """Mean accuracy over the categorical fields (free-text fields are reported on their own
    as field:<name> token F1, since a summary rarely matches word for word); over all fields
    when every field is free text."""
    scores = field_scores(pred, gold, fields, text_fields)
    exact = {f: v for f, v in scores.items() if f not in set(text_fields)} or scores
    return sum(exact.values()) / len(exact) if exact else None


# ---- free text ---------------------------------------------------------------------------


def token_f1(pred: str, gold: Any) -> float:
    p, g = tokens(pred), tokens(gold)
    if not p and not g:
        return 1.0
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def _lcs(a: list[str], b: list[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(pred: str, gold: Any) -> float:
    """ROUGE-L F-measure: longest common token subsequence, as precision/recall F1."""
    p, g = tokens(pred), tokens(gold)
    if not p and not g:
        return 1.0
    lcs = _lcs(p, g)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(g)
    return 2 * precision * recall / (precision + recall)


# ---- QA and retrieval ------------------------------------------------------------------------


def _contains_tokens(hay: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(hay[i : i + n] == needle for i in range(len(hay) - n + 1))


def contains_fact(pred: str, gold: Any, aliases: Iterable[str] = ()) -> float:
    """Does the answer state the expected fact (or one of its aliases) as whole words?
    'it is 1,200 per year' contains '1200'; '120' does not match '1200'; '$1,200' is the token
    '$1200', so it matches '$1,200', not '1200'."""
    hay = tokens(pred)
    for answer in [gold, *aliases]:
        if answer is not None and _contains_tokens(hay, tokens(answer)):
            return 1.0
    return 0.0


def doc_matches(source: str | None, gold_doc: str | Sequence[str] | None) -> bool:
    """A passage's source matches the gold document by path suffix or file name."""
    if not source or not gold_doc:
        return False
    golds = [gold_doc] if isinstance(gold_doc, str) else list(gold_doc)
    src = str(source).replace("\\", "/").split("#")[0]
    for g in golds:
        g = str(g).replace("\\", "/").strip("/")
        if src == g or src.endswith("/" + g) or src.rsplit("/", 1)[-1] == g.rsplit("/", 1)[-1]:
            return True
    return False


def recall_at_k(passages: Sequence | None, gold_doc: Any) -> float | None:
    """1.0 if any retrieved passage comes from the gold document."""
    if passages is None or not gold_doc:
        return None
    return float(any(doc_matches(_source(p), gold_doc) for p in passages))


_CITE = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


def cited(pred: str) -> list[int]:
    """Source numbers cited like [2] or [1, 3], in order, without repeats."""
    out: list[int] = []
    for m in _CITE.finditer(pred or ""):
        for n in m.group(1).split(","):
            if int(n) not in out:
                out.append(int(n))
    return out


def citation_correct(
    pred: str, passages: Sequence | None, gold_doc: Any = None, gold: Any = None, aliases: Iterable[str] = ()
) -> float | None:
    """Did the answer cite [n] of a passage that holds the fact: one from the gold document,
    or (with no gold document) one whose text contains the expected answer?"""
    if not passages or (not gold_doc and gold is None):
        return None
    for n in cited(pred):
        if 1 <= n <= len(passages):
            p = passages[n - 1]
            if gold_doc and doc_matches(_source(p), gold_doc):
                return 1.0
            if not gold_doc and contains_fact(_text(p), gold, aliases):
                return 1.0
    return 0.0


def is_short_fact(gold: Any) -> bool:
    """Is the expected output a short fact (a name, a number, a date), not free text or an object?
    The rule `lab task new` picks contains_fact by: at most 5 words on one line, a CJK character
    counting half a word (`task_import.infer.SHORT_WORDS`, `answer_words`)."""
    from ..task_import.infer import SHORT_WORDS, answer_words

    if gold is None or isinstance(gold, (dict, list, bool)):
        return False
    text = str(gold).strip()
    return "\n" not in text and 0 < answer_words(text) <= SHORT_WORDS


def answer_in_context(passages: Sequence | None, gold: Any, aliases: Iterable[str] = ()) -> float | None:
    """Was the expected answer (or an alias) in the prompt: 1.0 when one passage that went into it
    (its title/heading line and text, as the model read them) contains it as whole words, with
    contains_fact's normalisation (case, punctuation, CJK by character); 0.0 when none does. None
    when it cannot apply: no passages (not a RAG answer), or an expected output that is not a short
    fact (`is_short_fact`: free text is not found word for word in a passage)."""
    if passages is None or not is_short_fact(gold):
        return None
    return float(any(contains_fact(_prompt_text(p), gold, aliases) for p in passages))


def _prompt_text(p) -> str:
    if hasattr(p, "for_prompt"):
        return p.for_prompt()
    if isinstance(p, dict):
        return " ".join(str(p.get(k) or "") for k in ("title", "heading", "text"))
    return _text(p)


def _source(p) -> str | None:
    return p.get("source") if isinstance(p, dict) else getattr(p, "source", None)


def _text(p) -> str:
    return (p.get("text") if isinstance(p, dict) else getattr(p, "text", "")) or ""


def macro_f1(golds: Sequence[str], preds: Sequence[str | None], labels: Sequence[str] | None = None) -> float | None:
    """Macro-averaged F1 over labels: a corpus-level metric (per-class balance), so it is
    computed per arm over all examples, not per example."""
    golds = [normalize(g) for g in golds]
    preds = [normalize(p) if p is not None else None for p in preds]
    classes = [normalize(label) for label in labels] if labels else sorted(set(golds))
    f1s = []
    for c in classes:
        tp = sum(1 for g, p in zip(golds, preds) if g == c and p == c)
        fp = sum(1 for g, p in zip(golds, preds) if g != c and p == c)
        fn = sum(1 for g, p in zip(golds, preds) if g == c and p != c)
        if tp + fp + fn == 0:
            continue  # a class absent from both: no evidence either way
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return sum(f1s) / len(f1s) if f1s else None


# ---- the registry and one example's scores ------------------------------------------------

SCORERS = [
    "exact_match",
    "label_accuracy",
    "json_valid",
    "schema_valid",
    "field_accuracy",
    "token_f1",
    "rouge_l",
    "contains_fact",
    "citation",
    "recall_at_k",
    "context_hit",
    "macro_f1",
]
CORPUS_LEVEL = {"macro_f1"}  # computed over a whole arm (lab.evaluation.summary), not per example
ALIASES = {
    "exact": "exact_match",
    "em": "exact_match",
    "accuracy": "label_accuracy",
    "label": "label_accuracy",
    "json": "json_valid",
    "json_parse": "json_valid",
    "schema": "schema_valid",
    "json_schema": "schema_valid",
    "fields": "field_accuracy",
    "f1": "token_f1",
    "rouge": "rouge_l",
    "rougel": "rouge_l",
    "fact": "contains_fact",
    "contains": "contains_fact",
    "contains_answer": "contains_fact",
    "citation_correct": "citation",
    "citations": "citation",
    "recall": "recall_at_k",
    "recall@k": "recall_at_k",
    "retrieval_hit": "recall_at_k",
    "retrieval_recall": "recall_at_k",
    "answer_in_context": "context_hit",
    "f1_macro": "macro_f1",
}
# Scorers that grade a continuous overlap: an answer is "wrong" below 0.5, not below 1.0.
CONTINUOUS = {"token_f1", "rouge_l", "field_accuracy"}


class ScorerError(ValueError):
    pass


def canonical(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in SCORERS and not key.startswith("field:"):
        raise ScorerError(f"unknown scorer '{name}' (known: {', '.join(SCORERS)})")
    return key


def check_task(task) -> None:
    """Fail before any generation if the task names a scorer the lab does not have."""
    where = f"{getattr(task, 'source', None) or getattr(task, 'name', 'task')}"
    for field_name, names in (
        ("scorers", getattr(task, "scorers", None) or []),
        ("primary_metric", [getattr(task, "primary_metric", None) or ""]),
    ):
        for n in names:
            if not n:
                continue
            try:
                key = canonical(n)
            except ScorerError as e:
                raise ScorerError(f"{where}: field '{field_name}': {e}") from None
            if field_name == "primary_metric" and key in CORPUS_LEVEL:
                raise ScorerError(
                    f"{where}: field 'primary_metric': '{n}' is computed over a whole arm, "
                    "not per example, so it cannot be the primary metric"
                )


def score_example(task, example, output: str, passages: Sequence | None = None) -> dict[str, float | None]:
    """All the scores of one output: the task's scorers, the format check its output format
    implies ('format_valid'), per-field scores for JSON, retrieval scores when there are
    passages (recall_at_k, citation, context_hit: the answer in the prompt), and 'primary'
    (the task's primary metric)."""
    fmt = getattr(task, "output_format", "text") or "text"
    labels = list(getattr(task, "labels", None) or [])
    schema = _task_schema(task)
    gold = example.output
    extra = getattr(example, "extra", None) or {}
    aliases = list(extra.get("aliases") or [])
    gold_doc = extra.get("gold_doc")
    wanted = [canonical(s) for s in (getattr(task, "scorers", None) or [])]
    primary = primary_name(task)
    for name in [primary, *_implied(fmt, schema)]:
        if name not in wanted:
            wanted.append(name)

    text_fields = list(getattr(task, "text_fields", None) or _free_text_fields(schema))
    s: dict[str, float | None] = {}
    for name in wanted:
        if name.startswith("field:") or name in CORPUS_LEVEL:
            continue
        if name == "exact_match":
            s[name] = exact_match(output, gold if not isinstance(gold, dict) else json.dumps(gold))
        elif name == "label_accuracy":
            s[name] = label_accuracy(output, gold, labels)
        elif name == "json_valid":
            s[name] = json_valid(output)
        elif name == "schema_valid":
            s[name] = schema_valid(output, schema)
        elif name == "field_accuracy":
            s[name] = field_accuracy(output, gold, text_fields=text_fields)
        elif name == "token_f1":
            s[name] = token_f1(output, gold)
        elif name == "rouge_l":
            s[name] = rouge_l(output, gold)
        elif name == "contains_fact":
            s[name] = contains_fact(output, gold, aliases)
        elif name == "citation":
            s[name] = citation_correct(output, passages, gold_doc, gold, aliases)
        elif name == "recall_at_k":
            s[name] = recall_at_k(passages, gold_doc)
        elif name == "context_hit":
            s[name] = answer_in_context(passages, gold, aliases) if fmt == "text" else None
    if fmt == "json":
        for f, v in field_scores(output, gold, text_fields=text_fields).items():
            s[f"field:{f}"] = v
        s["format_valid"] = s.get("schema_valid") if schema else s.get("json_valid")
    elif fmt == "label":
        s["format_valid"] = label_valid(output, labels)
    else:
        s["format_valid"] = None
    if passages is not None:
        s.setdefault("recall_at_k", recall_at_k(passages, gold_doc))
        s.setdefault("citation", citation_correct(output, passages, gold_doc, gold, aliases))
        # the answer in the prompt: a text task's short facts only (a label or JSON field says nothing)
        s.setdefault("context_hit", answer_in_context(passages, gold, aliases) if fmt == "text" else None)
    s["primary"] = s.get(primary)
    return s


def _task_schema(task) -> dict | None:
    schema = getattr(task, "schema", None)
    if callable(schema):
        schema = schema()
    if not isinstance(schema, dict):
        schema = getattr(task, "json_schema", None)
    return schema if isinstance(schema, dict) else None


def _default_primary(fmt: str) -> str:
    return {"json": "field_accuracy", "label": "label_accuracy"}.get(fmt, "token_f1")


def _implied(fmt: str, schema: dict | None) -> list[str]:
    if fmt == "json":
        return ["json_valid"] + (["schema_valid"] if schema else [])
    return []


def _free_text_fields(schema: dict | None) -> list[str]:
    """String properties without an enum are free text (a summary): graded by token F1."""
    props = (schema or {}).get("properties", {}) if isinstance(schema, dict) else {}
    return [k for k, v in props.items() if isinstance(v, dict) and v.get("type") == "string" and "enum" not in v]


def primary_name(task) -> str:
    wanted = getattr(task, "scorers", None) or []
    fmt = getattr(task, "output_format", "text") or "text"
    return canonical(getattr(task, "primary_metric", None) or (wanted[0] if wanted else _default_primary(fmt)))


def is_wrong(primary: float | None, metric: str) -> bool:
    """An answer is wrong when its primary score is below 1 (below 0.5 for overlap metrics);
    a failed request (no score) is wrong too."""
    if primary is None:
        return True
    return primary < (0.5 if canonical(metric) in CONTINUOUS else 1.0)
