"""Generic fine-tuning recipes per task type, on the host capability API only (paper sec 6.1, "End-Task
Fine-tuning"; the host's own task heads where the paper uses them are out of scope of a generic harness).

=====================  ====================================================================
task type              training objective
=====================  ====================================================================
action_recognition     CE of ``task_head(C)`` on ``encode_video``
oe_qa                  CE of ``task_head(|answer vocabulary|)`` on ``encode_joint(video, question)``
retrieval, paragraph   symmetric InfoNCE on ``encode_text`` / ``encode_video`` (temperature from config)
captioning             ``caption_loss`` on one reference caption per sample
mc_qa, longform_qa     CE over ``score_options`` against ``answer_index``
=====================  ====================================================================
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.jobs.train import BatchBox
from hosts.base import Host
from hosts.pooling import symmetric_infonce
from tasks.base import Sample, Task, TaskType

__all__ = ["FinetuneModel", "answer_vocab", "class_names", "info_nce", "make_heads", "pick_text"]

def class_names(task: Task) -> list[str] | None:
    """Class names of an action-recognition task (``Task.class_names``; None when it has none)."""
    names = task.class_names
    return list(names) if names else None


def answer_vocab(task: Task, train: Sequence[Sample]) -> list[str]:
    """Open-ended QA answer vocabulary: the task's own (``Task.answer_vocab``) or the training answers by
    frequency (ties alphabetical), as in the classification-over-answers practice of the QA benchmarks."""
    vocab = task.answer_vocab
    if vocab:
        return list(vocab)
    counts = Counter(s.answer for s in train if s.answer)
    if not counts:
        raise ValueError(f"task {task.name!r}: no answer vocabulary (no task.answer_vocab, no training answers)")
    return [a for a, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def num_classes(task: Task, samples: Sequence[Sample]) -> int:
    names = class_names(task)
    if names:
        return len(names)
    labels = [s.label for s in samples if s.label is not None]
    if not labels:
        raise ValueError(f"task {task.name!r}: samples carry no labels and the task lists no class names")
    return max(labels) + 1


def pick_text(sample: Sample, step: int, index: int) -> str:
    """One text of a sample, chosen by (step, position) so that training is reproducible on resume."""
    texts = sample.texts or sample.references or []
    if not texts:
        raise ValueError(f"sample {sample.id!r} has no text")
    return texts[random.Random(step * 100_003 + index).randrange(len(texts))] if len(texts) > 1 else texts[0]


def info_nce(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """Symmetric InfoNCE of paired rows ``a [B, d]``, ``b [B, d]`` (cosine similarities / temperature): the
    hosts' one implementation (``hosts.pooling.symmetric_infonce``, CLIP4Clip's loss) on L2-normalised rows."""
    return symmetric_infonce(F.normalize(a, dim=-1), F.normalize(b, dim=-1), 1.0 / temperature)


def make_heads(host: Host, task: Task, train: Sequence[Sample]) -> tuple[nn.ModuleDict, dict[str, Any]]:
    """Fresh task heads and the facts they need (vocabulary, number of classes)."""
    tt = task.task_type
    heads, facts = nn.ModuleDict(), {}
    if tt == TaskType.ACTION_RECOGNITION:
        facts["num_classes"] = num_classes(task, train)
        heads["cls"] = host.task_head(facts["num_classes"])
    elif tt == TaskType.OE_QA:
        facts["vocab"] = answer_vocab(task, train)
        heads["cls"] = host.task_head(len(facts["vocab"]))
    return heads, facts


def _answer_target(s: Sample, index: dict[str, int]) -> int:
    if s.answer is not None and s.answer in index:
        return index[s.answer]
    if s.label is not None and s.answer is None:
        return int(s.label)
    return -100  # out-of-vocabulary answer: ignored by the loss


class FinetuneModel(nn.Module):
    """Host + task heads; ``forward(BatchBox, step, total) -> (loss, logs)`` for :func:`train_loop`."""

    def __init__(self, host: Host, task: Task, heads: nn.ModuleDict, facts: dict[str, Any],
                 cfg: dict[str, Any]) -> None:
        super().__init__()
        self.host, self.heads = host, heads
        self.task_type = task.task_type
        self.facts = facts
        self.temperature = float(cfg["finetune"]["temperature"])
        self._answer_index = {a: i for i, a in enumerate(facts.get("vocab", []))}

    def forward(self, box: BatchBox, step: int, total_steps: int) -> tuple[Tensor, dict[str, float]]:
        b = box.batch
        tt, host = self.task_type, self.host
        video, times, samples = b.video, b.frame_times, b.samples
        if tt == TaskType.ACTION_RECOGNITION:
            target = torch.tensor([s.label for s in samples], device=video.device)
            logits = self.heads["cls"](host.encode_video(video, times))
            return F.cross_entropy(logits, target), {"acc": float((logits.argmax(-1) == target).float().mean())}
        if tt == TaskType.OE_QA:
            target = torch.tensor([_answer_target(s, self._answer_index) for s in samples], device=video.device)
            logits = self.heads["cls"](host.encode_joint(video, [s.texts[0] for s in samples], times))
            if bool((target < 0).all()):
                return logits.sum() * 0.0, {}
            return F.cross_entropy(logits, target, ignore_index=-100), {}
        if tt in (TaskType.RETRIEVAL, TaskType.PARAGRAPH_RETRIEVAL):
            texts = [pick_text(s, step, i) for i, s in enumerate(samples)]
            return info_nce(host.encode_text(texts), host.encode_video(video, times), self.temperature), {}
        if tt == TaskType.CAPTIONING:
            caps = [pick_text(Sample(id=s.id, texts=s.references or s.texts), step, i) for i, s in enumerate(samples)]
            return host.caption_loss(video, caps, times), {}
        if tt in (TaskType.MC_QA, TaskType.LONGFORM_QA):
            scores = host.score_options(video, [s.texts[0] if s.texts else "" for s in samples],
                                        [list(s.options or []) for s in samples], times)
            target = torch.tensor([s.answer_index for s in samples], device=video.device)
            return F.cross_entropy(scores, target), {"acc": float((scores.argmax(-1) == target).float().mean())}
        raise ValueError(f"no fine-tuning recipe for task type {tt}")
