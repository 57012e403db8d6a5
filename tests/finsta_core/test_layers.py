"""GTrm / R-GTrm / STGD layers against dense masked references (O(N^2), written plainly) and invariances."""

import math
from dataclasses import replace

import pytest
import torch

from finsta_core import Finsta, FinstaConfig, collate_graphs
from finsta_core.graphs.batch import chain_root_depth
from finsta_core.nn.graph import SELF_EDGE, build_graphs
from finsta_core.nn.gtrm import GTrmLayer
from finsta_core.nn.stgd import motion_kernel
from finsta_core.testing import random_hsg

D, H = 16, 4


def full_edges(e, e_aux, g):
    """Stream edge states followed by the static self / readout edge embeddings."""
    return torch.cat([e, e_aux[g.edge_type[g.num_stream:] - SELF_EDGE]], 0)


def dense_attention(layer, h, e, edge_index, q, ns):
    """Dense ref [22] layer: s[i, j] = (q_i * k_j) / sqrt(dk) * E e_ij on a masked N x N grid (``e`` for every
    edge; edge outputs for the first ``ns`` stream edges)."""
    n, dk = h.shape[0], D // H
    _, k, v = layer.qkv(h).view(n, 3, H, dk).unbind(1)
    ee = torch.zeros(n, n, H, dk, dtype=h.dtype)
    mask = torch.zeros(n, n, dtype=torch.bool)
    src, dst = edge_index
    ee[dst, src] = layer.e_proj(e).view(-1, H, dk)
    mask[dst, src] = True
    s = q[:, None] * k[None, :] * ee / math.sqrt(dk)
    logit = s.sum(-1).masked_fill(~mask[..., None], float("-inf"))
    w = torch.softmax(logit, dim=1).nan_to_num(0.0)
    agg = torch.einsum("ijh,jhd->ihd", w, v).reshape(n, D)
    h1 = layer.norm_h1(h + layer.o_h(agg))
    h_out = layer.norm_h2(h1 + layer.ffn_h(h1))
    e1 = layer.norm_e1(e[:ns] + layer.o_e(s[dst[:ns], src[:ns]].reshape(-1, D)))
    return h_out, layer.norm_e2(e1 + layer.ffn_e(e1))


def dense_stgd(layer, q, k, v, g):
    """Eqs 30-33 with dense neighbour matrices."""
    n, dk, st = q.shape[0], D // H, layer.stgd
    nb = torch.zeros(n, n, dtype=q.dtype)
    nb[g.stgd_pairs[1], g.stgd_pairs[0]] = 1.0
    m = (nb * g.disp[None, :].to(q.dtype)).sum(1) / nb.sum(1).clamp_min(1)
    logk = -g.disp[:, None].to(q.dtype) / (st.sigma[None, :] * (m[:, None] + st.eps))
    kern = torch.zeros(n, dtype=torch.bool)
    kern[g.stgd_nodes] = True
    logk = logk * kern[:, None]
    att = nb.bool() | torch.diag(kern)
    logit = torch.einsum("ihd,jhd->ijh", q, k) / math.sqrt(dk) + logk[None, :, :]
    w = torch.softmax(logit.masked_fill(~att[..., None], float("-inf")), 1).nan_to_num(0.0)
    z = torch.einsum("ijh,jhd->ihd", w, v).reshape(n, D)
    zb = st.o_z(z)
    zz = st.norm(st.ffn(zb) + zb) * kern[:, None]
    return zz.view(n, H, dk), kern


def dense_gate(layer, q, k, prev, z=None, zmask=None):
    gate, dk = layer.gate, D // H
    a_q = (q * k * gate.w_q).sum(-1) / math.sqrt(dk) + gate.b_q
    out = q.clone()
    for i in range(q.shape[0]):
        p = int(prev[i])
        if p < 0:
            continue
        logits = [torch.zeros(H, dtype=q.dtype), a_q[i]]
        vals = [q[p], q[i]]
        if z is not None and zmask[i]:
            logits.append((z[i] * k[i] * gate.w_z).sum(-1) / math.sqrt(dk) + gate.b_z)
            vals.append(z[i])
        pi = torch.softmax(torch.stack(logits, -1), -1)
        out[i] = sum(pi[:, j : j + 1] * vals[j] for j in range(len(vals)))
    return out


def _dsg_graph(cfg, seed=0):
    b = collate_graphs([random_hsg(seed, num_frames=4, num_objects=3), random_hsg(seed + 1, num_frames=3,
                                                                                   num_objects=4)])
    return build_graphs(cfg, b)["dsg"]


@pytest.mark.parametrize("kind", ["gtrm", "rgtrm", "stgd"])
def test_layer_matches_dense_reference(kind):
    cfg = FinstaConfig.preset("small", d_model=D, heads=H)
    g = _dsg_graph(cfg)
    layer = GTrmLayer(D, H, recurrent=kind != "gtrm", stgd=kind == "stgd").double().eval()
    h = torch.randn(g.num_nodes, D, dtype=torch.float64)
    e = torch.randn(g.num_stream, D, dtype=torch.float64)
    e_aux = torch.randn(2, D, dtype=torch.float64)
    assert g.num_stream < g.num_edges
    ho, eo, _ = layer(h, e, g, e_aux)
    q, k, v = layer.qkv(h).view(-1, 3, H, D // H).unbind(1)
    if kind == "gtrm":
        qh = q
    elif kind == "rgtrm":
        qh = dense_gate(layer, q, k, g.prev)
    else:
        z, zm = dense_stgd(layer, q, k, v, g)
        qh = dense_gate(layer, q, k, g.prev, z, zm)
    hr, er = dense_attention(layer, h, full_edges(e, e_aux, g), g.edge_index, qh, g.num_stream)
    torch.testing.assert_close(ho, hr, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(eo, er, atol=1e-5, rtol=1e-5)


def test_rgtrm_with_gate_disabled_is_exactly_gtrm():
    cfg = FinstaConfig.preset("small", d_model=D, heads=H)
    g = _dsg_graph(cfg)
    plain, rec = GTrmLayer(D, H), GTrmLayer(D, H, recurrent=True, stgd=True)
    rec.load_state_dict(plain.state_dict(), strict=False)
    rec.gate.enabled = False
    h, e, ea = torch.randn(g.num_nodes, D), torch.randn(g.num_stream, D), torch.randn(2, D)
    a, b = plain(h, e, g, ea), rec(h, e, g, ea)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_query_scan_matches_sequential_loop():
    cfg = FinstaConfig.preset("small", d_model=D, heads=H)
    g = _dsg_graph(cfg)
    layer = GTrmLayer(D, H, recurrent=True, recurrence="query_scan").double()
    h = torch.randn(g.num_nodes, D, dtype=torch.float64)
    q, k, _ = layer.qkv(h).view(-1, 3, H, D // H).unbind(1)
    got, _ = layer.gate(q, k, g)
    _, depth = chain_root_depth(g.prev)
    ref = q.clone()
    c = layer.gate.coefficients(q, k, g.prev >= 0, None, None)
    for i in torch.argsort(depth).tolist():  # predecessors first
        if g.prev[i] >= 0:
            ref[i] = c[i, :, 0:1] * ref[g.prev[i]] + c[i, :, 1:2] * q[i]
    torch.testing.assert_close(got, ref)


@pytest.mark.parametrize("mode", ["convex", "literal"])
def test_gate_coefficients_in_range(mode):
    layer = GTrmLayer(D, H, recurrent=True, stgd=True, gate=mode)
    n = 50
    q, k, z = torch.randn(n, H, D // H), torch.randn(n, H, D // H), torch.randn(n, H, D // H)
    has_prev = torch.rand(n) > 0.3
    zmask = torch.rand(n) > 0.5
    c = layer.gate.coefficients(q * 5, k * 5, has_prev, z * 5, zmask)
    torch.testing.assert_close(c.sum(-1), torch.ones(n, H))
    if mode == "convex":
        assert (c >= 0).all() and (c <= 1).all()
    assert torch.equal(c[~has_prev][..., 1], torch.ones_like(c[~has_prev][..., 1]))
    assert (c[~(has_prev & zmask)][..., 2] == 0).all()


def _full_cfg(**kw):
    return FinstaConfig.preset("small", d_model=D, heads=H, **kw)


def test_model_permutation_equivariance_and_locality():
    """Permuting a GTrm graph's nodes permutes the outputs; a non-neighbour change leaves a node's
    one-layer output unchanged."""
    layer = GTrmLayer(D, H).double().eval()
    cfg = _full_cfg()
    g = build_graphs(cfg, collate_graphs([random_hsg(3, num_frames=2, num_objects=3)]))["tsg"]
    h = torch.randn(g.num_nodes, D, dtype=torch.float64)
    e = torch.randn(g.num_edges, D, dtype=torch.float64)
    g = replace(g, num_stream=g.num_edges)  # every edge carries a state here
    ho, eo, _ = layer(h, e, g)
    perm = torch.randperm(g.num_nodes)
    inv = torch.argsort(perm)
    gp = replace(g, edge_index=inv[g.edge_index])
    hp, ep, _ = layer(h[perm], e, gp)
    torch.testing.assert_close(hp, ho[perm])
    torch.testing.assert_close(ep, eo)
    # locality
    nbrs = set(g.edge_index[0, g.edge_index[1] == 0].tolist())
    far = [j for j in range(g.num_nodes) if j not in nbrs and j != 0][0]
    h2 = h.clone()
    h2[far] += 10.0
    assert torch.allclose(layer(h2, e, g)[0][0], ho[0])


def test_batch_independence():
    """A graph's outputs do not depend on which other graphs share the batch."""
    cfg = _full_cfg()
    model = Finsta(cfg).eval()
    g1 = random_hsg(1, num_frames=4, num_objects=3)
    others = [random_hsg(s, num_frames=3 + s % 2, num_objects=2 + s % 3) for s in (5, 6)]
    a = model.encode(collate_graphs([g1]))
    b = model.encode(collate_graphs(others[:1] + [g1] + others[1:]))
    for name in ("tsg", "hsg_text"):
        torch.testing.assert_close(a[1][name][0], b[1][name][1], atol=1e-5, rtol=1e-5)
    f0 = int((b[0].dsg.frame_graph == 0).sum())
    torch.testing.assert_close(a[1]["dsg"], b[1]["dsg"][f0:f0 + 4], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a[1]["hsg"], b[1]["hsg"][f0:f0 + 4], atol=1e-5, rtol=1e-5)


def test_stgd_kernel_shift_invariance_and_motion():
    cfg = _full_cfg()
    base = random_hsg(2, num_frames=4, num_objects=4)
    shifted = random_hsg(2, num_frames=4, num_objects=4)
    shifted.dsg.boxes = shifted.dsg.boxes + torch.tensor([7.0, -5.0, 7.0, -5.0]) * (shifted.dsg.node_type == 0
                                                                                  ).unsqueeze(1)
    sigma = torch.tensor([1.0])
    ks = []
    for hsg in (base, shifted):
        g = build_graphs(cfg, collate_graphs([hsg], validate=False))["dsg"]
        ks.append(motion_kernel(g.disp, g.stgd_pairs, g.stgd_nodes, sigma, 1e-4)[g.stgd_nodes])
    torch.testing.assert_close(ks[0], ks[1], atol=1e-6, rtol=1e-5)
    # camera pan: every box moves by the same per-frame offset -> D_i == m_i -> kappa = exp(-1/(1+eps/m))
    pan = random_hsg(2, num_frames=4, num_objects=4)
    d = pan.dsg
    obj = (d.node_type == 0)
    start = d.boxes.clone()
    first = d.boxes[obj & (d.frame == 0)]
    for t in range(4):
        sel = obj & (d.frame == t)
        d.boxes[sel] = first + torch.tensor([8.0, 3.0, 8.0, 3.0]) * t
    g = build_graphs(cfg, collate_graphs([pan], validate=False))["dsg"]
    k_pan = motion_kernel(g.disp, g.stgd_pairs, g.stgd_nodes, sigma, 1e-4)[g.stgd_nodes].exp()
    dd = g.disp[g.stgd_nodes].unsqueeze(1)
    assert torch.allclose(dd, dd[0])  # the pan moves every object alike: kappa = exp(-D / (D + eps))
    torch.testing.assert_close(k_pan, torch.exp(-dd / (dd + 1e-4)))
    # one object moving against static neighbours gets a lower kernel than its static neighbours
    for t in range(4):
        sel = obj & (d.frame == t)
        b = first.clone()
        b[1] += torch.tensor([15.0, 0.0, 15.0, 0.0]) * t
        d.boxes[sel] = b
    del start
    g = build_graphs(cfg, collate_graphs([pan], validate=False))["dsg"]
    k = motion_kernel(g.disp, g.stgd_pairs, g.stgd_nodes, sigma, 1e-4)[:, 0].exp()
    mover = [i for i in g.stgd_nodes.tolist() if i % 11 == 1]
    static = [i for i in g.stgd_nodes.tolist() if i % 11 in (0, 2, 3)]
    assert max(k[mover]) < min(k[static])
