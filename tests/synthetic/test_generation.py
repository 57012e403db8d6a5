"""Determinism, scene-graph validity, caption/TSG agreement and speed-independent invariants of the benchmark."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from finsta_core.graphs.types import EdgeType, NodeType
from tasks.synthetic import SynthConfig, build_split
from tasks.synthetic.splits import DIAG_KINDS, KINDS
from tasks.synthetic.vocab import all_words, words

CFG = SynthConfig.quick()


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_bytes(kind):
    a = build_split(kind, "test", CFG, n=6)
    b = build_split(kind, "test", CFG, n=6)
    for x, y in zip(a, b):
        assert x.id == y.id and x.texts == y.texts and x.options == y.options and x.label == y.label
        assert x.frames.dtype == torch.uint8 and torch.equal(x.frames, y.frames)
        assert torch.equal(x.scene_graph.dsg.boxes, y.scene_graph.dsg.boxes)
    c = build_split(kind, "test", SynthConfig.quick(seed=1), n=6)
    assert any(not torch.equal(x.frames, z.frames) for x, z in zip(a, c)), "another seed must change the clips"


def test_samples_are_prefix_stable():
    """Sample i does not depend on the split size (its generator is seeded by its index)."""
    a, b = build_split("cap", "test", CFG, n=3), build_split("cap", "test", CFG, n=7)
    assert all(torch.equal(x.frames, y.frames) and x.texts == y.texts for x, y in zip(a, b))


@pytest.mark.parametrize("kind", KINDS)
def test_every_sample_has_a_valid_hsg(kind):
    long = kind in ("para", "longqa")
    for s in build_split(kind, "test", CFG, n=12):
        g = s.scene_graph.validate()
        t = CFG.long_num_frames if long else CFG.num_frames
        assert s.frames.shape == (t, 3, CFG.size, CFG.size) and s.timestamps.shape == (t,)
        assert g.sample_id == s.id
        # cross-modal links: every TSG object is linked to the DSG node of the same clip object, first keyframe
        ci = g.cross_index
        assert ci.shape[1] == int((g.tsg.node_type == NodeType.OBJECT).sum())
        assert all(g.dsg.meta["track"][j] == g.tsg.meta["object"][i] for i, j in ci.t().tolist())
        assert (g.dsg.frame[ci[1]] == 0).all()
        # temporal coreference: one chain per object across all keyframes
        n_obj, k = len(s.extra["objects"]), g.dsg.num_frames
        assert g.dsg.temporal_index.shape[1] == n_obj * (k - 1)


@pytest.mark.parametrize("kind,split", [(k, s) for k, v in DIAG_KINDS.items() for s in v])
def test_diagnostic_graphs_valid(kind, split):
    for s in build_split(kind, split, CFG, n=2):
        s.scene_graph.validate()


@pytest.mark.parametrize("kind", ["pairs", "cap", "para", "action"])
def test_tsg_spans_are_the_words_of_each_node(kind):
    """Every TSG node's span covers exactly the words that express it (caption/TSG agreement)."""
    for s in build_split(kind, "test", CFG, n=20):
        tsg = s.scene_graph.tsg
        assert tsg.caption == s.texts[0]
        for label, nt, (a, b) in zip(tsg.labels, tsg.node_type.tolist(), tsg.spans.tolist()):
            surface = tsg.caption[a:b].lower()
            if nt in (NodeType.OBJECT, NodeType.ATTRIBUTE):
                assert surface == label
            elif nt == NodeType.RELATION and label.startswith("move "):
                assert surface.split()[-1] == label.split()[1]  # "slides left" -> "move left"
            elif nt == NodeType.RELATION and label in ("left of", "right of"):
                assert surface.endswith(label)
            assert a >= 0 and b > a
        # each predicate has a subject and an adverb; adverbs hang off predicates only
        et, ei = tsg.edge_type, tsg.edge_index
        preds = [i for i, e in enumerate(tsg.meta["event"]) if e >= 0 and tsg.node_type[i] == NodeType.RELATION]
        for p in preds:
            assert ((et == EdgeType.SUBJ_PRED) & (ei[1] == p)).sum() == 1
            assert ((et == EdgeType.PRED_ADV) & (ei[0] == p)).sum() == 1


def test_dsg_matches_events_and_geometry():
    for s in build_split("pairs", "test", CFG, n=10):
        g = s.scene_graph.dsg
        kf = g.meta["keyframes"]
        for ev in s.extra["events"]:
            active = [k for k, f in enumerate(kf) if ev["start"] <= f < ev["end"]]
            nodes = [i for i, e in enumerate(g.meta["event"]) if e >= 0 and s.extra["events"][e] == ev]
            assert sorted(g.frame[nodes].tolist()) == active
        obj = g.node_type == NodeType.OBJECT
        assert (g.boxes[obj, 2] <= CFG.size).all() and (g.boxes[obj, 0] >= 0).all()


def test_vocabulary_is_closed_and_covered_by_the_tiny_tokenizer():
    from hosts.tiny.tokenizer import WordTokenizer

    tok = WordTokenizer()
    vocab = all_words()
    assert not [w for w in vocab if w not in tok.stoi], "tiny tokenizer misses benchmark words"
    for kind in KINDS:
        for s in build_split(kind, "test", CFG, n=10):
            text = " ".join(s.texts + (s.options or []) + [s.answer or ""])
            assert set(words(text)) <= vocab, set(words(text)) - vocab


def test_frames_change_with_events_and_keyframes_are_sorted():
    s = build_split("pairs", "test", CFG, n=5)
    for x in s:
        assert (x.frames[0] != x.frames[-1]).any()
        assert (np.diff(x.scene_graph.dsg.meta["keyframes"]) > 0).all()


@pytest.mark.parametrize("kind", ["pairs", "para"])
def test_dynamic_flags_are_the_event_predicates(kind):
    """meta["dynamic"] (read by Finsta's PTC as GraphBatch.tsg.dynamic): True exactly for the relation nodes
    written for an event verb (move / approach / leave / jump / grow / stop), False for spatial relations."""
    from finsta_core.graphs.batch import collate_graphs
    from tasks.synthetic.vocab import PREDICATE_LABELS, RELATIONS

    samples = build_split(kind, "test", CFG, n=8)
    n_events = 0
    for s in samples:
        for part in (s.scene_graph.tsg, s.scene_graph.dsg):
            dyn = part.meta["dynamic"]
            assert len(dyn) == part.num_nodes
            for flag, label, nt in zip(dyn, part.labels, part.node_type.tolist()):
                if flag:
                    assert nt == NodeType.RELATION and label in PREDICATE_LABELS
                elif nt == NodeType.RELATION:
                    assert label in RELATIONS
            n_events += sum(dyn)
    assert n_events > 0
    batch = collate_graphs([s.scene_graph for s in samples])
    assert int(batch.tsg.dynamic.sum()) == sum(sum(s.scene_graph.tsg.meta["dynamic"]) for s in samples)
