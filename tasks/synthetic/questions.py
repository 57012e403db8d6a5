"""Question templates: short-clip QA (multiple choice and open ended) and long-form QA (event order, counting).

Every question comes with its multiple-choice options (shuffled with the sample's generator), the index of
the correct one, and a one-word open-ended answer from :data:`~tasks.synthetic.vocab.OE_ANSWERS`. A question
only refers to an event through a description that matches exactly one event of the clip, and a distractor
is never also true.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasks.synthetic.grammar import clear_relation, np_text
from tasks.synthetic.scene import Clip, Event
from tasks.synthetic.vocab import (
    ADVERBS,
    CATEGORIES,
    COLOUR_NAMES,
    DIRECTION_NAMES,
    NUMBERS,
    PREDICATE_LABELS,
    RELATIONS,
)

REL_WORD = {"left of": "left", "right of": "right", "above": "above", "below": "below"}


@dataclass
class QA:
    """One question: text, MC options with the correct index, one-word OE answer and its type."""

    question: str
    options: list[str]
    answer_index: int
    answer: str
    qtype: str


def vp_text(clip: Clip, ev: Event, adverb: bool = False) -> str:
    """Canonical third-person verb phrase of an event (``moves left``, ``approaches the red circle``)."""
    if ev.kind == "move":
        s = f"moves {ev.direction}"
    elif ev.kind == "approach":
        s = f"approaches {np_text(clip, ev.target)}"
    elif ev.kind == "leave":
        s = f"moves away from {np_text(clip, ev.target)}"
    else:
        s = {"jump": "jumps", "grow": "grows", "stop": "stops"}[ev.kind]
    return f"{s} {ev.adverb}" if adverb else s


def clause_text(clip: Clip, ev: Event) -> str:
    return f"{np_text(clip, ev.actor)} {vp_text(clip, ev)}"


def _predicate_vp(clip: Clip, pred: str, target: int | None) -> str:
    ev = Event(pred.split()[0], 0, 0, 1, True, pred.split()[1] if pred.startswith("move ") else None, target)
    return vp_text(clip, ev)


def _mc(rng: np.random.Generator, correct: str, distractors: list[str], k: int) -> tuple[list[str], int]:
    """``k`` options: ``correct`` plus the first distinct distractors, shuffled."""
    opts = [correct] + [d for d in dict.fromkeys(distractors) if d != correct][: k - 1]
    perm = rng.permutation(len(opts))
    opts = [opts[i] for i in perm]
    return opts, opts.index(correct)


def _pool(rng: np.random.Generator, preferred: list[str], universe: tuple[str, ...] | list[str]) -> list[str]:
    """Distractor order: values present in the clip first (hard negatives), then the rest at random."""
    rest = [u for u in universe if u not in preferred]
    return list(preferred) + [rest[i] for i in rng.permutation(len(rest))]


def short_question(clip: Clip, rng: np.random.Generator, k: int = 4) -> QA:
    """A random question about a short clip (action, direction, speed, colour, shape, relation, count, order)."""
    evs = clip.events
    single = [e for e in evs if sum(x.actor == e.actor for x in evs) == 1]
    unique_vp = [e for e in evs if sum(vp_text(clip, x) == vp_text(clip, e) for x in evs) == 1]
    kinds = ["count"]
    if single:
        kinds += ["action", "action", "speed", "speed"]
        if any(e.kind == "move" for e in single):
            kinds += ["direction", "direction"]
    if unique_vp:
        kinds += ["colour", "colour", "shape"]
    if clip.n >= 2 and clear_relation(clip, 0, 1, 0):
        kinds += ["relation"]
    seq = len(evs) == 2 and evs[1].start >= evs[0].end and evs[0].actor != evs[1].actor
    if seq and clip.objects[evs[0].actor].colour != clip.objects[evs[1].actor].colour:
        kinds += ["order", "order"]
    kind = kinds[int(rng.integers(len(kinds)))]
    colours_in = [o.colour for o in clip.objects]
    if kind == "action":
        ev = single[int(rng.integers(len(single)))]
        preds = [p for p in PREDICATE_LABELS if p != ev.predicate and (ev.target is not None
                                                                      or p not in ("approach", "leave"))]
        dis = [_predicate_vp(clip, p, ev.target) for p in preds]
        opts, idx = _mc(rng, vp_text(clip, ev), [dis[i] for i in rng.permutation(len(dis))], k)
        return QA(f"What does {np_text(clip, ev.actor)} do?", opts, idx, ev.kind, "action")
    if kind == "direction":
        moves = [e for e in single if e.kind == "move"]
        ev = moves[int(rng.integers(len(moves)))]
        opts, idx = _mc(rng, ev.direction, list(DIRECTION_NAMES), 4)
        return QA(f"Which direction does {np_text(clip, ev.actor)} move?", opts, idx, ev.direction, "direction")
    if kind == "speed":
        ev = single[int(rng.integers(len(single)))]
        base = vp_text(clip, ev).split(" ", 1)
        verb = {"moves": "move", "approaches": "approach", "jumps": "jump", "grows": "grow", "stops": "stop"}[base[0]]
        rest = f" {base[1]}" if len(base) > 1 else ""
        how = "How does" if ev.kind == "stop" else "How fast does"
        opts, idx = _mc(rng, ev.adverb, list(ADVERBS[ev.kind]), 2)
        return QA(f"{how} {np_text(clip, ev.actor)} {verb}{rest}?", opts, idx, ev.adverb, "speed")
    if kind in ("colour", "shape"):
        ev = unique_vp[int(rng.integers(len(unique_vp)))]
        o = clip.objects[ev.actor]
        if kind == "colour":
            opts, idx = _mc(rng, o.colour, _pool(rng, colours_in, COLOUR_NAMES), k)
            return QA(f"What colour is the object that {vp_text(clip, ev)}?", opts, idx, o.colour, "colour")
        cats_in = [x.category for x in clip.objects]
        opts, idx = _mc(rng, o.category, _pool(rng, cats_in, CATEGORIES), k)
        return QA(f"What shape is the object that {vp_text(clip, ev)}?", opts, idx, o.category, "shape")
    if kind == "relation":
        rel = REL_WORD[clear_relation(clip, 0, 1, 0)]
        opts, idx = _mc(rng, rel, [REL_WORD[r] for r in RELATIONS], 4)
        q = f"Where is {np_text(clip, 0)} relative to {np_text(clip, 1)} at the start?"
        return QA(q, opts, idx, rel, "relation")
    if kind == "order":
        first = clip.objects[evs[0].actor].colour
        opts, idx = _mc(rng, first, _pool(rng, [clip.objects[evs[1].actor].colour], COLOUR_NAMES), k)
        return QA("What colour is the object that moves first?", opts, idx, first, "order")
    n = clip.n
    lo = max(1, min(n - int(rng.integers(0, 4)), len(NUMBERS) - 4))
    nums = list(NUMBERS[lo:lo + 4])
    opts, idx = _mc(rng, NUMBERS[n], nums, 4)
    return QA("How many objects are in the video?", opts, idx, NUMBERS[n], "count")


def _fake_clauses(clip: Clip, rng: np.random.Generator, real: set[str]) -> list[str]:
    out = []
    for a in rng.permutation(clip.n):
        for v in rng.permutation(["jumps", "grows", "stops", "moves left", "moves right", "moves up", "moves down"]):
            c = f"{np_text(clip, int(a))} {v}"
            if c not in real:
                out.append(c)
    return out


def long_question(clip: Clip, rng: np.random.Generator, k: int = 4) -> QA:
    """A long-form question (event order: next / previous / first / last; counting) with ``k`` options."""
    evs = clip.events
    texts = [clause_text(clip, e) for e in evs]
    uniq = [i for i, t in enumerate(texts) if texts.count(t) == 1]
    real = set(texts)
    kinds = ["count"]
    nxt = {}
    for i in uniq:
        after = [j for j in range(len(evs)) if evs[j].start >= evs[i].end]
        if after:
            s0 = min(evs[j].start for j in after)
            cand = [j for j in after if evs[j].start == s0]
            if len(cand) == 1 and cand[0] in uniq and not any(evs[j].start < s0 and j != i and evs[j].start >=
                                                              evs[i].start for j in range(len(evs))):
                nxt[i] = cand[0]
    if nxt:
        kinds += ["next", "next", "previous"]
    starts = [e.start for e in evs]
    if uniq and starts.count(min(starts)) == 1 and starts.index(min(starts)) in uniq:
        kinds += ["first"]
    if uniq and starts.count(max(starts)) == 1 and starts.index(max(starts)) in uniq:
        kinds += ["last"]
    kind = kinds[int(rng.integers(len(kinds)))]

    def options(correct: int, exclude: set[int]) -> tuple[list[str], int]:
        dis = [texts[j] for j in rng.permutation(len(evs)) if j in uniq and j != correct and j not in exclude]
        return _mc(rng, texts[correct], dis + _fake_clauses(clip, rng, real), k)

    if kind in ("next", "previous"):
        keys = sorted(nxt)
        i = keys[int(rng.integers(len(keys)))]
        j = nxt[i]
        if kind == "next":
            opts, idx = options(j, {i})
            return QA(f"What happens right after {texts[i]}?", opts, idx, evs[j].kind, "next")
        opts, idx = options(i, {j})
        return QA(f"What happens right before {texts[j]}?", opts, idx, evs[i].kind, "previous")
    if kind in ("first", "last"):
        i = starts.index(min(starts)) if kind == "first" else starts.index(max(starts))
        opts, idx = options(i, set())
        return QA(f"What happens {kind}?", opts, idx, evs[i].kind, kind)
    # counting: how many times does an actor do a verb
    pairs = sorted({(e.actor, e.kind) for e in evs if e.kind in ("move", "jump", "stop", "grow")})
    if not pairs:
        pairs = [(evs[0].actor, "move")]
    a, verb = pairs[int(rng.integers(len(pairs)))]
    c = sum(e.actor == a and e.kind == verb for e in evs)
    lo = max(1, min(c - int(rng.integers(0, 4)), len(NUMBERS) - 4))
    opts, idx = _mc(rng, NUMBERS[c], list(NUMBERS[lo:lo + 4]), 4)
    return QA(f"How many times does {np_text(clip, a)} {verb}?", opts, idx, NUMBERS[c], "count")
