"""Atomic file writes, the one implementation every package uses (result files, graphs, checkpoints, caches).

A file is written to a temporary name in the destination folder, flushed and fsynced, then moved over the
destination with ``os.replace``; a crash leaves either the old file or the new one, never a half-written one.
The file gets the mode an ordinary ``open`` would give it (``0666 & ~umask``, 0644 usually), not ``mkstemp``'s
private 0600, so a shared results store stays readable by the group.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` to produce the file, then move it to ``path`` atomically.

    Args:
        path: destination; parent folders are created.
        write: writes the complete file at the temporary path it is given (e.g. ``torch.save(obj, tmp)``).
    Returns:
        ``path`` as a :class:`Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.name}-")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    return atomic_write(path, write)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))
