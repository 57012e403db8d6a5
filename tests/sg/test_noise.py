import pytest
import torch

from finsta_core.graphs.types import EdgeType, NodeType
from finsta_core.sg.noise import (
    corrupt_labels,
    degrade,
    drop_nodes,
    rewire_edges,
    sample_seed,
    vocabulary_from_graphs,
)
from tests.sg.conftest import make_hsg


def _same(a, b):
    return (a.tsg.labels == b.tsg.labels and a.dsg.labels == b.dsg.labels
            and torch.equal(a.tsg.edge_index, b.tsg.edge_index) and torch.equal(a.dsg.edge_index, b.dsg.edge_index)
            and torch.equal(a.dsg.temporal_index, b.dsg.temporal_index) and torch.equal(a.cross_index, b.cross_index))


def test_drop_zero_is_identity(hsg):
    out = drop_nodes(hsg, 0.0, seed=1)
    assert _same(out, hsg) and out is not hsg


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5])
def test_drop_rate_reproducible_and_valid(rate):
    g = make_hsg(n_frames=40)
    a, b = drop_nodes(g, rate, seed=7), drop_nodes(g, rate, seed=7)
    assert _same(a, b)
    kept = a.dsg.num_nodes / g.dsg.num_nodes
    assert abs((1 - kept) - rate) < 0.12  # 160 nodes: Bernoulli share close to the rate
    assert a.dsg.meta["dropped_nodes"] == g.dsg.num_nodes - a.dsg.num_nodes
    a.validate()
    assert a.dsg.num_frames == g.dsg.num_frames  # keyframes and timestamps survive


def test_drop_all_keeps_one_node_and_removes_edges(hsg):
    out = drop_nodes(hsg, 1.0, seed=0)
    assert out.tsg.num_nodes == 1 and out.dsg.num_nodes == 1
    assert out.tsg.edge_index.shape[1] == 0 and out.cross_index.shape[1] == 0


def test_drop_only_tsg(hsg):
    out = drop_nodes(hsg, 0.9, seed=3, parts=("tsg",))
    assert out.dsg.num_nodes == hsg.dsg.num_nodes and out.tsg.num_nodes < hsg.tsg.num_nodes


def test_dropped_edges_point_to_kept_labels(hsg):
    out = drop_nodes(hsg, 0.4, seed=11)
    # every surviving edge connects the same labels as some original edge
    orig = {(hsg.dsg.labels[s], hsg.dsg.labels[t]) for s, t in hsg.dsg.edge_index.T.tolist()}
    assert all((out.dsg.labels[s], out.dsg.labels[t]) in orig for s, t in out.dsg.edge_index.T.tolist())
    assert out.dsg.features.shape[0] == out.dsg.num_nodes and out.dsg.scores.shape[0] == out.dsg.num_nodes


def test_corrupt_labels_changes_share_with_typed_vocab():
    g = make_hsg(n_frames=50)
    vocab = {NodeType.OBJECT: ["dog", "cat", "person", "chair"], "relation": ["on", "under", "near"],
             "attribute": ["red", "blue"]}
    out = corrupt_labels(g, 0.5, seed=5, vocabulary=vocab)
    changed = [i for i, (x, y) in enumerate(zip(g.dsg.labels, out.dsg.labels)) if x != y]
    assert out.dsg.meta["corrupted_labels"] == len(changed)
    assert 0.3 < len(changed) / g.dsg.num_nodes < 0.7
    for i in changed:  # replaced within the same node type's vocabulary
        nt = NodeType(int(g.dsg.node_type[i]))
        assert out.dsg.labels[i] in {NodeType.OBJECT: vocab[NodeType.OBJECT], NodeType.RELATION: vocab["relation"],
                                     NodeType.ATTRIBUTE: vocab["attribute"]}[nt]
    assert torch.equal(out.dsg.edge_index, g.dsg.edge_index)
    assert _same(corrupt_labels(g, 0.5, 5, vocab), out)


def test_corrupt_rate_one_changes_every_covered_label(hsg):
    out = corrupt_labels(hsg, 1.0, seed=0, vocabulary=["a", "b", "person"])
    assert all(x != y for x, y in zip(hsg.dsg.labels, out.dsg.labels))


def test_rewire_keeps_targets_in_same_keyframe():
    g = make_hsg(n_frames=20)
    out = rewire_edges(g, 1.0, seed=2)
    po = out.dsg.edge_type == EdgeType.PRED_OBJ
    s, t = out.dsg.edge_index[:, po]
    assert torch.equal(out.dsg.frame[s], out.dsg.frame[t])
    assert bool((out.dsg.node_type[t] == NodeType.OBJECT).all())
    out.validate()


def test_degrade_levels(hsg):
    vocab = vocabulary_from_graphs([hsg]) | {NodeType.OBJECT: ["man", "chair", "person", "dog"]}
    assert _same(degrade(hsg, 0.0, 1, vocab), hsg)
    assert _same(degrade(hsg, 0.6, 1, vocab), degrade(hsg, 0.6, 1, vocab))
    with pytest.raises(ValueError, match="level"):
        degrade(hsg, 1.5, 1, vocab)


def test_sample_seed_stable():
    assert sample_seed(0, "a") == sample_seed(0, "a") != sample_seed(0, "b")
    assert 0 <= sample_seed(3, "x") < 2**63


def test_drop_keeps_per_node_meta_in_step():
    """Per-node meta lists (``dynamic``) are subset with the nodes; node-id lists are remapped."""
    from finsta_core.sg.ops import tsg_subgraph

    hsg = make_hsg()
    n = hsg.tsg.num_nodes
    hsg.tsg.meta["dynamic"] = [i % 2 == 0 for i in range(n)]
    hsg.tsg.meta["negated"] = [n - 1]
    keep = torch.ones(n, dtype=torch.bool)
    keep[0] = False
    sub = tsg_subgraph(hsg.tsg, keep)
    assert sub.meta["dynamic"] == [i % 2 == 0 for i in range(1, n)]
    assert sub.meta["negated"] == [n - 2]
