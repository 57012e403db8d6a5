"""Dense reference forms of the encoder layers, for tests and benchmarks (O(N^2) memory; never used in training).

Each function recomputes one layer of :mod:`finsta_core.nn` with the layer's own weights on masked dense
``N x N`` grids (an edge ``j -> i`` is the entry ``[i, j]``), written plainly and without the edge-list helper
(:mod:`finsta_core.nn.attend`) or any scatter primitive, so that agreement with the edge-list layers checks
the gather / segment-softmax / scatter path. The gate is written with a dense predecessor matrix ``P``
(``P[i, prev(i)] = 1``). Edge lists must not repeat a pair ``(j, i)`` (a dense grid has one slot per pair).

* :func:`dense_gtrm_layer`: GTrm / R-GTrm / STGD-GTrm (Eqs 11-36, as fixed in ``docs/equations.md``);
* :func:`dense_gate`, :func:`dense_stgd`: the query gate (Eqs 23-24, 34-36) and the STGD branch (Eqs 30-33);
* :func:`dense_gat_layer`: the GAT replacement of Table 8 (ref [39]).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from finsta_core.nn.baselines import GATLayer
from finsta_core.nn.graph import SELF_EDGE, LayerGraph
from finsta_core.nn.gtrm import GTrmLayer
from finsta_core.nn.recurrent import QueryGate
from finsta_core.nn.stgd import STGDBranch


def _grid(edge_index: Tensor, n: int) -> tuple[Tensor, Tensor, Tensor]:
    """Target, source ids and the ``[n, n]`` mask with ``mask[i, j]`` for every edge ``j -> i``."""
    src, dst = edge_index
    mask = torch.zeros(n, n, dtype=torch.bool, device=edge_index.device)
    mask[dst, src] = True
    return dst, src, mask


def _masked_softmax(logit: Tensor, mask: Tensor) -> Tensor:
    """Softmax over ``j`` of ``logit [N, N, H]`` where ``mask [N, N]``; a row without entries is all 0."""
    return torch.softmax(logit.masked_fill(~mask[..., None], float("-inf")), dim=1).nan_to_num(0.0)


def dense_stgd(st: STGDBranch, q: Tensor, k: Tensor, v: Tensor, g: LayerGraph) -> tuple[Tensor, Tensor]:
    """Eqs 30-33 with a dense neighbour matrix: ``Z [N, H, d_k]`` (0 off the kernel objects) and its mask ``[N]``."""
    n, hh, dk = q.shape
    nb = torch.zeros(n, n, dtype=q.dtype, device=q.device)
    nb[g.stgd_pairs[1], g.stgd_pairs[0]] = 1.0
    disp = g.disp.to(q.dtype)
    m = (nb * disp[None, :]).sum(1) / nb.sum(1).clamp_min(1)
    kern = torch.zeros(n, dtype=torch.bool, device=q.device)
    kern[g.stgd_nodes] = True
    logk = -disp[:, None] / (st.sigma[None, :] * (m[:, None] + st.eps)) * kern[:, None]
    dot = torch.einsum("ihd,jhd->ijh", q, k) / math.sqrt(dk)
    logit = dot + logk[None] if st.attention == "additive" else dot * logk.exp()[None]
    w = _masked_softmax(logit, nb.bool() | torch.diag(kern))
    zb = st.o_z(torch.einsum("ijh,jhd->ihd", w, v).reshape(n, hh * dk))
    z = st.norm(st.ffn(zb) + zb) * kern[:, None]
    return z.view(n, hh, dk), kern


def dense_gate(gate: QueryGate, q: Tensor, k: Tensor, prev: Tensor, z: Tensor | None = None,
               zmask: Tensor | None = None) -> Tensor:
    """``Q̂ [N, H, d_k]`` of Eqs 23-24 / 34-36 (``convex`` or ``literal``, ``parallel`` or ``query_scan``)."""
    n, _, dk = q.shape
    has_prev = prev >= 0
    p = torch.zeros(n, n, dtype=q.dtype, device=q.device)
    p[has_prev.nonzero().flatten(), prev[has_prev]] = 1.0
    a_q = (q * k * gate.w_q).sum(-1) / math.sqrt(dk) + gate.b_q
    zz = torch.zeros_like(q) if z is None else z
    zm = torch.zeros_like(has_prev) if z is None else zmask & has_prev
    a_z = (zz * k * gate.w_z).sum(-1) / math.sqrt(dk) + gate.b_z if z is not None else torch.zeros_like(a_q)
    if gate.mode == "convex":
        ninf = torch.full_like(a_q, float("-inf"))
        c = torch.stack([torch.where(has_prev[:, None], torch.zeros_like(a_q), ninf), a_q,
                         torch.where(zm[:, None], a_z, ninf)], -1).softmax(-1)
    else:
        eta_q, eta_z = torch.sigmoid(a_q), torch.sigmoid(a_z) * zm[:, None]
        own = torch.tensor([0.0, 1.0, 0.0], dtype=q.dtype, device=q.device)
        c = torch.where(has_prev[:, None, None], torch.stack([1 - eta_q - eta_z, eta_q, eta_z], -1), own)
    c = c.unsqueeze(-1)
    base = c[:, :, 1] * q + c[:, :, 2] * zz
    q_hat = c[:, :, 0] * torch.einsum("ij,jhd->ihd", p, q) + base
    if gate.recurrence == "query_scan":  # fixed point of Q̂ = c_prev P Q̂ + base (reached after the chain depth)
        for _ in range(n):
            nxt = c[:, :, 0] * torch.einsum("ij,jhd->ihd", p, q_hat) + base
            if torch.equal(nxt, q_hat):
                break
            q_hat = nxt
    return q_hat


def dense_gtrm_layer(layer: GTrmLayer, h: Tensor, e: Tensor, g: LayerGraph,
                     e_aux: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One GTrm / R-GTrm / STGD-GTrm layer (eval mode: no dropout) on dense grids.

    Args:
        h: ``[N, d]``; e: ``[E_stream, d]`` stream edge states; e_aux: ``[2, d]`` self / readout edge embeddings.
    Returns:
        ``h_out [N, d]`` and ``e_out [E_stream, d]``.
    """
    n, hh, dk, d, ns = h.shape[0], layer.h, layer.dk, layer.d, g.num_stream
    q, k, v = layer.qkv(h).view(n, 3, hh, dk).unbind(1)
    if layer.gate is not None and layer.gate.enabled:
        z = zmask = None
        if layer.stgd is not None and g.stgd_nodes.numel():
            z, zmask = dense_stgd(layer.stgd, q, k, v, g)
        q = dense_gate(layer.gate, q, k, g.prev, z, zmask)
    e_all = e if ns == g.num_edges else torch.cat([e, e_aux[g.edge_type[ns:] - SELF_EDGE]], 0)
    dst, src, mask = _grid(g.edge_index, n)
    ee = torch.zeros(n, n, hh, dk, dtype=h.dtype, device=h.device).index_put((dst, src),
                                                                            layer.e_proj(e_all).view(-1, hh, dk))
    s = q[:, None] * k[None, :] * ee / math.sqrt(dk)
    logit = s.sum(-1).clamp(-5.0, 5.0) if layer.clamp else s.sum(-1)
    w = _masked_softmax(logit, mask)
    h1 = layer.norm_h1(h + layer.o_h(torch.einsum("ijh,jhd->ihd", w, v).reshape(n, d)))
    h_out = layer.norm_h2(h1 + layer.ffn_h(h1))
    e1 = layer.norm_e1(e + layer.o_e(s[dst[:ns], src[:ns]].reshape(-1, d)))
    return h_out, layer.norm_e2(e1 + layer.ffn_e(e1))


def dense_gat_layer(layer: GATLayer, h: Tensor, g: LayerGraph) -> Tensor:
    """The GAT replacement (ref [39]) on a dense grid: ``h [N, d] -> [N, d]`` (eval mode)."""
    n = h.shape[0]
    x = layer.w(h).view(n, layer.h, layer.dk)
    _, _, mask = _grid(g.edge_index, n)
    logit = nn.functional.leaky_relu((x * layer.a_dst).sum(-1)[:, None] + (x * layer.a_src).sum(-1)[None, :], 0.2)
    out = nn.functional.elu(torch.einsum("ijh,jhd->ihd", _masked_softmax(logit, mask), x).reshape(n, layer.d))
    h1 = layer.norm1(h + out)
    return layer.norm2(h1 + layer.ffn(h1))
