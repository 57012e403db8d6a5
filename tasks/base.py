"""The task contract: the :class:`Task` base class, everything the harness calls on a task.

A task is data (a YAML file, layered with omegaconf) plus, where needed, a small Python module. The harness
uses only what :class:`Task` declares here: ``samples(split)``, ``required_files(split)`` /
``missing_files(split)``, ``evaluate(predictions, samples)``, ``identity()`` / ``fingerprint()``, ``describe()``,
``report(split)``, ``class_names`` / ``answer_vocab`` / ``num_classes`` and the declared fields. The value
types (:class:`Sample`, :class:`TaskType`, :class:`VideoProtocol`, :class:`RequiredFile`, :class:`SplitReport`,
:class:`EvalResult`) live in :mod:`tasks.types` and are re-exported here. See ``docs/tasks.md``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tasks.evaluators import evaluate_task
from tasks.types import (
    EvalResult,
    EvalSettings,
    RequiredFile,
    Sample,
    SplitReport,
    TaskType,
    VideoProtocol,
)

__all__ = ["EvalResult", "EvalSettings", "RequiredFile", "Sample", "SplitReport", "Task",
           "TaskType", "VideoProtocol"]


class Task:
    """Base class of every registered task: declares every attribute and method the harness uses.

    Subclasses set the class attributes (or receive them from the task YAML via ``tasks.catalog``) and
    implement :meth:`load_split`. Evaluation is shared per task type (:mod:`tasks.evaluators`).

    Attributes:
        name: registry name (``msrvtt_ret``, ``k400``, ``synth_qa_mc``).
        task_type: :class:`TaskType`.
        dataset: dataset key (``msrvtt``), used for the data root in config.
        splits: split names available (``train``, ``val``, ``test``); ``eval_split`` the reported one.
        protocol: :class:`VideoProtocol`.
        metrics: metric names the evaluator reports, the first being the headline metric.
        version: bump when loading or scoring changes; enters the run identity.
        num_classes: number of classes / answers when fixed by the task (0 = unknown, taken from the data).
        eval_options: default scoring options (``on_failed``, ``tie_rule``, ...), overridden by ``options``.
    """

    name: str = ""
    task_type: TaskType = TaskType.RETRIEVAL
    dataset: str = ""
    splits: tuple[str, ...] = ("train", "test")
    eval_split: str = "test"
    protocol: VideoProtocol = VideoProtocol()
    metrics: tuple[str, ...] = ()
    version: str = "1"
    summary: str = ""  # one line for listings (not lm-eval's ``description``, a few-shot preamble)
    num_classes: int = 0
    eval_options: Mapping[str, Any] = {}

    def __init__(self, root: str | Path | None = None, strict: bool = True, **options: Any) -> None:
        self.root = Path(root) if root is not None else None
        self.strict = strict
        self.options = dict(options)

    # -- data ------------------------------------------------------------------------------------
    @property
    def data_root(self) -> Path | None:
        """Where the task's files are (None for tasks that need no files)."""
        return self.root

    def required_files(self, split: str) -> list[RequiredFile]:
        """Annotation files the split needs (checked at planning time, before any compute)."""
        return []

    def missing_files(self, split: str) -> list[RequiredFile]:
        return [f for f in self.required_files(split) if not f.exists()]

    def input_files(self, split: str) -> list[Path]:
        """Every file loading ``split`` reads (required ones, and optional ones that exist): the run identity
        fingerprints their content, so an edited annotation file gives a new run."""
        return [f.path for f in self.required_files(split)]

    def load_split(self, split: str) -> list[Sample]:
        """All samples of ``split`` (annotation only; frames are decoded later by the data loader)."""
        raise NotImplementedError(f"task {self.name!r} does not implement load_split")

    def samples(self, split: str, limit: int | None = None) -> list[Sample]:
        """The samples of ``split``, the first ``limit`` only when given (``limit >= 0``)."""
        if split not in self.splits:
            raise ValueError(f"task {self.name!r} has no split {split!r} (splits: {', '.join(self.splits)})")
        if limit is not None and limit < 0:
            raise ValueError(f"task {self.name!r}: limit must be >= 0, got {limit}")
        out = self.load_split(split)
        return out[:limit] if limit is not None else out

    def report(self, split: str) -> SplitReport | None:
        """Counts and problems found while loading ``split`` (None for tasks that do not keep one)."""
        return None

    # -- vocabularies ----------------------------------------------------------------------------
    @property
    def class_names(self) -> list[str] | None:
        """Class names in label-index order (action recognition), None when the task has none or they are
        unavailable (e.g. the class file is absent)."""
        return None

    @property
    def answer_vocab(self) -> list[str] | None:
        """Answers in label-index order (open-ended QA with a fixed vocabulary), None when there is none."""
        return None

    # -- scoring ---------------------------------------------------------------------------------
    def eval_settings(self) -> EvalSettings:
        """Name, type, scoring options (``eval_options`` overlaid by ``options``) and class count for scoring."""
        return EvalSettings(task=self.name, task_type=TaskType(self.task_type),
                            options={**dict(self.eval_options or {}), **self.options},
                            num_classes=int(self.num_classes or 0))

    def evaluate(self, predictions: Sequence[dict[str, Any]], samples: Sequence[Sample]) -> EvalResult:
        """Score per-sample predictions (format per task type, see :mod:`tasks.evaluators`)."""
        return evaluate_task(self.eval_settings(), predictions, samples)

    # -- identity --------------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """What defines this task for run hashing: name, version, protocol and scoring options."""
        return {"name": self.name, "version": self.version, "task_type": self.task_type.value,
                "protocol": asdict(self.protocol), "options": _jsonable(self.options)}

    def fingerprint(self) -> str:
        """12 hex digits of the SHA-256 of :meth:`identity`."""
        blob = json.dumps(self.identity(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def describe(self) -> dict[str, Any]:
        """One line of ``harness list tasks``."""
        return {"name": self.name, "type": self.task_type.value, "dataset": self.dataset,
                "metrics": list(self.metrics), "protocol": self.protocol.describe(), "version": self.version,
                "splits": list(self.splits)}


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)
