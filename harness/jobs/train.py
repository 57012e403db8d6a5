"""The training loop shared by every job: checkpoint + exact resume, DDP, LR schedule, progress with ETA.

State saved every ``run.ckpt_every`` steps and at the end (``<run_dir>/checkpoint/<name>.pt``, atomic):
model (all parameters, frozen ones included), optimiser, scheduler, step, loss history and the RNG
states (torch, CUDA, numpy, python). Data order is a function of (seed, epoch) (``harness.jobs.data``),
so a job killed at any point and resumed from its last checkpoint ends with the same result as an
uninterrupted one (bit-identical on CPU with deterministic kernels).

DDP: with ``torch.distributed`` initialised (``harness.launch`` does it inside a submitit job), each rank
takes ``batch_size / world`` samples of every global batch and the module is wrapped in
``DistributedDataParallel``, which averages gradients: the same update as one process on the whole batch.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from harness.jobs.context import JobContext
from harness.jobs.data import epoch_order, iter_batches, rank_shard
from harness.store import atomic_write_bytes, atomic_write_json

__all__ = ["BatchBox", "TrainResult", "lr_lambda", "train_loop"]


class BatchBox:
    """Opaque holder so that DDP passes the batch through untouched (no recursive ``.to``)."""

    def __init__(self, batch: Any) -> None:
        self.batch = batch


@dataclass
class TrainResult:
    steps: int
    losses: list[float] = field(default_factory=list)
    resumed_from: int | None = None


def lr_lambda(warmup_steps: int, total_steps: int, schedule: str):
    """Linear warm-up to 1, then ``linear`` (to 0), ``cosine`` (to 0) or ``constant`` (C.2: "warmed-up ...
    then decays")."""
    if schedule not in ("linear", "cosine", "constant"):
        raise ValueError(f"optim.schedule must be linear|cosine|constant, got {schedule!r}")

    def f(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        rest = max(total_steps - warmup_steps, 1)
        frac = min(max(step - warmup_steps, 0) / rest, 1.0)
        return 1.0 - frac if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * frac))

    return f


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
             "python_version": random.getstate()[0], "python_gauss": random.getstate()[2],
             "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), *n[2:]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save(path: Path, obj: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def train_loop(ctx: JobContext, name: str, model: nn.Module, param_groups: Sequence[dict[str, Any]],
               samples: Sequence[Any], protocol: Any, preprocess: Any, *, batch_size: int, epochs: float,
               warmup_epochs: float = 0.0, train_data: bool = True) -> TrainResult:
    """Train ``model`` (its ``forward(BatchBox, step, total_steps) -> (loss, logs)``) on ``samples``.

    Args:
        name: stage name; names the checkpoint and the loss history file.
        param_groups: AdamW parameter groups (``{"params": [...], "lr": ...}``); optimiser settings
            (weight decay, betas, eps, schedule, grad clip) come from ``ctx.cfg["optim"]``.
        batch_size: the *global* batch size (split over DDP ranks).
        epochs: passes over ``samples`` (fractions allowed); warmup_epochs: linear LR warm-up length.
    Returns:
        :class:`TrainResult` with the per-step loss (averaged over ranks).
    """
    cfg, optim_cfg = ctx.cfg, ctx.cfg["optim"]
    world, rank = ctx.world_size, ctx.rank
    n = len(samples)
    bs = min(int(batch_size), n - n % world) if n >= world else 0
    bs -= bs % world
    if bs <= 0:
        raise ValueError(f"{name}: {n} training samples cannot fill a batch on {world} process(es)")
    if bs != batch_size:
        ctx.log(f"{name}: batch size {batch_size} -> {bs} ({n} samples, {world} process(es))")
    steps_per_epoch = n // bs
    total = max(1, int(round(steps_per_epoch * float(epochs))))
    warmup = int(round(steps_per_epoch * float(warmup_epochs)))
    model.to(ctx.device)
    optimizer = torch.optim.AdamW(param_groups, betas=tuple(optim_cfg["betas"]), eps=float(optim_cfg["eps"]),
                                  weight_decay=float(optim_cfg["weight_decay"]))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(warmup, total, optim_cfg["schedule"]))
    ckpt = ctx.run_dir / "checkpoint" / f"{name}.pt"
    start, losses, resumed = 0, [], None
    if ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, losses, resumed = int(state["step"]), list(state["losses"]), int(state["step"])
        _set_rng_state(state["rng"])
        ctx.log(f"{name}: resumed from step {start}/{total} ({ckpt})")
        if start >= total:
            return TrainResult(start, losses, resumed)
    wrapped: nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        wrapped = DistributedDataParallel(model, find_unused_parameters=True)
    params = [p for g in param_groups for p in g["params"]]
    clip = float(optim_cfg["grad_clip"] or 0.0)
    ckpt_every, log_every = int(cfg["run"]["ckpt_every"]), int(cfg["run"]["log_every"])
    seed = int(cfg["run"]["seed"] or 0)
    bar = ctx.progress(total=total, initial=start, desc=f"{ctx.spec.run_id[:40]} {name}")
    model.train()
    step, batches = start, None
    n_seen, failed = 0, []  # samples this process drew / that failed to load (since the last resume)
    try:
        while step < total:
            epoch, pos = divmod(step, steps_per_epoch)
            if batches is None or pos == 0:
                mine = rank_shard(epoch_order(n, seed, epoch), bs, rank, world)
                batches = iter_batches([samples[i] for i in mine], protocol, preprocess, bs // world,
                                       int(cfg["data"]["num_workers"]), train=train_data, seed=seed, epoch=epoch,
                                       skip=pos)
            batch = next(batches)
            n_seen += len(batch) + len(batch.failed)
            if batch.failed:
                failed += [f"{sid} ({why})" for sid, why in batch.failed]
                ctx.log(f"{name}: step {step}: skipped unreadable samples {batch.failed[:3]}")
            if len(batch) == 0:
                if world == 1:
                    raise ValueError(f"{name}: step {step}: every sample of the batch failed to load "
                                     f"(first: {failed[-1]})")
                loss, logs = sum(p.sum() * 0.0 for p in params), {}  # keeps the DDP ranks in step
            else:
                loss, logs = wrapped(BatchBox(batch.to(ctx.device)), step, total)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{name}: loss is {loss.item()} at step {step} ({logs})")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(params, clip)
            optimizer.step()
            scheduler.step()
            value = _mean_over_ranks(loss.detach(), world)
            losses.append(value)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}")
            if step % log_every == 0 or step == total:
                extra = " ".join(f"{k}={v:.4g}" for k, v in logs.items())
                ctx.log(f"{name}: step {step}/{total} loss={value:.5f} lr={scheduler.get_last_lr()[0]:.3g} {extra}")
            if rank == 0 and (step % ckpt_every == 0 or step == total):
                _save(ckpt, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(), "step": step, "losses": losses,
                             "rng": _rng_state()})
    finally:
        bar.close()
    ctx.check_failed(f"{name} (training split)", len(failed), n_seen, failed)
    if rank == 0:
        atomic_write_json(ctx.run_dir / "history" / f"{name}.json", {"losses": losses, "steps": step,
                                                                      "resumed_from": resumed})
    return TrainResult(step, losses, resumed)


def _mean_over_ranks(x: Tensor, world: int) -> float:
    if world > 1:
        import torch.distributed as dist

        x = x.clone().float()
        dist.all_reduce(x)
        x /= world
    return float(x.item())
