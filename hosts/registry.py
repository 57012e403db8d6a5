"""The host registry and ``create_host`` (name with optional weight tag -> built host)."""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path
from typing import Any

from finsta_core.registry import Registry, RegistryError
from hosts.base import CheckpointError, Host, HostSpec, Preprocess, WeightTag

HOSTS: Registry[HostSpec] = Registry("hosts", base=HostSpec, instances=True)


def split_host_name(name: str) -> tuple[str, str]:
    """``"clip4clip.msrvtt_ft"`` -> ``("clip4clip", "msrvtt_ft")``; no tag -> ``""``."""
    base, _, tag = name.partition(".")
    return base, tag


def _ensure_catalogue() -> None:
    # Registration modules: the paper's catalogue and the synthetic tiny hosts.
    for module in ("hosts.catalog", "hosts.tiny"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name is None or not module.startswith(err.name):
                raise


def get_spec(name: str) -> HostSpec:
    _ensure_catalogue()
    base, _ = split_host_name(name)
    return HOSTS.get(base)


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def resolve_checkpoint(name: str, checkpoint: str | Path | None, verify: bool = True) -> Path | None:
    """The checkpoint file a host build would read, checked before any compute is spent.

    ``checkpoint`` may be the file itself or a directory holding the tag's ``filename``. A host whose tag
    names no file (or that has no tags) needs no checkpoint (``None`` is returned).

    Raises:
        CheckpointError: the file is missing (message names it, what it is and where to get it) or its
            sha256 differs from the catalogue's.
    """
    spec = get_spec(name)
    _, tag_name = split_host_name(name)
    tag = _tag_of(spec, tag_name)
    if tag is None or not tag.filename:
        return Path(checkpoint) if checkpoint is not None else None
    label = f"{spec.name}{'.' + tag.tag if tag.tag else ''}"
    if checkpoint is None:
        raise CheckpointError(f"host {label!r} needs its checkpoint {tag.filename} ({tag.what}); get it from "
                              f"{tag.source} and pass checkpoint=PATH (file or directory holding it)")
    path = Path(checkpoint)
    if path.is_dir() and (path / tag.filename).exists():
        path = path / tag.filename
    if not path.exists():
        raise CheckpointError(f"missing checkpoint for host {label!r}: {path} (expected {tag.filename}: "
                              f"{tag.what}; get it from {tag.source})")
    if verify and tag.sha256 and path.is_file():
        digest = sha256_of(path)
        if digest != tag.sha256.lower():
            raise CheckpointError(f"{path}: sha256 {digest} does not match {tag.sha256} expected for host {label!r} "
                                  f"({tag.what}); re-download it from {tag.source}")
    return path


def _tag_of(spec: HostSpec, tag_name: str) -> WeightTag | None:
    tag = spec.tags.get(tag_name)
    if tag_name and tag is None:
        raise RegistryError(f"host {spec.name!r} has no weight tag {tag_name!r} "
                            f"(tags: {', '.join(sorted(t for t in spec.tags if t)) or 'none'})")
    return tag


def create_host(name: str, checkpoint: str | Path | None = None, **config: Any) -> Host:
    """Build host ``name`` (``arch`` or ``arch.tag``) from a local checkpoint (never downloads).

    ``random_init=True`` builds the architecture without weights (tests, training from scratch); otherwise
    a tag that names a file requires ``checkpoint`` (the file or a directory holding it). The returned
    host carries its matching preprocessing in ``host.preprocess``.

    Raises:
        UnknownNameError: unknown architecture (with suggestions).
        RegistryError: unknown weight tag or a catalogue-only host.
        CheckpointError: the checkpoint file is missing or fails its sha256 (says what it is and where to
            get it).
    """
    spec = get_spec(name)
    _, tag_name = split_host_name(name)
    tag = _tag_of(spec, tag_name)
    if spec.factory is None:
        raise RegistryError(f"host {spec.name!r} is in the catalogue only (status {spec.status!r}): "
                            "no implementation yet; see `harness list hosts` and docs/hosts.md")
    random_init = bool(config.pop("random_init", False))
    verify = bool(config.pop("verify_sha256", True))
    path = None if random_init else resolve_checkpoint(name, checkpoint, verify=verify)
    factory = spec.factory
    if isinstance(factory, str):
        module_name, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
    host = factory(spec, tag, path, **config)
    if not isinstance(host, Host):
        raise RegistryError(f"factory of host {spec.name!r} returned {type(host).__name__}, not a Host")
    if not isinstance(getattr(host, "preprocess", None), Preprocess):
        raise RegistryError(f"host {spec.name!r} was built without its preprocessing (host.preprocess)")
    return host
