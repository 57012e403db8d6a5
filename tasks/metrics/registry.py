"""The metric registry: one entry per metric with its key, display label, direction and aggregation
(lm-evaluation-harness' ``metric_list`` habit; contract C5).

Evaluators, ``metrics.json`` (``higher_is_better``), the planner and the tables read this module; nothing
restates a metric's label or direction. Every spelling a metric has (the evaluators' ``R@1``, the paper
CSVs' ``r1``, ``recall@1``) is an alias of one canonical key. Adding a metric is one :func:`register_metric`
call here. Torch-free and numpy-free (the tables and ``harness status`` import it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["AGGREGATIONS", "METRICS", "Metric", "canonical_metric", "get_metric", "higher_is_better", "metric_label",
           "register_metric"]

# How per-sample values combine into the reported number.
AGGREGATIONS = ("mean", "median", "corpus", "sum", "none")


@dataclass(frozen=True)
class Metric:
    """One metric.

    Attributes:
        key: canonical key (``r1``, ``v2t_mdr``, ``cider``): tables and the paper CSVs use it.
        label: display label (``R@1``).
        higher_is_better: direction (lm-eval's ``higher_is_better``).
        aggregation: ``mean`` (of per-sample values, e.g. hits in percent), ``median`` (MdR), ``corpus``
            (a corpus-level score such as CIDEr: not a mean of per-sample values), ``sum`` or ``none`` (costs).
        aliases: other spellings (matched case-, space- and punctuation-insensitively).
        unit: ``%`` for percentages, else a short unit (``rank``, ``M``, ``h``) or ``""``.
    """

    key: str
    label: str
    higher_is_better: bool
    aggregation: str = "mean"
    aliases: tuple[str, ...] = ()
    unit: str = ""

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"metric {self.key!r}: aggregation must be one of {AGGREGATIONS}, "
                             f"got {self.aggregation!r}")


METRICS: dict[str, Metric] = {}
_ALIASES: dict[str, str] = {}


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def register_metric(metric: Metric) -> Metric:
    """Add ``metric``; its key and aliases must not collide with another metric's."""
    for spelling in (metric.key, metric.label, *metric.aliases):
        sq = _squash(spelling)
        other = _ALIASES.get(sq)
        if other is not None and other != metric.key:
            raise ValueError(f"metric spelling {spelling!r} of {metric.key!r} is already used by {other!r}")
        _ALIASES[sq] = metric.key
    METRICS[metric.key] = metric
    return metric


def canonical_metric(name: str) -> str:
    """``"R@1"`` / ``"recall@1"`` -> ``"r1"``; an unknown metric is returned in snake case."""
    sq = _squash(name)
    if sq in _ALIASES:
        return _ALIASES[sq]
    s = str(name).strip().lower().replace("@", "_").replace("-", "_").replace(" ", "_")
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]", "", s)).strip("_")


def get_metric(name: str) -> Metric | None:
    """The registered metric of any spelling of ``name`` (None when unknown)."""
    return METRICS.get(canonical_metric(name))


def higher_is_better(name: str) -> bool:
    """Direction of ``name``; an unregistered ``accuracy_<group>`` follows ``accuracy``, anything else unknown
    is treated as higher-is-better."""
    m = get_metric(name)
    if m is None and canonical_metric(name).startswith("accuracy_"):
        m = METRICS["acc"]
    return True if m is None else m.higher_is_better


def metric_label(name: str) -> str:
    """Display label of ``name`` (the name itself when unregistered)."""
    m = get_metric(name)
    return m.label if m is not None else str(name)


def _recall(prefix: str, label_prefix: str, extra: tuple[str, ...] = ()) -> None:
    for k in (1, 5, 10):
        base = ("r", "recall", "r_at_", "recall_at_")
        register_metric(Metric(f"{prefix}r{k}", f"{label_prefix}R@{k}", True, "mean",
                               tuple(f"{prefix}{b}{k}" for b in base) + tuple(f"{e}{k}" for e in extra), "%"))
    register_metric(Metric(f"{prefix}mdr", f"{label_prefix}MdR", False, "median",
                           (f"{prefix}medr", f"{prefix}median_rank", f"{prefix}medianr"), "rank"))
    register_metric(Metric(f"{prefix}mnr", f"{label_prefix}MnR", False, "mean",
                           (f"{prefix}meanr", f"{prefix}mean_rank"), "rank"))


# -- task metrics (tasks/evaluators.py, tasks/configs/*.yaml, the paper's Tables 1-7) -----------------------
register_metric(Metric("top1", "Top-1", True, "mean",
                       ("top_1", "acc1", "acc_1", "top1acc", "top1_acc", "accuracy_top1"), "%"))
register_metric(Metric("top5", "Top-5", True, "mean",
                       ("top_5", "acc5", "acc_5", "top5acc", "top5_acc", "accuracy_top5"), "%"))
register_metric(Metric("mean_class_acc", "Mean class acc.", True, "mean", ("mean_class_accuracy",), "%"))
register_metric(Metric("acc", "Acc", True, "mean", ("accuracy",), "%"))
register_metric(Metric("cider", "CIDEr", True, "corpus", ("c",)))
register_metric(Metric("bleu4", "B@4", True, "corpus", ("bleu_4", "bleu@4", "b4", "b_4")))
register_metric(Metric("meteor", "M", True, "corpus", ("m",)))
register_metric(Metric("rougel", "R-L", True, "corpus", ("rouge_l", "rouge")))
_recall("", "", ("t2v_r", "t2v_r_"))
_recall("v2t_", "v2t ")
register_metric(Metric("rank", "Rank", False, "mean", ("t2v_rank",), "rank"))  # per-sample rank
register_metric(Metric("v2t_rank", "v2t Rank", False, "mean", (), "rank"))

# -- cost metrics (Table 9, benchmarks/) -----------------------------------------------------------------
register_metric(Metric("params_m", "Param. (M)", False, "none", ("params", "n_params", "param_m", "num_params_m"), "M"))
register_metric(Metric("data_m", "Data (M)", False, "none", ("data", "train_pairs_m"), "M"))
register_metric(Metric("gpu_hours_k", "GPU Hours (K)", False, "sum", (), "kh"))
register_metric(Metric("gpu_hours", "GPU Hours", False, "sum", (), "h"))
register_metric(Metric("gpu_mem_g", "GPU Mem. (G)", False, "none",
                       ("gpu_mem_gb", "peak_mem_gb", "gpu_mem", "peak_mem_g"), "GB"))
register_metric(Metric("gflops", "GFLOPs", False, "none", ("flops_g",)))
register_metric(Metric("step_time_s", "Step time (s)", False, "mean", ("step_time", "time_per_step_s"), "s"))
register_metric(Metric("throughput", "Throughput (samples/s)", True, "mean", ("samples_per_s", "samples_per_sec")))
