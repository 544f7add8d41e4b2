"""Sizes as a person reads them, one way for every face (the CLI, the app, the report)."""

from __future__ import annotations


def size(n: float | None) -> str:
    """Bytes as 512 B, 3.2 MB, 1.3 GB (1024-based); '—' when unknown."""
    if n is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
