"""The one checkpoint check shared by the hosts and the planner (:func:`check_checkpoint_path`) and the
cheap fingerprint that goes into a run's identity (:func:`checkpoint_fingerprint`). Torch-free."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from hosts.errors import CheckpointError

# File names that hold weights inside a checkpoint directory (HF layout, official layouts).
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.bin.*", "*.pt", "*.pth", "*.ckpt")


def where(source: str) -> str:
    return f"; get it from {source}" if source else ""


def check_file(path: Path, what: str = "checkpoint", source: str = "") -> Path:
    """Refuse a missing, non-regular, empty or unreadable file (one-line error naming ``path``)."""
    if not path.exists():
        raise CheckpointError(f"missing {what}: {path}{where(source)}")
    if not path.is_file():
        raise CheckpointError(f"{what} {path} is not a regular file{where(source)}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{what} {path} is empty (0 bytes): an interrupted download?{where(source)}")
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as err:
        raise CheckpointError(f"{what} {path} is not readable ({err.strerror or err}){where(source)}") from None
    return path


def weight_files(directory: Path) -> list[Path]:
    """Weight files directly inside ``directory`` (sorted, by :data:`WEIGHT_PATTERNS`)."""
    found = {p for pat in WEIGHT_PATTERNS for p in directory.glob(pat) if p.is_file()}
    return sorted(found)



def weight_file_in(path: Path, patterns: tuple[str, ...], missing: str) -> Path:
    """``path`` itself if it is not a directory; else the first file (sorted by name) of the first of ``patterns``
    that matches anything in it (the preferred layout first); ``CheckpointError("<path>: <missing>")`` if none."""
    if not path.is_dir():
        return path
    for pattern in patterns:
        files = sorted(path.glob(pattern))
        if files:
            return files[0]
    raise CheckpointError(f"{path}: {missing}")

def check_checkpoint_path(path: Path, what: str = "checkpoint", source: str = "") -> Path:
    """The checkpoint check shared by hosts and the planner: a file (see :func:`check_file`) or a directory
    (HF layout / official layout) holding at least one weight file, every weight file non-empty and readable.

    Raises:
        CheckpointError: naming the path, what it is and where to get it.
    """
    if not path.exists():
        raise CheckpointError(f"missing {what}: {path}{where(source)}")
    if path.is_dir():
        files = weight_files(path)
        if not files:
            raise CheckpointError(f"{what} directory {path} holds no weight file "
                                  f"({', '.join(WEIGHT_PATTERNS)}){where(source)}")
        for f in files:
            check_file(f, what, source)
        return path
    return check_file(path, what, source)


def checkpoint_fingerprint(path: str | Path) -> str:
    """Cheap identity of a checkpoint file or directory (no content hashing): sha256 over, for each regular
    file under ``path`` in sorted order, its path relative to ``path``, its size and ``mtime_ns``. A
    16-hex-digit string; it changes when any file is replaced, resized, touched, added or removed."""
    path = Path(path)
    h = hashlib.sha256()
    if path.is_file():
        entries = [(path.name, path)]
    elif path.is_dir():
        entries = sorted((p.relative_to(path).as_posix(), p) for p in path.rglob("*") if p.is_file())
    else:
        raise CheckpointError(f"cannot fingerprint checkpoint {path}: no such file or directory")
    for rel, p in entries:
        st = os.stat(p)
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]
