"""The host contract: what a video-language model (the *host*) exposes to Finsta and to the harness.

Finsta is plug-and-play (paper sec 5.2, Fig 6): it reads the host's first-layer token states (pooled
per scene-graph node) and its instance-level outputs (``[CLS]`` / pooled, per frame for video and
cross-modal encoders), and distils into the latter (TRS, Eq 41). Fine-tuning and zero-shot use the
capability methods. See ``/work/shared/design/architecture.md`` ("Host").

Shapes: ``B`` batch, ``T`` host frames, ``L`` tokens, ``d`` encoder width, ``K`` options.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from finsta_core.interface import EncoderOutput, HostOutputs, TokenStates

__all__ = ["EncoderOutput", "HostOutputs", "TokenStates"]  # re-exported: defined in finsta_core (import rule)

# Capability names (tasks declare which they need: ``tasks.base.REQUIRED_CAPABILITIES``).
CAPABILITIES = ("retrieval", "classification", "generation", "multiple_choice")


class CapabilityError(NotImplementedError):
    """The host lacks a capability a task needs (normally caught when the run is planned)."""


class CheckpointError(FileNotFoundError):
    """A checkpoint is missing or malformed; the message says what it is and where to get it."""


@dataclass(frozen=True)
class WeightTag:
    """One released (or user-provided) set of weights for a host architecture.

    Attributes:
        tag: suffix after the dot in ``clip4clip.msrvtt_ft``; ``""`` is the default (pre-trained) tag.
        filename: expected file name under the checkpoint directory.
        what: human description ("CLIP4Clip meanP fine-tuned on MSR-VTT 9k").
        source: where a user gets it (URL or instructions); never fetched by us.
        sha256: optional checksum verified on load.
    """

    tag: str
    filename: str
    what: str
    source: str
    sha256: str | None = None


@dataclass
class HostSpec:
    """Catalogue entry of a host (paper Table 10 and Appendix C.1) plus how to build it.

    ``factory`` is a ``"module:attr"`` string (or callable) with signature
    ``factory(spec, tag: WeightTag | None, checkpoint: Path | None, **config) -> Host``.
    ``status`` is one of ``implemented`` (a faithful wrapper exists), ``recipe`` (reachable through
    the bring-your-own-model adapter with a YAML recipe), ``catalogue`` (metadata only).
    """

    name: str
    has_text: bool
    has_video: bool
    has_cross: bool
    capabilities: frozenset[str] = frozenset()
    llm_text_cross: bool = False  # Table 10's "¥": the LLM acts as text and cross-modal encoder
    factory: Any = None
    tags: dict[str, WeightTag] = field(default_factory=dict)
    params: str = ""  # as reported (e.g. "86M", "7B")
    pretrain_data: str = ""
    paper: str = ""
    code: str = ""
    license: str = ""
    status: str = "catalogue"
    notes: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def arch(self) -> str:
        """Table 10 flags as ``T/V/C`` with ``-`` for an absent encoder (``¥`` for LLM-as-T+C)."""
        t = "¥" if self.llm_text_cross else ("T" if self.has_text else "-")
        c = "¥" if self.llm_text_cross else ("C" if self.has_cross else "-")
        return f"{t}{'V' if self.has_video else '-'}{c}"

    def describe(self) -> dict[str, Any]:
        """One line of ``harness list hosts``."""
        return {"name": self.name, "arch": self.arch, "capabilities": sorted(self.capabilities),
                "params": self.params, "pretrain_data": self.pretrain_data, "status": self.status,
                "tags": sorted(t for t in self.tags if t), "paper": self.paper, "code": self.code,
                "license": self.license}


@dataclass
class HostBatch:
    """Input of a host forward.

    Attributes:
        video: ``[B, T, 3, H, W]`` float, already normalised with the host's preprocessing.
        frame_times: ``[B, T]`` float seconds of each frame in its source video.
        texts: ``B`` strings (caption, question, paragraph ...).
    """

    video: Tensor
    frame_times: Tensor
    texts: list[str]


@dataclass
class Preprocess:
    """The host's matching video preprocessing (returned by ``create_host`` with the host)."""

    num_frames: int = 8
    resolution: int = 224
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

    def __call__(self, frames: Tensor) -> Tensor:
        """``[..., 3, H, W]`` uint8 or float in [0, 1] -> normalised float (no resizing here)."""
        x = frames.float()
        if frames.dtype == torch.uint8:
            x = x / 255.0
        mean = x.new_tensor(self.mean).view(3, 1, 1)
        std = x.new_tensor(self.std).view(3, 1, 1)
        return (x - mean) / std


class Host(nn.Module):
    """Base class of every host wrapper. Subclasses implement the methods their capabilities need.

    Required: :meth:`posttrain_outputs` (for Finsta post-training). Capability methods raise
    :class:`CapabilityError` unless implemented; ``spec.capabilities`` must list what is implemented.
    """

    spec: HostSpec
    preprocess: Preprocess

    def __init__(self, spec: HostSpec, preprocess: Preprocess | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.preprocess = preprocess or Preprocess()

    # -- widths ------------------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        """Width of the retrieval / classification embeddings returned by the capability methods."""
        raise NotImplementedError

    def encoder_widths(self) -> dict[str, int]:
        """Width ``d`` of each encoder's pooled output, keyed ``text`` / ``video`` / ``cross``."""
        raise NotImplementedError

    def first_layer_widths(self) -> dict[str, int]:
        """Width of each encoder's first-layer token states (Finsta's injection input, sec 5.2); defaults
        to :meth:`encoder_widths` for hosts whose pooled outputs keep the token width."""
        return self.encoder_widths()

    # -- Finsta post-training ----------------------------------------------------------------------
    def posttrain_outputs(self, batch: HostBatch, with_losses: bool = True) -> HostOutputs:
        """First-layer states, pooled outputs and (if ``with_losses``) the host's own losses."""
        raise NotImplementedError

    # -- capabilities ------------------------------------------------------------------------------
    def encode_text(self, texts: list[str]) -> Tensor:
        """``B`` texts -> ``[B, embed_dim]`` (retrieval, zero-shot classification by class names)."""
        raise CapabilityError(f"host {self.spec.name!r} has no text embedding")

    def encode_video(self, video: Tensor, frame_times: Tensor | None = None) -> Tensor:
        """``[B, T, 3, H, W]`` -> ``[B, embed_dim]`` (retrieval, classification)."""
        raise CapabilityError(f"host {self.spec.name!r} has no video embedding")

    def encode_joint(self, video: Tensor, texts: list[str], frame_times: Tensor | None = None) -> Tensor:
        """Joint video+text embedding ``[B, embed_dim]`` (open-ended QA classification heads)."""
        raise CapabilityError(f"host {self.spec.name!r} has no joint embedding")

    def caption_loss(self, video: Tensor, texts: list[str], frame_times: Tensor | None = None) -> Tensor:
        """Teacher-forced captioning loss (scalar) for fine-tuning generation."""
        raise CapabilityError(f"host {self.spec.name!r} cannot generate text")

    def generate(self, video: Tensor, prompts: list[str] | None = None, max_new_tokens: int = 20,
                 frame_times: Tensor | None = None) -> list[str]:
        """Greedy decoding: captions (``prompts`` None) or answers to ``prompts``."""
        raise CapabilityError(f"host {self.spec.name!r} cannot generate text")

    def score_options(self, video: Tensor, questions: list[str], options: list[list[str]],
                      frame_times: Tensor | None = None) -> Tensor:
        """Multiple-choice scores ``[B, K]`` (higher = more likely) for ``K`` options per question. Option
        counts may differ between questions (``K`` = the largest); shorter rows are padded with ``-inf``."""
        raise CapabilityError(f"host {self.spec.name!r} cannot score options")

    def task_head(self, num_outputs: int) -> nn.Module:
        """A fresh head on top of ``encode_video`` / ``encode_joint`` for classification tasks."""
        return nn.Linear(self.embed_dim, num_outputs)

    # -- persistence -------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Save the host weights (without any Finsta module) with safetensors, atomically."""
        from hosts.io import save_state_dict

        save_state_dict(self.state_dict(), Path(path))

    def load(self, path: str | Path, strict: bool = True) -> None:
        from hosts.io import load_state_dict

        missing, unexpected = self.load_state_dict(load_state_dict(Path(path)), strict=False)
        if strict and (missing or unexpected):
            raise CheckpointError(f"{path}: checkpoint does not match host {self.spec.name!r}: "
                                  f"missing {missing[:5]}, unexpected {unexpected[:5]}")
