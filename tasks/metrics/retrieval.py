"""Retrieval ranks and metrics (R@K, MdR, MnR) in the CLIP4Clip convention, with an explicit tie rule.

Convention (``ArrowLuo/CLIP4Clip:metrics.py``): for each query, rank every gallery item by similarity, the
rank of the query is the 1-based position of its ground truth, ``R@K`` is the percentage of queries whose
rank is <= K, ``MdR`` is ``np.median(ranks)`` (so it can end in .5) and ``MnR`` is ``np.mean(ranks)``.

Ties. CLIP4Clip takes the position in ``torch.argsort`` which breaks ties arbitrarily (implementation
defined, unstable sort). We make the rule explicit (``tie_rule``):

* ``pessimistic`` (default): rank = 1 + number of gallery items scoring **>=** the ground truth, the
  ground truth itself excluded. A model that gives every item the same score ranks last, never first.
* ``optimistic``: rank = 1 + number of items scoring **>** the ground truth.
* ``mean``: the mean of the two (the expected rank under random tie breaking; may be fractional).
* ``argsort``: position in a *stable* descending sort (ties broken by gallery index, lower first).

Several ground truths for one query (a video with several captions, queried video-to-text): the query's rank
is the rank of its best-scoring ground truth among the *non*-ground-truth items (the other ground truths never
count against it, even when tied). This is the min-over-ground-truths rule of collaborative-experts /
COCO-style ``v2t``. CLIP4Clip's multi-sentence ``v2t`` instead
first collapses every video's caption group to its maximum similarity; :func:`group_max` builds that
matrix so both conventions are available.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TIE_RULES = ("pessimistic", "optimistic", "mean", "argsort")


def ranks_from_scores(scores: np.ndarray, positives: Sequence[Sequence[int]] | np.ndarray,
                      tie_rule: str = "pessimistic") -> np.ndarray:
    """1-based rank of each query's best ground truth.

    Args:
        scores: ``[Q, G]`` similarities, higher is better; must be finite.
        positives: per query, the gallery indices of its ground truths (non-empty); or an int array
            ``[Q]`` with one ground truth per query.
        tie_rule: one of :data:`TIE_RULES`.

    Returns:
        ``[Q]`` float ranks in ``[1, G]`` (integers except with ``tie_rule="mean"``).
    """
    if tie_rule not in TIE_RULES:
        raise ValueError(f"tie_rule must be one of {TIE_RULES}, got {tie_rule!r}")
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores must be [queries, gallery], got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinite values")
    q, g = s.shape
    pos_lists = [[int(p)] for p in np.asarray(positives).reshape(-1)] if _is_flat(positives) else [
        [int(p) for p in ps] for ps in positives]
    if len(pos_lists) != q:
        raise ValueError(f"{len(pos_lists)} ground-truth lists for {q} queries")
    if all(len(ps) == 1 for ps in pos_lists) and tie_rule != "argsort":  # one ground truth each: fully vectorised
        idx = np.array([ps[0] for ps in pos_lists], dtype=np.int64)
        if q and (idx.min() < 0 or idx.max() >= g):
            raise ValueError(f"ground truth index out of range [0, {g})")
        gt = s[np.arange(q), idx][:, None]  # [Q, 1]
        greater = (s > gt).sum(1).astype(np.float64)
        equal = (s == gt).sum(1) - 1.0
        return 1 + greater + {"optimistic": 0.0, "pessimistic": 1.0, "mean": 0.5}[tie_rule] * equal
    out = np.empty(q, dtype=np.float64)
    for i, ps in enumerate(pos_lists):  # one vectorised comparison per query: O(Q*G)
        if not ps:
            raise ValueError(f"query {i} has no ground truth")
        if min(ps) < 0 or max(ps) >= g:
            raise ValueError(f"query {i}: ground truth index out of range [0, {g})")
        row = s[i]
        neg = np.ones(g, dtype=bool)
        neg[ps] = False  # other ground truths never count against the best one
        best = row[ps].max()
        greater = int((row[neg] > best).sum())
        equal = int((row[neg] == best).sum())
        if tie_rule == "optimistic":
            r = 1 + greater
        elif tie_rule == "pessimistic":
            r = 1 + greater + equal
        elif tie_rule == "mean":
            r = 1 + greater + equal / 2.0
        else:  # stable descending sort: tied negatives before the first best ground truth come first
            first = min(p for p in ps if row[p] == best)
            r = 1 + greater + int((row[:first][neg[:first]] == best).sum())
        out[i] = float(r)
    return out


def _is_flat(positives: Sequence[Sequence[int]] | np.ndarray) -> bool:
    if isinstance(positives, np.ndarray):
        return positives.ndim == 1
    return all(isinstance(p, (int, np.integer)) for p in positives)


def rank_metrics(ranks: np.ndarray, ks: Sequence[int] = (1, 5, 10), prefix: str = "") -> dict[str, float]:
    """``R@K`` (percent), ``MdR`` and ``MnR`` of 1-based ranks ``[Q]``; keys prefixed by ``prefix``."""
    r = np.asarray(ranks, dtype=np.float64)
    if r.size == 0:
        raise ValueError("no ranks to summarise")
    out = {f"{prefix}R@{k}": float(100.0 * np.mean(r <= k)) for k in ks}
    out[f"{prefix}MdR"] = float(np.median(r))
    out[f"{prefix}MnR"] = float(np.mean(r))
    return out


def group_max(scores: np.ndarray, groups: Sequence[int], num_groups: int) -> np.ndarray:
    """Collapse columns by group with a max: ``[Q, N] -> [Q, num_groups]`` (CLIP4Clip multi-sentence v2t).

    ``groups[j]`` is the group (video) of column ``j`` (text).
    """
    s = np.asarray(scores, dtype=np.float64)
    gid = np.asarray(groups, dtype=np.int64)
    out = np.full((s.shape[0], num_groups), -np.inf)
    np.maximum.at(out.T, gid, s.T)
    return out


def retrieval_metrics(sim_t2v: np.ndarray, text_video: Sequence[int], ks: Sequence[int] = (1, 5, 10),
                      tie_rule: str = "pessimistic", v2t: str = "best_text") -> tuple[dict[str, float],
                                                                                      np.ndarray, np.ndarray]:
    """Text-to-video and video-to-text metrics from one text x video similarity matrix.

    Args:
        sim_t2v: ``[N_text, N_video]`` similarity of every text to every gallery video.
        text_video: ``[N_text]`` the ground-truth video (column) of each text.
        v2t: ``best_text`` (rank among all texts, best of the video's own texts) or ``group_max``
            (CLIP4Clip: texts collapsed per video with a max, then the video's own group is ranked).

    Returns:
        (metrics, t2v ranks ``[N_text]``, v2t ranks ``[N_video]``). Text-to-video metrics are unprefixed
        (``R@1``, ``MdR``: what the paper's tables report), video-to-text ones prefixed ``v2t_``.
    """
    s = np.asarray(sim_t2v, dtype=np.float64)
    tv = np.asarray(text_video, dtype=np.int64)
    n_text, n_video = s.shape
    if tv.shape != (n_text,):
        raise ValueError(f"text_video must have {n_text} entries, got {tv.shape}")
    t2v = ranks_from_scores(s, tv, tie_rule)
    if v2t == "best_text":
        own = [np.flatnonzero(tv == v).tolist() for v in range(n_video)]
        if any(not o for o in own):
            raise ValueError("every gallery video needs at least one text for video-to-text retrieval")
        v2t_ranks = ranks_from_scores(s.T, own, tie_rule)
    elif v2t == "group_max":
        v2t_ranks = ranks_from_scores(group_max(s.T, tv, n_video), np.arange(n_video), tie_rule)
    else:
        raise ValueError(f"v2t must be 'best_text' or 'group_max', got {v2t!r}")
    metrics = {**rank_metrics(t2v, ks, ""), **rank_metrics(v2t_ranks, ks, "v2t_")}
    return metrics, t2v, v2t_ranks
