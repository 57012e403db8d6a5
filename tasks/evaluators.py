"""One evaluator per task type: per-sample predictions -> :class:`~tasks.types.EvalResult` (contract C2).

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

Every evaluator also returns one record per scored unit in ``EvalResult.per_sample`` (``{"id", ["text_index",]
"target", "prediction", "error", <metric>: value}``; see :class:`~tasks.types.EvalResult`): the per-sample values
the aggregate metrics are computed from, on the aggregate's scale, so that ``harness`` can write them to
``samples.jsonl``. The evaluators take :class:`~tasks.types.EvalSettings` (``Task.eval_settings()``), not the task,
so this module depends on ``tasks.types`` only and ``tasks.base`` can import it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tasks.metrics.captioning import CAPTION_METRICS, SPICE_NOTE, caption_scores
from tasks.metrics.classification import class_ranks, exact_match, normalize_answer
from tasks.metrics.retrieval import rank_metrics, ranks_from_scores, retrieval_metrics
from tasks.types import EvalResult, EvalSettings, Sample, TaskType


class PredictionError(ValueError):
    """A predictions record is malformed or does not match the samples."""


def _where(task: EvalSettings, i: int, pred: dict[str, Any]) -> str:
    return f"{task.task}: prediction #{i} (id={pred.get('id')!r})"


def _index(task: EvalSettings, predictions: Sequence[dict[str, Any]], samples: Sequence[Sample], key: Callable,
           valid_keys: set) -> tuple[dict[Any, dict[str, Any]], dict[Any, str]]:
    """Predictions by key and failures by key (explicit errors and missing predictions)."""
    preds: dict[Any, dict[str, Any]] = {}
    failed: dict[Any, str] = {}
    for i, p in enumerate(predictions):
        if not isinstance(p, dict) or "id" not in p:
            raise PredictionError(f"{task.task}: prediction #{i} must be a dict with an 'id', got {p!r:.80}")
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


def _scores(task: EvalSettings, i: int, p: dict[str, Any], n: int | None) -> np.ndarray:
    s = p.get("scores")
    if s is None:
        raise PredictionError(f"{_where(task, i, p)}: missing 'scores'")
    arr = np.asarray(s, dtype=np.float64).reshape(-1)
    if n is not None and arr.shape[0] != n:
        raise PredictionError(f"{_where(task, i, p)}: {arr.shape[0]} scores, expected {n}")
    if not np.isfinite(arr).all():
        raise PredictionError(f"{_where(task, i, p)}: scores contain NaN or infinite values")
    return arr


def _plain(x: Any) -> Any:
    """JSON-ready copy: numpy scalars and arrays to Python, non-finite floats to None."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_plain(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(float(x)) else None
    return x


def _record(sid: str, target: Any, prediction: Any, error: str | None, values: dict[str, Any],
            **extra: Any) -> dict[str, Any]:
    """One C2 record: ``{"id", **extra, "target", "prediction", "error", **values}``."""
    return {"id": sid, **extra, "target": target, "prediction": prediction, "error": error, **values}


def _hit(ok: bool | None) -> float | None:
    """A per-sample hit on the percent scale of the aggregates (100.0 / 0.0), None when not scored."""
    return None if ok is None else (100.0 if ok else 0.0)


def _finish(metrics: dict[str, float], per: list[dict[str, Any]], samples: Sequence[Sample],
            failed: dict[Any, str], policy: str, notes: list[str], sample_metrics: Sequence[str]) -> EvalResult:
    n_failed_ids = len({k[0] if isinstance(k, tuple) else k for k in failed})
    if failed:
        n_missing = sum(1 for r in failed.values() if r == "no prediction")
        notes.append(f"{n_failed_ids} sample(s) failed ({n_missing} without prediction); on_failed={policy}")
    present = tuple(k for k in sample_metrics if any(k in r for r in per))
    return EvalResult(metrics=metrics, per_sample=[_plain(r) for r in per], n_samples=len(samples),
                      n_failed=n_failed_ids, notes=notes, sample_metrics=present)


def _policy(task: EvalSettings) -> str:
    p = task.option("on_failed", "exclude")
    if p not in ("exclude", "wrong"):
        raise ValueError(f"{task.task}: on_failed must be 'exclude' or 'wrong', got {p!r}")
    return p


# ------------------------------------------------------------------------------------------------ types
def evaluate_classification(task: EvalSettings, predictions: Sequence[dict], samples: Sequence[Sample]
                            ) -> EvalResult:
    """Action recognition: top-1 / top-5 / mean class accuracy (percent); per sample top1, top5, rank."""
    policy, tie = _policy(task), task.option("tie_rule", "pessimistic")
    ids = [s.id for s in samples]
    preds, failed = _index(task, predictions, samples, lambda p: p["id"], set(ids))
    n_cls = task.num_classes or None
    labels, kept = [], []
    by_id: dict[str, np.ndarray] = {}
    for i, p in enumerate(predictions):
        if p["id"] in preds:
            by_id[p["id"]] = _scores(task, i, p, n_cls)
            n_cls = n_cls or by_id[p["id"]].shape[0]  # the first prediction fixes C when the task does not
    for s in samples:
        if s.label is None:
            raise PredictionError(f"{task.task}: sample {s.id!r} has no label; this split cannot be scored")
        if s.id in by_id:
            if not 0 <= s.label < by_id[s.id].shape[0]:
                raise PredictionError(f"{task.task}: sample {s.id!r} label {s.label} outside the {n_cls} scores")
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
    per = []
    for s in samples:
        if s.id in rank_of:
            rk = rank_of[s.id]
            per.append(_record(s.id, s.label, int(np.argmax(by_id[s.id])), None,
                               {"top1": _hit(rk <= 1), "top5": _hit(rk <= 5), "rank": rk}))
        else:
            worst = _hit(False) if policy == "wrong" else None
            per.append(_record(s.id, s.label, None, failed.get(s.id), {"top1": worst, "top5": worst, "rank": None}))
    return _finish(metrics, per, samples, failed, policy, [], ("top1", "top5", "rank"))


def evaluate_captioning(task: EvalSettings, predictions: Sequence[dict], samples: Sequence[Sample]) -> EvalResult:
    """Captioning: coco-caption metrics x100 over the scored samples (``on_failed='wrong'`` is refused);
    per sample the sentence-level scores pycocoevalcap returns (the corpus BLEU is not their mean)."""
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
                raise PredictionError(f"{task.task}: sample {s.id!r} has no reference caption")
            refs[s.id], cands[s.id] = list(r), preds[s.id]["caption"]
    metrics: dict[str, float] = {}
    per_scores: dict[str, dict[str, float]] = {}
    wanted = tuple(task.option("caption_metrics", CAPTION_METRICS))
    if refs:
        metrics, per_scores = caption_scores(refs, cands, wanted, tokenize=task.option("ptb_tokenize", True))
    keys = tuple(dict.fromkeys(k for v in per_scores.values() for k in v))
    per = [_record(s.id, list(s.references or s.texts), cands.get(s.id), failed.get(s.id),
                   {k: per_scores.get(s.id, {}).get(k) for k in keys}) for s in samples]
    return _finish(metrics, per, samples, failed, "exclude", notes, keys)


def evaluate_retrieval(task: EvalSettings, predictions: Sequence[dict], samples: Sequence[Sample]) -> EvalResult:
    """Text-video (and paragraph) retrieval in the CLIP4Clip convention; gallery = ``samples`` in order.

    Per query ``(id, text_index)``: target = the gold video id, prediction = the top-1 video id, ``R@k`` (100 / 0)
    and ``rank``; ``v2t_R@k`` and ``v2t_rank`` once per video, on its ``text_index`` 0 record."""
    policy, tie = _policy(task), task.option("tie_rule", "pessimistic")
    v2t_mode = task.option("v2t", "best_text")
    keys = {(s.id, k) for s in samples for k in range(len(s.texts))}
    empty = [s.id for s in samples if not s.texts]
    if empty:
        raise PredictionError(f"{task.task}: gallery sample(s) without text: {empty[:3]}")
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
    ks = tuple(task.option("recall_at", (1, 5, 10)))
    scored: dict[tuple, dict[str, Any]] = {}
    v2t_of: dict[str, dict[str, Any]] = {}
    if rows:
        sim = np.stack(rows)
        covered = set(text_video)
        if len(covered) == len(keep):
            metrics, t2v, v2t = retrieval_metrics(sim, text_video, ks, tie, v2t_mode)
        else:  # some videos lost every query: v2t undefined for them, report t2v only
            t2v = ranks_from_scores(sim, text_video, tie)
            metrics, v2t = rank_metrics(t2v, ks, ""), None
        for (sid, ti), r, row in zip(qkeys, t2v, sim):
            top = samples[keep[int(np.argmax(row))]].id if (sid, ti) in preds else None
            scored[(sid, ti)] = {"prediction": top, **{f"R@{k}": _hit(r <= k) for k in ks}, "rank": float(r)}
        if v2t is not None:
            for j, r in zip(keep, v2t):
                v2t_of[samples[j].id] = {**{f"v2t_R@{k}": _hit(r <= k) for k in ks}, "v2t_rank": float(r)}
    per: list[dict[str, Any]] = []
    empty_values = {**{f"R@{k}": None for k in ks}, "rank": None}
    for s in samples:
        for ti in range(len(s.texts)):
            got = dict(scored.get((s.id, ti), {"prediction": None, **empty_values}))
            pred = got.pop("prediction")
            if ti == 0 and s.id in v2t_of:
                got.update(v2t_of[s.id])
            err = failed.get((s.id, ti))
            if err is None and pred is None and s.id in failed_videos:
                err = "video left the gallery: another text of it failed (on_failed=exclude)"
            per.append(_record(s.id, s.id, pred, err, got, text_index=ti))
    notes = [f"ties: {tie}; v2t: {v2t_mode}; gallery {len(keep)} of {n} videos"]
    names = (*(f"R@{k}" for k in ks), "rank", *(f"v2t_R@{k}" for k in ks), "v2t_rank")
    return _finish(metrics, per, samples, failed, policy, notes, names)


def evaluate_multiple_choice(task: EvalSettings, predictions: Sequence[dict], samples: Sequence[Sample]
                             ) -> EvalResult:
    """Multiple-choice / long-form / entailment QA: argmax of the K option scores (pessimistic ties)."""
    policy, tie = _policy(task), task.option("tie_rule", "pessimistic")
    by = {s.id: s for s in samples}
    preds, failed = _index(task, predictions, samples, lambda p: p["id"], set(by))
    correct: dict[str, bool] = {}
    chosen: dict[str, int] = {}
    for i, p in enumerate(predictions):
        if p["id"] not in preds:
            continue
        s = by[p["id"]]
        if s.answer_index is None:
            raise PredictionError(f"{task.task}: sample {s.id!r} has no answer_index; this split cannot be scored")
        arr = _scores(task, i, p, len(s.options) if s.options else None)
        if not 0 <= s.answer_index < arr.shape[0]:
            raise PredictionError(f"{_where(task, i, p)}: answer_index {s.answer_index} outside {arr.shape[0]} scores")
        correct[s.id] = bool(ranks_from_scores(arr[None], [s.answer_index], tie)[0] <= 1)
        chosen[s.id] = int(np.argmax(arr))
    vals = list(correct.values()) + ([False] * len(failed) if policy == "wrong" else [])
    metrics = {"accuracy": float(100 * np.mean(vals))} if vals else {}
    per = [_record(s.id, s.answer_index, chosen.get(s.id), failed.get(s.id),
                   {"accuracy": _hit(correct[s.id]) if s.id in correct else
                    (_hit(False) if policy == "wrong" else None)}) for s in samples]
    return _finish(metrics, per, samples, failed, policy, [], ("accuracy",))


def evaluate_open_ended(task: EvalSettings, predictions: Sequence[dict], samples: Sequence[Sample]) -> EvalResult:
    """Open-ended QA / fill-in-the-blank: normalised exact match with ``Sample.answer`` (percent).

    Reference answers outside the task's answer vocabulary (``extra["in_vocab"] is False``) stay in the
    denominator, as in the benchmarks' accuracy; their number is reported in the notes."""
    policy = _policy(task)
    drop_articles = bool(task.option("drop_articles", False))
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
            raise PredictionError(f"{task.task}: sample {s.id!r} has no reference answer")
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
    scored_ids = {s.id for s in scored}
    per = [_record(s.id, s.answer, preds[s.id]["answer"] if s.id in preds else None, failed.get(s.id),
                   {"accuracy": _hit(correct.get(s.id, False)) if s.id in scored_ids else None},
                   answer_type=s.extra.get("answer_type"), in_vocab=s.extra.get("in_vocab"),
                   normalized_target=normalize_answer(s.answer or "", drop_articles)) for s in samples]
    return _finish(metrics, per, samples, failed, policy, notes, ("accuracy",))


EVALUATORS: dict[TaskType, Callable[[EvalSettings, Sequence[dict], Sequence[Sample]], EvalResult]] = {
    TaskType.ACTION_RECOGNITION: evaluate_classification,
    TaskType.CAPTIONING: evaluate_captioning,
    TaskType.RETRIEVAL: evaluate_retrieval,
    TaskType.PARAGRAPH_RETRIEVAL: evaluate_retrieval,
    TaskType.MC_QA: evaluate_multiple_choice,
    TaskType.LONGFORM_QA: evaluate_multiple_choice,
    TaskType.OE_QA: evaluate_open_ended,
}


def evaluate_task(task: EvalSettings, predictions: Sequence[dict[str, Any]], samples: Sequence[Sample]
                  ) -> EvalResult:
    """Score ``predictions`` (one dict per sample, or per (sample, text) for retrieval) against ``samples``.

    ``task`` is :meth:`tasks.base.Task.eval_settings` (``Task.evaluate`` passes it)."""
    try:
        fn = EVALUATORS[TaskType(task.task_type)]
    except (KeyError, ValueError) as err:
        raise ValueError(f"{task.task}: no evaluator for task type {task.task_type!r}") from err
    return fn(task, list(predictions), list(samples))
