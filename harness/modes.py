"""The mode registry: every run mode in one place (contract C5).

A :class:`Mode` says what a run of that mode needs from the host (capabilities per task type), which task
splits it reads (checked at planning), how it is evaluated, and which job function runs it. The planner,
the job runner and the tables read this registry; nothing else defines modes. Adding a mode is one
``register_mode(Mode(...))`` call here plus its job function.

Job functions are registered lazily (``"module:function"`` through :class:`finsta_core.registry.Registry`),
so planning and ``validate`` never import torch or the job modules.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from finsta_core.registry import Registry, UnknownNameError

__all__ = ["FINETUNE_CAPABILITIES", "JOBS", "MODES", "ZEROSHOT_CAPABILITIES", "Mode", "get_mode", "mode_names",
           "register_mode"]

Alternatives = tuple[frozenset[str], ...]  # any one alternative suffices

# Fine-tuning (generic recipes of harness.jobs.recipes): host capabilities each task type needs.
FINETUNE_CAPABILITIES: dict[str, Alternatives] = {
    "action_recognition": (frozenset({"classification"}),),  # CE of a fresh head on encode_video
    "captioning": (frozenset({"generation"}),),
    "retrieval": (frozenset({"retrieval"}),),
    "mc_qa": (frozenset({"multiple_choice"}),),
    "oe_qa": (frozenset({"classification"}),),  # CE over the answer vocabulary on encode_joint
    "paragraph_retrieval": (frozenset({"retrieval"}),),
    "longform_qa": (frozenset({"multiple_choice"}),),
}

# Zero-shot recipes (harness.jobs.evaluate.predict, mode "zeroshot").
ZEROSHOT_CAPABILITIES: dict[str, Alternatives] = {
    "action_recognition": (frozenset({"retrieval"}),),  # text-video similarity to class-name prompts
    "captioning": (frozenset({"generation"}),),
    "retrieval": (frozenset({"retrieval"}),),
    "paragraph_retrieval": (frozenset({"retrieval"}),),
    "mc_qa": (frozenset({"multiple_choice"}),),
    "longform_qa": (frozenset({"multiple_choice"}),),
    # score the answer vocabulary as options, else generate, else answer-text similarity
    "oe_qa": (frozenset({"multiple_choice"}), frozenset({"generation"}), frozenset({"retrieval"})),
}

_EVALUATIONS = ("finetune", "zeroshot", "none")


@dataclass(frozen=True)
class Mode:
    """One run mode.

    Attributes:
        name: ``--mode`` value.
        help: one line for ``--help`` and the docs.
        job: registry key of the job function in :data:`JOBS` (``fn(ctx, host, task) -> (records, samples)``).
        evaluation: ``finetune`` | ``zeroshot`` | ``none``, or ``then`` (the config's ``posttrain.then``).
        trains_on_task: whether the job trains on the task's ``train`` split itself (pre-training).
        needs_posttrain_data: whether the job reads the post-training corpus / scene graphs.
        capabilities: task type -> alternatives of host capabilities; a type missing here needs none.
    """

    name: str
    help: str
    job: str
    evaluation: str
    trains_on_task: bool = False
    needs_posttrain_data: bool = False
    capabilities: Mapping[str, Alternatives] = field(default_factory=dict)

    def eval_mode(self, cfg: Mapping[str, Any]) -> str:
        """``finetune`` | ``zeroshot`` | ``none`` for a run of this mode with config ``cfg``."""
        return str(cfg["posttrain"]["then"]) if self.evaluation == "then" else self.evaluation

    def required_capabilities(self, cfg: Mapping[str, Any], task_type: str) -> Alternatives:
        """Capability alternatives a host needs for ``task_type`` (its own and those of its evaluation)."""
        own = tuple(self.capabilities.get(task_type, ()))
        ev = self.eval_mode(cfg)
        if ev != self.name and ev in MODES:
            return own or MODES.get(ev).required_capabilities(cfg, task_type)
        return own

    def splits(self, cfg: Mapping[str, Any], task_splits: tuple[str, ...], default_eval_split: str) -> list[str]:
        """The task splits a run reads (training split first), checked for files at planning."""
        eval_split = str(cfg["run"]["eval_split"] or default_eval_split)
        ev = self.eval_mode(cfg)
        out = ["train"] if self.trains_on_task else []
        if ev == "finetune" and "train" in task_splits:
            out.append("train")
        if ev in ("finetune", "zeroshot"):
            out.append(eval_split)
        return list(dict.fromkeys(out))

    def job_fn(self) -> Callable[..., Any]:
        """The job function (imported on first use)."""
        return JOBS.get(self.job)


MODES: Registry[Mode] = Registry("modes", base=Mode)
JOBS: Registry[Callable[..., Any]] = Registry("jobs")


def register_mode(mode: Mode, job_target: str) -> None:
    """Register ``mode`` and its job function (``"module:function"``, imported lazily)."""
    MODES.register(mode.name, mode, overwrite=True)
    JOBS.register(mode.job, job_target, overwrite=True)


def get_mode(name: str) -> Mode:
    """The mode ``name``; unknown names raise :class:`~finsta_core.registry.UnknownNameError` with a suggestion."""
    try:
        return MODES.get(name)
    except UnknownNameError:
        close = difflib.get_close_matches(str(name), MODES.names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownNameError(f"unknown mode {name!r}{hint} (modes: {', '.join(mode_names())})") from None


def mode_names() -> list[str]:
    return list(MODES.names())


register_mode(Mode("posttrain", "Finsta post-training (stages 1 + 2), then evaluate per posttrain.then",
                   job="posttrain", evaluation="then", needs_posttrain_data=True),
              "harness.jobs.posttrain:posttrain")
register_mode(Mode("finetune", "fine-tune the host alone on the task's train split, then evaluate",
                   job="finetune", evaluation="finetune", capabilities=FINETUNE_CAPABILITIES),
              "harness.jobs.finetune:finetune_and_evaluate")
register_mode(Mode("zeroshot", "evaluate the host without training", job="zeroshot", evaluation="zeroshot",
                   capabilities=ZEROSHOT_CAPABILITIES),
              "harness.jobs.finetune:zeroshot_evaluate")
register_mode(Mode("pretrain", "train the host on its own losses over the task's train split (synthetic demo)",
                   job="pretrain", evaluation="none", trains_on_task=True),
              "harness.jobs.posttrain:pretrain")
