"""The oracle TRS teacher (positive control, issue 10): shapes of the C4 hook, determinism, and that its rows
carry the ground truth (keyframes with different event predicates differ; equal bags give equal rows)."""

from __future__ import annotations

import torch

from finsta_core.config import FinstaConfig
from finsta_core.graphs.batch import collate_graphs
from tasks.synthetic import SynthConfig, build_split
from tasks.synthetic.oracle import oracle_features, oracle_teacher, oracle_vocabulary


def _batch(n=4):
    return collate_graphs([s.scene_graph for s in build_split("action", "test", SynthConfig.quick(), n=n)])


def test_oracle_matches_the_readout_shapes_and_is_fixed():
    b = _batch()
    cfg = FinstaConfig()
    d = cfg.d_model
    readouts = {"tsg": torch.zeros(b.num_graphs, d), "dsg": torch.zeros(b.dsg.num_frames, d),
                "hsg_text": torch.zeros(b.num_graphs, d), "hsg": torch.zeros(b.dsg.num_frames, d)}
    out = oracle_teacher(b, readouts, cfg)
    assert {k: tuple(v.shape) for k, v in out.items()} == {k: tuple(v.shape) for k, v in readouts.items()}
    again = oracle_teacher(b, readouts, cfg)
    assert all(torch.equal(out[k], again[k]) for k in out)
    assert all(not v.requires_grad for v in out.values())


def test_oracle_rows_carry_the_event_predicates():
    b = _batch(8)
    f = oracle_features(b, 64)["dsg"]
    vocab = oracle_vocabulary()
    assert "move left" in vocab and "quickly" in vocab and "left of" in vocab
    # keyframes of one sample differ exactly when their label bags differ (e.g. an event starts)
    frames = (b.dsg.frame_graph == 0).nonzero().flatten().tolist()
    bags = [sorted(lab for lab, fr in zip(b.dsg.labels, b.dsg.frame.tolist()) if fr == k) for k in frames]
    for i in range(len(frames)):
        for j in range(len(frames)):
            same = bags[i] == bags[j]
            assert torch.allclose(f[frames[i]], f[frames[j]]) == same


def test_event_oracle_keeps_only_events_and_manner():
    """The event-only oracle ignores what a still frame shows: two keyframes with the same active events have
    equal rows even when their objects differ; a keyframe without an event gets a zero row."""
    from tasks.synthetic.oracle import EVENT_LABELS, oracle_event_features

    b = _batch(8)
    f = oracle_event_features(b, 64)["dsg"]
    events = [sorted(lab for lab, fr in zip(b.dsg.labels, b.dsg.frame.tolist()) if fr == k and lab in EVENT_LABELS)
              for k in range(b.dsg.num_frames)]
    assert any(events) and not all(events)
    for k, ev in enumerate(events):
        assert bool(f[k].abs().sum() > 0) == bool(ev)
    for i in range(len(events)):
        for j in range(len(events)):
            if events[i] == events[j]:
                assert torch.allclose(f[i], f[j], atol=1e-5)
    tsg = oracle_event_features(b, 64)["tsg"]
    assert (tsg.abs().sum(1) > 0).all()  # every caption names its action (predicate + manner)
