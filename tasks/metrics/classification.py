"""Accuracy metrics: top-k (action recognition), multiple choice, open-ended exact match.

All accuracies are percentages. Ties follow the pessimistic rule of :mod:`tasks.metrics.retrieval`: the
true class counts as within the top k only if fewer than k *other* classes score >= it, so a constant
score vector is never correct (``np.argmax`` would silently pick the first class).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

import numpy as np

from tasks.metrics.retrieval import ranks_from_scores


def class_ranks(scores: np.ndarray, labels: Sequence[int], tie_rule: str = "pessimistic") -> np.ndarray:
    """1-based rank ``[N]`` of the true class of each row of ``scores [N, C]``."""
    return ranks_from_scores(np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.int64), tie_rule)


def topk_accuracy(scores: np.ndarray, labels: Sequence[int], ks: Sequence[int] = (1, 5),
                  tie_rule: str = "pessimistic") -> dict[str, float]:
    """``{"top1": %, "top5": %}`` for ``scores [N, C]`` and integer ``labels [N]``."""
    r = class_ranks(scores, labels, tie_rule)
    return {f"top{k}": float(100.0 * np.mean(r <= k)) for k in ks}


def mean_class_accuracy(scores: np.ndarray, labels: Sequence[int], tie_rule: str = "pessimistic") -> float:
    """Mean over the classes present in ``labels`` of their top-1 accuracy (percent)."""
    lab = np.asarray(labels, dtype=np.int64)
    hit = class_ranks(scores, lab, tie_rule) <= 1
    return float(100.0 * np.mean([hit[lab == c].mean() for c in np.unique(lab)]))


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str, drop_articles: bool = False) -> str:
    """Answer normalisation for exact match: lower case, strip, collapse spaces, drop edge punctuation.

    Inner punctuation is kept (``t-shirt``, ``1,000``) because the answer vocabularies of MSRVTT-QA,
    MSVD-QA and TGIF-FrameQA contain such strings verbatim. ``drop_articles`` removes a/an/the (off by
    default: these benchmarks compare single-word answers as strings).
    """
    t = " ".join(str(text).lower().split())
    t = t.strip(string.punctuation + " ")
    if drop_articles:
        t = " ".join(_ARTICLES.sub(" ", t).split())
    return t


def exact_match(prediction: str, reference: str, drop_articles: bool = False) -> bool:
    return normalize_answer(prediction, drop_articles) == normalize_answer(reference, drop_articles)
