"""The R-GTrm query gate (Eqs 23-24) and its STGD extension (Eqs 34-36); readings in docs/paper-notes.md
("R-GTrm", "STGD").

Per node ``i`` and head ``k`` (scalar gates, O(N d)):

* ``a_q = <w_q, Q_i ⊙ K_i> / sqrt(d_k) + b_q`` (Eq 24 / 35), ``a_z = <w_z, Z_i ⊙ K_i> / sqrt(d_k) + b_z`` (Eq 36);
* ``convex`` (default): ``π = softmax([0, a_q, a_z])`` and ``Q̂ = π_prev Q_prev(i) + π_q Q_i + π_z Z_i``; a missing
  predecessor or kernel masks its logit to -inf. Without STGD this is exactly Eq 23 with
  ``η = sigmoid(a_q)``; without a predecessor ``Q̂ = Q``.
* ``literal``: ``Q̂ = (1 - η_q - η_z) Q_prev + η_q Q + η_z Z`` with independent sigmoids (Eq 34 as printed).

``recurrence="parallel"`` mixes the raw predecessor query of the same layer (all frames at once, Eq 23 read
literally); ``"query_scan"`` mixes the predecessor's *gated* query ``Q̂_prev``, a first-order linear
recurrence along each track evaluated level by level (at most T steps of one fused update each).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from finsta_core.nn.graph import LayerGraph


class QueryGate(nn.Module):
    """Gated query fusion with the tracked predecessor (and the STGD feature when ``with_z``)."""

    def __init__(self, heads: int, dk: int, with_z: bool = False, mode: str = "convex",
                 recurrence: str = "parallel", bias_init: float = 1.0) -> None:
        super().__init__()
        self.mode, self.recurrence, self.dk = mode, recurrence, dk
        self.enabled = True  # False: Q̂ = Q (the layer is then exactly a GTrm layer)
        self.w_q = nn.Parameter(torch.randn(heads, dk) / math.sqrt(dk))
        self.b_q = nn.Parameter(torch.full((heads,), float(bias_init)))
        if with_z:
            self.w_z = nn.Parameter(torch.randn(heads, dk) / math.sqrt(dk))
            self.b_z = nn.Parameter(torch.zeros(heads))

    def coefficients(self, q: Tensor, k: Tensor, has_prev: Tensor, z: Tensor | None,
                     zmask: Tensor | None) -> Tensor:
        """Mixing weights ``[N, H, 3]`` for (previous query, own query, STGD feature)."""
        scale = 1.0 / math.sqrt(self.dk)
        a_q = (q * k * self.w_q).sum(-1) * scale + self.b_q  # a_q = <w_q, Q_i ⊙ K_i>/sqrt(d_k) + b_q (Eqs 24, 35)
        if z is not None:
            a_z = (z * k * self.w_z).sum(-1) * scale + self.b_z  # a_z = <w_z, Z_i ⊙ K_i>/sqrt(d_k) + b_z (Eq 36)
            zm = zmask.unsqueeze(1) & has_prev.unsqueeze(1)
        else:
            a_z, zm = torch.zeros_like(a_q), torch.zeros_like(a_q, dtype=torch.bool)
        pm = has_prev.unsqueeze(1).expand_as(a_q)
        if self.mode == "convex":
            neg = torch.finfo(a_q.dtype).min
            logits = torch.stack([torch.where(pm, torch.zeros_like(a_q), torch.full_like(a_q, neg)), a_q,
                                  torch.where(zm, a_z, torch.full_like(a_z, neg))], -1)
            return logits.softmax(-1)  # π = softmax([0, a_q, a_z]), masked: convex form of Eqs 23 / 34
        eta_q = torch.sigmoid(a_q)  # η_q (Eqs 24, 35)
        eta_z = torch.sigmoid(a_z) * zm  # η_z (Eq 36)
        c = torch.stack([1 - eta_q - eta_z, eta_q, eta_z], -1)  # coefficients of Eq 34 as printed
        own = torch.zeros_like(c)
        own[..., 1] = 1.0
        return torch.where(pm.unsqueeze(-1), c, own)

    def forward(self, q: Tensor, k: Tensor, g: LayerGraph, z: Tensor | None = None,
                zmask: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """``q, k [N, H, d_k]`` -> ``Q̂ [N, H, d_k]`` and diagnostics (mean gate weights on tracked nodes)."""
        if not self.enabled:
            return q, {}
        has_prev = g.prev >= 0
        if not bool(has_prev.any()):
            return q, {}
        c = self.coefficients(q, k, has_prev, z, zmask).unsqueeze(-1)  # [N, H, 3, 1]
        zz = torch.zeros_like(q) if z is None else z
        prev = g.prev.clamp_min(0)
        if self.recurrence == "parallel":
            # Q̂ = π_prev Q_prev(i) + π_q Q_i + π_z Z_i  (Eq 23; Eq 34 with the STGD term)
            q_hat = c[:, :, 0] * q.index_select(0, prev) + c[:, :, 1] * q + c[:, :, 2] * zz
        else:
            q_hat = q
            base = c[:, :, 1] * q + c[:, :, 2] * zz
            for idx in g.levels:
                upd = c[idx, :, 0] * q_hat.index_select(0, prev[idx]) + base[idx]  # Eqs 23 / 34 on Q̂_prev
                q_hat = q_hat.index_copy(0, idx, upd)
        with torch.no_grad():
            sel = c[has_prev, :, :, 0]
            diag = {"gate_prev": sel[..., 0].mean(), "gate_own": sel[..., 1].mean()}
            if z is not None:
                diag["gate_stgd"] = sel[..., 2].mean()
        return q_hat, diag
