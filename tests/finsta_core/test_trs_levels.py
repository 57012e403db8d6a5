"""TRS readings added for issue 10: the ``temporal`` / ``split`` video levels and the ``dynamic`` DSG rows."""

from __future__ import annotations

import torch

from finsta_core.graphs.batch import collate_graphs
from finsta_core.graphs.types import NodeType
from finsta_core.interface import EncoderOutput, HostOutputs
from finsta_core.objectives.trs import dynamic_mask, dynamic_rows, trs_loss
from tasks.synthetic import SynthConfig, build_split


def _batch(n=4):
    return collate_graphs([s.scene_graph for s in build_split("action", "test", SynthConfig.quick(), n=n)])


def _host(b, t=4, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    video = torch.randn(b.num_graphs, t, d, generator=g)
    return HostOutputs(video=EncoderOutput(None, video))


def _loss(host, readouts, b, level, distance="cos_centred"):
    proj = torch.nn.ModuleDict({"video": torch.nn.Identity()})
    loss, _ = trs_loss(host, readouts, b, proj, (0.0, 1.0, 0.0), distance, True, level)
    return float(loss)


def _readouts(b, d=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {"tsg": torch.randn(b.num_graphs, d, generator=g), "dsg": torch.randn(b.dsg.num_frames, d, generator=g),
            "hsg_text": torch.randn(b.num_graphs, d, generator=g), "hsg": torch.randn(b.dsg.num_frames, d, generator=g)}


def test_temporal_level_ignores_what_is_constant_over_a_clip():
    """Adding a per-clip constant (appearance shared by every frame of a clip) to the teacher or the student
    changes the ``frame`` loss but not the ``temporal`` one."""
    b = _batch()
    host, r = _host(b), _readouts(b)
    g = torch.Generator().manual_seed(5)
    shift = 10 * torch.randn(b.num_graphs, 16, generator=g)
    r2 = {**r, "dsg": r["dsg"] + shift[b.dsg.frame_graph]}
    host2 = HostOutputs(video=EncoderOutput(None, host.video.pooled + shift.unsqueeze(1)))
    base = _loss(host, r, b, "temporal")
    assert abs(_loss(host, r2, b, "temporal") - base) < 1e-5
    assert abs(_loss(host2, r, b, "temporal") - base) < 1e-5
    assert abs(_loss(host, r2, b, "frame") - _loss(host, r, b, "frame")) > 1e-3
    # split = mean of the clip term and the temporal term
    split = _loss(host, r, b, "split")
    assert abs(split - 0.5 * (_loss(host, r, b, "clip") + base)) < 1e-5


def test_dynamic_rows_pool_the_dsg_instances_of_dynamic_predicates():
    b = _batch(6)
    h = torch.randn(b.dsg.num_nodes, 8)
    rows = dynamic_rows(b, h)
    assert rows.shape == (b.dsg.num_frames, 8)
    linked = dynamic_mask(b)
    assert linked.any() and not linked.all()
    verbs = {(g, lab) for lab, g, t, dy in zip(b.tsg.labels, b.tsg.graph.tolist(), b.tsg.node_type.tolist(),
                                               b.tsg.dynamic.tolist()) if t == NodeType.RELATION and dy}
    for i in linked.nonzero().flatten().tolist():
        assert b.dsg.node_type[i] == NodeType.RELATION and (int(b.dsg.graph[i]), b.dsg.labels[i]) in verbs
    assert all(lab not in ("left of", "right of", "above", "below") for lab, m in zip(b.dsg.labels, linked) if m)
    for k in range(b.dsg.num_frames):
        m = linked & (b.dsg.frame == k)
        expect = h[m].mean(0) if m.any() else torch.zeros(8)
        assert torch.allclose(rows[k], expect, atol=1e-6)
    # only the linked nodes matter
    h2 = h.clone()
    h2[~linked] += 100.0
    assert torch.allclose(dynamic_rows(b, h2), rows)


def test_dynamic_residual_rows_remove_the_participants():
    """A verb node whose state is its subject's state plus an event vector gives the event vector alone."""
    from finsta_core.graphs.batch import relation_ends
    from finsta_core.objectives.trs import dynamic_residual_rows

    b = _batch(6)
    d = b.dsg
    g = torch.Generator().manual_seed(3)
    h = torch.randn(d.num_nodes, 8, generator=g)
    event = torch.randn(8, generator=g)
    subj, obj = relation_ends(d.node_type, d.edge_index, d.edge_type, d.num_nodes)
    linked = dynamic_mask(b)
    h2 = h.clone()
    for i in linked.nonzero().flatten().tolist():
        ends = [int(j) for j in (subj[i], obj[i]) if j >= 0]
        assert ends, "every dynamic predicate has a subject"
        h2[i] = h[ends].mean(0) + event
    rows = dynamic_residual_rows(b, h2)
    has = torch.zeros(d.num_frames, dtype=torch.bool)
    has[d.frame[linked]] = True
    assert torch.allclose(rows[has], event.expand(int(has.sum()), 8), atol=1e-5)
    assert torch.equal(rows[~has], torch.zeros(int((~has).sum()), 8))


def test_dynamic_orth_rows_are_orthogonal_to_the_object_subspace():
    from finsta_core.objectives.trs import dynamic_orth_rows, teacher_rows

    b = _batch(6)
    g = torch.Generator().manual_seed(4)
    h = torch.randn(b.dsg.num_nodes, 32, generator=g)
    rows = dynamic_orth_rows(b, h, rank=4)
    objs = h[b.dsg.node_type == NodeType.OBJECT]
    _, _, vh = torch.linalg.svd(objs - objs.mean(0), full_matrices=False)
    assert torch.allclose(rows @ vh[:4].t(), torch.zeros(rows.shape[0], 4), atol=1e-4)
    plain = dynamic_rows(b, h)
    assert torch.allclose(rows, plain - (plain @ vh[:4].t()) @ vh[:4], atol=1e-5)
    assert torch.equal(teacher_rows("dynamic", b, h), plain)
    assert torch.equal(dynamic_orth_rows(b, h, rank=0), plain)
