"""Collapse statistics of feature sets (issue 10): used by TRS's logged diagnostics and ``finsta_core.diagnostics``."""

from __future__ import annotations

from torch import Tensor
from torch.nn import functional as F


def collapse_stats(x: Tensor) -> tuple[float, float]:
    """``(mean pairwise cosine, common-mode share)`` of the rows of ``x [N, d]`` (``N >= 2``; else ``(1, 1)``)."""
    n = x.shape[0]
    if n < 2:
        return 1.0, 1.0
    xn = F.normalize(x.float(), dim=-1)
    g = xn @ xn.t()
    mean_cos = float((g.sum() - g.diagonal().sum()) / (n * (n - 1)))
    energy = float(x.float().pow(2).sum(-1).mean())
    common = float(x.float().mean(0).pow(2).sum()) / energy if energy > 0 else 1.0
    return mean_cos, common
