"""Canonical names for datasets, task types, metrics and hosts used by the table renderer.

The paper's CSVs (``results/paper/``) already carry canonical keys (``dataset_key``, ``task_type``,
``metric_key``, ``host``). Measured runs come from another package whose spelling may differ
(``"MSR-VTT"`` vs ``"msrvtt"``, ``"R@1"`` vs ``"recall@1"``); every lookup goes through the
``canonical_*`` functions here so that a measured cell finds its paper counterpart.
"""

from __future__ import annotations

import re

__all__ = [
    "HOST_ORDER",
    "canonical_dataset",
    "canonical_metric",
    "canonical_task_type",
    "dataset_label",
    "host_key",
    "host_label",
    "is_lower_better",
    "metric_label",
]

# Registry names in the order of the paper's Table 10 (VLMs, then LVLMs).
HOST_ORDER: tuple[str, ...] = (
    "univl",
    "violet",
    "videoclip",
    "clip4clip",
    "mcq",
    "hdvila",
    "clover",
    "lfvila",
    "allinone",
    "internvideo",
    "videollama",
    "videochatgpt",
    "videollava",
)
_HOST_LABELS = {
    "univl": "UniVL",
    "violet": "VIOLET",
    "videoclip": "VideoCLIP",
    "clip4clip": "CLIP4Clip",
    "mcq": "MCQ",
    "hdvila": "HDVILA",
    "clover": "Clover",
    "lfvila": "LFVILA",
    "allinone": "All-in-one",
    "internvideo": "InternVideo",
    "videollama": "Video-LLaMA",
    "videochatgpt": "Video-ChatGPT",
    "videollava": "Video-LLaVA",
}

_DATASETS = {
    "k400": ("K400", ("kinetics400", "kinetics", "k400")),
    "ssv2": ("SSV2", ("ssv2", "somethingsomethingv2", "sthsthv2", "smthsmthv2", "something")),
    "youcook2": ("YouCook2", ("youcook2", "youcookii", "youcook")),
    "msrvtt": ("MSR-VTT", ("msrvtt", "msrvttqa", "msrvttmc", "msrvttcap", "msrvttret")),
    "lsmdc": ("LSMDC", ("lsmdc", "lsmdcfib")),
    "didemo": ("DiDeMo", ("didemo",)),
    "msvd": ("MSVD", ("msvd", "msvdqa")),
    "tgif": ("TGIF", ("tgif", "tgifframe", "tgifqa")),
    "queryd": ("QuerYD", ("queryd",)),
    "activitynet": ("ActivityNet", ("activitynet", "activitynetcaptions", "anet")),
    "how2qa": ("How2QA", ("how2qa",)),
    "violin": ("VIOLIN", ("violin",)),
}
_DATASET_ALIASES = {a: k for k, (_, aliases) in _DATASETS.items() for a in aliases}

_TASK_TYPES = {
    "action_recognition": ("action_recognition", "video_action_recognition", "var", "ar", "classification"),
    "captioning": ("captioning", "caption", "video_captioning", "vc"),
    "retrieval": ("retrieval", "text_video_retrieval", "video_text_retrieval", "vtr", "tvr"),
    "qa_mc": ("qa_mc", "mc_qa", "mcqa", "vqa_mc", "multiple_choice_qa", "multiple_choice", "mc"),
    "qa_oe": ("qa_oe", "oe_qa", "oeqa", "vqa_oe", "open_ended_qa", "open_ended", "oe", "qa", "vqa"),
    "paragraph_retrieval": ("paragraph_retrieval", "video_paragraph_retrieval", "vpr"),
    "longform_qa": ("longform_qa", "long_form_qa", "lfqa", "lf_vqa", "long_form_video_qa", "lf_qa"),
    "cost": ("cost", "efficiency", "compute"),
}
_TASK_ALIASES = {a: k for k, aliases in _TASK_TYPES.items() for a in aliases}

# key: (label, lower_is_better, aliases)
_METRICS: dict[str, tuple[str, bool, tuple[str, ...]]] = {
    "top1": ("Top-1", False, ("top1", "top_1", "acc1", "acc_1", "top1acc", "top1_acc", "accuracy_top1")),
    "top5": ("Top-5", False, ("top5", "top_5", "acc5", "acc_5", "top5acc", "top5_acc", "accuracy_top5")),
    "meteor": ("M", False, ("meteor", "m")),
    "bleu4": ("B@4", False, ("bleu4", "bleu_4", "b4", "b_4")),
    "cider": ("CIDEr", False, ("cider", "c")),
    "rougel": ("R-L", False, ("rougel", "rouge_l", "rouge")),
    "r1": ("R@1", False, ("r1", "r_1", "recall1", "recall_1", "r_at_1", "recall_at_1", "t2v_r1")),
    "r5": ("R@5", False, ("r5", "r_5", "recall5", "recall_5", "r_at_5", "recall_at_5", "t2v_r5")),
    "r10": ("R@10", False, ("r10", "r_10", "recall10", "recall_10", "r_at_10", "recall_at_10", "t2v_r10")),
    "mdr": ("MdR", True, ("mdr", "medr", "median_rank", "medianr")),
    "mnr": ("MnR", True, ("mnr", "meanr", "mean_rank")),
    "acc": ("Acc", False, ("acc", "accuracy")),
    "params_m": ("Param. (M)", True, ("params_m", "params", "n_params", "param_m", "num_params_m")),
    "data_m": ("Data (M)", True, ("data_m", "data", "train_pairs_m")),
    "gpu_hours_k": ("GPU Hours (K)", True, ("gpu_hours_k",)),
    "gpu_hours": ("GPU Hours", True, ("gpu_hours",)),
    "gpu_mem_g": ("GPU Mem. (G)", True, ("gpu_mem_g", "gpu_mem_gb", "peak_mem_gb", "gpu_mem", "peak_mem_g")),
    "gflops": ("GFLOPs", True, ("gflops", "flops_g")),
    "step_time_s": ("Step time (s)", True, ("step_time_s", "step_time", "time_per_step_s")),
    "throughput": ("Throughput (samples/s)", False, ("throughput", "samples_per_s", "samples_per_sec")),
}
_METRIC_ALIASES = {a: k for k, (_, _, aliases) in _METRICS.items() for a in aliases}
_LOWER_SUFFIXES = (
    "_s",
    "_ms",
    "_sec",
    "time",
    "latency",
    "loss",
    "mem",
    "memory",
    "_gb",
    "_mb",
    "flops",
    "params",
)


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _snake(name: str) -> str:
    s = str(name).strip().lower().replace("@", "_").replace("-", "_").replace(" ", "_")
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]", "", s)).strip("_")


def canonical_dataset(name: str) -> str:
    """``"MSR-VTT"`` / ``"msrvtt_qa"`` -> ``"msrvtt"``; names not in the paper are returned lower-cased."""
    sq = _squash(name)
    if sq in _DATASET_ALIASES:
        return _DATASET_ALIASES[sq]
    return str(name).strip().lower()


def canonical_task_type(name: str) -> str:
    """``"Multiple-choice QA"`` -> ``"qa_mc"``; unknown task types are returned in snake case."""
    sn = _snake(name)
    return _TASK_ALIASES.get(sn, _TASK_ALIASES.get(sn.replace("_", ""), sn))


def canonical_metric(name: str) -> str:
    """``"R@1"`` / ``"recall@1"`` -> ``"r1"``; unknown metrics are returned in snake case."""
    sn = _snake(name)
    for cand in (sn, sn.replace("_", "")):
        if cand in _METRIC_ALIASES:
            return _METRIC_ALIASES[cand]
    return sn


def is_lower_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better (ranks, costs, times, losses)."""
    key = canonical_metric(metric)
    if key in _METRICS:
        return _METRICS[key][1]
    return key.endswith(_LOWER_SUFFIXES)


def metric_label(metric: str) -> str:
    key = canonical_metric(metric)
    return _METRICS[key][0] if key in _METRICS else str(metric)


def dataset_label(dataset: str) -> str:
    key = canonical_dataset(dataset)
    return _DATASETS[key][0] if key in _DATASETS else str(dataset)


def host_key(host: str) -> str:
    """Registry name of a host tag: ``"clover.msrvtt_ft"`` -> ``"clover"``."""
    base = str(host).split(".", 1)[0]
    sq = _squash(base)
    return sq if sq in _HOST_LABELS else base.strip().lower()


def host_label(host: str) -> str:
    """Display name of a host tag; the weight tag, if any, is kept (``"Clover.msrvtt_ft"``)."""
    base, _, tag = str(host).partition(".")
    key = host_key(base)
    name = _HOST_LABELS.get(key, base)
    return f"{name}.{tag}" if tag else name
