"""Helpers shared by the job functions: building the host and task of a run from its resolved spec."""

from __future__ import annotations

from typing import Any

from harness.jobs.context import JobContext
from hosts.base import Host
from hosts.registry import create_host
from tasks.base import Sample, Task
from tasks.registry import create_task

__all__ = ["build_host", "build_posttrain_task", "build_task", "host_params", "load_samples"]


def build_task(ctx: JobContext) -> Task:
    """The run's task with the data root and options the planner resolved (``spec.resolved``)."""
    r = ctx.spec.resolved
    return create_task(ctx.spec.task, root=r.get("task_root"), strict=bool(ctx.cfg["task"]["strict"]),
                       **dict(r.get("task_options") or {}))


def build_posttrain_task(ctx: JobContext, task: Task) -> Task:
    """The post-training data task the planner resolved (the run's own ``task`` when it is the same)."""
    r = ctx.spec.resolved
    name = r.get("posttrain_task") or task.name
    options = dict(r.get("posttrain_options") or {})
    if name == task.name and options == dict(r.get("task_options") or {}):
        return task
    return create_task(name, root=r.get("posttrain_root"), strict=bool(ctx.cfg["task"]["strict"]), **options)


def build_host(ctx: JobContext) -> Host:
    """The run's host from the checkpoint the planner resolved, moved to the job's device."""
    options = dict(ctx.cfg["host"]["options"] or {})
    if ctx.cfg["host"]["init"] == "random":
        options["random_init"] = True
    host = create_host(ctx.spec.host, checkpoint=ctx.spec.resolved.get("checkpoint"), **options)
    return host.to(ctx.device)


def load_samples(ctx: JobContext, task: Task, split: str) -> list[Sample]:
    """Samples of ``split`` (first ``data.limit`` when set); an empty split is an error."""
    limit = ctx.cfg["data"]["limit"]
    samples = task.samples(split, limit=int(limit) if limit is not None else None)
    if not samples:
        raise ValueError(f"task {task.name!r} split {split!r} has no samples")
    return samples


def host_params(host: Host) -> list[Any]:
    return [p for p in host.parameters() if p.requires_grad]
