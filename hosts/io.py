"""Safe checkpoint I/O: safetensors first, ``torch.load(weights_only=True)`` for ``.pt/.bin/.pth``. Every
error names the file (checks in :mod:`hosts.checkpoints`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from finsta_core.io import atomic_write
from hosts.checkpoints import check_file, where
from hosts.errors import CheckpointError


def save_state_dict(state: dict[str, Tensor], path: Path) -> None:
    """Write ``state`` to ``path`` atomically (safetensors for ``.safetensors``, else torch.save)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        # safetensors refuses shared storage: store contiguous clones
        tensors = {k: v.detach().contiguous().clone() for k, v in state.items()}
        atomic_write(path, lambda tmp: save_file(tensors, tmp))
    else:
        atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state_dict(path: Path, what: str = "checkpoint", source: str = "") -> dict[str, Tensor]:
    """Read a state dict without executing pickled code. Unwraps ``{"state_dict": ...}``/``{"model": ...}``.

    Raises:
        CheckpointError: missing / empty / unreadable / not a state dict; the message names ``path``.
    """
    check_file(Path(path), what, source)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as err:  # noqa: BLE001 - re-raised with the file named
            raise CheckpointError(f"{path}: cannot read {what} as safetensors ({err}){where(source)}") from err
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


def load_config(value: Any, cls: Any, what: str = "config", source: str = "") -> Any:
    """A transformers config from ``value``: the config object itself, a dict of its fields, a directory holding
    ``config.json`` or the ``config.json`` file (local only); None stays None.

    Raises:
        CheckpointError: a path that is missing or holds no ``config.json`` (named, with where to get it).
    """
    if value is None or isinstance(value, cls):
        return value
    if isinstance(value, dict):
        return cls(**value)
    path = Path(value)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise CheckpointError(f"{what}: no config.json in {path}{where(source)}")
        return cls.from_pretrained(str(path), local_files_only=True)
    check_file(path, what, source)
    return cls.from_json_file(str(path))


def convert_main(host: str, description: str, source: str, convert: Callable[[Path, Path], dict[str, Tensor]],
                 argv: list[str] | None = None) -> None:
    """The ``python -m hosts.<host> convert SRC DST`` command of a host's checkpoint tools (``description``):
    ``convert(SRC, DST)`` writes the host-named safetensors (``source`` says from what); prints how many tensors."""
    ap = argparse.ArgumentParser(prog=f"python -m hosts.{host}", description=description)
    sub = ap.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help=source)
    conv.add_argument("src", type=Path)
    conv.add_argument("dst", type=Path)
    args = ap.parse_args(argv)
    state = convert(args.src, args.dst)
    print(f"wrote {args.dst}: {len(state)} tensors")
