"""Who may reach the app: loopback only, unless a login is set (no gradio import here, so the
CLI can check its flags before paying for one)."""

from __future__ import annotations

import ipaddress
from pathlib import Path


class ServeError(ValueError):
    """`lab serve` cannot start as asked (e.g. a public interface without a login)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, auth) -> None:
    """Serving beyond this machine needs a login: the app runs models and edits the lab home."""
    if not is_loopback(host) and not auth:
        raise ServeError(
            f"refusing to serve on {host} without a login: anyone who can reach it could run "
            "models and edit your lab. Add --auth user:password (or --auth-file FILE), or "
            "serve on 127.0.0.1"
        )


def read_auth(auth: str | None = None, auth_file: str | None = None) -> list[tuple[str, str]] | None:
    """`user:password`, or a file with one `user:password` per line (# comments allowed)."""
    lines = [(auth, "--auth", 0)] if auth else []
    if auth_file:
        path = Path(auth_file).expanduser()
        if not path.is_file():
            raise ServeError(f"{path}: no such auth file")
        lines += [(line, str(path), i) for i, line in enumerate(path.read_text().splitlines(), 1)]
    pairs = []
    for line, where, lineno in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user.strip() or not password:
            raise ServeError(f"{where}{f':{lineno}' if lineno else ''}: expected user:password")
        pairs.append((user.strip(), password))
    if (auth or auth_file) and not pairs:
        raise ServeError(f"{auth_file}: no user:password line in it")
    return pairs or None
