"""Shared fixtures for scene-graph tests: a small hand-made HSG."""

from __future__ import annotations

import pytest
import torch

from finsta_core.graphs.types import DynamicSceneGraph, EdgeType, HolisticSceneGraph, NodeType, TextualSceneGraph

O, A, R, V = NodeType.OBJECT, NodeType.ATTRIBUTE, NodeType.RELATION, NodeType.ADVERB


def make_hsg(n_frames: int = 4) -> HolisticSceneGraph:
    cap = "a man quickly sits down on a red chair"
    tsg = TextualSceneGraph(
        cap, ["man", "sit down on", "quickly", "chair", "red"], [O, R, V, O, A],
        [[0, 1, 1, 3], [1, 3, 2, 4]],
        [EdgeType.SUBJ_PRED, EdgeType.PRED_OBJ, EdgeType.PRED_ADV, EdgeType.OBJ_ATTR],
        [[2, 5], [14, 25], [6, 13], [32, 37], [28, 31]])
    labels, types, frame, boxes, edges, etypes, temporal = [], [], [], [], [], [], []
    for t in range(n_frames):
        base = len(labels)
        labels += ["person", "chair", "on", "red"]
        types += [O, O, R, A]
        frame += [t] * 4
        boxes += [[10 + t % 20, 10, 30 + t % 20, 50], [5, 30, 40, 60], [0, 0, 0, 0], [0, 0, 0, 0]]
        edges += [[base, base + 2], [base + 2, base + 1], [base + 1, base + 3]]
        etypes += [EdgeType.SUBJ_PRED, EdgeType.PRED_OBJ, EdgeType.OBJ_ATTR]
        if t:
            temporal += [[base - 4, base], [base - 3, base + 1]]
    dsg = DynamicSceneGraph(labels, types, frame, boxes, [0.5 * t for t in range(n_frames)], (64, 64),
                            torch.tensor(edges).T, etypes, torch.tensor(temporal, dtype=torch.long).reshape(-1, 2).T,
                            torch.randn(len(labels), 8), torch.rand(len(labels)))
    return HolisticSceneGraph(tsg, dsg, [[0, 3], [0, 1]], [0.95, 0.92], "vid0").validate()


@pytest.fixture
def hsg() -> HolisticSceneGraph:
    return make_hsg()
