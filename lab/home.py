"""The lab home: one folder holds models/, adapters/, corpora/, the SQLite log and caches.

`LAB_HOME` or `--home` moves all of it; the default is the current directory, so running
`lab` in a checkout uses the checkout's own models/, adapters/ and corpora/.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LabHome:
    root: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike | None = None) -> "LabHome":
        root = Path(home or os.environ.get("LAB_HOME") or Path.cwd()).expanduser().resolve()
        return cls(root)

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def adapters(self) -> Path:
        return self.root / "adapters"

    @property
    def corpora(self) -> Path:
        return self.root / "corpora"

    @property
    def state(self) -> Path:
        """Machine-made files (indexes, assembled models, hashes): safe to delete, rebuilt on demand."""
        return self.root / ".lab"

    @property
    def indexes(self) -> Path:
        return self.state / "indexes"

    @property
    def model_cache(self) -> Path:
        return self.state / "models"

    @property
    def db_path(self) -> Path:
        return self.root / "lab.db"

    @property
    def config_path(self) -> Path:
        return self.root / "lab.toml"

    def ensure(self) -> "LabHome":
        for folder in (self.root, self.state):
            folder.mkdir(parents=True, exist_ok=True)
        return self
