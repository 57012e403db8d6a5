"""Small pooling and token-map helpers shared by the host wrappers.

Shapes: ``B`` batch, ``T`` frames, ``L`` tokens, ``P`` patches per frame, ``d`` width.
"""

from __future__ import annotations

import torch
from torch import Tensor


def masked_mean(x: Tensor, mask: Tensor, dim: int = 1) -> Tensor:
    """Mean of ``x`` ``[B, L, d]`` over ``dim`` where ``mask`` ``[B, L]`` is True (0 for empty rows)."""
    m = mask.to(x.dtype).unsqueeze(-1)
    return (x * m).sum(dim) / m.sum(dim).clamp_min(1.0)


def last_token(x: Tensor, mask: Tensor) -> Tensor:
    """State at the last True position of each row (left or right padding): ``[B, L, d]`` -> ``[B, d]``.

    For CLIP's text tower this is the end-of-text token (OpenAI CLIP pools ``argmax(ids)`` = EOT)."""
    pos = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    idx = torch.where(mask, pos, torch.full_like(pos, -1)).amax(1).clamp_min(0)
    return x[torch.arange(x.shape[0], device=x.device), idx]


def video_token_maps(batch: int, frames: int, grid: tuple[int, int], cls_tokens: int = 1,
                     device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """Frame index and patch (row, col) of a frame-major video token sequence.

    Layout per frame: ``cls_tokens`` tokens (patch ``-1``) then ``rows * cols`` patches row-major.

    Returns:
        frame_index ``[B, T * n]`` long and patch_rc ``[B, T * n, 2]`` long, ``n = cls_tokens + rows*cols``.
    """
    rows, cols = grid
    n = cls_tokens + rows * cols
    frame_index = torch.arange(frames, device=device).repeat_interleave(n)
    rc = torch.full((n, 2), -1, dtype=torch.long, device=device)
    r = torch.arange(rows, device=device).repeat_interleave(cols)
    c = torch.arange(cols, device=device).repeat(rows)
    rc[cls_tokens:, 0], rc[cls_tokens:, 1] = r, c
    patch_rc = rc.repeat(frames, 1)
    return frame_index.expand(batch, -1).contiguous(), patch_rc.expand(batch, -1, -1).contiguous()


def l2norm(x: Tensor, eps: float = 1e-6) -> Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


def symmetric_infonce(text: Tensor, video: Tensor, logit_scale: Tensor | float) -> Tensor:
    """CLIP4Clip's loss (``CrossEn`` on ``sim`` and ``sim.T``, averaged) for ``B`` matched pairs.

    Args:
        text, video: ``[B, d]`` L2-normalised embeddings; row ``i`` of each is a matching pair.
        logit_scale: the (already exponentiated) temperature inverse.
    """
    sim = logit_scale * text @ video.t()
    target = torch.arange(sim.shape[0], device=sim.device)
    return 0.5 * (torch.nn.functional.cross_entropy(sim, target) + torch.nn.functional.cross_entropy(sim.t(), target))
