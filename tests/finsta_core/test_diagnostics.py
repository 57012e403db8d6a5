"""Diagnostics (issue 10): collapse statistics, clean alignment (ties miss), probes; the repair switches that
they measure (hub-free regions, duplicate-free negatives, subject-only tracks, TRS distances, the external
teacher hook)."""

import pytest
import torch

from finsta_core import Finsta, FinstaConfig, collate_graphs
from finsta_core.config import PAPER_LITERAL
from finsta_core.diagnostics import (
    DIAG_KEYS,
    collapse_stats,
    event_alignment,
    linear_probe,
    object_alignment,
    predicate_tracks,
)
from finsta_core.graphs.batch import relation_ends
from finsta_core.graphs.scatter import khop_pairs
from finsta_core.graphs.types import DynamicSceneGraph, EdgeType, HolisticSceneGraph, NodeType, TextualSceneGraph
from finsta_core.objectives.contrast import info_nce
from finsta_core.objectives.regions import region_keys, relation_tracks
from finsta_core.objectives.trs import distill
from finsta_core.testing import random_host_outputs, random_hsg


def _clique_hsg() -> HolisticSceneGraph:
    """Two keyframes of three objects with a relation node per object pair (like the synthetic DSG), plus a
    subject-only event ``jump`` of object 0 in both keyframes; the caption names object 0 and its jump."""
    labels, ntype, frame, ei, et = [], [], [], [], []
    for k in range(2):
        base = len(labels)
        for c in ("circle", "square", "cross"):
            labels.append(c), ntype.append(NodeType.OBJECT), frame.append(k)
        for i, j in ((0, 1), (0, 2), (1, 2)):
            labels.append("left of"), ntype.append(NodeType.RELATION), frame.append(k)
            r = len(labels) - 1
            ei += [[base + i, r], [r, base + j]]
            et += [EdgeType.SUBJ_PRED, EdgeType.PRED_OBJ]
        labels.append("jump"), ntype.append(NodeType.RELATION), frame.append(k)
        ei.append([base, len(labels) - 1])
        et.append(EdgeType.SUBJ_PRED)
    n = len(labels)
    dsg = DynamicSceneGraph(labels, ntype, frame, [[0.0, 0.0, 4.0, 4.0]] * n, torch.tensor([0.0, 0.5]), (32, 32),
                            torch.tensor(ei).t(), et, torch.tensor([[0, 1, 2], [7, 8, 9]]))
    tsg = TextualSceneGraph("the circle jumps", ["circle", "jump"], [NodeType.OBJECT, NodeType.RELATION],
                            torch.tensor([[0], [1]]), [EdgeType.SUBJ_PRED], [[4, 10], [11, 16]],
                            {"dynamic": [False, True]})
    return HolisticSceneGraph(tsg, dsg, torch.tensor([[0], [0]]), torch.ones(1), "clique")


def test_collapse_stats():
    x = torch.randn(1, 8).repeat(5, 1)
    assert collapse_stats(x) == pytest.approx((1.0, 1.0), abs=1e-5)
    y = torch.eye(4) - 0.25  # centred, symmetric
    cos, common = collapse_stats(y)
    assert cos == pytest.approx(-1 / 3, abs=1e-5) and common == pytest.approx(0.0, abs=1e-6)


def test_object_alignment_counts_ties_as_misses():
    b = collate_graphs([_clique_hsg()])
    h_t = torch.randn(b.tsg.num_nodes, 4)
    h_d = torch.randn(b.dsg.num_nodes, 4)
    h_d[0] = h_t[0]
    acc, chance, n = object_alignment(b, h_t, h_d)
    assert (acc, n) == (1.0, 1) and chance == pytest.approx(1 / 3)
    h_d[:] = 1.0  # identical DSG features: the true object ties with the others -> a miss
    assert object_alignment(b, h_t, h_d)[0] == 0.0


def test_event_alignment_exact_and_proxy():
    b = collate_graphs([_clique_hsg()])
    rel, track, subj, obj = predicate_tracks(b)
    assert rel.numel() == 8 and int(track.max()) + 1 == 4  # three pair tracks + the jump track
    h_d = torch.randn(b.dsg.num_nodes, 6)
    h_t = torch.randn(b.tsg.num_nodes, 6)
    jump = [i for i, lab in enumerate(b.dsg.labels) if lab == "jump"]
    h_t[1] = h_d[jump].mean(0)
    anchors = torch.tensor([1])
    acc, chance, n = event_alignment(b, h_t, h_d, anchors, torch.tensor([[1], [jump[0]]]))
    assert (acc, n) == (1.0, 1) and chance == pytest.approx(0.25)
    assert event_alignment(b, h_t, h_d, anchors)[:2] == (1.0, 0.25)  # proxy: arity-matched linked track


def test_hub_free_regions_and_dedup_keys():
    b = collate_graphs([_clique_hsg()])
    d = b.dsg
    objs = torch.tensor([0, 1, 2])
    hub = d.node_type == NodeType.RELATION
    ci, mem = khop_pairs(objs, d.edge_index, d.num_nodes, 3, hub)
    keys = region_keys(ci, mem, 3)
    assert torch.unique(keys).numel() == 3  # distinct regions per object
    ci2, mem2 = khop_pairs(objs, d.edge_index, d.num_nodes, 3)
    assert torch.unique(region_keys(ci2, mem2, 3)).numel() == 1  # the 3-hop ball covers the keyframe (A3)
    for c in range(3):  # a hub-free region holds the object and its relations, never another object
        members = set(mem[ci == c].tolist())
        assert c in members and not (members & ({0, 1, 2} - {c}))


def test_subject_only_tracks():
    b = collate_graphs([_clique_hsg()])
    d = b.dsg
    subj, obj = relation_ends(d.node_type, d.edge_index, d.edge_type, d.num_nodes)
    rel = ((d.node_type == NodeType.RELATION) & (subj >= 0)).nonzero().flatten()
    prev = relation_tracks(rel, subj, obj, d.prev, d.num_nodes)
    jump = [i for i, r in enumerate(rel.tolist()) if d.labels[r] == "jump"]
    assert prev[jump[1]] == jump[0] and prev[jump[0]] == -1


def test_info_nce_dedup_drops_duplicate_negatives():
    anchor = torch.randn(1, 4)
    cand = torch.randn(3, 4)
    pa, pc, same = torch.zeros(3, dtype=torch.long), torch.arange(3), torch.ones(3, dtype=torch.bool)
    cross = lambda a, c: c == 0  # noqa: E731
    full, _ = info_nce(anchor, cand, pa, pc, same, 0.5, 2.0, ("cross",), "supcon", cross)
    key = torch.tensor([7, 7, 9])  # candidate 1 duplicates the positive's region
    dedup, _ = info_nce(anchor, cand, pa, pc, same, 0.5, 2.0, ("cross",), "supcon", cross, key)
    ref, _ = info_nce(anchor, cand[[0, 2]], pa[:2], torch.arange(2), same[:2], 0.5, 2.0, ("cross",), "supcon", cross)
    assert float(dedup) == pytest.approx(float(ref), abs=1e-6) and float(dedup) != pytest.approx(float(full))


def test_distances_ignore_the_common_mode():
    torch.manual_seed(0)
    t = torch.randn(6, 8)
    s = t.clone()
    shifted = t + 10 * torch.randn(1, 8)  # a large common mode on the teacher
    for kind in ("cos_centred", "rkd"):
        assert float(distill(s, shifted, kind)) == pytest.approx(0.0, abs=1e-5)
    mean_pred = t.mean(0, keepdim=True).expand_as(t)
    assert float(distill(mean_pred, t, "mse")) < float(distill(torch.zeros_like(t), t, "mse"))
    assert float(distill(mean_pred + 1e-3 * torch.randn_like(t), t, "cos_centred")) > 0.5  # the mean earns nothing
    key = torch.tensor([0, 0, 1, 1, 2, 2])
    assert float(distill(t[key], t[key], "crd", key, 0.05)) < float(distill(t[key].flip(0), t[key], "crd", key, 0.05))


def test_forward_diagnostics_and_external_teacher():
    cfg = FinstaConfig.preset("small", d_model=32, heads=4, trs_distance="cos_centred", trs_proj="linear")
    gs = [random_hsg(i, num_frames=3, num_objects=3) for i in range(3)]
    b = collate_graphs(gs)
    model = Finsta(cfg, {"text": 32, "video": 32, "cross": 32})
    host = random_host_outputs(gs, {"text": 32, "video": 32, "cross": 32}, frames=2)
    out = model(b, host, stage=2, step=0, task_family="retrieval")
    assert set(DIAG_KEYS) <= set(out.diagnostics)
    assert {"student_video_cos", "teacher_video_common", "trs_video"} <= set(out.diagnostics)
    calls = []

    def oracle(batch, readouts, fcfg):
        calls.append(fcfg.d_model)
        return {"dsg": torch.ones_like(readouts["dsg"])}

    model.set_teacher(oracle)
    out2 = model(b, host, stage=2, step=0, task_family="retrieval")
    assert calls == [32] and out2.diagnostics["teacher_video_cos"] == pytest.approx(1.0)
    model.set_teacher(lambda batch, r, c: {"dsg": r["dsg"][:1]})
    with pytest.raises(ValueError, match="external TRS teacher"):
        model(b, host, stage=2, step=0, task_family="retrieval")
    with pytest.raises(ValueError, match="trs_teacher"):
        Finsta(FinstaConfig.preset("small", d_model=32, heads=4, trs_teacher="no_colon"))


def test_literal_presets():
    lit = FinstaConfig.preset("small_literal")
    assert all(getattr(lit, k) == (tuple(v) if isinstance(v, list) else v) for k, v in PAPER_LITERAL.items())
    assert lit.d_model == FinstaConfig.preset("small").d_model


def test_linear_probe_separable():
    torch.manual_seed(0)
    y = torch.arange(60) % 3
    x = torch.nn.functional.one_hot(y, 3).float() * 3 + 0.1 * torch.randn(60, 3)
    assert linear_probe(x[:40], y[:40], x[40:], y[40:]) == 1.0
