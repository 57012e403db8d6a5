"""Helpers shared by the job functions: building the host and task of a run, loading samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from harness.jobs.context import JobContext
from tasks.base import Sample, Task

__all__ = ["build_host", "build_task", "host_params", "load_samples"]


def build_task(ctx: JobContext, name: str | None = None, options: dict[str, Any] | None = None) -> Task:
    """The run's task (or task ``name`` with ``options``) with the data root and options of the config."""
    from tasks.registry import TASKS, create_task, task_names

    cfg = ctx.cfg
    name = name or ctx.spec.task
    task_names()
    dataset = getattr(TASKS.get(name), "dataset", "")
    own = name == ctx.spec.task
    root = (cfg["task"]["root"] if own else None) or cfg["data"]["roots"].get(dataset) or None
    opts = dict(cfg["task"]["options"] or {}) if own else {}
    return create_task(name, root=root, **{**opts, **(options or {})})


def build_host(ctx: JobContext, checkpoint: str | Path | None = None) -> nn.Module:
    """The run's host from its local checkpoint (``host.checkpoint``), moved to the job's device."""
    from hosts.registry import create_host

    cfg = ctx.cfg["host"]
    host = create_host(ctx.spec.host, checkpoint=checkpoint or cfg["checkpoint"], **dict(cfg["options"] or {}))
    return host.to(ctx.device)


def load_samples(ctx: JobContext, task: Task, split: str) -> list[Sample]:
    """Samples of ``split`` (first ``data.limit`` when set)."""
    limit = ctx.cfg["data"]["limit"]
    samples = task.samples(split, limit=int(limit) if limit is not None else None)
    if not samples:
        raise ValueError(f"task {task.name!r} split {split!r} has no samples")
    return samples


def host_params(host: nn.Module) -> list[Any]:
    return [p for p in host.parameters() if p.requires_grad]
