"""Predictions in the conventions' formats (one dict per prediction) and scoring with ``task.evaluate``.

Fine-tuned evaluation uses the recipe heads (``harness.jobs.recipes``); zero-shot uses the host alone:
action recognition by ``Host.zeroshot_class_scores`` (cosine to class-name prompts, or the class name's
likelihood for LLM hosts), retrieval directly, MC by ``score_options``, open-ended QA by scoring the answer
vocabulary with ``score_options`` when the host can (lmms-eval's likelihood protocol), else by ``generate``,
else by the similarity of "question answer" texts; captioning by ``generate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.jobs.context import JobContext, JobOutput
from harness.jobs.data import iter_batches
from harness.jobs.recipes import answer_vocab, class_names
from hosts.base import Host
from tasks.base import EvalResult, Sample, Task, TaskType
from tasks.metrics.registry import higher_is_better

__all__ = ["evaluate_split", "predict"]


def _batches(ctx: JobContext, host: Host, samples: Sequence[Sample], task: Task, desc: str):
    bs = int(ctx.cfg["run"]["eval_batch_size"])
    bar = ctx.progress(total=(len(samples) + bs - 1) // bs, desc=desc)
    try:
        for batch in iter_batches(samples, task.protocol, host.preprocess, bs,
                                  int(ctx.cfg["data"]["num_workers"]), train=False, seed=0):
            bar.update(1)
            yield batch.to(ctx.device)
    finally:
        bar.close()


def _failed(batch: Any) -> list[dict[str, Any]]:
    return [{"id": sid, "error": reason} for sid, reason in batch.failed]


def _rows(x: Tensor) -> list[list[float]]:
    return x.detach().float().cpu().tolist()


def _retrieval(ctx: JobContext, host: Host, task: Task, samples: Sequence[Sample]) -> list[dict[str, Any]]:
    vids: dict[str, Tensor] = {}
    out: list[dict[str, Any]] = []
    for b in _batches(ctx, host, samples, task, f"{task.name} videos"):
        out += _failed(b)
        for s, e in zip(b.samples, F.normalize(host.encode_video(b.video, b.frame_times), dim=-1)):
            vids[s.id] = e.cpu()
    if not vids:
        return out
    # The gallery is every sample of the split in order. A video that failed to decode gets a finite score
    # below every cosine similarity (-1 - 1): the evaluator leaves it out of the gallery (or, with
    # on_failed=wrong, ranks it last) and no healthy query is blamed for it. Its own texts get error records.
    floor = -2.0
    dim = next(iter(vids.values())).shape[-1]
    ok = torch.tensor([s.id in vids for s in samples])
    gallery = torch.stack([vids.get(s.id, torch.zeros(dim)) for s in samples])
    texts = [(s.id, k, t) for s in samples if s.id in vids for k, t in enumerate(s.texts)]
    failed = {r["id"]: r["error"] for r in out}
    out += [{"id": s.id, "text_index": k, "error": failed[s.id]} for s in samples if s.id in failed
            for k in range(1, len(s.texts))]
    bs = int(ctx.cfg["run"]["eval_batch_size"])
    for i in range(0, len(texts), bs):
        chunk = texts[i:i + bs]
        emb = F.normalize(host.encode_text([t for _, _, t in chunk]), dim=-1).cpu()
        sims = (emb @ gallery.t()).masked_fill(~ok, floor)
        out += [{"id": sid, "text_index": k, "scores": row} for (sid, k, _), row in zip(chunk, _rows(sims))]
    return out


def predict(ctx: JobContext, host: Host, task: Task, samples: Sequence[Sample], mode: str,
            heads: nn.ModuleDict | None = None, facts: dict[str, Any] | None = None,
            train_samples: Sequence[Sample] = ()) -> list[dict[str, Any]]:
    """Per-sample predictions of ``host`` (+ ``heads`` when ``mode == "finetune"``) on ``samples``."""
    tt, facts = task.task_type, dict(facts or {})
    max_tokens = int(ctx.cfg["finetune" if mode == "finetune" else "zeroshot"]["max_new_tokens"])
    if tt in (TaskType.RETRIEVAL, TaskType.PARAGRAPH_RETRIEVAL):
        return _retrieval(ctx, host, task, samples)
    caps = set(host.spec.capabilities)
    names = vocab = None
    prompt = str(ctx.cfg["zeroshot"]["prompt"])
    if mode == "zeroshot" and tt == TaskType.ACTION_RECOGNITION:
        names = class_names(task)
        if not names:
            raise ValueError(f"task {task.name!r} lists no class names: zero-shot action recognition needs them")
    if tt == TaskType.OE_QA:
        vocab = facts.get("vocab") or answer_vocab(task, train_samples)
    out: list[dict[str, Any]] = []
    for b in _batches(ctx, host, samples, task, f"{task.name} {mode}"):
        out += _failed(b)
        if not len(b):
            continue
        ids = [s.id for s in b.samples]
        questions = [s.texts[0] if s.texts else "" for s in b.samples]
        if tt == TaskType.ACTION_RECOGNITION:
            if mode == "finetune":
                scores = heads["cls"](host.encode_video(b.video, b.frame_times))
            else:  # the host's own zero-shot classifier (cosine to prompts, or class-name likelihood for LLMs)
                scores = host.zeroshot_class_scores(b.video, names, prompt, b.frame_times)
            out += [{"id": i, "scores": r} for i, r in zip(ids, _rows(scores))]
        elif tt in (TaskType.MC_QA, TaskType.LONGFORM_QA):
            scores = host.score_options(b.video, questions, [list(s.options or []) for s in b.samples], b.frame_times)
            # ragged option counts: hosts pad short rows with -inf; keep each sample's own options
            out += [{"id": i, "scores": r[:len(s.options or [])]} for i, r, s in zip(ids, _rows(scores), b.samples)]
        elif tt == TaskType.CAPTIONING:
            caps_out = host.generate(b.video, None, max_tokens, b.frame_times)
            out += [{"id": i, "caption": c} for i, c in zip(ids, caps_out)]
        elif tt == TaskType.OE_QA:
            if mode == "finetune":
                logits = heads["cls"](host.encode_joint(b.video, questions, b.frame_times))
                answers = [vocab[j] for j in logits.argmax(-1).tolist()]
            elif "multiple_choice" in caps:  # score the answer vocabulary as options (lmms-eval's likelihood way)
                scores = host.score_options(b.video, questions, [list(vocab)] * len(questions), b.frame_times)
                answers = [vocab[j] for j in scores.argmax(-1).tolist()]
            elif "generation" in caps:
                answers = host.generate(b.video, questions, max_tokens, b.frame_times)
            else:  # similarity of "question answer" texts to the video, over the vocabulary
                v = F.normalize(host.encode_video(b.video, b.frame_times), dim=-1)
                answers = []
                for q, vi in zip(questions, v):
                    t = F.normalize(host.encode_text([f"{q} {a}".strip() for a in vocab]), dim=-1)
                    answers.append(vocab[int((t @ vi).argmax())])
            out += [{"id": i, "answer": a} for i, a in zip(ids, answers)]
        else:
            raise ValueError(f"no evaluation recipe for task type {tt}")
    return out


@torch.no_grad()
def evaluate_split(ctx: JobContext, host: Host, task: Task, split: str, samples: Sequence[Sample],
                   mode: str, heads: nn.ModuleDict | None = None, facts: dict[str, Any] | None = None,
                   train_samples: Sequence[Sample] = ()) -> JobOutput:
    """Predict, score with ``task.evaluate``; the evaluation record (``metrics.json``: metrics with their
    ``higher_is_better``, ``n_samples``, ``n_failed``, notes), per-sample records and raw predictions.

    Raises:
        ValueError: more than ``run.max_failed_fraction`` of the samples failed (``JobContext.check_failed``).
    """
    was_training = host.training
    host.eval()
    if heads is not None:
        heads.eval()
    try:
        preds = predict(ctx, host, task, samples, mode, heads, facts, train_samples)
    finally:
        host.train(was_training)
    result: EvalResult = task.evaluate(preds, samples)
    n_samples = int(result.n_samples or len(samples))
    errors = [f"{r['id']} ({r['error']})" for r in preds if r.get("error") is not None]
    ctx.check_failed(f"task {task.name!r} split {split!r} ({mode})", int(result.n_failed), n_samples, errors)
    metrics = {k: float(v) for k, v in result.metrics.items()}
    record = {"mode": mode, "split": split, "metrics": metrics,
              "higher_is_better": {k: higher_is_better(k) for k in metrics},
              "n_samples": n_samples, "n_failed": int(result.n_failed), "notes": list(result.notes)}
    ctx.log(f"eval {task.name}/{split} ({mode}): " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
            + f" (n={n_samples}, failed={record['n_failed']})")
    per = [{"split": split, "mode": mode, **r} for r in result.per_sample]
    return JobOutput([record], per, preds)
