"""Post-training with Finsta (paper sec 5.3, C.2) and host-only pre-training (synthetic demo).

Stage 1 (warm-up): Finsta alone with ``L_OSC + L_PTC`` (host frozen; its first-layer states are fed
only with ``posttrain.stage1_host_inputs``). Stage 2 (joint): ``L_OSC + L_PTC + L_TRS`` plus the host's
own losses (``vla``, ``mlm``), weighted by the Eq 42 schedules of ``finsta_core.loss_weights`` with
lambda^{T,D,C} of Eq 41 chosen by the target task's family. The host is then saved *without* Finsta
(``host.safetensors``) and, unless ``posttrain.then=none``, evaluated like ``finetune`` (or ``zeroshot``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from finsta_core.config import FinstaConfig
from finsta_core.graphs import HolisticSceneGraph
from finsta_core.graphs.batch import collate_graphs
from finsta_core.model import Finsta
from finsta_core.schedule import loss_weights
from finsta_core.sg.noise import drop_nodes, sample_seed
from harness.jobs.context import JobContext, JobOutput, build_posttrain_task, host_params, load_samples
from harness.jobs.data import posttrain_dataset
from harness.jobs.finetune import finetune_and_evaluate, zeroshot_evaluate
from harness.jobs.train import BatchBox, train_loop
from hosts.base import Host, HostBatch
from tasks.base import Sample, Task

__all__ = ["PosttrainModel", "PretrainModel", "posttrain", "pretrain"]


def _host_batch(b: Any, texts: list[str]) -> HostBatch:
    return HostBatch(video=b.video, frame_times=b.frame_times, texts=texts)


class PosttrainModel(nn.Module):
    """Host + Finsta; ``forward(BatchBox, step, total) -> (Eq 42 loss, logs)`` at the current ``stage``."""

    def __init__(self, host: Host, finsta: Finsta, fcfg: FinstaConfig, family: str,
                 graphs: dict[str, Any], stage1_host_inputs: bool) -> None:
        super().__init__()
        self.host, self.finsta = host, finsta
        self.fcfg, self.family = fcfg, family
        self.graphs = graphs  # sample id -> HolisticSceneGraph (loaded once, noise applied)
        self.stage1_host_inputs = stage1_host_inputs
        self.stage = 1

    def forward(self, box: BatchBox, step: int, total_steps: int) -> tuple[Tensor, dict[str, float]]:
        b = box.batch
        graphs = [self.graphs[s.id] for s in b.samples]
        gb = collate_graphs(graphs).to(b.video.device)
        hb = _host_batch(b, [g.tsg.caption for g in graphs])
        host_out = None
        if self.stage == 2:
            host_out = self.host.posttrain_outputs(hb, with_losses=True)
        elif self.stage1_host_inputs:
            with torch.no_grad():
                host_out = self.host.posttrain_outputs(hb, with_losses=False)
        out = self.finsta(gb, host_out, stage=self.stage, step=step, task_family=self.family)
        weights = loss_weights(self.fcfg, self.stage, step, total_steps)
        losses: dict[str, Tensor] = dict(out.losses)
        if self.stage == 2 and host_out is not None:
            losses.update(host_out.losses)
        # L = sum_* lambda_*(step) L_* over OSC, PTC, TRS and the host's own losses (Eq 42)
        terms = [weights[k] * v for k, v in losses.items() if weights.get(k, 0.0) != 0.0]  # Eq 42
        total = torch.stack(terms).sum() if terms else sum(p.sum() * 0.0 for p in self.finsta.parameters())
        logs = {f"L_{k}": float(v.detach()) for k, v in losses.items()}
        logs.update({f"w_{k}": v for k, v in weights.items()})
        logs.update({k: float(v) for k, v in out.diagnostics.items()})
        return total, logs


class PretrainModel(nn.Module):
    """Host alone on its own losses (sum of ``posttrain_outputs(...).losses``)."""

    def __init__(self, host: Host, loss_weights: dict[str, float] | None = None) -> None:
        super().__init__()
        self.host = host
        self.loss_weights = {str(k): float(v) for k, v in (loss_weights or {}).items()}

    def forward(self, box: BatchBox, step: int, total_steps: int) -> tuple[Tensor, dict[str, float]]:
        b = box.batch
        out = self.host.posttrain_outputs(_host_batch(b, [s.texts[0] for s in b.samples]), with_losses=True)
        if not out.losses:
            raise ValueError(f"host {self.host.spec.name!r} returns no losses of its own: cannot pre-train it")
        unknown = sorted(set(self.loss_weights) - set(out.losses))
        if unknown:
            raise ValueError(f"pretrain.loss_weights names {unknown}, but host {self.host.spec.name!r} has the own "
                             f"losses {sorted(out.losses)}")
        # {} = every own loss at weight 1; otherwise losses not named get weight 0
        w = self.loss_weights or dict.fromkeys(out.losses, 1.0)
        terms = [w[k] * v for k, v in out.losses.items() if w.get(k, 0.0) != 0.0]
        if not terms:
            raise ValueError("pretrain.loss_weights gives every own loss weight 0: nothing to train")
        return torch.stack(terms).sum(), {k: float(v.detach()) for k, v in out.losses.items()}


def _load_graphs(ctx: JobContext, task: Task, split: str, samples: list[Sample]) -> dict[str, Any]:
    """Every sample's HSG (object or path), with Table 12 node dropping; one-line error if any is missing."""
    missing = [s.id for s in samples if s.scene_graph is None]
    if missing:
        raise ValueError(f"task {task.name!r} split {split!r}: {len(missing)} of {len(samples)} samples have no "
                         f"scene graph (first: {missing[0]!r}); build them with `python -m harness sg parse`")
    rate = float(ctx.cfg["posttrain"]["sg_node_missing_rate"])
    seed = int(ctx.cfg["run"]["seed"] or 0)
    out = {}
    for s in samples:
        g = s.scene_graph
        if isinstance(g, (str, Path)):
            path = Path(g) if Path(g).is_absolute() or task.root is None else Path(task.root) / g
            if not path.is_file():
                raise FileNotFoundError(f"sample {s.id!r} of task {task.name!r}: scene graph file not found: {path}")
            g = HolisticSceneGraph.load(path)
        if rate > 0:
            g = drop_nodes(g, rate, sample_seed(seed, s.id))
        out[s.id] = g
    return out


def posttrain(ctx: JobContext, host: Host, task: Task) -> JobOutput:
    """Stage 1 + stage 2, save the host without Finsta, then evaluate (``posttrain.then``)."""
    pt = ctx.cfg["posttrain"]
    fcfg = FinstaConfig.preset(str(ctx.cfg["finsta_preset"]), **dict(ctx.cfg["finsta"]))
    data_task = build_posttrain_task(ctx, task)
    sources = ctx.spec.resolved.get("sources")
    if sources:  # a corpus / task split with a scene-graph store built by `sg parse` (contract C3)
        limit = ctx.cfg["data"]["limit"]
        samples, _ = posttrain_dataset(sources, data_task, limit=int(limit) if limit is not None else None,
                                       vocabulary_filter=bool(pt["sg_vocabulary_filter"]))
    else:  # the data task's samples carry their graphs (synthetic tasks)
        samples = load_samples(ctx, data_task, str(pt["split"]))
    graphs = _load_graphs(ctx, data_task, str(pt["split"]), samples)
    pooled_w = host.encoder_widths()
    first_w = host.first_layer_widths()
    finsta = Finsta(fcfg, host_widths={k: (int(first_w.get(k, w)), int(w)) for k, w in pooled_w.items()})
    family = task.task_type.family
    model = PosttrainModel(host, finsta, fcfg, family, graphs, bool(pt["stage1_host_inputs"]))
    if ctx.is_main:
        n_f = sum(p.numel() for p in finsta.parameters())
        n_h = sum(p.numel() for p in host.parameters())
        ctx.store.write_json(ctx.spec.run_id, "cost.json", {"params_host": n_h, "params_finsta": n_f,
                                                             "posttrain_pairs": len(samples), "task_family": family,
                                                             "finsta_config": fcfg.to_dict()})
    preprocess = host.preprocess
    for stage, key in ((1, "stage1"), (2, "stage2")):
        s = pt[key]
        model.stage = stage
        teacher_lr = s.get("teacher_lr") if stage == 2 else None  # stage 2: the teacher's own lr (None = lr)
        groups = finsta.param_groups(float(s["lr"]), None if teacher_lr is None else float(teacher_lr))
        if stage == 2 and host_params(host):
            groups.append({"params": host_params(host), "lr": float(s["host_lr"])})
        train_loop(ctx, f"posttrain_{key}", model, groups, samples, data_task.protocol, preprocess,
                   batch_size=int(s["batch_size"]), epochs=float(s["epochs"]), warmup_epochs=float(s["warmup_epochs"]))
    if ctx.is_main:
        host.save(ctx.run_dir / "host.safetensors")  # the host alone: Finsta is removed after post-training
        ctx.log(f"post-trained host saved to {ctx.run_dir / 'host.safetensors'}")
    ctx.barrier()
    del model, finsta
    then = str(pt["then"])
    if then == "finetune":
        return finetune_and_evaluate(ctx, host, task)
    if then == "zeroshot":
        return zeroshot_evaluate(ctx, host, task)
    return JobOutput()


def pretrain(ctx: JobContext, host: Host, task: Task) -> JobOutput:
    """Train ``host`` on its own losses over the task's train split; saves ``host.safetensors``."""
    p = ctx.cfg["pretrain"]
    samples = load_samples(ctx, task, "train")
    model = PretrainModel(host, dict(p.get("loss_weights") or {}))
    train_loop(ctx, "pretrain", model, [{"params": host_params(host), "lr": float(p["lr"])}], samples,
               task.protocol, host.preprocess, batch_size=int(p["batch_size"]),
               epochs=float(p["epochs"]), warmup_epochs=float(p["warmup_epochs"]))
    if ctx.is_main:
        host.save(ctx.run_dir / "host.safetensors")
        ctx.store.write_json(ctx.spec.run_id, "cost.json", {"params_host": sum(x.numel() for x in host.parameters()),
                                                             "params_finsta": 0, "posttrain_pairs": len(samples)})
    return JobOutput()
