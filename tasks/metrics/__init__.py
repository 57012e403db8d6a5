"""Metrics of the official benchmarks: retrieval ranks, accuracies, captioning (pycocoevalcap).

``tasks.metrics.captioning`` is not imported here: it spawns java only when called, but keeping it out of
the package import keeps ``import tasks.metrics`` cheap.
"""

from tasks.metrics.classification import (
    class_ranks,
    exact_match,
    mean_class_accuracy,
    normalize_answer,
    topk_accuracy,
)
from tasks.metrics.retrieval import TIE_RULES, group_max, rank_metrics, ranks_from_scores, retrieval_metrics

__all__ = ["TIE_RULES", "class_ranks", "exact_match", "group_max", "mean_class_accuracy", "normalize_answer",
           "rank_metrics", "ranks_from_scores", "retrieval_metrics", "topk_accuracy"]
