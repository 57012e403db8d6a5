"""Per-job context: the run spec, its store folder, device, distributed rank, logging and progress bars; and
the run's task and host built from the resolved spec (never re-resolved: the planner did it once)."""

from __future__ import annotations

import logging
import os
import random
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.spec import RunSpec
from harness.store import RunStore
from hosts.base import Host
from hosts.registry import create_host
from tasks.base import Sample, Task
from tasks.registry import create_task

__all__ = ["JobContext", "JobOutput", "build_host", "build_posttrain_task", "build_task", "host_params", "load_samples",
           "seed_everything"]


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (all devices); optionally force deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


@dataclass
class JobOutput:
    """What a job function returns: evaluation records (``metrics.json``), per-sample records
    (``samples.jsonl``: id, target, prediction, per-sample metrics) and raw predictions (``predictions.jsonl``)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: JobOutput) -> JobOutput:
        self.records += other.records
        self.samples += other.samples
        self.predictions += other.predictions
        return self


class _NullBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, **kw: Any) -> None: ...
    def close(self) -> None: ...


@dataclass
class JobContext:
    """What a job function needs besides the spec. Build with :meth:`create`."""

    spec: RunSpec
    store: RunStore
    device: torch.device
    rank: int = 0
    world_size: int = 1
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("harness.job"))

    @property
    def cfg(self) -> dict[str, Any]:
        return self.spec.config

    @property
    def run_dir(self) -> Path:
        return self.spec.run_dir

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def create(cls, spec: RunSpec) -> JobContext:
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        want = str(spec.config["run"]["device"])
        if want == "auto":
            want = "cuda" if torch.cuda.is_available() else "cpu"
        if want.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"run.device={want} but CUDA is not available on {socket.gethostname()}; "
                               "use run.device=auto or run.device=cpu")
        if want == "cuda":
            local = int(os.environ.get("LOCAL_RANK", rank % max(torch.cuda.device_count(), 1)))
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        else:
            device = torch.device(want)
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        logger = logging.getLogger(f"harness.run.{spec.run_id}.r{rank}")
        logger.setLevel(logging.INFO)
        logger.propagate = False
        if not logger.handlers:
            name = "log.txt" if rank == 0 else f"log.rank{rank}.txt"
            handler = logging.FileHandler(spec.run_dir / name)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(handler)
        return cls(spec, RunStore(spec.store_root), device, rank, world, logger)

    def log(self, msg: str, level: int = logging.INFO) -> None:
        self.logger.log(level, msg)

    def progress(self, total: int, desc: str, initial: int = 0) -> Any:
        """A tqdm bar with ETA on rank 0 (``run.progress``), else a no-op."""
        if not (self.cfg["run"]["progress"] and self.is_main):
            return _NullBar()
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=initial, desc=desc, file=sys.stderr, dynamic_ncols=True, leave=False)

    def close(self) -> None:
        for h in list(self.logger.handlers):
            h.close()
            self.logger.removeHandler(h)

    def check_failed(self, what: str, n_failed: int, n_total: int, examples: Sequence[Any] = ()) -> None:
        """Refuse a result computed on fewer samples than claimed: every sample failed, or more than
        ``run.max_failed_fraction`` of them.

        Raises:
            ValueError: ``"<what>: 3 of 10 samples failed (> run.max_failed_fraction=0.05); first: ..."``.
        """
        limit = float(self.cfg["run"]["max_failed_fraction"])
        if n_total and n_failed and (n_failed == n_total or n_failed / n_total > limit):
            first = f"; first: {examples[0]}" if examples else ""
            why = "every sample failed" if n_failed == n_total else f"> run.max_failed_fraction={limit:g}"
            raise ValueError(f"{what}: {n_failed} of {n_total} samples failed ({why}){first}")

    def barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()


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
