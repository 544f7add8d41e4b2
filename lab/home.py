"""The lab home: one folder holds models/, adapters/, corpora/, the SQLite log and caches.

`LAB_HOME` or `--home` moves all of it; the default is the current directory, so running
`lab` in a checkout uses the checkout's own models/, adapters/ and corpora/.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LabHome:
    root: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike | None = None) -> LabHome:
        root = Path(home or os.environ.get("LAB_HOME") or Path.cwd()).expanduser().resolve()
        return cls(root)

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def adapters(self) -> Path:
        return self.root / "adapters"

    @property
    def exports(self) -> Path:
        return self.root / "exports"  # `lab export`'s default destination: exports/TASK-RUNG

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
    def gradio_cache(self) -> Path:
        """The app's uploads and downloads (Gradio's file cache): emptied each time the app starts."""
        return self.state / "gradio"

    @property
    def db_path(self) -> Path:
        return self.root / "lab.db"

    @property
    def config_path(self) -> Path:
        return self.root / "lab.toml"

    def ensure(self) -> LabHome:
        for folder in (self.root, self.state):
            folder.mkdir(parents=True, exist_ok=True)
        return self


# ---- lock files ---------------------------------------------------------------------------------


def lock_file(path: Path, wait: bool = True):
    """Open `path` (made if missing) holding its exclusive flock: the kernel's lock, so a process
    killed with -9 lets go at once. `wait=False`: BlockingIOError while another process holds it.
    A holder may remove the file on its way out (`unlock_file(f, remove=True)`); whoever locked
    the removed file meanwhile sees the path changed and opens it again (unlink-safe flock)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        f = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            f.close()
            raise
        if _same_file(f, path):
            return f
        f.close()


def unlock_file(f, remove: bool = False) -> None:
    """Let go of a `lock_file` lock; `remove` deletes the file first, while still holding it."""
    import fcntl

    if remove and _same_file(f, Path(f.name)):
        Path(f.name).unlink()
    fcntl.flock(f, fcntl.LOCK_UN)
    f.close()


def _same_file(f, path: Path) -> bool:
    try:
        return os.fstat(f.fileno()).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def replace_folder(tmp: Path, final: Path) -> None:
    """Move the finished folder `tmp` to `final`, replacing what is there: the old folder is moved
    aside first and removed after, so a kill at any point leaves one of them whole, never half."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
