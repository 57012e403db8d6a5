"""Fine-tune job (host alone on a task's train split, then evaluation) and zero-shot job (evaluation only)."""

from __future__ import annotations

from typing import Any

from harness.jobs.context import JobContext, JobOutput, host_params, load_samples
from harness.jobs.evaluate import evaluate_split
from harness.jobs.recipes import FinetuneModel, make_heads
from harness.jobs.train import train_loop
from hosts.base import Host
from tasks.base import Task

__all__ = ["finetune_and_evaluate", "zeroshot_evaluate"]

def _eval_split(ctx: JobContext, task: Task) -> str:
    return str(ctx.cfg["run"]["eval_split"] or task.eval_split)


def finetune_and_evaluate(ctx: JobContext, host: Host, task: Task, name: str = "finetune") -> JobOutput:
    """Train ``host`` + fresh heads with the task-type recipe (``harness.jobs.recipes``), then evaluate.

    Returns:
        the evaluation (:class:`~harness.jobs.context.JobOutput`); empty on DDP ranks other than 0.
    """
    ft = ctx.cfg["finetune"]
    train = load_samples(ctx, task, "train")
    heads, facts = make_heads(host, task, train)
    model = FinetuneModel(host, task, heads, facts, ctx.cfg)
    groups = [{"params": host_params(host), "lr": float(ft["lr"])}]
    if len(list(heads.parameters())):
        groups.append({"params": list(heads.parameters()), "lr": float(ft["head_lr"])})
    train_loop(ctx, name, model, [g for g in groups if g["params"]], train, task.protocol,
               host.preprocess, batch_size=int(ft["batch_size"]), epochs=float(ft["epochs"]),
               warmup_epochs=float(ft["warmup_epochs"]))
    ctx.barrier()
    if not ctx.is_main:
        return JobOutput()
    split = _eval_split(ctx, task)
    return evaluate_split(ctx, host, task, split, load_samples(ctx, task, split), "finetune", heads, facts, train)


def zeroshot_evaluate(ctx: JobContext, host: Host, task: Task) -> JobOutput:
    """Evaluate ``host`` without training (zero-shot recipes of ``harness.jobs.evaluate``)."""
    if not ctx.is_main:
        return JobOutput()
    split = _eval_split(ctx, task)
    train: list[Any] = []
    if task.task_type.value == "oe_qa" and "train" in task.splits:
        train = load_samples(ctx, task, "train")  # answer vocabulary when the task has none
    return evaluate_split(ctx, host, task, split, load_samples(ctx, task, split), "zeroshot", train_samples=train)
