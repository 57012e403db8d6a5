"""``run_job(spec) -> RunResult``: one planned run end to end, recorded in the store.

The job function comes from the mode registry (:mod:`harness.modes`). The run folder is locked while the
job runs (a second process with the same spec does not execute it), a heartbeat says the job is alive,
and ``status.json`` is written last. Every exception is recorded and returned as a failed result, never
raised into an executor (submitit's debug executor would open ``pdb`` and wait for a keyboard);
``SystemExit`` / ``KeyboardInterrupt`` (preemption, requeue) propagate so that submitit can requeue.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
from typing import Any

import torch

from harness.jobs.context import JobContext, build_host, build_task, seed_everything
from harness.modes import get_mode
from harness.spec import RunResult, RunSpec, write_run_files
from harness.store import HEARTBEAT_S, RunLock, RunStore, env_info

__all__ = ["RunResult", "run_job", "write_run_files"]


def _submitit_job_id() -> str | None:
    try:
        import submitit

        return str(submitit.JobEnvironment().job_id)
    except Exception:  # noqa: BLE001 - not inside a submitit job
        return None


class _Heartbeat:
    """A daemon thread touching ``<run>/heartbeat`` every :data:`HEARTBEAT_S` seconds."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(store, run_id), daemon=True)

    def _loop(self, store: RunStore, run_id: str) -> None:
        while not self._stop.is_set():
            try:
                store.heartbeat(run_id)
            except OSError:  # pragma: no cover - a full disk must not kill the job
                pass
            self._stop.wait(HEARTBEAT_S)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _summary(records: list[dict[str, Any]]) -> str:
    parts = []
    for r in records:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in r["metrics"].items())
        parts.append(f"{r['mode']}/{r['split']}: {metrics} (n={r['n_samples']}, failed={r['n_failed']})")
    return "; ".join(parts)


def run_job(spec: RunSpec) -> RunResult:
    """Run ``spec`` (any mode) and record config, env, status, metrics, samples, predictions and timings."""
    store = RunStore(spec.store_root)
    try:
        ctx = JobContext.create(spec)
    except Exception as err:  # noqa: BLE001 - e.g. run.device=cuda on a CPU machine: one line, recorded
        msg = f"{type(err).__name__}: {err}".splitlines()[0]
        store.set_status(spec.run_id, "failed", error=msg)
        return RunResult(spec.run_id, "failed", str(spec.run_dir), error=msg)
    lock = RunLock(spec.run_dir)
    if ctx.is_main and not lock.acquire():
        ctx.close()
        return RunResult(spec.run_id, "skipped", str(spec.run_dir),
                         error=f"already running (pid/host {lock.holder() or '?'}); not started twice")
    try:
        if ctx.is_main:
            with _Heartbeat(store, spec.run_id):
                return _execute(ctx, store)
        return _execute(ctx, store)
    finally:
        lock.release()
        ctx.close()


def _execute(ctx: JobContext, store: RunStore) -> RunResult:
    spec = ctx.spec
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
        out = get_mode(spec.mode).job_fn()(ctx, host, task)
        timings["total_s"] = time.time() - t0
        if ctx.is_main:
            if torch.cuda.is_available():
                timings["peak_gpu_mem_gb"] = torch.cuda.max_memory_allocated() / 2**30
            store.write_predictions(spec.run_id, out.predictions)
            store.write_jsonl(spec.run_id, "samples.jsonl", out.samples)
            store.write_json(spec.run_id, "metrics.json", {"schema": 2, "task": spec.task,
                                                           "task_version": spec.task_info.get("task_version"),
                                                           "evaluations": out.records})
            store.write_json(spec.run_id, "timings.json", timings)
            store.set_status(spec.run_id, "finished", summary=_summary(out.records))
        ctx.log(f"run {spec.run_id}: finished in {timings['total_s']:.1f}s {_summary(out.records)}")
        return RunResult(spec.run_id, "finished", str(spec.run_dir), out.records)
    except Exception as err:  # noqa: BLE001 - recorded, the grid goes on
        msg = f"{type(err).__name__}: {err}".splitlines()[0]
        ctx.log(f"run {spec.run_id} failed: {msg}\n{traceback.format_exc()}")
        if ctx.is_main:
            store.set_status(spec.run_id, "failed", error=msg)
        return RunResult(spec.run_id, "failed", str(spec.run_dir), error=msg)
