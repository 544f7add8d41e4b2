"""A served model's tokenizer and chat template, loaded here without its weights, for a server
that offers neither (`openai:URL#model?tokenizer=ID`): a GGUF read vocabulary-only by llama.cpp
(the template from its metadata), or a Hugging Face folder's tokenizer. Counts are then exact."""

from __future__ import annotations

import threading
from pathlib import Path

from .base import BackendError, plain_render


class LocalTokenizer:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.lock = threading.Lock()  # llama.cpp's tokenizer and HF fast tokenizers: one caller at a time
        if self.path.is_file():
            self._load_gguf()
        elif self.path.is_dir():
            self._load_hf()
        else:
            raise BackendError(f"tokenizer {self.path} does not exist: name a lab model id, a .gguf or an HF folder")

    def _load_gguf(self) -> None:
        from llama_cpp import Llama, llama_chat_format

        try:
            self.llm = Llama(model_path=str(self.path), vocab_only=True, verbose=False)
        except (ValueError, RuntimeError) as e:
            raise BackendError(f"llama.cpp could not read the tokenizer of {self.path}: {e}") from e
        self.hf = None
        template = self.llm.metadata.get("tokenizer.chat_template")
        bos, eos = self._token_text(self.llm.token_bos()), self._token_text(self.llm.token_eos())
        self._formatter = (
            llama_chat_format.Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos) if template else None
        )

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self.llm.detokenize([token], special=True).decode("utf-8", errors="ignore")

    def _load_hf(self) -> None:
        from transformers import AutoTokenizer

        self.llm, self._formatter = None, None
        try:
            self.hf = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        except (OSError, ValueError) as e:
            raise BackendError(f"no tokenizer in {self.path}: {e}") from e

    def render(self, messages: list[dict]) -> str:
        with self.lock:
            if self.hf is not None:
                if self.hf.chat_template:
                    return self.hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
                return plain_render(messages)
            return self._formatter(messages=messages).prompt if self._formatter else plain_render(messages)

    def count_tokens(self, text: str) -> int:
        with self.lock:
            if self.hf is not None:
                return len(self.hf.encode(text, add_special_tokens=False))
            return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))
