"""Job functions: ``run_job(spec) -> RunResult`` runs one planned run end to end and records it in the store.

Modes: ``posttrain`` (Finsta stage 1 + 2, saves the host without Finsta, then evaluates like ``finetune``
unless ``posttrain.then`` says otherwise), ``finetune``, ``zeroshot``, ``pretrain`` (host's own losses).
Jobs call only the host, task and finsta_core contracts.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import torch
import yaml

from harness.plan import RunSpec
from harness.store import RunStore, env_info

__all__ = ["RunResult", "run_job", "write_run_files"]


@dataclass
class RunResult:
    """Outcome of one run (what ``submit`` returns per run)."""

    run_id: str
    state: str  # finished | failed | skipped
    run_dir: str
    metrics: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


def write_run_files(spec: RunSpec) -> None:
    """``spec.json`` and ``config.yaml`` of a planned run (idempotent, atomic)."""
    store = RunStore(spec.store_root)
    store.write_json(spec.run_id, "spec.json", spec.to_dict())
    store.write_text(spec.run_id, "config.yaml", yaml.safe_dump(spec.config, sort_keys=False))


def _submitit_job_id() -> str | None:
    try:
        import submitit

        return str(submitit.JobEnvironment().job_id)
    except Exception:  # noqa: BLE001 - not inside a submitit job
        return None


def run_job(spec: RunSpec) -> RunResult:
    """Run ``spec`` (any mode) and record config, env, status, metrics, predictions and timings.

    Exceptions inside the job are recorded (``status.json`` state ``failed`` with the error, traceback in
    ``log.txt``) and returned as a failed :class:`RunResult`; ``SystemExit`` / ``KeyboardInterrupt``
    (preemption, requeue) propagate so that submitit can checkpoint and requeue.
    """
    from harness.jobs.common import build_host, build_task
    from harness.jobs.context import JobContext, seed_everything
    from harness.jobs.finetune import finetune_and_evaluate, zeroshot_evaluate
    from harness.jobs.posttrain import posttrain, pretrain

    ctx = JobContext.create(spec)
    store = ctx.store
    if ctx.is_main:
        write_run_files(spec)
        store.write_json(spec.run_id, "env.json", env_info())
        old = store.status(spec.run_id) or {}
        requeues = int(old.get("requeues", 0)) + (old.get("state") == "running")  # resumed after preemption
        store.set_status(spec.run_id, "running", job_id=_submitit_job_id(), world_size=ctx.world_size,
                         requeues=requeues, pid=os.getpid(), hostname=socket.gethostname())
    ctx.log(f"run {spec.run_id}: host={spec.host} task={spec.task} mode={spec.mode} seed={spec.seed} "
            f"device={ctx.device} world={ctx.world_size}")
    timings: dict[str, float] = {}
    t0 = time.time()
    try:
        seed_everything(spec.seed, bool(spec.config["run"]["deterministic"]))
        threads = spec.config["run"].get("threads")
        if threads:  # intra-op threads; tiny models on a shared CPU are fastest with 1 (OpenMP spin-waits)
            torch.set_num_threads(int(threads))
        task = build_task(ctx)
        host = build_host(ctx)
        timings["setup_s"] = time.time() - t0
        fn = {"posttrain": posttrain, "finetune": finetune_and_evaluate, "zeroshot": zeroshot_evaluate,
              "pretrain": pretrain}[spec.mode]
        records, preds = fn(ctx, host, task)
        timings["total_s"] = time.time() - t0
        if ctx.is_main:
            try:

                if torch.cuda.is_available():
                    timings["peak_gpu_mem_gb"] = torch.cuda.max_memory_allocated() / 2**30
            except ImportError:  # pragma: no cover
                pass
            store.write_predictions(spec.run_id, preds)
            store.write_json(spec.run_id, "metrics.json", {"evaluations": records})
            store.write_json(spec.run_id, "timings.json", timings)
            store.set_status(spec.run_id, "finished")
        ctx.log(f"run {spec.run_id}: finished in {timings['total_s']:.1f}s")
        return RunResult(spec.run_id, "finished", str(spec.run_dir), records)
    except Exception as err:  # noqa: BLE001 - recorded, the grid goes on
        msg = f"{type(err).__name__}: {err}".splitlines()[0]
        ctx.log(f"run {spec.run_id} failed: {msg}\n{traceback.format_exc()}")
        if ctx.is_main:
            store.set_status(spec.run_id, "failed", error=msg)
        return RunResult(spec.run_id, "failed", str(spec.run_dir), error=msg)
    finally:
        ctx.close()
