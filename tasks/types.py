"""Value types of the task contract: task types, video protocols, samples, required files, split reports and
evaluation results.

They live apart from :class:`tasks.base.Task` so that ``tasks.evaluators`` (which builds :class:`EvalResult`) and
``tasks.base`` (whose ``Task.evaluate`` calls the evaluators) import in one direction only:
``types <- evaluators <- base``. ``tasks.base`` re-exports every name defined here. Nothing here imports torch
at run time, so listing, planning and checking tasks does not load it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotation-only: keeps ``tasks`` (registry, loaders, evaluators) free of torch at import
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
class SplitReport:
    """What loading one split found: counts and problems (``harness data check`` prints it)."""

    split: str
    n_samples: int = 0
    n_videos: int = 0
    n_texts: int = 0
    n_classes: int | None = None  # classes (action recognition) or answer vocabulary size (open-ended QA)
    n_skipped: int = 0
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # dataset-specific (answer types, OOV answers, ...)

    def as_dict(self) -> dict[str, Any]:
        return {"split": self.split, "samples": self.n_samples, "videos": self.n_videos, "texts": self.n_texts,
                "classes_or_answers": self.n_classes, "skipped": self.n_skipped, "problems": list(self.problems),
                **({"counts": dict(self.counts)} if self.counts else {})}


@dataclass
class EvalResult:
    """Aggregate metrics of one evaluation plus one JSON-ready record per scored unit (contract C2).

    Attributes:
        metrics: aggregate metrics (percent for accuracies and recalls), the task's headline metric first.
        per_sample: one record per sample (retrieval: per ``(sample, text_index)`` query), in samples order:
            ``{"id", ["text_index",] "target", "prediction", "error", <metric>: float | None, ...}``. Per-sample
            metric values are on the aggregate's scale (a hit is 100.0, a miss 0.0), so the mean of a
            mean-aggregated metric over the records where it is not None equals ``metrics[key]``. Failed
            records have ``prediction`` None, ``error`` the reason, and None (``on_failed=exclude``) or the
            worst value (``on_failed=wrong``) as metric values. Values are plain JSON (no numpy, NaN or inf).
        n_samples: samples of the evaluated split.
        n_failed: samples that failed (error or no prediction), counted once per sample id.
        notes: human notes (failures and policy, metrics not computed, out-of-vocabulary answers).
        sample_metrics: the per-sample metric keys present in ``per_sample``.
    """

    metrics: dict[str, float]
    per_sample: list[dict[str, Any]] = field(default_factory=list)
    n_samples: int = 0
    n_failed: int = 0
    notes: list[str] = field(default_factory=list)
    sample_metrics: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvalSettings:
    """What an evaluator needs from a task: its name (for messages), type, scoring options and class count.

    Built by :meth:`tasks.base.Task.eval_settings`; ``options`` are the task's ``eval_options`` overlaid by its
    options (``on_failed``, ``tie_rule``, ``v2t``, ``recall_at``, ``caption_metrics``, ``ptb_tokenize``,
    ``drop_articles``); ``num_classes`` 0 means unknown (the first prediction's score count is used).
    """

    task: str
    task_type: TaskType
    options: dict[str, Any] = field(default_factory=dict)
    num_classes: int = 0

    def option(self, key: str, default: Any) -> Any:
        return self.options.get(key, default)
