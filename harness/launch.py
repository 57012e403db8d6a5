"""Launching planned runs through submitit: in-process (``inline``, ``debug``), ``local`` subprocesses or
Slurm job arrays; preemption-safe (checkpoint + requeue) and multi-GPU (DDP) inside a job.

* :class:`JobRunner` is a ``submitit.helpers.Checkpointable``: on preemption or timeout submitit calls
  its ``checkpoint``, which resubmits the same run; the resumed job reloads the training checkpoint that
  ``harness.jobs.train`` writes every ``run.ckpt_every`` steps and ends with the same result.
* With ``launch.tasks_per_node * launch.nodes > 1`` every task of the job initialises
  ``torch.distributed`` (``env://`` from submitit's job environment; nccl on GPU, gloo on CPU) and the
  training loop wraps the model in DDP.
* :func:`submit` skips runs that are finished (status ``finished`` and a readable ``metrics.json``; unless
  ``force``), retries failed, dead and incomplete ones, and submits the rest as one job array per distinct
  ``launch`` section. A run that another process is executing right now is left alone (its folder lock).
* No executor ever waits for a keyboard: :class:`JobRunner` returns every exception as a failed result
  (submitit's ``DebugExecutor`` would otherwise open ``pdb`` on it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import submitit

from harness.spec import RunResult, RunSpec, write_run_files
from harness.store import RunLock, RunStore, check_store_root

__all__ = ["EXECUTORS", "JobRunner", "make_executor", "submit"]

EXECUTORS = ("inline", "debug", "local", "slurm")


def _init_distributed(launch: dict[str, Any]) -> bool:
    """Initialise torch.distributed inside a multi-task submitit job; returns whether it did."""
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return False
    try:
        env = submitit.JobEnvironment()
    except RuntimeError:
        return False
    if env.num_tasks <= 1:
        return False
    submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    backend = str(launch.get("backend", "auto"))
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend, init_method="env://")
    return True


class JobRunner(submitit.helpers.Checkpointable):
    """The callable submitted for every run: ``JobRunner()(spec) -> RunResult``."""

    def __call__(self, spec: RunSpec) -> RunResult:
        from harness.jobs.run import run_job  # the job side (torch, models): imported where the job runs

        started = False
        try:
            started = _init_distributed(spec.config["launch"])
            return run_job(spec)
        except Exception as err:  # noqa: BLE001 - never let an executor open pdb / hang: record and return
            msg = f"{type(err).__name__}: {err}".strip().splitlines()[0]
            try:
                RunStore(spec.store_root).set_status(spec.run_id, "failed", error=msg)
            except OSError:
                pass
            return RunResult(spec.run_id, "failed", str(spec.run_dir), error=msg)
        finally:
            if started:
                import torch.distributed as dist

                dist.destroy_process_group()


def make_executor(kind: str, folder: str | Path, launch: dict[str, Any]) -> submitit.Executor:
    """A submitit executor for ``kind`` (debug | local | slurm) with the ``launch`` parameters of a config."""
    folder = Path(folder)
    if kind == "debug":
        return submitit.DebugExecutor(folder)
    tasks = int(launch["tasks_per_node"])
    if kind == "local":
        ex = submitit.LocalExecutor(folder)
        ex.update_parameters(timeout_min=int(launch["timeout_min"]), tasks_per_node=tasks,
                             gpus_per_node=int(launch["gpus_per_node"]))
        return ex
    if kind == "slurm":
        ex = submitit.AutoExecutor(folder, cluster="slurm", slurm_max_num_timeout=int(launch["max_num_timeout"]))
        params: dict[str, Any] = dict(timeout_min=int(launch["timeout_min"]), nodes=int(launch["nodes"]),
                                      tasks_per_node=tasks, gpus_per_node=int(launch["gpus_per_node"]),
                                      cpus_per_task=int(launch["cpus_per_task"]), mem_gb=int(launch["mem_gb"]),
                                      slurm_array_parallelism=int(launch["array_parallelism"]),
                                      slurm_signal_delay_s=int(launch["signal_delay_s"]), name="finsta")
        if launch.get("partition"):
            params["slurm_partition"] = str(launch["partition"])
        if launch.get("account"):
            params["slurm_account"] = str(launch["account"])
        ex.update_parameters(**params)
        return ex
    raise ValueError(f"unknown executor {kind!r} (choose one of {', '.join(EXECUTORS)})")


def _folder(spec: RunSpec) -> Path:
    folder = spec.config["launch"].get("folder")
    return Path(folder) if folder else Path(spec.store_root).parent / "submitit"


def submit(runs: Sequence[RunSpec], executor: str | None = None, *, force: bool = False,
           wait: bool | None = None) -> list[RunResult]:
    """Submit ``runs``; finished runs are skipped unless ``force``.

    Args:
        executor: ``inline`` (plain loop in this process), ``debug`` (submitit in-process), ``local`` or
            ``slurm``; default: ``launch.executor`` of each run's config.
        wait: block until every job ends (default ``launch.wait``).
    Returns:
        one :class:`RunResult` per run, in order (``state`` ``skipped`` for finished runs, ``submitted`` when
        not waiting).
    """
    results: dict[str, RunResult] = {}
    todo: list[RunSpec] = []
    for spec in runs:
        check_store_root(spec.store_root)
        store = RunStore(spec.store_root)
        if not force and store.is_finished(spec.run_id):
            results[spec.run_id] = RunResult(spec.run_id, "skipped", str(spec.run_dir), error="finished before")
            continue
        if RunLock(spec.run_dir).held_elsewhere():
            results[spec.run_id] = RunResult(spec.run_id, "skipped", str(spec.run_dir),
                                             error="running in another process now; not started twice")
            continue
        write_run_files(spec)
        store.set_status(spec.run_id, "pending")
        todo.append(spec)
    groups: dict[tuple[str, str], list[RunSpec]] = {}
    for spec in todo:
        kind = executor or str(spec.config["launch"]["executor"])
        groups.setdefault((kind, json.dumps(spec.config["launch"], sort_keys=True)), []).append(spec)
    for (kind, _), specs in groups.items():
        if kind not in EXECUTORS:
            raise ValueError(f"unknown executor {kind!r} (choose one of {', '.join(EXECUTORS)})")
        if kind == "inline":
            for spec in specs:
                results[spec.run_id] = JobRunner()(spec)
            continue
        ex = make_executor(kind, _folder(specs[0]), specs[0].config["launch"])
        jobs = ex.map_array(JobRunner(), specs)
        block = specs[0].config["launch"]["wait"] if wait is None else wait
        for spec, job in zip(specs, jobs):
            RunStore(spec.store_root).write_json(spec.run_id, "job.json", {"job_id": str(job.job_id), "executor": kind,
                                                                           "folder": str(_folder(spec))})
            if not block:
                results[spec.run_id] = RunResult(spec.run_id, "submitted", str(spec.run_dir))
                continue
            try:
                out = job.result()
                results[spec.run_id] = out[0] if isinstance(out, list) else out
            except Exception as err:  # noqa: BLE001 - a crashed job (OOM kill, node failure) is recorded
                msg = f"{type(err).__name__}: {err}".strip().splitlines()[0]
                store = RunStore(spec.store_root)
                if not store.is_finished(spec.run_id):
                    store.set_status(spec.run_id, "failed", error=msg)
                results[spec.run_id] = RunResult(spec.run_id, "failed", str(spec.run_dir), error=msg)
    return [results[s.run_id] for s in runs]
