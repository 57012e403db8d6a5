"""One evaluator per task type: per-sample predictions -> :class:`~tasks.base.EvalResult`.

Prediction formats (``docs/tasks.md``, fixed in the cross-area conventions):

* action_recognition: ``{"id", "scores": [C]}`` -> ``top1``, ``top5``, ``mean_class_acc``.
* captioning: ``{"id", "caption": str}`` vs ``Sample.references`` -> ``CIDEr``, ``BLEU@4``, ``METEOR``,
  ``ROUGE-L`` (+ ``BLEU@1..3``), pycocoevalcap with the PTB tokenizer; SPICE noted as not computed.
* retrieval / paragraph_retrieval: ``{"id", "text_index": k, "scores": [N]}``, one per (sample, text),
  ``scores`` = similarity of that text to every gallery video (the split's samples, in order) ->
  ``R@1/5/10``, ``MdR``, ``MnR`` (text-to-video) and ``v2t_*`` (video-to-text).
* mc_qa / longform_qa: ``{"id", "scores": [K]}`` vs ``Sample.answer_index`` -> ``accuracy``.
* oe_qa: ``{"id", "answer": str}`` vs ``Sample.answer`` (normalised exact match) -> ``accuracy`` and
  ``accuracy_<answer_type>`` when samples carry ``extra["answer_type"]``.

A failed sample is ``{"id", "error": msg}`` (a missing prediction counts as failed too). It is counted in
``n_failed`` and never scored as an empty prediction. Option ``on_failed`` (task option or the task's
``eval_options``): ``exclude`` (default: metrics over the scored samples, like the benchmarks' codebases
that skip missing videos; for retrieval the failed videos also leave the gallery) or ``wrong`` (failed
samples count as incorrect / worst rank, so the denominator stays the full split). Malformed predictions
(unknown id, duplicates, wrong score length, NaN) raise :class:`PredictionError` naming the record.
Ties: ``tie_rule`` option, default ``pessimistic`` (see :mod:`tasks.metrics.retrieval`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tasks.base import EvalResult, Sample, Task, TaskType
from tasks.metrics.classification import class_ranks, exact_match, normalize_answer
from tasks.metrics.retrieval import rank_metrics, ranks_from_scores, retrieval_metrics


class PredictionError(ValueError):
    """A predictions record is malformed or does not match the samples."""


def _option(task: Task, key: str, default: Any) -> Any:
    if key in task.options:
        return task.options[key]
    return dict(getattr(task, "eval_options", {}) or {}).get(key, default)


def _where(task: Task, i: int, pred: dict[str, Any]) -> str:
    return f"{task.name}: prediction #{i} (id={pred.get('id')!r})"


def _index(task: Task, predictions: Sequence[dict[str, Any]], samples: Sequence[Sample], key: Callable,
           valid_keys: set) -> tuple[dict[Any, dict[str, Any]], dict[Any, str]]:
    """Predictions by key and failures by key (explicit errors and missing predictions)."""
    preds: dict[Any, dict[str, Any]] = {}
    failed: dict[Any, str] = {}
    for i, p in enumerate(predictions):
        if not isinstance(p, dict) or "id" not in p:
            raise PredictionError(f"{task.name}: prediction #{i} must be a dict with an 'id', got {p!r:.80}")
        k = key(p)
        if k not in valid_keys:
            raise PredictionError(f"{_where(task, i, p)}: no such sample/text in the evaluated split")
        if k in preds or k in failed:
            raise PredictionError(f"{_where(task, i, p)}: duplicate prediction for {k!r}")
        if p.get("error") is not None:
            failed[k] = str(p["error"])
        else:
            preds[k] = p
    for k in valid_keys:
        if k not in preds and k not in failed:
            failed[k] = "no prediction"
    return preds, failed


def _scores(task: Task, i: int, p: dict[str, Any], n: int | None) -> np.ndarray:
    s = p.get("scores")
    if s is None:
        raise PredictionError(f"{_where(task, i, p)}: missing 'scores'")
    arr = np.asarray(s, dtype=np.float64).reshape(-1)
    if n is not None and arr.shape[0] != n:
        raise PredictionError(f"{_where(task, i, p)}: {arr.shape[0]} scores, expected {n}")
    if not np.isfinite(arr).all():
        raise PredictionError(f"{_where(task, i, p)}: scores contain NaN or infinite values")
    return arr


def _finish(metrics: dict[str, float], per: list[dict[str, Any]], samples: Sequence[Sample],
            failed: dict[Any, str], policy: str, notes: list[str]) -> EvalResult:
    n_failed_ids = len({k[0] if isinstance(k, tuple) else k for k in failed})
    if failed:
        n_missing = sum(1 for r in failed.values() if r == "no prediction")
        notes.append(f"{n_failed_ids} sample(s) failed ({n_missing} without prediction); on_failed={policy}")
    return EvalResult(metrics=metrics, per_sample=per, n_samples=len(samples), n_failed=n_failed_ids, notes=notes)


def _policy(task: Task) -> str:
    p = _option(task, "on_failed", "exclude")
    if p not in ("exclude", "wrong"):
        raise ValueError(f"{task.name}: on_failed must be 'exclude' or 'wrong', got {p!r}")
    return p


# ------------------------------------------------------------------------------------------------ types
def evaluate_classification(task: Task, predictions: Sequence[dict], samples: Sequence[Sample]) -> EvalResult:
    """Action recognition: top-1 / top-5 / mean class accuracy (percent)."""
    policy, tie = _policy(task), _option(task, "tie_rule", "pessimistic")
    ids = [s.id for s in samples]
    preds, failed = _index(task, predictions, samples, lambda p: p["id"], set(ids))
    n_cls = getattr(task, "num_classes", None) or None
    labels, kept = [], []
    by_id: dict[str, np.ndarray] = {}
    for i, p in enumerate(predictions):
        if p["id"] in preds:
            by_id[p["id"]] = _scores(task, i, p, n_cls)
            n_cls = n_cls or by_id[p["id"]].shape[0]  # the first prediction fixes C when the task does not
    for s in samples:
        if s.label is None:
            raise PredictionError(f"{task.name}: sample {s.id!r} has no label; this split cannot be scored")
        if s.id in by_id:
            if not 0 <= s.label < by_id[s.id].shape[0]:
                raise PredictionError(f"{task.name}: sample {s.id!r} label {s.label} outside the {n_cls} scores")
            kept.append(s)
            labels.append(s.label)
    ranks = class_ranks(np.stack([by_id[s.id] for s in kept]), labels, tie) if kept else np.zeros(0)
    rank_of = {s.id: float(r) for s, r in zip(kept, ranks)}
    all_ranks, all_labels = list(ranks), list(labels)
    if policy == "wrong":
        for s in samples:
            if s.id in failed:
                all_ranks.append(math.inf)
                all_labels.append(s.label)
    r, lab = np.asarray(all_ranks), np.asarray(all_labels)
    metrics: dict[str, float] = {}
    if r.size:
        metrics = {"top1": float(100 * np.mean(r <= 1)), "top5": float(100 * np.mean(r <= 5)),
                   "mean_class_acc": float(100 * np.mean([np.mean(r[lab == c] <= 1) for c in np.unique(lab)]))}
    per = [{"id": s.id, "label": s.label, "rank": rank_of.get(s.id), "top1": rank_of.get(s.id, math.inf) <= 1,
            "error": failed.get(s.id)} for s in samples]
    return _finish(metrics, per, samples, failed, policy, [])


def evaluate_captioning(task: Task, predictions: Sequence[dict], samples: Sequence[Sample]) -> EvalResult:
    """Captioning: coco-caption metrics x100 over the scored samples (``on_failed='wrong'`` is refused)."""
    from tasks.metrics.captioning import CAPTION_METRICS, SPICE_NOTE, caption_scores

    policy = _policy(task)
    ids = [s.id for s in samples]
    preds, failed = _index(task, predictions, samples, lambda p: p["id"], set(ids))
    refs, cands = {}, {}
    for i, p in enumerate(predictions):
        if p["id"] in preds and not isinstance(p.get("caption"), str):
            raise PredictionError(f"{_where(task, i, p)}: 'caption' must be a string")
    notes = [SPICE_NOTE]
    if policy == "wrong" and failed:
        notes.append("on_failed=wrong has no caption equivalent: failed samples are excluded")
    for s in samples:
        if s.id in preds:
            r = s.references if s.references else s.texts
            if not r:
                raise PredictionError(f"{task.name}: sample {s.id!r} has no reference caption")
            refs[s.id], cands[s.id] = list(r), preds[s.id]["caption"]
    metrics: dict[str, float] = {}
    per_scores: dict[str, dict[str, float]] = {}
    if refs:
        wanted = tuple(_option(task, "caption_metrics", CAPTION_METRICS))
        metrics, per_scores = caption_scores(refs, cands, wanted, tokenize=_option(task, "ptb_tokenize", True))
    per = [{"id": s.id, "caption": preds[s.id]["caption"] if s.id in preds else None, **per_scores.get(s.id, {}),
            "error": failed.get(s.id)} for s in samples]
    return _finish(metrics, per, samples, failed, "exclude", notes)


def evaluate_retrieval(task: Task, predictions: Sequence[dict], samples: Sequence[Sample]) -> EvalResult:
    """Text-video (and paragraph) retrieval in the CLIP4Clip convention; gallery = ``samples`` in order."""
    policy, tie = _policy(task), _option(task, "tie_rule", "pessimistic")
    v2t_mode = _option(task, "v2t", "best_text")
    keys = {(s.id, k) for s in samples for k in range(len(s.texts))}
    empty = [s.id for s in samples if not s.texts]
    if empty:
        raise PredictionError(f"{task.name}: gallery sample(s) without text: {empty[:3]}")
    pos = {s.id: j for j, s in enumerate(samples)}

    def key(p: dict) -> tuple:
        return (p["id"], int(p.get("text_index", 0)))

    preds, failed = _index(task, predictions, samples, key, keys)
    n = len(samples)
    failed_videos = {k[0] for k in failed}
    keep = [j for j, s in enumerate(samples) if policy == "wrong" or s.id not in failed_videos]
    col = {j: c for c, j in enumerate(keep)}  # gallery position -> column after dropping failed videos
    rows, text_video, qkeys = [], [], []
    for i, p in enumerate(predictions):
        k = key(p)
        if k in preds and (policy == "wrong" or k[0] not in failed_videos):
            rows.append(_scores(task, i, p, n)[keep])
            text_video.append(col[pos[k[0]]])
            qkeys.append(k)
    if policy == "wrong":  # failed queries rank last: a row scoring their own video below everything else
        for k in sorted(failed, key=lambda k: (pos[k[0]], k[1])):
            row = np.zeros(len(keep))
            row[col[pos[k[0]]]] = -1.0
            rows.append(row)
            text_video.append(col[pos[k[0]]])
            qkeys.append(k)
    metrics: dict[str, float] = {}
    per: list[dict[str, Any]] = []
    if rows:
        sim = np.stack(rows)
        covered = set(text_video)
        ks = tuple(_option(task, "recall_at", (1, 5, 10)))
        if len(covered) == len(keep):
            metrics, t2v, v2t = retrieval_metrics(sim, text_video, ks, tie, v2t_mode)
        else:  # some videos lost every query: v2t undefined for them, report t2v only
            t2v = ranks_from_scores(sim, text_video, tie)
            metrics, v2t = rank_metrics(t2v, ks, ""), None
        for (sid, ti), r in zip(qkeys, t2v):
            per.append({"id": sid, "text_index": ti, "t2v_rank": float(r), "error": failed.get((sid, ti))})
        if v2t is not None:
            for j, r in zip(keep, v2t):
                per.append({"id": samples[j].id, "v2t_rank": float(r)})
    for k, reason in failed.items():
        if policy == "exclude":
            per.append({"id": k[0], "text_index": k[1], "t2v_rank": None, "error": reason})
    notes = [f"ties: {tie}; v2t: {v2t_mode}; gallery {len(keep)} of {n} videos"]
    return _finish(metrics, per, samples, failed, policy, notes)


def evaluate_multiple_choice(task: Task, predictions: Sequence[dict], samples: Sequence[Sample]) -> EvalResult:
    """Multiple-choice / long-form / entailment QA: argmax of the K option scores (pessimistic ties)."""
    policy, tie = _policy(task), _option(task, "tie_rule", "pessimistic")
    by = {s.id: s for s in samples}
    preds, failed = _index(task, predictions, samples, lambda p: p["id"], set(by))
    correct: dict[str, bool] = {}
    chosen: dict[str, int] = {}
    for i, p in enumerate(predictions):
        if p["id"] not in preds:
            continue
        s = by[p["id"]]
        if s.answer_index is None:
            raise PredictionError(f"{task.name}: sample {s.id!r} has no answer_index; this split cannot be scored")
        arr = _scores(task, i, p, len(s.options) if s.options else None)
        if not 0 <= s.answer_index < arr.shape[0]:
            raise PredictionError(f"{_where(task, i, p)}: answer_index {s.answer_index} outside {arr.shape[0]} scores")
        correct[s.id] = bool(ranks_from_scores(arr[None], [s.answer_index], tie)[0] <= 1)
        chosen[s.id] = int(np.argmax(arr))
    vals = list(correct.values()) + ([False] * len(failed) if policy == "wrong" else [])
    metrics = {"accuracy": float(100 * np.mean(vals))} if vals else {}
    per = [{"id": s.id, "pred_index": chosen.get(s.id), "answer_index": s.answer_index,
            "correct": correct.get(s.id), "error": failed.get(s.id)} for s in samples]
    return _finish(metrics, per, samples, failed, policy, [])


def evaluate_open_ended(task: Task, predictions: Sequence[dict], samples: Sequence[Sample]) -> EvalResult:
    """Open-ended QA / fill-in-the-blank: normalised exact match with ``Sample.answer`` (percent)."""
    policy = _policy(task)
    drop_articles = bool(_option(task, "drop_articles", False))
    by = {s.id: s for s in samples}
    preds, failed = _index(task, predictions, samples, lambda p: p["id"], set(by))
    correct: dict[str, bool] = {}
    for i, p in enumerate(predictions):
        if p["id"] not in preds:
            continue
        if not isinstance(p.get("answer"), str):
            raise PredictionError(f"{_where(task, i, p)}: 'answer' must be a string")
        s = by[p["id"]]
        if s.answer is None:
            raise PredictionError(f"{task.name}: sample {s.id!r} has no reference answer")
        correct[s.id] = exact_match(p["answer"], s.answer, drop_articles)
    scored = [s for s in samples if s.id in correct or (policy == "wrong" and s.id in failed)]
    metrics: dict[str, float] = {}
    if scored:
        metrics["accuracy"] = float(100 * np.mean([correct.get(s.id, False) for s in scored]))
        groups: dict[str, list[bool]] = defaultdict(list)
        for s in scored:
            if s.extra.get("answer_type") is not None:
                groups[str(s.extra["answer_type"])].append(correct.get(s.id, False))
        for g, v in sorted(groups.items()):
            metrics[f"accuracy_{g}"] = float(100 * np.mean(v))
    notes = []
    oov = [s for s in scored if s.extra.get("in_vocab") is False]
    if oov:
        notes.append(f"{len(oov)} of {len(scored)} reference answers are outside the answer vocabulary "
                     "(counted, as in the benchmark's accuracy)")
    per = [{"id": s.id, "answer": preds[s.id]["answer"] if s.id in preds else None,
            "reference": normalize_answer(s.answer or ""), "correct": correct.get(s.id),
            "error": failed.get(s.id)} for s in samples]
    return _finish(metrics, per, samples, failed, policy, notes)


EVALUATORS: dict[TaskType, Callable[[Task, Sequence[dict], Sequence[Sample]], EvalResult]] = {
    TaskType.ACTION_RECOGNITION: evaluate_classification,
    TaskType.CAPTIONING: evaluate_captioning,
    TaskType.RETRIEVAL: evaluate_retrieval,
    TaskType.PARAGRAPH_RETRIEVAL: evaluate_retrieval,
    TaskType.MC_QA: evaluate_multiple_choice,
    TaskType.LONGFORM_QA: evaluate_multiple_choice,
    TaskType.OE_QA: evaluate_open_ended,
}


def evaluate_task(task: Task, predictions: Sequence[dict[str, Any]], samples: Sequence[Sample]) -> EvalResult:
    """Score ``predictions`` (one dict per sample, or per (sample, text) for retrieval) against ``samples``."""
    try:
        fn = EVALUATORS[TaskType(task.task_type)]
    except (KeyError, ValueError) as err:
        raise ValueError(f"{task.name}: no evaluator for task type {task.task_type!r}") from err
    return fn(task, list(predictions), list(samples))
