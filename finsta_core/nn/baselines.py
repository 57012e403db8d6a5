"""Table 8 encoder replacements: GAT (ref [39]) for the GTrm and a recurrent space-time GNN (ref [81],
RSTG) for the R-GTrm. Same interface as :class:`finsta_core.nn.gtrm.GTrmLayer` (edge states pass through
unchanged: neither model has an edge stream).

* :class:`GATLayer`: ``α_ij = softmax_j LeakyReLU(a_dst·W h_i + a_src·W h_j)`` per head over the in-edges,
  ``ELU(concat_k sum_j α_ij W h_j)``, then the same residual / norm / FFN blocks as the GTrm so that only
  the attention mechanism differs.
* :class:`RGNNLayer`: spatial messages ``m_i = mean_j MLP([h_i, h_j, e_ij])`` over the in-edges of the
  keyframe, then a temporal GRU step per track, ``h_i' = GRU(m_i, h'_prev(i))`` (``h_i`` itself at a track
  start), evaluated level by level along the temporal chains (a true recurrence in time, as in RSTG).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from finsta_core.nn.blocks import FFN, make_norm
from finsta_core.nn.graph import LayerGraph


class GATLayer(nn.Module):
    def __init__(self, d: int, heads: int, ffn_mult: int = 2, dropout: float = 0.0, norm: str = "layer") -> None:
        super().__init__()
        self.d, self.h, self.dk = d, heads, d // heads
        self.w = nn.Linear(d, d, bias=False)
        self.a_src = nn.Parameter(torch.randn(heads, self.dk) * 0.1)
        self.a_dst = nn.Parameter(torch.randn(heads, self.dk) * 0.1)
        self.norm1, self.norm2 = make_norm(norm, d), make_norm(norm, d)
        self.ffn = FFN(d, ffn_mult, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: Tensor, e: Tensor, g: LayerGraph, e_aux: Tensor | None = None
                ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        n = h.shape[0]
        edges = g.edges
        x = self.w(h).view(n, self.h, self.dk)  # W h  [N, H, dk]
        logit = nn.functional.leaky_relu(edges.targets((x * self.a_dst).sum(-1))  # ref [39]: a_dst·W h_i
                                         + edges.sources((x * self.a_src).sum(-1)), 0.2)  # + a_src·W h_j
        agg, _ = edges.attend(logit, x)  # sum_j softmax_j(logit) W h_j  (ref [39])
        out = nn.functional.elu(agg.reshape(n, self.d))  # ELU(concat_k ...)  (ref [39])
        h1 = self.norm1(h + self.drop(out))
        return self.norm2(h1 + self.drop(self.ffn(h1))), e, {}


class RGNNLayer(nn.Module):
    def __init__(self, d: int, heads: int = 1, ffn_mult: int = 2, dropout: float = 0.0, norm: str = "layer") -> None:
        super().__init__()
        self.msg = nn.Sequential(nn.Linear(3 * d, d), nn.ReLU(), nn.Linear(d, d))
        self.gru = nn.GRUCell(d, d)
        self.norm = make_norm(norm, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: Tensor, e: Tensor, g: LayerGraph, e_aux: Tensor | None = None
                ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        edges = g.edges
        ef = g.edge_rows(e, e_aux)
        # spatial message m_i = mean_j MLP([h_i, h_j, e_ij]) over the in-edges (ref [81])
        m = edges.aggregate(self.msg(torch.cat([edges.targets(h), edges.sources(h), ef], -1)), "mean")
        m = self.drop(m)
        out = self.gru(m, h)  # track starts (and untracked nodes): hidden = own state
        prev = g.prev.clamp_min(0)
        for idx in g.levels:  # depth 1, 2, ...: hidden = updated state of the predecessor
            out = out.index_copy(0, idx, self.gru(m.index_select(0, idx), out.index_select(0, prev[idx])))
        return self.norm(out), e, {}
