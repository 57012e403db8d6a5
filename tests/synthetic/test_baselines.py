"""Diagnostic splits defeat blind baselines: a bag-of-words (text-only) model and a single-(middle-)frame
model, both trained on the regular train split, score exactly chance on the contrast groups they cannot see.

The contrast groups share question and options (and, for temporal / collaboration, the middle frame), with
answers permuted over the options, so any deterministic model blind to the discriminating signal gives
every member of a group the same prediction: accuracy = mean over groups of 1/K.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
import torch

from tasks.synthetic import SynthConfig, build_split
from tasks.synthetic.vocab import COLOURS, all_words, words

CFG = SynthConfig.quick(n_train=300, diag_groups=6)
VOCAB = {w: i for i, w in enumerate(sorted(all_words()))}
PALETTE = torch.tensor(list(COLOURS.values()), dtype=torch.float32)


def bow(text: str) -> torch.Tensor:
    v = torch.zeros(len(VOCAB))
    for w in words(text):
        v[VOCAB[w]] += 1
    return v


def frame_feat(s) -> torch.Tensor:
    """Colour histogram of the middle frame (share of pixels closest to each benchmark colour)."""
    f = s.frames[s.frames.shape[0] // 2].float().permute(1, 2, 0).reshape(-1, 3)
    d = torch.cdist(f, PALETTE)
    near = d.min(1)
    hist = torch.bincount(d.argmin(1)[near.values < 30], minlength=len(PALETTE)).float()
    return hist / f.shape[0]


_FRAME: dict[str, torch.Tensor] = {}


def features(s, option: str, single_frame: bool) -> torch.Tensor:
    """Bag of words of question + option with question x option (BoW model) or option x middle-frame colour
    histogram (single-frame model) interactions."""
    q, o = bow(s.texts[0]), bow(option)
    if not single_frame:  # question-word x option-word pairs, hashed into 4096 buckets
        pairs = torch.zeros(4096)
        qi, oi = q.nonzero().flatten(), o.nonzero().flatten()
        pairs.index_add_(0, ((qi[:, None] * len(VOCAB) + oi[None]) % 4096).flatten(),
                         torch.outer(q[qi], o[oi]).flatten())
        return torch.cat([q + o, pairs])
    if s.id not in _FRAME:
        _FRAME[s.id] = frame_feat(s)
    return torch.cat([q + o, torch.outer(o, _FRAME[s.id]).flatten()])


def train(samples, single_frame: bool, steps: int = 150) -> torch.Tensor:
    """Linear option scorer trained with a softmax over each question's options (padded to the max K)."""
    k = max(len(s.options) for s in samples)
    first = features(samples[0], samples[0].options[0], single_frame)
    feats = torch.zeros(len(samples), k, first.numel())
    valid = torch.zeros(len(samples), k, dtype=torch.bool)
    for i, s in enumerate(samples):
        feats[i, : len(s.options)] = torch.stack([features(s, o, single_frame) for o in s.options])
        valid[i, : len(s.options)] = True
    target = torch.tensor([s.answer_index for s in samples])
    w = torch.zeros(first.numel(), requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.05)
    for _ in range(steps):
        logits = (feats @ w).masked_fill(~valid, float("-inf"))
        loss = torch.nn.functional.cross_entropy(logits, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return w.detach()


def accuracy(w, samples, single_frame: bool) -> tuple[float, float]:
    correct, chance = [], []
    for s in samples:
        scores = torch.stack([features(s, o, single_frame) for o in s.options]) @ w
        correct.append(int(scores.argmax()) == s.answer_index)
        chance.append(1.0 / len(s.options))
    return sum(correct) / len(correct), sum(chance) / len(chance)


@pytest.fixture(scope="module")
def trained():
    train_set = build_split("qa_mc", "train", CFG, with_graphs=False)
    return {sf: train(train_set, sf) for sf in (False, True)}


@pytest.mark.parametrize("split", ["test_spatial", "test_temporal", "test_collab"])
def test_bag_of_words_is_at_chance(trained, split):
    samples = build_split("qa_mc", split, CFG, with_graphs=False)
    acc, chance = accuracy(trained[False], samples, False)
    assert acc == pytest.approx(chance, abs=1e-9), (split, acc, chance)


@pytest.mark.parametrize("split", ["test_temporal", "test_collab"])
def test_single_frame_is_at_chance(trained, split):
    samples = build_split("qa_mc", split, CFG, with_graphs=False)
    acc, chance = accuracy(trained[True], samples, True)
    assert acc == pytest.approx(chance, abs=1e-9), (split, acc, chance)


def test_single_frame_baseline_is_not_blind():
    """Sanity check of the probe: on the spatial groups the middle frame carries the answer's colours, so the
    single-frame features differ across a group's members (unlike temporal / collaboration groups)."""
    spatial = build_split("qa_mc", "test_spatial", CFG, with_graphs=False)
    groups = defaultdict(list)
    for s in spatial:
        groups[s.extra["group"]].append(frame_feat(s))
    assert any(not torch.equal(v[0], v[1]) for v in groups.values())


@pytest.mark.parametrize("split", ["test_temporal", "test_collab"])
def test_groups_share_question_options_and_middle_frame(split):
    for kind in ("qa_mc", "qa_oe"):
        groups = defaultdict(list)
        for s in build_split(kind, split, CFG, with_graphs=False):
            groups[(s.extra["group"], s.texts[0])].append(s)
        for members in groups.values():
            ref = members[0]
            answers = Counter(m.answer for m in members)
            assert len(answers) == len(members), "answers within a contrast group are a permutation"
            for m in members:
                assert m.options == ref.options
                t = m.frames.shape[0] // 2
                assert torch.equal(m.frames[t], ref.frames[t])


def test_open_ended_text_only_majority_is_at_most_chance():
    train_set = build_split("qa_oe", "train", CFG, with_graphs=False)
    table = defaultdict(Counter)
    for s in train_set:
        table[s.texts[0]][s.answer] += 1
    overall = Counter(s.answer for s in train_set).most_common(1)[0][0]
    for split in ("test_spatial", "test_temporal", "test_collab"):
        samples = build_split("qa_oe", split, CFG, with_graphs=False)
        acc = sum((table[s.texts[0]].most_common(1)[0][0] if table[s.texts[0]] else overall) == s.answer
                  for s in samples) / len(samples)
        sizes = Counter((s.extra["group"], s.texts[0]) for s in samples)
        chance = sum(1.0 / sizes[(s.extra["group"], s.texts[0])] for s in samples) / len(samples)
        assert acc <= chance + 1e-9, (split, acc, chance)
