"""Encoder stacks: GTrm (TSG), R-GTrm + STGD-GTrm (DSG, HSG), and the Table 8 replacements."""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor, nn

from finsta_core.config import FinstaConfig
from finsta_core.nn.baselines import GATLayer, RGNNLayer
from finsta_core.nn.graph import LayerGraph
from finsta_core.nn.gtrm import GTrmLayer


class EncoderLayer(Protocol):
    """The interface every encoder layer implements (GTrm / R-GTrm / STGD-GTrm, GAT, recurrent GNN).

    ``h [N, d]`` node states, ``e [E_stream, d]`` stream edge states, ``g`` the attention graph, ``e_aux [2, d]``
    the type embeddings of the static self / readout edges -> new ``h``, new ``e`` (unchanged by layers without
    an edge stream) and detached diagnostics.
    """

    def __call__(self, h: Tensor, e: Tensor, g: LayerGraph, e_aux: Tensor | None = None
                 ) -> tuple[Tensor, Tensor, dict[str, Tensor]]: ...


class GraphEncoder(nn.Module):
    """``layers`` stacked layers of one kind.

    Args:
        cfg: the Finsta config. kind: ``gtrm`` | ``rgtrm`` | ``gat`` | ``rgnn``. layers: depth.
        stgd: add the STGD branch to every R-GTrm layer (Eqs 30-36).
    """

    def __init__(self, cfg: FinstaConfig, kind: str, layers: int, stgd: bool = False) -> None:
        super().__init__()
        self.kind = kind

        def make() -> nn.Module:  # an nn.Module implementing EncoderLayer
            if kind in ("gtrm", "rgtrm"):
                recurrent = kind == "rgtrm"
                return GTrmLayer.from_config(cfg, recurrent=recurrent, stgd=stgd and recurrent)
            if kind == "gat":
                return GATLayer(cfg.d_model, cfg.heads, cfg.ffn_mult, cfg.dropout, cfg.norm)
            if kind == "rgnn":
                return RGNNLayer(cfg.d_model, cfg.heads, cfg.ffn_mult, cfg.dropout, cfg.norm)
            raise ValueError(f"unknown encoder kind {kind!r}; choose gtrm, rgtrm, gat or rgnn")

        self.layers = nn.ModuleList([make() for _ in range(layers)])

    def forward(self, h: Tensor, e: Tensor, g: LayerGraph, e_aux: Tensor | None = None
                ) -> tuple[Tensor, Tensor, dict[str, float]]:
        """``h [N, d]``, ``e [E_stream, d]``, ``e_aux [2, d]`` (static self / read edge embeddings) -> final
        node and stream-edge states, diagnostics averaged over layers."""
        sums: dict[str, Tensor] = {}
        for layer in self.layers:
            h, e, d = layer(h, e, g, e_aux)
            for k, v in d.items():
                sums[k] = sums.get(k, torch.zeros(())) + v.detach().float().cpu()
        n = max(len(self.layers), 1)
        return h, e, {k: float(v) / n for k, v in sums.items()}
