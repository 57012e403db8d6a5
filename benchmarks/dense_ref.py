"""Dense masked O(N^2) implementation of one GTrm / R-GTrm / STGD layer (same math as
``finsta_core.nn.gtrm.GTrmLayer``; same weights), used as the benchmark baseline."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from finsta_core.nn.graph import SELF_EDGE, LayerGraph
from finsta_core.nn.gtrm import GTrmLayer


def dense_layer(layer: GTrmLayer, h: Tensor, e: Tensor, g: LayerGraph, e_aux: Tensor) -> tuple[Tensor, Tensor]:
    """``e [E_stream, d]`` stream edge states, ``e_aux [2, d]`` static self / readout edge embeddings."""
    ns = g.num_stream
    e_all = torch.cat([e, e_aux[g.edge_type[ns:] - SELF_EDGE]], 0)
    n, hh, dk, d = h.shape[0], layer.h, layer.dk, layer.d
    q, k, v = layer.qkv(h).view(n, 3, hh, dk).unbind(1)
    src, dst = g.edge_index
    if layer.gate is not None:
        z = zmask = None
        if layer.stgd is not None:
            st = layer.stgd
            nb = torch.zeros(n, n, dtype=h.dtype, device=h.device)
            nb[g.stgd_pairs[1], g.stgd_pairs[0]] = 1.0
            disp = g.disp.to(h.dtype)
            m = (nb * disp[None, :]).sum(1) / nb.sum(1).clamp_min(1)
            zmask = torch.zeros(n, dtype=torch.bool, device=h.device)
            zmask[g.stgd_nodes] = True
            logk = -disp[:, None] / (st.sigma[None, :] * (m[:, None] + st.eps)) * zmask[:, None]
            att = nb.bool() | torch.diag(zmask)
            logit = torch.einsum("ihd,jhd->ijh", q, k) / math.sqrt(dk) + logk[None]
            w = torch.softmax(logit.masked_fill(~att[..., None], float("-inf")), 1).nan_to_num(0.0)
            zb = st.o_z(torch.einsum("ijh,jhd->ihd", w, v).reshape(n, d))
            z = (st.norm(st.ffn(zb) + zb) * zmask[:, None]).view(n, hh, dk)
        q, _ = layer.gate(q, k, g, z, zmask)
    ee = torch.zeros(n, n, hh, dk, dtype=h.dtype, device=h.device)
    mask = torch.zeros(n, n, dtype=torch.bool, device=h.device)
    ee = ee.index_put((dst, src), layer.e_proj(e_all).view(-1, hh, dk))
    mask[dst, src] = True
    s = q[:, None] * k[None, :] * ee / math.sqrt(dk)
    logit = s.sum(-1).masked_fill(~mask[..., None], float("-inf"))
    w = torch.softmax(logit, dim=1).nan_to_num(0.0)
    agg = torch.einsum("ijh,jhd->ihd", w, v).reshape(n, d)
    h1 = layer.norm_h1(h + layer.o_h(agg))
    h_out = layer.norm_h2(h1 + layer.ffn_h(h1))
    e1 = layer.norm_e1(e + layer.o_e(s[dst[:ns], src[:ns]].reshape(-1, d)))
    return h_out, layer.norm_e2(e1 + layer.ffn_e(e1))
