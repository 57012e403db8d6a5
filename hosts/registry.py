"""The host registry and ``create_host`` (name with optional weight tag -> built host)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from finsta_core.registry import Registry, RegistryError
from hosts.base import Host, HostSpec

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


def create_host(name: str, checkpoint: str | Path | None = None, **config: Any) -> Host:
    """Build host ``name`` (``arch`` or ``arch.tag``) from a local checkpoint (never downloads).

    Raises:
        UnknownNameError: unknown architecture (with suggestions).
        RegistryError: unknown weight tag or a catalogue-only host.
        CheckpointError: the checkpoint file is missing (says what it is and where to get it).
    """
    spec = get_spec(name)
    _, tag_name = split_host_name(name)
    tag = spec.tags.get(tag_name)
    if tag_name and tag is None:
        raise RegistryError(f"host {spec.name!r} has no weight tag {tag_name!r} "
                            f"(tags: {', '.join(sorted(t for t in spec.tags if t)) or 'none'})")
    if spec.factory is None:
        raise RegistryError(f"host {spec.name!r} is in the catalogue only (status {spec.status!r}): "
                            "no implementation yet; see `harness list hosts` and docs/hosts.md")
    factory = spec.factory
    if isinstance(factory, str):
        module_name, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
    return factory(spec, tag, Path(checkpoint) if checkpoint is not None else None, **config)
