import torch

from finsta_core.graphs.types import NodeType
from finsta_core.sg.dsg import Detections, build_dsg
from finsta_core.sg.link import NgramTextScorer, link_hsg
from finsta_core.sg.tracking import box_iou, mutual_best_matching, temporal_edges, track_roots


def test_box_iou_golden():
    a = torch.tensor([[0.0, 0, 10, 10]])
    b = torch.tensor([[0.0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    assert torch.allclose(box_iou(a, b), torch.tensor([[1.0, 50 / 150, 0.0]]))


def test_matching_is_one_to_one_greedy():
    s = torch.tensor([[0.9, 0.8], [0.85, 0.1]])
    r, c = mutual_best_matching(s, 0.5)
    assert sorted(zip(r.tolist(), c.tolist())) == [(0, 0)]  # greedy takes 0.9, then row 1 has only 0.1
    s = torch.tensor([[0.9, 0.8], [0.85, 0.7]])
    r, c = mutual_best_matching(s, 0.5)
    assert sorted(zip(r.tolist(), c.tolist())) == [(0, 0), (1, 1)]


def test_temporal_edges_same_label_iou_threshold():
    # frame 0: person A, person B (overlapping), frame 1: two persons, a dog at A's place
    boxes = torch.tensor([[0, 0, 10, 10], [2, 0, 12, 10], [0, 0, 10, 11], [3, 0, 13, 10], [0, 0, 10, 10.0]])
    labels = torch.tensor([0, 0, 0, 0, 1])
    frame = torch.tensor([0, 0, 1, 1, 1])
    ti, stats = temporal_edges(labels, frame, boxes, torch.ones(5, dtype=torch.bool), gamma=0.6)
    assert sorted(map(tuple, ti.T.tolist())) == [(0, 2), (1, 3)]
    assert abs(stats["continuation_rate"] - 2 / 3) < 1e-6
    assert track_roots(5, ti).tolist() == [0, 1, 0, 1, 4]


def _dets(t_shift):
    return Detections(torch.tensor([[10.0 + t_shift, 10, 30 + t_shift, 40], [40, 40, 60, 60]]), ["person", "cup"],
                      torch.tensor([0.9, 0.8]), torch.randn(2, 6))


def test_build_dsg_and_link_first_occurrence(hsg):
    dets = [_dets(t) for t in range(4)]
    dsg = build_dsg(dets, torch.arange(4) * 0.5, (64, 64)).validate()
    assert dsg.temporal_index.shape[1] == 6 and dsg.meta["continuation_rate"] == 1.0
    out = link_hsg(hsg.tsg, dsg, NgramTextScorer(aliases={"man": "person"}), sample_id="v")
    # "man" -> person, linked only at the first keyframe; "chair" matches nothing above gamma
    pairs = [(out.tsg.labels[a], out.dsg.labels[b], int(out.dsg.frame[b])) for a, b in out.cross_index.T.tolist()]
    assert pairs == [("man", "person", 0)]
    assert float(out.cross_score[0]) > 0.9 and 0 < out.dsg.meta["cross_edge_rate"] <= 1


def test_link_visual_term_and_raw_calibration(hsg):
    dsg = build_dsg([_dets(0)], torch.zeros(1), (64, 64))
    vis = torch.full((2, 2), -1.0)
    vis[1, 1] = 1.0  # "chair" text looks exactly like the "cup" box
    out = link_hsg(hsg.tsg, dsg, NgramTextScorer(), visual_sim=vis, calibration="raw", gamma=0.4)
    assert (out.tsg.labels[int(out.cross_index[0, 0])], out.dsg.labels[int(out.cross_index[1, 0])]) == ("chair", "cup")


def test_ngram_scorer_is_a_cosine():
    s = NgramTextScorer()(["dog", "cutting board"], ["dogs", "board", "zebra"])
    assert s.shape == (2, 3) and s[0, 0] > 0.5 and s[1, 1] > s[1, 2] and float(s.max()) <= 1 + 1e-6


def test_empty_keyframes_and_attributes():
    from finsta_core.sg.heads import AttributeHead, HeadAttributeClassifier, HeadRelationClassifier, PairRelationHead

    torch.manual_seed(0)
    rel = HeadRelationClassifier(PairRelationHead(6, ["on", "near"]), threshold=0.0)
    att = HeadAttributeClassifier(AttributeHead(6, ["red", "big"]), threshold=0.0)
    empty = Detections(torch.zeros(0, 4), [], torch.zeros(0), torch.zeros(0, 6))
    dsg = build_dsg([empty, _dets(0)], torch.tensor([0.0, 1.0]), (64, 64), rel, att).validate()
    assert set(dsg.node_type.tolist()) == {NodeType.OBJECT, NodeType.ATTRIBUTE, NodeType.RELATION}
    assert int(dsg.frame.min()) == 1 and dsg.num_frames == 2
