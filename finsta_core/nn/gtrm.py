"""Edge-featured graph transformer layer of the paper's ref [22] (GTrm, Eqs 11-18), with the recurrent
query gate (R-GTrm, Eqs 19-27) and the STGD kernel branch (Eqs 30-36) as optional parts of the same layer.

One layer on a :class:`LayerGraph` (readings of the equations: docs/paper-notes.md, "GTrm"):

* per-dimension score on each edge ``j -> i``: ``s_ij = (Q_i ⊙ K_j) / sqrt(d_k) ⊙ E e_ij``  ``[E, H, d_k]``;
* logit ``a_ij = sum_dk s_ij`` (``clamp(-5, 5)`` with ``softmax="clamp5"``), segment softmax over the
  in-edges of ``i`` (Eq 14); node message ``sum_j w_ij V h_j`` (source value: the Eq 11 typo fixed);
* ``h' = Norm(h + O_h concat_k(...))``, ``h_out = Norm(h' + FFN(h'))`` (Eqs 12, 13);
* ``e' = Norm(e + O_e concat_k s_ij)``, ``e_out = Norm(e' + FFN_e(e'))`` (Eqs 16-18, ref [22] residual).

With ``recurrent=True`` the query ``Q_i`` is replaced by the gated ``Q̂_i`` (Eqs 23-24, 34-36), see
:mod:`finsta_core.nn.recurrent`. All frames of all videos are one disjoint graph: O(E d + N d^2) per layer.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from finsta_core.config import FinstaConfig
from finsta_core.nn.attend import EdgeList
from finsta_core.nn.blocks import FFN, make_norm
from finsta_core.nn.graph import LayerGraph
from finsta_core.nn.recurrent import QueryGate
from finsta_core.nn.stgd import STGDBranch


def edge_attention(q: Tensor, k: Tensor, v: Tensor, ee: Tensor, edges: EdgeList,
                   clamp: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    r"""Ref [22] attention on an edge list: the GTrm writes only its score, :meth:`EdgeList.attend` does the rest.

    .. math::

        s_{ij} = \frac{Q_i \odot K_j}{\sqrt{d_k}} \odot E e_{ij}, \quad
        w_{ij} = \operatorname{softmax}_j \textstyle\sum_{d_k} s_{ij}, \quad
        \operatorname{agg}_i = \sum_j w_{ij} V_j

    Args:
        q, k, v: ``[N, H, d_k]`` (``q`` is ``Q̂`` in the R-GTrm); ee: ``[E, H, d_k]`` projected edge states.
        edges: the ``E`` edges ``j -> i``. clamp: ``clamp(-5, 5)`` the logit (ref [22]'s ``softmax="clamp5"``).
    Returns:
        node aggregate ``[N, H, d_k]``, per-dimension scores ``s [E, H, d_k]``, weights ``w [E, H]``.
    """
    s = edges.targets(q) * edges.sources(k) * (ee / math.sqrt(q.shape[-1]))  # s_ij (Eqs 14, 22; ref [22])
    logit = s.sum(-1)  # a_ij = sum_dk s_ij  (Eqs 14, 22)
    if clamp:
        logit = logit.clamp(-5.0, 5.0)  # ref [22] clamp before exp (Eq 14 variant)
    agg, w = edges.attend(logit, v)  # w_ij = softmax_j a_ij; sum_j w_ij V_j  (Eqs 11, 14 / 19, 22)
    return agg, s, w


class GTrmLayer(nn.Module):
    """One GTrm / R-GTrm / STGD-GTrm layer (Eqs 11-36).

    Args:
        d, heads: width and heads (``d_k = d / heads``).
        ffn_mult, dropout, norm: FFN width multiple, dropout, ``layer`` | ``batch`` norm.
        softmax: ``stable`` (max-subtracted) or ``clamp5`` (ref [22]).
        recurrent: add the query gate of Eqs 23-24 (R-GTrm).
        stgd: add the STGD kernel branch of Eqs 30-33 and its gate term (Eqs 34-36); needs ``recurrent``.
        gate, recurrence, gate_bias_init, stgd_attention, sigma_range, eps: see :class:`FinstaConfig`.
    """

    def __init__(self, d: int, heads: int, ffn_mult: int = 2, dropout: float = 0.0, norm: str = "layer",
                 softmax: str = "stable", recurrent: bool = False, stgd: bool = False, gate: str = "convex",
                 recurrence: str = "parallel", gate_bias_init: float = 1.0, stgd_attention: str = "additive",
                 sigma_range: tuple[float, float] = (0.25, 32.0), eps: float = 1e-6) -> None:
        super().__init__()
        if stgd and not recurrent:
            raise ValueError("the STGD branch modifies the recurrent query gate: it needs recurrent=True")
        self.d, self.h, self.dk = d, heads, d // heads
        self.clamp = softmax == "clamp5"
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.e_proj = nn.Linear(d, d, bias=False)
        self.o_h = nn.Linear(d, d)
        self.o_e = nn.Linear(d, d)
        self.norm_h1, self.norm_h2 = make_norm(norm, d), make_norm(norm, d)
        self.norm_e1, self.norm_e2 = make_norm(norm, d), make_norm(norm, d)
        self.ffn_h = FFN(d, ffn_mult, dropout)
        self.ffn_e = FFN(d, ffn_mult, dropout)
        self.drop = nn.Dropout(dropout)
        self.gate = QueryGate(heads, self.dk, with_z=stgd, mode=gate, recurrence=recurrence,
                              bias_init=gate_bias_init) if recurrent else None
        self.stgd = STGDBranch(d, heads, ffn_mult, dropout, norm, stgd_attention, sigma_range, eps) if stgd else None

    @classmethod
    def from_config(cls, cfg: FinstaConfig, recurrent: bool = False, stgd: bool = False) -> GTrmLayer:
        """A GTrm (``recurrent=False``), R-GTrm or STGD-GTrm layer with every switch read from ``cfg``."""
        return cls(cfg.d_model, cfg.heads, cfg.ffn_mult, cfg.dropout, cfg.norm, cfg.softmax, recurrent=recurrent,
                   stgd=stgd, gate=cfg.gate, recurrence=cfg.recurrence, gate_bias_init=cfg.gate_bias_init,
                   stgd_attention=cfg.stgd_attention, sigma_range=cfg.stgd_sigma_range, eps=cfg.stgd_eps)

    def forward(self, h: Tensor, e: Tensor, g: LayerGraph, e_aux: Tensor | None = None
                ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """``h [N, d]``, ``e [E_stream, d]`` (``e_aux [2, d]``: self / read edge-type embeddings for the static
        edges after ``g.num_stream``) -> updated ``h``, ``e`` and detached diagnostics."""
        n, shape = h.shape[0], (-1, self.h, self.dk)
        q, k, v = self.qkv(h).view(n, 3, self.h, self.dk).unbind(1)  # Q_i, K_j, V_j = W h  (Eq 15)
        diag: dict[str, Tensor] = {}
        if self.gate is not None:
            z = zmask = None
            if self.stgd is not None:
                z, zmask, sd = self.stgd(q, k, v, g)  # Z (Eqs 30-33)
                diag.update(sd)
            q, gd = self.gate(q, k, g, z, zmask)  # Q̂ (Eqs 23-24, 34-36)
            diag.update(gd)
        ee = g.edge_rows(self.e_proj(e), None if e_aux is None else self.e_proj(e_aux))  # E e_ij (Eqs 14, 22)
        agg, s, _ = edge_attention(q, k, v, ee.view(shape), g.edges, self.clamp)
        h1 = self.norm_h1(h + self.drop(self.o_h(agg.reshape(n, self.d))))  # Eqs 11-12 / 19-20 (O_h concat_k)
        h_out = self.norm_h2(h1 + self.drop(self.ffn_h(h1)))  # Eq 13 / 21
        ns = g.num_stream
        e1 = self.norm_e1(e + self.drop(self.o_e(s[:ns].reshape(-1, self.d))))  # Eqs 16-17 / 25-26 (s, not w)
        e_out = self.norm_e2(e1 + self.drop(self.ffn_e(e1)))  # Eq 18 / 27 (residual to e', ref [22])
        return h_out, e_out, diag
