"""Diagnostic contrast groups aimed at the paper's three bottlenecks (sec 1, sec 7.1).

Every diagnostic split is a list of *contrast groups*. All members of a group share the same question text
and the same option list, and their correct answers are a permutation of the options. Hence any model that
cannot see the discriminating signal gives the same answer to every member and scores exactly ``1/K``:

* ``spatial``: members differ in one attribute or in the placement of one object (colour / shape binding
  through a spatial relation; the relation itself). A text-only (bag-of-words) model is at chance.
* ``temporal``: members differ only in motion direction, speed (manner adverb) or event order, and share
  their middle frame pixel for pixel, so a bag-of-words *and* a single-(middle-)frame model are at chance.
* ``collab``: a 4 x 4 Latin square: 4 videos x 4 questions ("What colour is the object that moves left?"),
  each answer determined by the (video, question) pair. Text-only, video-only and single-frame models are
  all at chance; only a model that combines the question with the motion in the video can answer.

Retrieval uses the same spatial / temporal groups as hard-negative galleries (captions differ in one word).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasks.synthetic.config import SynthConfig
from tasks.synthetic.generator import sample_clip, sample_objects
from tasks.synthetic.questions import QA, REL_WORD
from tasks.synthetic.scene import Clip, Event, Obj, simulate, speed
from tasks.synthetic.vocab import CATEGORIES, COLOUR_NAMES, DIRECTION_NAMES, DIRECTIONS, RELATIONS

DIAGNOSTICS = ("spatial", "temporal", "collab")


@dataclass
class DiagItem:
    """One member of a contrast group: the clip, its question (None for retrieval), group id and kind."""

    clip: Clip
    qa: QA | None
    group: int
    variant: int
    kind: str


def _texture(rng: np.random.Generator) -> tuple[float, float, float]:
    return float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0.25, 0.6)), float(rng.uniform(4, 9))


def _finish(clips: list[Clip], texture: tuple[float, float, float]) -> list[Clip]:
    for c in clips:
        c.texture = texture
    return clips


def _np(o: Obj) -> str:
    return f"the {o.colour} {o.category}"


def _jitter(rng: np.random.Generator, cfg: SynthConfig, x: float, y: float, amount: float = 1.5) -> np.ndarray:
    return np.array([x, y]) * cfg.scale + rng.uniform(-amount, amount, 2) * cfg.scale


def _distractor(cfg: SynthConfig, rng: np.random.Generator, taken: list[Obj]) -> Obj:
    while True:
        o = sample_objects(rng, 1)[0]
        if all((o.colour, o.category) != (t.colour, t.category) for t in taken):
            o.static, o.size = True, "small"
            return o


# -- temporal ----------------------------------------------------------------------------------------------
def _passing(cfg: SynthConfig, p_mid: np.ndarray, d: str, fast: bool, m: int, h: int) -> np.ndarray:
    """Start position of an object that moves in ``d`` over ``[m-h, m+h)`` and is at ``p_mid`` at frame ``m``."""
    return p_mid - np.asarray(DIRECTIONS[d]) * speed(cfg, fast) * h


def temporal_group(cfg: SynthConfig, rng: np.random.Generator, g: int) -> list[DiagItem]:
    """Direction (K=4), speed (K=2) or event-order (K=2) group sharing the middle frame."""
    t_all, m = cfg.num_frames, cfg.num_frames // 2
    kind = ("direction", "speed", "order")[int(rng.integers(3))]
    tex = _texture(rng)
    if kind in ("direction", "speed"):
        actor = sample_objects(rng, 1)[0]
        actor.size = "small"
        dis = [_distractor(cfg, rng, [actor])]
        objs = [actor] + dis
        p_mid = _jitter(rng, cfg, 16, 16)
        p_dis = _jitter(rng, cfg, *(rng.choice([[5.0, 5.0], [27.0, 27.0], [5.0, 27.0], [27.0, 5.0]])), 0.5)
        h = 3 if kind == "direction" else 4
        if kind == "direction":
            fast = bool(rng.random() < 0.5)
            opts = [DIRECTION_NAMES[i] for i in rng.permutation(4)]
            variants = [(d, fast) for d in opts]
            q = f"Which direction does {_np(actor)} move?"
        else:
            d = DIRECTION_NAMES[int(rng.integers(4))]
            opts = ["quickly", "slowly"] if rng.random() < 0.5 else ["slowly", "quickly"]
            variants = [(d, o == "quickly") for o in opts]
            q = f"How fast does {_np(actor)} move {d}?"
        items = []
        for k, (d, fast) in enumerate(variants):
            ev = Event("move", 0, m - h, m + h, fast, d)
            clip = simulate(cfg, objs, [ev], np.stack([_passing(cfg, p_mid, d, fast, m, h), p_dis]), t_all)
            ans = opts[k]
            items.append(DiagItem(clip, QA(q, list(opts), k, ans, kind), g, k, f"temporal/{kind}"))
        _finish([it.clip for it in items], tex)
        return items
    # order: A then B versus B then A, both at the same place at the middle frame
    a, b = sample_objects(rng, 2)
    while b.colour == a.colour:
        b = sample_objects(rng, 1)[0]
    a.size = b.size = "small"
    objs = [a, b]
    h, fast = 4, True
    pa, pb = _jitter(rng, cfg, 10, 16), _jitter(rng, cfg, 22, 16)
    da, db = DIRECTION_NAMES[int(rng.integers(2, 4))], DIRECTION_NAMES[int(rng.integers(2, 4))]  # up / down
    step_a = np.asarray(DIRECTIONS[da]) * speed(cfg, fast) * h
    step_b = np.asarray(DIRECTIONS[db]) * speed(cfg, fast) * h
    opts = [a.colour, b.colour] if rng.random() < 0.5 else [b.colour, a.colour]
    items = []
    for k, first_col in enumerate(opts):
        if first_col == a.colour:  # A moves over [m-h, m) and reaches pa; B starts at pb at m
            evs = [Event("move", 0, m - h, m, fast, da), Event("move", 1, m, m + h, fast, db)]
            p0 = np.stack([pa - step_a, pb])
        else:
            evs = [Event("move", 1, m - h, m, fast, db), Event("move", 0, m, m + h, fast, da)]
            p0 = np.stack([pa, pb - step_b])
        clip = simulate(cfg, objs, evs, p0, t_all)
        q = QA("What colour is the object that moves first?", list(opts), k, first_col, "order")
        items.append(DiagItem(clip, q, g, k, "temporal/order"))
    _finish([it.clip for it in items], tex)
    return items


# -- collaboration -----------------------------------------------------------------------------------------
def collab_group(cfg: SynthConfig, rng: np.random.Generator, g: int) -> list[DiagItem]:
    """4 videos x 4 questions (Latin square): object j moves in direction ``dirs[(j + v) % 4]`` in video v."""
    t_all, m, h = cfg.num_frames, cfg.num_frames // 2, 3
    cols = [COLOUR_NAMES[i] for i in rng.permutation(len(COLOUR_NAMES))[:4]]
    cats = [CATEGORIES[i] for i in rng.permutation(len(CATEGORIES))[:4]]
    objs = [Obj(c, col, "small") for c, col in zip(cats, cols)]
    mids = [_jitter(rng, cfg, x, y, 0.8) for x, y in ((10, 10), (22, 10), (10, 22), (22, 22))]
    order = rng.permutation(4)
    mids = [mids[i] for i in order]
    dirs = [DIRECTION_NAMES[i] for i in rng.permutation(4)]
    by_colour = bool(rng.random() < 0.6)
    attr = cols if by_colour else cats
    opts = [attr[i] for i in rng.permutation(4)]
    tex = _texture(rng)
    fast = True
    items = []
    for v in range(4):
        evs = [Event("move", j, m - h, m + h, fast, dirs[(j + v) % 4]) for j in range(4)]
        p0 = np.stack([_passing(cfg, mids[j], dirs[(j + v) % 4], fast, m, h) for j in range(4)])
        clip = _finish([simulate(cfg, objs, evs, p0, t_all)], tex)[0]
        for qi in range(4):
            j = (qi - v) % 4
            word = "colour" if by_colour else "shape"
            ans = attr[j]
            qa = QA(f"What {word} is the object that moves {dirs[qi]}?", list(opts), opts.index(ans), ans,
                    "colour" if by_colour else "shape")
            items.append(DiagItem(clip, qa, g, 4 * v + qi, "collab/latin"))
    return items


# -- spatial -----------------------------------------------------------------------------------------------
def spatial_group(cfg: SynthConfig, rng: np.random.Generator, g: int) -> list[DiagItem]:
    """Relation (K=4), colour binding (K=4) or shape binding (K=4) group; an unrelated third object jumps."""
    t_all = cfg.num_frames
    kind = ("relation", "colour", "shape")[int(rng.integers(3))]
    tex = _texture(rng)
    jumper_pos = _jitter(rng, cfg, 27, 27, 0.5)
    ref = sample_objects(rng, 1)[0]
    ref.size = "small"
    items = []
    if kind == "relation":
        other = sample_objects(rng, 1)[0]
        while (other.colour, other.category) == (ref.colour, ref.category):
            other = sample_objects(rng, 1)[0]
        other.size = "small"
        jumper = _distractor(cfg, rng, [ref, other])
        opts = [REL_WORD[RELATIONS[i]] for i in rng.permutation(4)]
        centre = _jitter(rng, cfg, 13, 13, 1.0)
        off = {"left": (-1, 0), "right": (1, 0), "above": (0, -1), "below": (0, 1)}
        q = f"Where is {_np(other)} relative to {_np(ref)} at the start?"
        for k, rel in enumerate(opts):
            p = centre + np.asarray(off[rel]) * 8.0 * cfg.scale
            clip = simulate(cfg, [other, ref, jumper], [Event("jump", 2, 2, 10, False)],
                            np.stack([p, centre, jumper_pos]), t_all)
            items.append(DiagItem(clip, QA(q, list(opts), k, rel, "relation"), g, k, "spatial/relation"))
    else:
        side = ("left of", "right of")[int(rng.integers(2))]
        centre = _jitter(rng, cfg, 15, 13, 1.0)
        dx = np.array([9.0 * cfg.scale, 0.0])
        queried, other_pos = (centre - dx, centre + dx) if side == "left of" else (centre + dx, centre - dx)
        if kind == "colour":
            cat = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
            pool = [c for c in COLOUR_NAMES if c != ref.colour]
            opts = [pool[i] for i in rng.permutation(len(pool))[:4]]
            q = f"What colour is the {cat} {side} {_np(ref)}?"
            make = [(Obj(cat, opts[k], "small"), Obj(cat, opts[(k + 1) % 4], "small")) for k in range(4)]
        else:
            col = [c for c in COLOUR_NAMES if c != ref.colour][int(rng.integers(len(COLOUR_NAMES) - 1))]
            pool = [c for c in CATEGORIES if c != ref.category]
            opts = [pool[i] for i in rng.permutation(len(pool))[:4]]
            q = f"What shape is the {col} object {side} {_np(ref)}?"
            make = [(Obj(opts[k], col, "small"), Obj(opts[(k + 1) % 4], col, "small")) for k in range(4)]
        jumper = _distractor(cfg, rng, [ref] + [o for pair in make for o in pair])
        for k, (qo, oo) in enumerate(make):
            clip = simulate(cfg, [qo, oo, ref, jumper], [Event("jump", 3, 2, 10, False)],
                            np.stack([queried, other_pos, centre, jumper_pos]), t_all)
            items.append(DiagItem(clip, QA(q, list(opts), k, opts[k], kind), g, k, f"spatial/{kind}"))
    _finish([it.clip for it in items], tex)
    return items


def attribute_group(cfg: SynthConfig, rng: np.random.Generator, g: int) -> list[DiagItem]:
    """Retrieval spatial group: one random clip in K=4 versions differing in one attribute of its actor."""
    base = sample_clip(cfg, rng, num_events=1 + int(rng.integers(2)), pan=False)
    a = base.events[0].actor
    attr = ("colour", "category")[int(rng.integers(2))]
    universe = COLOUR_NAMES if attr == "colour" else CATEGORIES
    others = {(o.colour, o.category) for j, o in enumerate(base.objects) if j != a}
    cur = base.objects[a]
    vals = [v for v in universe if ((v, cur.category) if attr == "colour" else (cur.colour, v)) not in others]
    vals = [vals[i] for i in rng.permutation(len(vals))[:4]]
    items = []
    for k, v in enumerate(vals):
        objs = [Obj(o.category, o.colour, o.size, o.static) for o in base.objects]
        setattr(objs[a], attr, v)
        clip = Clip(objs, base.events, base.num_frames, base.fps, base.size, base.pos, base.radius, base.camera,
                    base.texture)
        items.append(DiagItem(clip, None, g, k, f"spatial/{attr}"))
    return items


def diagnostic_groups(cfg: SynthConfig, which: str, n_groups: int, seed_fn, retrieval: bool = False
                      ) -> list[DiagItem]:
    """``n_groups`` contrast groups of diagnostic ``which``; ``seed_fn(g)`` gives group ``g``'s generator."""
    if which not in DIAGNOSTICS:
        raise ValueError(f"unknown diagnostic split {which!r} (known: {', '.join(DIAGNOSTICS)})")
    build = {"spatial": attribute_group if retrieval else spatial_group, "temporal": temporal_group,
             "collab": collab_group}[which]
    out: list[DiagItem] = []
    for g in range(n_groups):
        out += build(cfg, seed_fn(g), g)
    return out
