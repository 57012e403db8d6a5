"""Small shared blocks: norm factory and the 2d FFN of ref [22]."""

from __future__ import annotations

from torch import Tensor, nn


def make_norm(kind: str, d: int) -> nn.Module:
    """``layer`` (default: the paper's Add&Norm) or ``batch`` (ref [22]; couples samples of a batch)."""
    return nn.LayerNorm(d) if kind == "layer" else nn.BatchNorm1d(d)


class FFN(nn.Module):
    """Linear(d, m d) -> ReLU -> Dropout -> Linear(m d, d) (ref [22], m = 2)."""

    def __init__(self, d: int, mult: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, mult * d), nn.ReLU(), nn.Dropout(dropout), nn.Linear(mult * d, d))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
