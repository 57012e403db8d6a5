"""The task contract: samples, video protocols, task types and the :class:`Task` base class.

A task is data (a YAML file, layered with omegaconf) plus, where needed, a small Python module. The
harness only uses what is defined here: ``Task.samples(split)``, ``Task.required_files(split)``,
``Task.evaluate(predictions, samples)``, ``Task.fingerprint()`` and the declared fields.
See ``/work/shared/design/architecture.md`` ("Sample", "Task").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from torch import Tensor

from finsta_core.graphs import HolisticSceneGraph


class TaskType(str, Enum):
    """The paper's six task families (Appendix B), QA split into its answer formats."""

    ACTION_RECOGNITION = "action_recognition"
    CAPTIONING = "captioning"
    RETRIEVAL = "retrieval"  # text-video retrieval
    MC_QA = "mc_qa"  # multiple-choice video QA (incl. LSMDC-MC)
    OE_QA = "oe_qa"  # open-ended video QA (answer vocabulary) and fill-in-the-blank
    PARAGRAPH_RETRIEVAL = "paragraph_retrieval"
    LONGFORM_QA = "longform_qa"  # How2QA (MC), VIOLIN (entailment)

    @property
    def family(self) -> str:
        """The paper's family key used for lambda^{T,D,C} of Eq 41 (sec 6.1)."""
        return {
            TaskType.ACTION_RECOGNITION: "action",
            TaskType.CAPTIONING: "captioning",
            TaskType.RETRIEVAL: "retrieval",
            TaskType.MC_QA: "qa",
            TaskType.OE_QA: "qa",
            TaskType.PARAGRAPH_RETRIEVAL: "paragraph",
            TaskType.LONGFORM_QA: "longform",
        }[self]


# Host capabilities a task type needs (checked when a run is planned).
REQUIRED_CAPABILITIES: dict[TaskType, frozenset[str]] = {
    TaskType.ACTION_RECOGNITION: frozenset({"classification"}),
    TaskType.CAPTIONING: frozenset({"generation"}),
    TaskType.RETRIEVAL: frozenset({"retrieval"}),
    TaskType.MC_QA: frozenset({"multiple_choice"}),
    TaskType.OE_QA: frozenset({"classification"}),
    TaskType.PARAGRAPH_RETRIEVAL: frozenset({"retrieval"}),
    TaskType.LONGFORM_QA: frozenset({"multiple_choice"}),
}


@dataclass(frozen=True)
class VideoProtocol:
    """How frames are taken from a video. Part of the task's identity: it changes scores.

    Attributes:
        num_frames: frames per clip (None when ``sampling == "fps"``).
        fps: frames per second for ``sampling == "fps"``.
        sampling: ``uniform`` (evenly spaced centres), ``segment`` (TSN/ClipBERT: one frame per equal
            segment, random in training, centre in evaluation), or ``fps``.
        resolution: output side in pixels (short side resized, then cropped to a square).
        crop: ``center`` or ``random`` (training) or ``none``.
        backend: decoder, ``pyav`` (default) or ``decord``.
    """

    num_frames: int | None = 8
    fps: float | None = None
    sampling: str = "uniform"
    resolution: int = 224
    crop: str = "center"
    backend: str = "pyav"

    def __post_init__(self) -> None:
        if self.sampling not in ("uniform", "segment", "fps"):
            raise ValueError(f"video protocol sampling must be uniform|segment|fps, got {self.sampling!r}")
        if self.sampling == "fps" and not self.fps:
            raise ValueError("video protocol with sampling='fps' needs fps > 0")
        if self.sampling != "fps" and not self.num_frames:
            raise ValueError(f"video protocol with sampling={self.sampling!r} needs num_frames > 0")

    def describe(self) -> str:
        """Short human form, e.g. ``8f uniform 224px``, shown under tables."""
        n = f"{self.fps:g}fps" if self.sampling == "fps" else f"{self.num_frames}f {self.sampling}"
        return f"{n} {self.resolution}px"


@dataclass
class Sample:
    """One evaluation or training item (contract between ``tasks`` and the rest).

    Attributes:
        id: stable id, unique within a split.
        video: local path of the video file (None for synthetic samples that carry ``frames``).
        texts: the text(s): a caption, the captions of a video, a question, the sentences of a paragraph.
        label: class index (action recognition; open-ended QA answer index into the task's vocabulary).
        answer: reference answer text (open-ended QA) .
        options: candidate answers (multiple-choice / long-form QA); ``answer_index`` is the correct one.
        references: reference captions (captioning).
        spans: temporal spans in seconds, one per text where the dataset has them.
        frames: decoded clip ``[T, 3, H, W]`` (uint8 or float) once loaded; ``timestamps`` ``[T]`` seconds.
        scene_graph: cached HSG, or a path to one, when available.
        extra: dataset-specific fields kept verbatim (e.g. original record numbers for error messages).
    """

    id: str
    video: str | None = None
    texts: list[str] = field(default_factory=list)
    label: int | None = None
    answer: str | None = None
    options: list[str] | None = None
    answer_index: int | None = None
    references: list[str] | None = None
    spans: list[tuple[float, float]] | None = None
    frames: Tensor | None = None
    timestamps: Tensor | None = None
    scene_graph: HolisticSceneGraph | str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RequiredFile:
    """A file a task split needs, with what it is and where a user gets it (for planning errors)."""

    path: Path
    what: str
    source: str

    def exists(self) -> bool:
        return self.path.exists()

    def message(self) -> str:
        return f"missing {self.what}: {self.path} (get it from {self.source})"


@dataclass
class EvalResult:
    """Metrics of one evaluation plus per-sample scores (keyed by sample id)."""

    metrics: dict[str, float]
    per_sample: list[dict[str, Any]] = field(default_factory=list)
    n_samples: int = 0
    n_failed: int = 0
    notes: list[str] = field(default_factory=list)  # e.g. "SPICE not computed: needs network"


class Task:
    """Base class of every registered task.

    Subclasses set the class attributes (or receive them from the task YAML via ``__init__``) and
    implement :meth:`load_split`. Evaluation is shared per task type (``tasks.evaluators``) and can be
    overridden.

    Attributes:
        name: registry name (``msrvtt_ret``, ``k400``, ``synth_qa_mc``).
        task_type: :class:`TaskType`.
        dataset: dataset key (``msrvtt``), used for the data root in config.
        splits: split names available (``train``, ``val``, ``test``).
        protocol: :class:`VideoProtocol`.
        metrics: metric names the evaluator reports, the first being the headline metric.
        version: bump when loading or scoring changes; enters the run identity.
    """

    name: str = ""
    task_type: TaskType = TaskType.RETRIEVAL
    dataset: str = ""
    splits: tuple[str, ...] = ("train", "test")
    eval_split: str = "test"
    protocol: VideoProtocol = VideoProtocol()
    metrics: tuple[str, ...] = ()
    version: str = "1"
    description: str = ""

    def __init__(self, root: str | Path | None = None, strict: bool = True, **options: Any) -> None:
        self.root = Path(root) if root is not None else None
        self.strict = strict
        self.options = dict(options)

    # -- data ------------------------------------------------------------------------------------
    def required_files(self, split: str) -> list[RequiredFile]:
        """Annotation files the split needs (checked at planning time, before any compute)."""
        return []

    def missing_files(self, split: str) -> list[RequiredFile]:
        return [f for f in self.required_files(split) if not f.exists()]

    def load_split(self, split: str) -> list[Sample]:
        """All samples of ``split`` (annotation only; frames are decoded later by the data loader)."""
        raise NotImplementedError

    def samples(self, split: str, limit: int | None = None) -> list[Sample]:
        if split not in self.splits:
            raise ValueError(f"task {self.name!r} has no split {split!r} (splits: {', '.join(self.splits)})")
        out = self.load_split(split)
        return out[:limit] if limit is not None else out

    # -- scoring ---------------------------------------------------------------------------------
    def evaluate(self, predictions: Sequence[dict[str, Any]], samples: Sequence[Sample]) -> EvalResult:
        """Score per-sample predictions (format per task type, see ``tasks.evaluators``)."""
        from tasks.evaluators import evaluate_task  # local import: evaluators import metrics libraries

        return evaluate_task(self, predictions, samples)

    # -- identity --------------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """What defines this task for run hashing: name, version, protocol and scoring options."""
        return {"name": self.name, "version": self.version, "task_type": self.task_type.value,
                "protocol": asdict(self.protocol), "options": _jsonable(self.options)}

    def fingerprint(self) -> str:
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
