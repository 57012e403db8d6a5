"""STGD-GTrm branch (Eqs 30-33; readings in docs/paper-notes.md, "STGD"): a per-object Gaussian motion kernel
relative to the object's neighbours and a kernel-weighted attention over those neighbours.

Kernel (Eq 30, per head ``k``): ``κ_i^k = exp(-D_i / (σ_k (m_i + ε)))`` with ``D_i = ||p_i - p_prev(i)||^2`` the
squared displacement of the normalised box centre since the previous keyframe and ``m_i`` the mean ``D_j`` of
the tracked objects sharing a relation with ``i`` (all other tracked objects of the keyframe when none).
A global camera pan moves everything alike, so ``D_i / m_i`` (and ``κ``) does not change; an object moving
against static neighbours gets a small ``κ``. ``σ_k = softplus(ρ_k)``, initialised on a geometric ladder.

Attention (Eq 31): over ``N_i ∪ {i}``, ``logit_ij = <Q_i, K_j> / sqrt(d_k) + log κ_j`` (``additive``) or
``sum(Q_i ⊙ K_j) / sqrt(d_k) · κ_j`` (``multiplicative``); ``z_i = sum_j softmax_j(logit) V_j``.
Eqs 32-33 per node: ``Z̄ = O_z concat_k z``, ``Z = Norm(FFN(Z̄) + Z̄)``. Computed for all frames at once.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from finsta_core.graphs.scatter import scatter_mean
from finsta_core.nn.attend import EdgeList
from finsta_core.nn.blocks import FFN, make_norm
from finsta_core.nn.graph import LayerGraph


def motion_kernel(disp: Tensor, pairs: Tensor, nodes: Tensor, sigma: Tensor, eps: float) -> Tensor:
    """``log κ`` of Eq 30 for every node ``[N, H]`` (meaningful on ``nodes``; 0 elsewhere).

    Args:
        disp: ``[N]`` squared displacement. pairs: ``[2, P]`` neighbour j -> object i. sigma: ``[H]``.
    """
    n = disp.numel()
    m = scatter_mean(disp.index_select(0, pairs[0]), pairs[1], n)  # m_i = mean_{j in N_i} D_j  (Eq 30)
    logk = -disp.unsqueeze(1) / (sigma.unsqueeze(0) * (m.unsqueeze(1) + eps))  # log κ_i^k = -D_i/(σ_k(m_i+ε)) (Eq 30)
    mask = torch.zeros(n, 1, dtype=disp.dtype, device=disp.device)
    mask[nodes] = 1.0
    return logk * mask


class STGDBranch(nn.Module):
    """Produces the STGD feature ``Z [N, H, d_k]`` and its mask ``[N]`` for the query gate (Eq 34)."""

    def __init__(self, d: int, heads: int, ffn_mult: int = 2, dropout: float = 0.0, norm: str = "layer",
                 attention: str = "additive", sigma_range: tuple[float, float] = (0.25, 32.0),
                 eps: float = 1e-6) -> None:
        super().__init__()
        self.h, self.dk, self.eps, self.attention = heads, d // heads, eps, attention
        sig = torch.logspace(math.log10(sigma_range[0]), math.log10(sigma_range[1]), heads)
        self.rho = nn.Parameter(torch.log(torch.expm1(sig)))  # softplus^-1
        self.o_z = nn.Linear(d, d)
        self.ffn = FFN(d, ffn_mult, dropout)
        self.norm = make_norm(norm, d)

    @property
    def sigma(self) -> Tensor:
        """``σ_k = softplus(ρ_k)`` ``[H]`` (Eq 30's σ^z, one bandwidth per head)."""
        return nn.functional.softplus(self.rho)  # σ_k (Eq 30)

    def forward(self, q: Tensor, k: Tensor, v: Tensor, g: LayerGraph) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        n = q.shape[0]
        zmask = torch.zeros(n, dtype=torch.bool, device=q.device)
        if g.stgd_nodes.numel() == 0:
            return torch.zeros_like(q), zmask, {}
        zmask[g.stgd_nodes] = True
        logk = motion_kernel(g.disp, g.stgd_pairs, g.stgd_nodes, self.sigma, self.eps)  # log κ [N, H] (Eq 30)
        nodes = g.stgd_nodes
        # attention of each kernel object i over N_i ∪ {i}: neighbour pairs j -> i plus one self pair
        edges = EdgeList(torch.cat([g.stgd_pairs[0], nodes]), torch.cat([g.stgd_pairs[1], nodes]), n)
        dot = (edges.targets(q) * edges.sources(k)).sum(-1) / math.sqrt(self.dk)  # <Q_i, K_j>/sqrt(d_k) (Eq 31)
        lk = edges.sources(logk)  # log κ_j [P, H]
        logit = dot + lk if self.attention == "additive" else dot * lk.exp()  # Eq 31 (κ as prior / as scale)
        z, _ = edges.attend(logit, v)  # z_i = sum_j softmax_j(logit) V_j  [N, H, dk] (Eq 31)
        zb = self.o_z(z.index_select(0, nodes).reshape(nodes.numel(), -1))  # Z̄ = O_z concat_k z (Eq 32)
        zn = self.norm(self.ffn(zb) + zb)  # Z = Norm(FFN(Z̄) + Z̄) (Eq 33)
        out = torch.zeros(n, self.h * self.dk, dtype=q.dtype, device=q.device).index_copy(0, nodes, zn)
        with torch.no_grad():
            kappa = logk[nodes].exp()
        return out.view(n, self.h, self.dk), zmask, {"stgd_kappa": kappa.mean(), "stgd_nodes": torch.tensor(
            float(nodes.numel()))}
