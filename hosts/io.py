"""Safe checkpoint I/O: safetensors first, ``torch.load(weights_only=True)`` for ``.pt/.bin/.pth``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch import Tensor

from hosts.base import CheckpointError


def save_state_dict(state: dict[str, Tensor], path: Path) -> None:
    """Write ``state`` to ``path`` atomically (safetensors for ``.safetensors``, else torch.save)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    os.close(fd)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            # safetensors refuses shared storage: store contiguous clones
            save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, tmp)
        else:
            torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_state_dict(path: Path, what: str = "checkpoint", source: str = "") -> dict[str, Tensor]:
    """Read a state dict without executing pickled code. Unwraps ``{"state_dict": ...}``/``{"model": ...}``."""
    if not path.exists():
        where = f" (get it from {source})" if source else ""
        raise CheckpointError(f"missing {what}: {path}{where}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - re-raised with the file named
        raise CheckpointError(f"{path}: cannot read {what} safely ({err})") from err
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: {what} is not a state dict")
    return obj
