"""Names the table renderer needs, read from the registries that own them.

* metrics (key, label, direction): :mod:`tasks.metrics.registry` (``canonical_metric``, ``metric_label``,
  ``is_lower_better`` here are thin reads of it);
* hosts (display name, paper order): the host specs (``HostSpec.display`` / ``HostSpec.order``, registered
  next to each host's code; :mod:`hosts.registry`);
* datasets and task types: the spellings of the paper's CSVs (``results/paper/``) and of the task registry
  (``TaskType`` values such as ``mc_qa``) mapped to the tables' keys; these aliases exist only to read the
  paper's CSVs.
"""

from __future__ import annotations

import re
from functools import cache

from tasks.metrics.registry import canonical_metric as _canonical_metric
from tasks.metrics.registry import higher_is_better
from tasks.metrics.registry import metric_label as _metric_label

__all__ = [
    "canonical_dataset",
    "canonical_metric",
    "canonical_task_type",
    "dataset_label",
    "host_key",
    "host_label",
    "host_order",
    "is_lower_better",
    "metric_label",
]

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
    """``"R@1"`` / ``"recall@1"`` -> ``"r1"`` (the metric registry's key); unknown: snake case."""
    return _canonical_metric(name)


def is_lower_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better (the metric registry's ``higher_is_better``)."""
    return not higher_is_better(metric)


def metric_label(metric: str) -> str:
    return _metric_label(metric)


def dataset_label(dataset: str) -> str:
    key = canonical_dataset(dataset)
    return _DATASETS[key][0] if key in _DATASETS else str(dataset)


@cache
def _host_spec(base: str):  # -> HostSpec | None
    from finsta_core.registry import UnknownNameError
    from hosts.registry import get_spec

    for cand in (base, _squash(base)):
        try:
            return get_spec(cand)
        except UnknownNameError:
            continue
    return None


def host_key(host: str) -> str:
    """Registry name of a host tag: ``"clover.msrvtt_ft"`` -> ``"clover"`` (aliases resolved)."""
    base = str(host).split(".", 1)[0].strip()
    spec = _host_spec(base)
    return spec.name if spec is not None else base.lower()


def host_label(host: str) -> str:
    """Display name of a host tag (``HostSpec.display``); the weight tag, if any, is kept (``"Clover.msrvtt_ft"``)."""
    base, _, tag = str(host).partition(".")
    spec = _host_spec(base.strip())
    name = spec.display if spec is not None and getattr(spec, "display", "") else base
    return f"{name}.{tag}" if tag else name


def host_order(host: str) -> int:
    """Table row order of a host (``HostSpec.order``: the paper's Table 10 order; unknown hosts last)."""
    spec = _host_spec(str(host).split(".", 1)[0].strip())
    return int(getattr(spec, "order", 10**6)) if spec is not None else 10**6
