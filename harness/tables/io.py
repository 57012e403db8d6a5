"""Atomic writing of rendered tables."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["EXTENSIONS", "atomic_write_bytes", "atomic_write_text", "write_tables"]

EXTENSIONS = {"md": ".md", "markdown": ".md", "latex": ".tex", "tex": ".tex", "csv": ".csv"}


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same folder and ``os.replace``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_tables(outputs: dict[str, str], out_dir: str | Path, fmt: str) -> list[Path]:
    """Write each ``{name: text}`` to ``out_dir/<name><ext>`` atomically; returns the paths written.

    Raises:
        ValueError: unknown ``fmt`` or a name that is not a plain file name.
    """
    if fmt not in EXTENSIONS:
        raise ValueError(f"unknown table format {fmt!r}; choose one of md, latex, csv")
    out_dir = Path(out_dir)
    paths = []
    for name, text in outputs.items():
        if not name or Path(name).name != name or name.startswith("."):
            raise ValueError(f"table name {name!r} is not a plain file name")
        paths.append(atomic_write_text(out_dir / f"{name}{EXTENSIONS[fmt]}", text))
    return paths
