"""Registers the official tasks (one YAML each in ``tasks/configs/``) into :data:`tasks.registry.TASKS`.

Import-light: registering reads the small YAML files only; each entry is lazy (``"tasks.catalog:<name>"``),
and the task class is built on first use by the module ``__getattr__`` below: a subclass of the loader class
named in the YAML (``class: tasks.datasets.msrvtt:MsrvttRetrieval``) whose class attributes are the YAML
fields (task type, splits, protocol, metrics, version, file names, sources, video template, options).

A YAML may ``include: other.yaml`` (same folder) to start from another task's fields; later keys win and
mappings are merged (``protocol``, ``files``, ``sources``, ``eval_options``, ``attrs``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml

from tasks.base import TaskType, VideoProtocol
from tasks.registry import TASKS

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
_MERGED = ("protocol", "files", "sources", "split_files", "eval_options", "attrs")
_CLASSES: dict[str, type] = {}


def load_config(name: str) -> dict[str, Any]:
    """The fields of task ``name`` (its YAML with ``include`` resolved)."""
    path = CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        raise AttributeError(f"no task config {path}")
    with open(path, encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh) or {}
    base_name = cfg.pop("include", None)
    if base_name:
        base = load_config(Path(base_name).stem)
        for k in _MERGED:
            if k in cfg and k in base:
                cfg[k] = {**base[k], **cfg[k]}
        cfg = {**base, **cfg}
    return cfg


def build_task_class(name: str) -> type:
    """The registered :class:`~tasks.base.Task` subclass of ``name`` (built once, cached)."""
    if name in _CLASSES:
        return _CLASSES[name]
    cfg = load_config(name)
    if "description" in cfg:
        raise ValueError(f"tasks/configs/{name}.yaml: key 'description' is lm-eval's few-shot preamble; this "
                         "harness has no preamble, and calls the task's one-line summary 'summary'")
    module, _, attr = str(cfg["class"]).partition(":")
    base = getattr(importlib.import_module(module), attr)
    attrs: dict[str, Any] = {
        "name": cfg.get("name", name),
        "task_type": TaskType(cfg["task_type"]),
        "dataset": cfg["dataset"],
        "splits": tuple(cfg["splits"]),
        "eval_split": cfg.get("eval_split", cfg["splits"][-1]),
        "protocol": VideoProtocol(**cfg.get("protocol", {})),
        "metrics": tuple(cfg.get("metrics", ())),
        "version": str(cfg.get("version", "1")),
        "summary": cfg.get("summary", ""),
        "__module__": __name__,
        "__doc__": f"{cfg.get('summary', name)} (built from tasks/configs/{name}.yaml)",
    }
    for key in ("files", "sources", "split_files", "eval_options", "video_template"):
        if key in cfg:
            attrs[key] = cfg[key]
    for key in ("optional_files", "video_exts", "known_options"):
        if key in cfg:
            attrs[key] = tuple(cfg[key])
    attrs.update(cfg.get("attrs", {}))
    cls = type(f"{attr}_{name}", (base,), attrs)
    _CLASSES[name] = cls
    return cls


def __getattr__(name: str) -> type:  # lazy registry entries "tasks.catalog:<name>"
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return build_task_class(name)
    except AttributeError:
        raise
    except Exception as err:  # surface as an attribute error the registry turns into a RegistryError
        raise AttributeError(f"task {name!r} cannot be built: {type(err).__name__}: {err}") from err


def _register_all() -> None:
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        if path.stem.startswith("_"):
            continue
        cfg = load_config(path.stem)
        proto = cfg.get("protocol", {})
        n = f"{proto['fps']:g}fps" if proto.get("sampling") == "fps" else f"{proto.get('num_frames', 8)}f " \
            f"{proto.get('sampling', 'uniform')}"
        TASKS.register(path.stem, f"{__name__}:{path.stem}", overwrite=True, type=cfg["task_type"],
                       dataset=cfg["dataset"], metrics=list(cfg.get("metrics", ())),
                       protocol=f"{n} {proto.get('resolution', 224)}px", version=str(cfg.get("version", "1")),
                       splits=list(cfg["splits"]), source="official")


_register_all()
