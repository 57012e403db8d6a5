"""Collation, derived structures, injection pooling, TRS time alignment, schedule and config."""

import pytest
import torch

from finsta_core import FinstaConfig, collate_graphs, loss_weights
from finsta_core.graphs.batch import chain_root_depth, label_word_hashes, relation_ends
from finsta_core.graphs.types import NodeType, SceneGraphError
from finsta_core.interface import EncoderOutput, TokenStates
from finsta_core.model import parse_host_widths
from finsta_core.objectives.inject import pool_patches, pool_text
from finsta_core.objectives.regions import relation_tracks, track_windows
from finsta_core.objectives.trs import keyframe_for_host_frames
from finsta_core.testing import random_hsg


def test_collate_offsets_and_prev(graphs, batch):
    t, d = batch.tsg, batch.dsg
    assert t.num_nodes == sum(g.tsg.num_nodes for g in graphs)
    assert d.num_frames == sum(g.dsg.num_frames for g in graphs)
    off = 0
    for i, g in enumerate(graphs):
        n = g.dsg.num_nodes
        assert (d.graph[off:off + n] == i).all()
        sel = (d.temporal_index[1] >= off) & (d.temporal_index[1] < off + n)
        torch.testing.assert_close(d.temporal_index[:, sel] - off, g.dsg.temporal_index)
        off += n
    prev = d.prev
    assert (prev[d.temporal_index[1]] == d.temporal_index[0]).all()
    assert int((prev >= 0).sum()) == d.temporal_index.shape[1]
    assert (d.frame_graph[d.frame] == d.graph).all()
    assert (batch.cross_index[1] < d.num_nodes).all()
    assert (t.graph[batch.cross_index[0]] == d.graph[batch.cross_index[1]]).all()


def test_label_hashing_is_stable_and_multiword():
    assert label_word_hashes("Sit down  on") == label_word_hashes("sit down on")
    assert len(label_word_hashes("sit down on")) == 3
    assert label_word_hashes("") == label_word_hashes("<empty>")


def test_chain_root_depth():
    prev = torch.tensor([-1, 0, 1, -1, 3, 2])
    root, depth = chain_root_depth(prev)
    assert root.tolist() == [0, 0, 0, 3, 3, 0] and depth.tolist() == [0, 1, 2, 0, 1, 3]


def test_without_adverbs_removes_nodes_and_remaps(batch):
    b = batch.without_adverbs()
    assert not (b.tsg.node_type == NodeType.ADVERB).any()
    assert b.tsg.edge_index.max() < b.tsg.num_nodes
    assert len(b.tsg.labels) == b.tsg.num_nodes
    assert (b.tsg.node_type[b.cross_index[0]] == NodeType.OBJECT).all()
    kept = [s for s, k in zip(batch.tsg.labels, (batch.tsg.node_type != NodeType.ADVERB).tolist()) if k]
    assert b.tsg.labels == kept


def test_collate_errors_name_the_sample():
    g = random_hsg(0, num_frames=2)
    g.dsg.boxes[0] = torch.tensor([10.0, 10.0, 5.0, 5.0])
    with pytest.raises(SceneGraphError, match="synth-0"):
        collate_graphs([g])
    with pytest.raises(SceneGraphError):
        collate_graphs([])


def test_relation_tracks_and_windows():
    g = random_hsg(0, num_frames=4, num_objects=3)
    b = collate_graphs([g])
    d = b.dsg
    subj, obj = relation_ends(d.node_type, d.edge_index, d.edge_type, d.num_nodes)
    rel = ((d.node_type == NodeType.RELATION) & (subj >= 0)).nonzero().flatten()
    rp = relation_tracks(rel, subj, obj, d.prev, d.num_nodes)
    assert int((rp >= 0).sum()) == 2 * 3  # 2 relations per frame, continued over 3 transitions
    feat = torch.arange(rel.numel(), dtype=torch.float32).unsqueeze(1)
    win, start = track_windows(feat, rp, (0, 1, 3))
    assert win.shape[0] == 8 + 6 + 2
    # a window of length 2 starting at a relation averages it with its successor
    m1 = win[8:14, 0]
    succ = {int(p): i for i, p in enumerate(rp.tolist()) if p >= 0}
    for w, s in zip(m1.tolist(), start[8:14].tolist()):
        pos = s  # positions into rel
        assert w == (pos + succ[pos]) / 2


def test_pool_text_and_patches_match_brute_force():
    b, L, dh = 2, 5, 3
    states = torch.randn(b, L, dh)
    cs = torch.tensor([[[-1, -1], [0, 3], [4, 7], [8, 12], [-1, -1]]] * 2)
    tok = TokenStates(states, torch.ones(b, L, dtype=torch.bool), cs)
    spans = torch.tensor([[0, 7], [8, 12], [-1, -1]])
    p, has = pool_text(tok, torch.tensor([0, 1, 1]), spans)
    torch.testing.assert_close(p[0], states[0, 1:3].mean(0))
    torch.testing.assert_close(p[1], states[1, 3])
    assert has.tolist() == [True, True, False]
    # 2 frames x 2 x 4 grid; box covering the right half of a 400x200 frame at host frame 1
    rows, cols, fr = 2, 4, 2
    lv = fr * rows * cols
    vs = torch.randn(1, lv, dh)
    fi = torch.arange(fr).repeat_interleave(rows * cols).unsqueeze(0)
    rc = torch.stack(torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij"), -1).reshape(-1, 2)
    tokv = TokenStates(vs, torch.ones(1, lv, dtype=torch.bool), None, fi, rc.repeat(fr, 1).unsqueeze(0), (rows, cols))
    boxes = torch.tensor([[200.0, 0.0, 400.0, 200.0], [10.0, 10.0, 20.0, 20.0]])
    p, has = pool_patches(tokv, torch.tensor([0, 0]), boxes, torch.tensor([[400.0, 200.0]] * 2),
                          torch.tensor([1, 0]), fr)
    want = [8 + r * cols + c for r in range(rows) for c in (2, 3)]
    torch.testing.assert_close(p[0], vs[0, want].mean(0))
    torch.testing.assert_close(p[1], vs[0, 0])  # tiny box: the cell containing its centre
    assert has.all()


def test_trs_keyframe_alignment_by_time(batch):
    b = batch.num_graphs
    times = batch.dsg.frame_time[batch.dsg.frame_graph == 0]
    ft = torch.stack([torch.tensor([0.0, float(times[-1]) + 5.0])] * b)
    out = EncoderOutput(TokenStates(torch.zeros(b, 1, 2), torch.ones(b, 1, dtype=torch.bool)), torch.zeros(b, 2, 2), ft)
    k = keyframe_for_host_frames(batch, out)
    first = torch.cumsum(torch.bincount(batch.dsg.frame_graph), 0) - torch.bincount(batch.dsg.frame_graph)
    assert (k[:, 0] == first).all()
    assert (batch.dsg.frame_graph[k[:, 1]] == torch.arange(b)).all()
    assert (batch.dsg.frame_local[k[:, 1]] == torch.bincount(batch.dsg.frame_graph) - 1).all()


def test_loss_weights_schedule():
    cfg = FinstaConfig.preset("paper")
    w = loss_weights(cfg, 1, 0, 100)  # the Eq 42 terms (other keys, e.g. repair terms, are schedule.py's own)
    assert {k: w[k] for k in ("osc", "ptc", "trs", "mlm", "vla")} == {"osc": 0.5, "ptc": 0.5, "trs": 0.0, "mlm": 0.0,
                                                                    "vla": 0.0}
    w0, w1 = loss_weights(cfg, 2, 0, 101), loss_weights(cfg, 2, 100, 101)
    assert (w0["osc"], w0["trs"], w0["mlm"], w0["vla"]) == (0.5, 0.2, 0.3, 0.3)
    assert w1["osc"] == pytest.approx(0.15) and w1["trs"] == pytest.approx(0.5)
    assert loss_weights(cfg, 2, 50, 101)["ptc"] == pytest.approx(0.325)
    assert loss_weights(FinstaConfig.preset("small", ptc=False), 2, 0, 10)["ptc"] == 0.0
    with pytest.raises(ValueError):
        loss_weights(cfg, 3, 0, 10)


def test_config_presets_and_errors():
    p = FinstaConfig.preset("paper")
    assert (p.d_model, p.heads, p.tsg_layers, p.dsg_layers, p.hsg_layers) == (768, 8, 12, 12, 6)
    assert (p.rho_osc, p.rho_ptc, p.tau_osc, p.osc_hops, p.ptc_hops) == (0.7, 0.6, 0.8, 3, 4)
    assert p.trs_lambda("captioning") == (0.2, 0.5, 0.3) and p.trs_lambda("retrieval") == (0.35, 0.3, 0.35)
    assert p.trs_lambda("qa") == (0.3, 0.35, 0.35)
    assert FinstaConfig.preset("small", high_order=False).osc_n == 1
    for bad in (dict(norm="group"), dict(positives=("nope",)), dict(d_model=30, heads=4)):
        with pytest.raises(ValueError):
            FinstaConfig.preset("small", **bad)
    with pytest.raises(ValueError, match="unknown FinstaConfig"):
        FinstaConfig.preset("small", dmodel=3)
    assert parse_host_widths({"text": 5, "video": (4, 6), "cross": {"first": 1, "pooled": 2}}) == {
        "text": (5, 5), "video": (4, 6), "cross": (1, 2)}
    with pytest.raises(ValueError):
        parse_host_widths({"audio": 3})
