"""Generation never fails: every split of every synth task builds, for any seed, at 32 and 64 px.

The one way ``sample_clip`` could fail was a forced first event (balanced ``synth_action`` classes) that no
random layout fitted; a constructed layout (``generator._layout_for_first``) now takes over after
``RANDOM_LAYOUTS`` tries, and these tests force that path for every class.
"""

from __future__ import annotations

import numpy as np
import pytest

import tasks.synthetic.generator as gen
from tasks.registry import create_task
from tasks.synthetic import SynthConfig, build_split
from tasks.synthetic.splits import DIAG_KINDS, KINDS
from tasks.synthetic.vocab import action_classes

SYNTH = ["synth_pairs", "synth_action", "synth_cap", "synth_ret", "synth_qa_mc", "synth_qa_oe", "synth_para",
         "synth_longqa"]


def _first(name: str) -> tuple[str, bool, str | None]:
    parts = name.split()
    return parts[0], parts[-1] in ("quickly", "abruptly"), parts[1] if parts[0] == "move" else None


@pytest.mark.parametrize("size", [24, 32, 64])
@pytest.mark.parametrize("random_layouts", [0, gen.RANDOM_LAYOUTS])
def test_forced_first_event_is_always_placed(size, random_layouts, monkeypatch):
    """Every action class, with the constructed layout alone (0 random tries) and with the default tries."""
    monkeypatch.setattr(gen, "RANDOM_LAYOUTS", random_layouts)
    cfg = SynthConfig(size=size)
    for c in action_classes():
        first = _first(c)
        for seed in range(6):
            for n_events, long in ((1, False), (2, False), (4, True)):
                clip = gen.sample_clip(cfg, np.random.default_rng([seed, size, n_events]), n_events, long=long,
                                       first=first)
                t0 = min(e.start for e in clip.events)  # a concurrent event may share the first start frame
                assert any(gen._matches(e, first) for e in clip.events if e.start == t0), (c, seed, clip.events)
                assert clip.inside(0.0), (c, seed)


def test_leave_quickly_regression():
    """The sample that used to raise ("could not place a ('leave', True, None) event in 100 attempts")."""
    s = build_split("action", "train", SynthConfig.quick(), n=119, with_graphs=False)[118]
    assert s.extra["class_name"] == "leave quickly"
    assert s.extra["events"][0]["kind"] == "leave" and s.extra["events"][0]["fast"]


@pytest.mark.parametrize("name", SYNTH)
def test_every_split_builds_quick(name):
    task = create_task(name, quick=True)
    for split in task.splits:
        samples = task.samples(split)
        assert samples and len({s.id for s in samples}) == len(samples)


@pytest.mark.slow
@pytest.mark.parametrize("size,n,seeds", [(32, 200, (0, 1, 2)), (64, 60, (0, 3))])
@pytest.mark.parametrize("kind", KINDS)
def test_every_split_builds_full_size(kind, size, n, seeds):
    """A few hundred non-quick samples per kind and split, several seeds (the quick test covers fewer)."""
    for seed in seeds:
        cfg = SynthConfig(size=size, seed=seed)
        for split in ("train", "test") + DIAG_KINDS.get(kind, ()):
            samples = build_split(kind, split, cfg, n=n if not split.startswith("test_") else 4)
            assert all(s.frames.shape[-1] == size for s in samples)
