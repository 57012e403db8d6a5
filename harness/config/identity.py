"""Fingerprints of a run's inputs: what must change the run identity when it changes on disk.

The run id (``harness.plan``) hashes the host, task, mode, seed and the results-relevant config. The
*inputs* a config only points to are fingerprinted here, so that a re-run after any of them changed never
reuses the old result ("1 skipped" with stale numbers):

* the host checkpoint (file or directory): relative paths + sizes + ``mtime_ns`` of every file under it
  (contract C1; ``hosts.registry.checkpoint_fingerprint`` when the hosts package provides it);
* the dataset root (its resolved absolute path);
* the annotation files a split reads: their content (sha256) up to :data:`CONTENT_HASH_LIMIT` bytes,
  beyond that size + ``mtime_ns`` (reading a multi-GB corpus at every planning would be too slow).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

__all__ = ["CONTENT_HASH_LIMIT", "checkpoint_fingerprint", "files_fingerprint", "path_fingerprint"]

CONTENT_HASH_LIMIT = 64 * 2**20  # bytes; larger annotation files are fingerprinted by size + mtime_ns


def _digest(parts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def _walk(path: Path) -> list[tuple[str, os.stat_result]]:
    """``(relative path, stat)`` of every file under ``path`` (the file itself when ``path`` is a file)."""
    if path.is_file():
        return [(path.name, path.stat())]
    out = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath) / name
            try:
                out.append((full.relative_to(path).as_posix(), full.stat()))
            except OSError:  # a dangling link: part of the layout, fingerprinted as missing
                out.append((full.relative_to(path).as_posix() + ":missing", os.stat_result((0,) * 10)))
    return out


def path_fingerprint(path: str | Path) -> str:
    """Cheap fingerprint of a file or directory: relative path, size and ``mtime_ns`` of every file under it.

    A missing path gives ``"missing"``; the result is a 16-hex-digit string, stable across processes.
    """
    p = Path(path)
    if not p.exists():
        return "missing"
    return _digest(f"{rel}|{st.st_size}|{st.st_mtime_ns}" for rel, st in _walk(p))


def checkpoint_fingerprint(path: str | Path) -> str:
    """Fingerprint of a host checkpoint (contract C1): the hosts' own function when published, else
    :func:`path_fingerprint` (the same recipe: relative paths + size + mtime_ns)."""
    from hosts import registry

    own = getattr(registry, "checkpoint_fingerprint", None)  # C1; remove the fallback once H6's lands
    return str(own(path)) if callable(own) else path_fingerprint(path)


def _file_content(path: Path) -> str:
    st = path.stat()
    if st.st_size > CONTENT_HASH_LIMIT:
        return f"size={st.st_size}|mtime_ns={st.st_mtime_ns}"
    return _sha256(str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


@lru_cache(maxsize=1024)
def _sha256(path: str, size: int, mtime_ns: int, ctime_ns: int, inode: int) -> str:
    """Content hash of ``path``; cached per (path, size, mtime_ns, ctime_ns, inode) so a sweep planning hundreds
    of runs over one dataset reads each annotation file once (a write changes ctime even when mtime is reset)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256=" + h.hexdigest()


def files_fingerprint(paths: Iterable[str | Path]) -> str:
    """Fingerprint of the content of annotation files (a directory: :func:`path_fingerprint` of it).

    Args:
        paths: files or directories; missing ones are fingerprinted as ``missing`` (the planner reports
            them separately).
    """
    parts = []
    for raw in sorted({str(Path(p)) for p in paths}):
        p = Path(raw)
        if p.is_file():
            parts.append(f"{raw}|{_file_content(p)}")
        elif p.is_dir():
            parts.append(f"{raw}|dir={path_fingerprint(p)}")
        else:
            parts.append(f"{raw}|missing")
    return _digest(parts)
