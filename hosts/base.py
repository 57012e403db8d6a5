"""The host contract: what a video-language model (the *host*) exposes to Finsta and to the harness.

Finsta is plug-and-play (paper sec 5.2, Fig 6): it reads the host's first-layer token states (pooled
per scene-graph node) and its instance-level outputs (``[CLS]`` / pooled, per frame for video and
cross-modal encoders), and distils into the latter (TRS, Eq 41). Fine-tuning and zero-shot use the
capability methods. See ``docs/hosts.md``.

Shapes: ``B`` batch, ``T`` host frames, ``L`` tokens, ``d`` encoder width, ``K`` options.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from finsta_core.interface import EncoderOutput, HostOutputs, TokenStates
from hosts.errors import CapabilityError, CheckpointError
from hosts.io import load_state_dict, save_state_dict
from hosts.spec import CAPABILITIES, HostSpec, WeightTag

# re-exported: the data types are defined in finsta_core (import rule), the specs in hosts.spec
__all__ = ["CAPABILITIES", "CapabilityError", "CheckpointError", "EncoderOutput", "Host", "HostBatch", "HostOutputs",
           "HostSpec", "Preprocess", "TokenStates", "WeightTag"]

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
        """``[..., 3, H, W]`` uint8 or float in [0, 1] -> ``[..., 3, R, R]`` normalised float, ``R`` = the host's
        input ``resolution``: frames of another size (a task protocol decodes at 256 px, paper sec 6.1) are
        resized (short side to ``R``, bicubic with antialiasing, as CLIP's processor) and centre-cropped."""
        x = frames.float()
        if frames.dtype == torch.uint8:
            x = x / 255.0
        x = self.resize(x)
        mean = x.new_tensor(self.mean).view(3, 1, 1)
        std = x.new_tensor(self.std).view(3, 1, 1)
        return (x - mean) / std

    def resize(self, x: Tensor) -> Tensor:
        """Short side to ``resolution``, then centre crop: ``[..., 3, H, W]`` -> ``[..., 3, R, R]`` (no-op when
        already ``R x R``)."""
        r = self.resolution
        h, w = x.shape[-2:]
        if (h, w) == (r, r):
            return x
        lead = x.shape[:-3]
        x = x.reshape(-1, *x.shape[-3:])
        s = r / min(h, w)
        nh, nw = max(r, round(h * s)), max(r, round(w * s))
        x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True).clamp(0.0, 1.0)
        top, left = (nh - r) // 2, (nw - r) // 2
        return x[..., top:top + r, left:left + r].reshape(*lead, x.shape[-3], r, r)


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

    def answer_loglikelihood(self, video: Tensor, prompts: list[str], answers: list[str],
                             frame_times: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Log-likelihood of each answer given its video and prompt (lmms-eval's ``loglikelihood``): the sum of
        the answer tokens' log-probabilities ``[B]`` (no length normalisation) and whether every answer token is
        the greedy (argmax) choice ``[B]`` bool. Generative hosts only."""
        raise CapabilityError(f"host {self.spec.name!r} cannot score answer likelihoods")

    def zeroshot_class_scores(self, video: Tensor, class_names: list[str], prompt: str = "{}",
                              frame_times: Tensor | None = None) -> Tensor:
        """Zero-shot classification scores ``[B, N]`` over ``N`` class names (higher = more likely). Default:
        cosine of :meth:`encode_video` with :meth:`encode_text` of ``prompt.format(name)``; LLM hosts override it
        with the likelihood of each class name as the answer."""
        text = F.normalize(self.encode_text([prompt.format(n) for n in class_names]), dim=-1)
        return F.normalize(self.encode_video(video, frame_times), dim=-1) @ text.t()

    def task_head(self, num_outputs: int) -> nn.Module:
        """A fresh head on top of ``encode_video`` / ``encode_joint`` for classification tasks."""
        return nn.Linear(self.embed_dim, num_outputs)

    # -- persistence -------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Save the host weights (without any Finsta module) with safetensors, atomically."""
        save_state_dict(self.state_dict(), Path(path))

    def load(self, path: str | Path, strict: bool = True) -> None:
        """Load weights saved by :meth:`save` (errors name the file)."""
        missing, unexpected = self.load_state_dict(load_state_dict(Path(path), what=f"{self.spec.name} host weights"),
                                                     strict=False)
        if strict and (missing or unexpected):
            raise CheckpointError(f"{path}: checkpoint does not match host {self.spec.name!r}: "
                                  f"missing {missing[:5]}, unexpected {unexpected[:5]}")
