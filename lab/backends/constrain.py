"""Constrained decoding, shared by the backends: the answer restricted to a set of strings (a
label task's labels) or to a JSON schema.

- llama.cpp: a GBNF grammar (`choices_grammar` for a label set; llama-cpp-python's own
  `LlamaGrammar.from_json_schema` for a schema).
- transformers: a trie over the labels' token ids (`LabelTrie`), handed to `generate` as
  `prefix_allowed_tokens_fn`. No JSON-schema library (outlines, lm-format-enforcer, xgrammar) is
  in the lab's environment, so a schema is NOT enforced there; the backend reports
  `constrained: False` and the scoreboard says so.
"""

from __future__ import annotations

import json
from collections.abc import Sequence


def _gbnf_literal(text: str) -> str:
    """A GBNF string literal: JSON's escaping (quotes, backslashes, control characters) is GBNF's."""
    return json.dumps(text, ensure_ascii=False)


def choices_grammar(choices: Sequence[str]) -> str:
    """A GBNF grammar whose only sentences are the given strings, exactly (then end of text)."""
    if not choices:
        raise ValueError("no choices to constrain to")
    return "root ::= " + " | ".join(_gbnf_literal(c) for c in choices) + "\n"


def llama_grammar(options):
    """The llama.cpp grammar the options ask for (a GBNF string, a label set or a JSON schema), or None."""
    if options.grammar is None and options.choices is None and options.json_schema is None:
        return None
    from llama_cpp import LlamaGrammar

    if options.grammar:
        return LlamaGrammar.from_string(options.grammar, verbose=False)
    if options.choices is not None:
        return LlamaGrammar.from_string(choices_grammar(options.choices), verbose=False)
    return LlamaGrammar.from_json_schema(json.dumps(options.json_schema), verbose=False)


class LabelTrie:
    """The token sequences of a label set, as a trie: which tokens may come next after a partial
    answer (transformers' `prefix_allowed_tokens_fn`). A complete label may only be followed by an
    end token, so the answer is exactly one label."""

    def __init__(self, label_ids: Sequence[Sequence[int]], end_ids: Sequence[int]):
        if not label_ids or not end_ids:
            raise ValueError("a label trie needs labels and an end token")
        self.end_ids = sorted(set(end_ids))
        self.root: dict = {}
        for ids in label_ids:
            node = self.root
            for t in ids:
                node = node.setdefault(t, {})
            node[None] = True  # a label ends here

    @classmethod
    def for_tokenizer(cls, tokenizer, labels: Sequence[str], end_ids: Sequence[int]) -> LabelTrie:
        """Each label as the tokenizer writes it at the start of the answer (no special tokens)."""
        return cls([tokenizer(label, add_special_tokens=False)["input_ids"] for label in labels], end_ids)

    def allowed(self, generated: Sequence[int]) -> list[int]:
        """Tokens allowed after `generated` (the answer so far); only end tokens once it is a label
        (or, should it ever leave the trie, to stop at once)."""
        node = self.root
        for t in generated:
            node = node.get(t)
            if node is None:
                return list(self.end_ids)
        nxt = [t for t in node if t is not None]
        return nxt + (list(self.end_ids) if None in node or not nxt else [])

    def prefix_fn(self, n_prompt: int):
        """transformers' prefix_allowed_tokens_fn for a prompt of n_prompt tokens."""

        def fn(batch_id, input_ids):
            return self.allowed(input_ids[n_prompt:].tolist())

        return fn


def end_token_ids(model, tokenizer) -> list[int]:
    """The ids that end an answer: the generation config's eos (one id or a list) and the tokenizer's."""
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = list(ids) if isinstance(ids, (list, tuple)) else ([ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return sorted(set(ids))
