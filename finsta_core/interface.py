"""What Finsta reads from a host (paper sec 5.2, Fig 6): first-layer token states with the maps needed
to pool them per scene-graph node, instance-level outputs per encoder (per frame for video and
cross-modal), and the host's own losses. Defined here (not in ``hosts``) because ``finsta_core`` imports
nothing from the other packages; ``hosts.base`` re-exports these types.

Shapes: ``B`` batch, ``T`` host frames, ``L`` tokens, ``d`` encoder width.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class TokenStates:
    """First-layer token states of one encoder with the maps Finsta needs to pool them per node.

    Attributes:
        states: ``[B, L, d]``.
        mask: ``[B, L]`` bool, True for real tokens.
        char_spans: ``[B, L, 2]`` long character offsets ``[start, end)`` of each token in its text
            (text and cross-modal tokens; ``-1`` for special and video tokens) or None.
        frame_index: ``[B, L]`` long host frame of each video token (``-1`` otherwise) or None.
        patch_rc: ``[B, L, 2]`` long (row, col) of each patch token on the patch grid (``-1`` otherwise).
        grid: ``(rows, cols)`` of the patch grid, or None.
    """

    states: Tensor
    mask: Tensor
    char_spans: Tensor | None = None
    frame_index: Tensor | None = None
    patch_rc: Tensor | None = None
    grid: tuple[int, int] | None = None


@dataclass
class EncoderOutput:
    """What one host encoder gives Finsta.

    Attributes:
        first_layer: token states after the first layer (sec 5.2, ``R^{l1}``).
        pooled: instance-level output: ``[B, d]`` for the text encoder, ``[B, T, d]`` per frame for the
            video and cross-modal encoders (the ``H`` of Eq 41).
        frame_times: ``[B, T]`` seconds of each pooled frame (video / cross), for keyframe alignment.
    """

    first_layer: TokenStates
    pooled: Tensor
    frame_times: Tensor | None = None


@dataclass
class HostOutputs:
    """Per-batch post-training outputs of a host: one entry per encoder it has, plus its own losses
    (``"vla"`` video-language alignment, ``"mlm"`` masked language modelling, ... ; Eq 42)."""

    text: EncoderOutput | None = None
    video: EncoderOutput | None = None
    cross: EncoderOutput | None = None
    losses: dict[str, Tensor] = field(default_factory=dict)

    def encoders(self) -> dict[str, EncoderOutput]:
        return {k: v for k, v in (("text", self.text), ("video", self.video), ("cross", self.cross)) if v is not None}
