"""The task registry and ``create_task``."""

from __future__ import annotations

import importlib
from typing import Any

from finsta_core.registry import Registry
from tasks.base import Task

TASKS: Registry[type[Task]] = Registry("tasks", base=Task, instances=False)


def _ensure_catalogue() -> None:
    # Registration modules: the official datasets and the synthetic benchmark.
    for module in ("tasks.catalog", "tasks.synthetic.catalog"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name is None or not module.startswith(err.name):
                raise


def task_names() -> list[str]:
    _ensure_catalogue()
    return TASKS.names()


def create_task(name: str, root: Any = None, strict: bool = True, **options: Any) -> Task:
    """Instantiate registered task ``name`` with its data root (None: the task's configured default)."""
    _ensure_catalogue()
    cls = TASKS.get(name)
    return cls(root=root, strict=strict, **options)
