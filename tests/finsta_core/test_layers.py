"""GTrm / R-GTrm / STGD layers against dense masked references (O(N^2), written plainly) and invariances.

``golden_layers.pt`` holds the outputs and gradients of every layer kind recorded from the implementation
before the shared graph-attention helper (``finsta_core.nn.attend``) existed, together with the graphs,
inputs and weights they were computed from (so they do not depend on ``random_hsg``). Regenerate only on an
intended numerical change: ``python tests/finsta_core/test_layers.py --write-golden``.
"""

import math
import sys
from dataclasses import fields, replace
from pathlib import Path

import pytest
import torch

from finsta_core import Finsta, FinstaConfig, collate_graphs
from finsta_core.graphs.batch import chain_root_depth
from finsta_core.nn.attend import EdgeList
from finsta_core.nn.baselines import GATLayer, RGNNLayer
from finsta_core.nn.encoder import GraphEncoder
from finsta_core.nn.graph import LayerGraph, build_graphs
from finsta_core.nn.gtrm import GTrmLayer
from finsta_core.nn.reference import dense_gat_layer, dense_gate, dense_gtrm_layer
from finsta_core.nn.stgd import motion_kernel
from finsta_core.testing import random_hsg

D, H = 16, 4


def loop_gate(layer, q, k, prev, z=None, zmask=None):
    """Eqs 23-24 / 34-36 (convex, parallel) node by node: the plainest form, checks the dense reference gate."""
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


def _graphs(cfg, seed=0):
    b = collate_graphs([random_hsg(seed, num_frames=4, num_objects=3), random_hsg(seed + 1, num_frames=3,
                                                                                   num_objects=4)])
    return build_graphs(cfg, b)


def _dsg_graph(cfg, seed=0):
    return _graphs(cfg, seed)["dsg"]


LAYER_KINDS = {  # name: GTrmLayer keyword arguments
    "gtrm": {},
    "gtrm_clamp5": {"softmax": "clamp5"},
    "rgtrm": {"recurrent": True},
    "rgtrm_literal_scan": {"recurrent": True, "gate": "literal", "recurrence": "query_scan"},
    "stgd": {"recurrent": True, "stgd": True},
    "stgd_multiplicative_scan": {"recurrent": True, "stgd": True, "stgd_attention": "multiplicative",
                                 "recurrence": "query_scan"},
}


@pytest.mark.parametrize("readout", ["cls", "mean"])
@pytest.mark.parametrize("graph", ["tsg", "dsg", "hsg"])
@pytest.mark.parametrize("kind", list(LAYER_KINDS))
def test_layer_matches_dense_reference(kind, graph, readout):
    cfg = FinstaConfig.preset("small", d_model=D, heads=H, temporal_attention_edges=graph == "hsg", readout=readout)
    g = _graphs(cfg)[graph]
    layer = GTrmLayer(D, H, **LAYER_KINDS[kind]).double().eval()
    h = torch.randn(g.num_nodes, D, dtype=torch.float64)
    e = torch.randn(g.num_stream, D, dtype=torch.float64)
    e_aux = torch.randn(2, D, dtype=torch.float64)
    assert g.num_stream < g.num_edges
    ho, eo, _ = layer(h, e, g, e_aux)
    hr, er = dense_gtrm_layer(layer, h, e, g, e_aux)
    torch.testing.assert_close(ho, hr, atol=1e-7, rtol=1e-7)
    torch.testing.assert_close(eo, er, atol=1e-7, rtol=1e-7)


@pytest.mark.parametrize("graph", ["dsg", "hsg"])
def test_gat_matches_dense_reference(graph):
    g = _graphs(FinstaConfig.preset("small", d_model=D, heads=H, readout="cls"))[graph]
    layer = GATLayer(D, H).double().eval()
    h = torch.randn(g.num_nodes, D, dtype=torch.float64)
    e = torch.randn(g.num_stream, D, dtype=torch.float64)
    ho, eo, _ = layer(h, e, g)
    torch.testing.assert_close(ho, dense_gat_layer(layer, h, g), atol=1e-7, rtol=1e-7)
    assert eo is e  # no edge stream


@pytest.mark.parametrize("with_z", [False, True])
def test_dense_reference_gate_matches_node_loop(with_z):
    g = _dsg_graph(FinstaConfig.preset("small", d_model=D, heads=H))
    layer = GTrmLayer(D, H, recurrent=True, stgd=True).double()
    q, k, z = (torch.randn(g.num_nodes, H, D // H, dtype=torch.float64) for _ in range(3))
    zmask = (torch.rand(g.num_nodes) > 0.5) if with_z else None
    z = z if with_z else None
    torch.testing.assert_close(dense_gate(layer.gate, q, k, g.prev, z, zmask), loop_gate(layer, q, k, g.prev, z, zmask))


def test_edge_list_attend_is_softmax_weighted_source_sum():
    """``EdgeList.attend``: per target, softmax over its in-edges, weighted sum of source values; no in-edges: 0."""
    src, dst = torch.tensor([0, 1, 2, 2, 0]), torch.tensor([1, 1, 1, 0, 3])
    edges = EdgeList(src, dst, 5)  # node 2 and node 4 have no in-edges
    logit = torch.randn(5, 2, dtype=torch.float64)
    v = torch.randn(5, 2, 3, dtype=torch.float64)
    agg, w = edges.attend(logit, v)
    for i in range(5):
        m = dst == i
        if not m.any():
            assert (agg[i] == 0).all()
            continue
        wi = logit[m].softmax(0)
        torch.testing.assert_close(w[m], wi)
        torch.testing.assert_close(agg[i], (wi.unsqueeze(-1) * v[src[m]]).sum(0))
    torch.testing.assert_close(edges.aggregate(v[src], "mean")[1], v[[0, 1, 2]].mean(0))
    with pytest.raises(ValueError, match="unknown reduce"):
        edges.aggregate(v[src], "max")


def test_static_edges_need_their_type_embeddings():
    g = _dsg_graph(FinstaConfig.preset("small", d_model=D, heads=H))
    h, e = torch.randn(g.num_nodes, D), torch.randn(g.num_stream, D)
    for layer in (GTrmLayer(D, H), RGNNLayer(D, H)):
        with pytest.raises(ValueError, match="pass e_aux"):
            layer(h, e, g)


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


# --- golden outputs of the pre-refactor implementation -------------------------------------------------------

GOLDEN = Path(__file__).with_name("golden_layers.pt")
GD, GH = 8, 2  # small, to keep the file small
GOLDEN_CASES = {  # name: (graph, layer kind, layer keyword arguments)
    "gtrm_tsg": ("tsg", "gtrm", {}),
    "gtrm_dsg_clamp5": ("dsg", "gtrm", {"softmax": "clamp5"}),
    "rgtrm_dsg": ("dsg", "gtrm", {"recurrent": True}),
    "rgtrm_dsg_scan_literal": ("dsg", "gtrm", {"recurrent": True, "recurrence": "query_scan", "gate": "literal"}),
    "stgd_dsg": ("dsg", "gtrm", {"recurrent": True, "stgd": True}),
    "stgd_hsg_mult_scan": ("hsg", "gtrm", {"recurrent": True, "stgd": True, "stgd_attention": "multiplicative",
                                           "recurrence": "query_scan"}),
    "gat_dsg": ("dsg", "gat", {}),
    "gat_hsg": ("hsg", "gat", {}),
    "rgnn_dsg": ("dsg", "rgnn", {}),
    "encoder_hsg": ("hsg", "encoder", {}),
}


def _golden_layer(kind, kw):
    if kind == "gtrm":
        return GTrmLayer(GD, GH, **kw)
    if kind == "gat":
        return GATLayer(GD, GH)
    if kind == "rgnn":
        return RGNNLayer(GD, GH)
    return GraphEncoder(FinstaConfig.preset("small", d_model=GD, heads=GH, dropout=0.0), "rgtrm", 2, stgd=True)


def _golden_inputs(g, seed):
    """Layer inputs and the random output weights of the backward pass (a fixed generator: reproducible)."""
    gen = torch.Generator().manual_seed(seed)
    x = {"h": (g.num_nodes, GD), "e": (g.num_stream, GD), "e_aux": (2, GD)}
    x = {k: torch.randn(*shape, generator=gen, dtype=torch.float64) for k, shape in x.items()}
    x["r_h"], x["r_e"] = (torch.randn(*x[k].shape, generator=gen, dtype=torch.float64) for k in ("h", "e"))
    return x


def _run_golden(layer, g, x):
    """Outputs, diagnostics and gradients (inputs: full; parameters: sum and sum of squares) of one case."""
    h, e, ea = (x[k].clone().requires_grad_(True) for k in ("h", "e", "e_aux"))
    ho, eo, diag = layer(h, e, g, ea)
    ((ho * x["r_h"]).sum() + (eo * x["r_e"]).sum()).backward()
    return {"h_out": ho.detach(), "e_out": eo.detach(), "diag": {k: float(v) for k, v in diag.items()},
            "grad_h": h.grad, "grad_e": e.grad, "grad_e_aux": ea.grad,
            "grad_params": {k: torch.stack([p.grad.sum(), p.grad.pow(2).sum()])
                            for k, p in layer.named_parameters() if p.grad is not None}}


def write_golden(path=GOLDEN):
    cfg = FinstaConfig.preset("small", d_model=GD, heads=GH, temporal_attention_edges=True)
    b = collate_graphs([random_hsg(0, num_frames=3, num_objects=3), random_hsg(1, num_frames=2, num_objects=4)])
    graphs = build_graphs(cfg, b)
    store = {"graphs": {k: {f.name: _compact(getattr(g, f.name)) for f in fields(g)} for k, g in graphs.items()},
             "cases": {}}
    for i, (name, (gk, kind, kw)) in enumerate(GOLDEN_CASES.items()):
        g = graphs[gk]
        torch.manual_seed(i)
        layer = _golden_layer(kind, kw).float()  # float32 weights, stored, then computed in float64
        state = _compact(layer.state_dict())
        layer = layer.double().eval()
        store["cases"][name] = {"seed": i, "state": state, **_compact(_run_golden(layer, g, _golden_inputs(g, i)))}
    torch.save(store, path, _use_new_zipfile_serialization=False)  # the zip format pads every small tensor


def _compact(x):
    """Own storage for every tensor (a saved view would carry its whole base storage); floats stored as float32
    (outputs of float64 runs: compared at ~1e-6, well above float32 rounding)."""
    if isinstance(x, torch.Tensor):
        return x.detach().float() if x.is_floating_point() else x.detach().clone()
    if isinstance(x, dict):
        return {k: _compact(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_compact(v) for v in x]
    return x


@pytest.fixture(scope="module")
def golden():
    if not GOLDEN.is_file():
        pytest.fail(f"{GOLDEN} is missing: it is part of the repository (see this module's docstring)")
    return torch.load(GOLDEN, weights_only=True)


@pytest.mark.parametrize("name", list(GOLDEN_CASES))
def test_layer_matches_golden_outputs(golden, name):
    """Every layer kind reproduces the recorded pre-refactor outputs and gradients (float64)."""
    gk, kind, kw = GOLDEN_CASES[name]
    rec = golden["cases"][name]
    g = LayerGraph(**golden["graphs"][gk])
    layer = _golden_layer(kind, kw).double().eval()
    layer.load_state_dict(rec["state"])
    got = _compact(_run_golden(layer, g, _golden_inputs(g, rec["seed"])))
    tol = {"atol": 1e-6, "rtol": 1e-6}
    for k in ("h_out", "e_out", "grad_h", "grad_e", "grad_e_aux"):
        torch.testing.assert_close(got[k], rec[k], **tol, msg=lambda m, k=k: f"{name} {k}: {m}")
    assert got["grad_params"].keys() == rec["grad_params"].keys()
    for k, v in rec["grad_params"].items():
        torch.testing.assert_close(got["grad_params"][k], v, **tol, msg=lambda m, k=k: f"{name} grad {k}: {m}")
    assert got["diag"].keys() == rec["diag"].keys()
    for k, v in rec["diag"].items():
        assert math.isclose(got["diag"][k], v, rel_tol=1e-6, abs_tol=1e-6), (name, k)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-golden"]:
        sys.exit("usage: python tests/finsta_core/test_layers.py --write-golden")
    write_golden()
    print(f"wrote {GOLDEN}")
