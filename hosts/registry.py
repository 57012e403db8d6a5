"""The host registry, discovery, the one checkpoint check, and ``create_host`` (name[.tag] -> built host).

Discovery (timm's habit): a host file registers its :class:`~hosts.spec.HostSpec` with
:func:`~hosts.spec.register_host` next to its code; :func:`discover` imports, once, every module (or
subpackage ``__init__``) of the ``hosts`` package whose source calls ``register_host(`` (or
``HOSTS.register(``). Adding a host is one new file ``hosts/<name>.py``; no list is edited. Shared parts
(``hosts/pooling.py``, ``hosts/bert/``) register nothing and are not imported by discovery. All 13 paper hosts are
implemented; a metadata-only ``catalogue`` spec (``status="catalogue"``, no factory) is still accepted for a host
announced before its implementation lands.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
from pathlib import Path
from typing import Any

import hosts as _package
from finsta_core.registry import RegistryError
from hosts.base import Host, Preprocess
from hosts.checkpoints import check_checkpoint_path, checkpoint_fingerprint
from hosts.errors import CheckpointError
from hosts.spec import HOSTS, HostSpec, WeightTag

__all__ = ["HOSTS", "checkpoint_fingerprint", "create_host", "discover", "get_spec", "resolve_checkpoint",
           "split_host_name"]

_DISCOVERED = False
_MARKERS = ("register_host(", "HOSTS.register(")


def split_host_name(name: str) -> tuple[str, str]:
    """``"clip4clip.msrvtt_ft"`` -> ``("clip4clip", "msrvtt_ft")``; no tag -> ``""``."""
    base, _, tag = name.partition(".")
    return base, tag


def discover() -> None:
    """Import every module of the ``hosts`` package once (each host file registers itself)."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    for info in sorted(pkgutil.iter_modules(_package.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "registry":
            continue
        root = Path(_package.__path__[0]) / info.name
        source = root / "__init__.py" if info.ispkg else root.with_suffix(".py")
        text = source.read_text(encoding="utf-8") if source.is_file() else ""
        if any(marker in text for marker in _MARKERS):
            try:
                importlib.import_module(f"hosts.{info.name}")
            except ImportError as err:  # one line naming the host file and what it lacks
                _DISCOVERED = False
                raise RegistryError(f"host file {source} cannot be imported: {err}") from err


_ensure_catalogue = discover  # old name, still imported by harness/commands/list.py; use discover()


def get_spec(name: str) -> HostSpec:
    """The spec of ``name`` (``arch`` or ``arch.tag``; aliases accepted). Raises ``UnknownNameError``."""
    discover()
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
    """The checkpoint a host build would read, checked before any compute is spent (planner and hosts).

    ``checkpoint`` may be the file itself, a directory holding the tag's ``filename`` (file or HF directory),
    or a checkpoint directory itself (HF layout: ``config.json`` + ``*.safetensors``; official layouts). A
    host whose tag names no file needs no checkpoint (``None`` is returned when none is given).

    Raises:
        CheckpointError: missing; an empty directory (no weight file); an empty (0-byte) or unreadable
            weight file; a sha256 mismatch. The message names the path, what the weights are and where to
            get them.
    """
    spec = get_spec(name)
    _, tag_name = split_host_name(name)
    tag = _tag_of(spec, tag_name)
    label = f"{spec.name}{'.' + tag.tag if tag is not None and tag.tag else ''}"
    what = f"checkpoint of host {label!r}" + (f" ({tag.filename}: {tag.what})" if tag and tag.filename else "")
    source = tag.source if tag is not None else ""
    if checkpoint is None or str(checkpoint) == "":
        if tag is None or not tag.filename:
            return None
        raise CheckpointError(f"host {label!r} needs its checkpoint {tag.filename} ({tag.what}); get it from "
                              f"{tag.source} and pass checkpoint=PATH (file or directory holding it)")
    path = Path(checkpoint).expanduser()
    if tag is not None and tag.filename and path.is_dir() and (path / tag.filename).exists():
        path = path / tag.filename
    path = check_checkpoint_path(path, what, source)
    if verify and tag is not None and tag.sha256 and path.is_file():
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
    a tag that names a file requires ``checkpoint`` (see :func:`resolve_checkpoint`). The returned host
    carries its matching preprocessing in ``host.preprocess``.

    Raises:
        UnknownNameError: unknown architecture (with suggestions).
        RegistryError: unknown weight tag or a catalogue-only host.
        CheckpointError: see :func:`resolve_checkpoint`.
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
    if not isinstance(host.preprocess, Preprocess):
        raise RegistryError(f"host {spec.name!r} was built without its preprocessing (host.preprocess)")
    return host
