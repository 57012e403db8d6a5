"""Seeded random clips: objects, an event timeline and start positions that keep every event well-formed.

:func:`sample_clip` is the one entry point; it draws everything from the ``numpy`` generator it is given,
so a clip is a pure function of its seed (``tests/synthetic`` checks byte equality across calls).
Events are placed sequentially ("then", "after") or, for two different actors, concurrently ("while").
Directions are chosen *after* the start positions, among the directions the motion fits in, so no clip is
rejected for leaving the frame; a transitive event whose target is too close (approach) or whose path
leaves the frame (leave) is turned into another kind.
"""

from __future__ import annotations

import numpy as np

from tasks.synthetic.config import SynthConfig
from tasks.synthetic.scene import DURATION, GROWTH, JUMP_HEIGHT, Clip, Event, Obj, base_radius, simulate, speed
from tasks.synthetic.vocab import CATEGORIES, COLOUR_NAMES, DIRECTION_NAMES, DIRECTIONS, SIZES, VERBS

KIND_P = {"move": 0.34, "approach": 0.14, "leave": 0.12, "jump": 0.14, "grow": 0.1, "stop": 0.16}
RANDOM_LAYOUTS = 32  # random start layouts tried for a forced first event before the constructed one
MIN_GAP = 2.0  # pixels (at 32 px) between the outlines of two objects at the start


def sample_objects(rng: np.random.Generator, n: int) -> list[Obj]:
    """``n`` objects with distinct (category, colour, size) triples; the first ones are actors."""
    seen: set[tuple[str, str, str]] = set()
    out: list[Obj] = []
    while len(out) < n:
        key = (CATEGORIES[rng.integers(len(CATEGORIES))], COLOUR_NAMES[rng.integers(len(COLOUR_NAMES))],
               SIZES[rng.integers(len(SIZES))])
        if key not in seen:
            seen.add(key)
            out.append(Obj(*key))
    return out


def sample_positions(cfg: SynthConfig, rng: np.random.Generator, objects: list[Obj], tries: int = 256,
                     fixed: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """Start centres ``[n, 2]`` inside the frame, at least ``r_i + r_j + 2`` pixels apart (room to grow).

    Draws ``tries`` candidate layouts at once and keeps the first valid one (or the least crowded).
    ``fixed`` pins the centres of some objects (index -> ``[2]``); the others are drawn around them.
    """
    r = base_radius(cfg, objects)
    lo, hi = r * GROWTH + 1.0, cfg.size - r * GROWTH - 1.0
    p = rng.uniform(lo[None, :, None], hi[None, :, None], size=(tries, len(objects), 2))
    for i, xy in (fixed or {}).items():
        p[:, i] = xy
    d = np.linalg.norm(p[:, :, None] - p[:, None], axis=-1) - (r[:, None] + r[None]) - MIN_GAP * cfg.scale
    d[:, np.arange(len(objects)), np.arange(len(objects))] = np.inf
    gap = d.min(axis=(1, 2))
    ok = np.nonzero(gap >= -1e-6)[0]
    return p[ok[0]] if len(ok) else p[int(np.argmax(gap))]


def _matches(ev: Event, first: tuple[str, bool, str | None]) -> bool:
    """Whether a placed event is the forced ``(kind, fast, direction or None)``."""
    return (ev.kind, ev.fast) == tuple(first[:2]) and first[2] in (None, ev.direction)


def _path_room(cfg: SynthConfig, objects: list[Obj], kind: str) -> float:
    """Longest straight path (pixels) the first actor (object 0) can take for ``kind`` in an empty frame."""
    r = base_radius(cfg, objects)
    room = cfg.size - 2 * r[0] - 1.5
    if kind in ("approach", "leave"):  # the target (object 1) shares the line
        room -= 2 * r[1] + MIN_GAP * cfg.scale + 1.0
    return float(room)


def _fit_first(cfg: SynthConfig, objects: list[Obj], plan: list[tuple[int, int, str, bool, bool]],
               first: tuple[str, bool, str | None]) -> list[tuple[int, int, str, bool, bool]]:
    """Shorten the first planned motion if its path cannot fit the frame at all (never at 32 / 64 px with the
    default speeds and sizes; a safety net for custom configs). Fixed-length events are left alone."""
    s, e, kind, fast, conc = plan[0]
    if kind not in ("move", "approach", "leave"):
        return plan
    frames = int(_path_room(cfg, objects, kind) // speed(cfg, fast))
    return [(s, s + max(3, min(e - s, frames)), kind, fast, conc)] + list(plan[1:])


def _layout_for_first(cfg: SynthConfig, rng: np.random.Generator, objects: list[Obj],
                      planned: tuple[int, int, str, bool, bool], first: tuple[str, bool, str | None]) -> np.ndarray:
    """Start centres ``[n, 2]`` built so that the forced first event (actor = object 0, target = object 1)
    fits: the actor's path (and the target) is centred on a line through the frame centre along the event's
    direction, jittered across it; the other objects are drawn around them (:func:`sample_positions`)."""
    s, e, kind, fast, _ = planned
    r = base_radius(cfg, objects)
    c = np.full(2, cfg.size / 2.0)
    dist = (e - s) * speed(cfg, fast or kind == "stop")
    name = first[2] if first[2] is not None else DIRECTION_NAMES[int(rng.integers(len(DIRECTION_NAMES)))]
    u = np.asarray(DIRECTIONS[name], dtype=np.float64)
    across = np.abs(u[::-1])  # unit vector perpendicular to the path
    reach = r[:2].max() * GROWTH + 1.0
    c = c + across * rng.uniform(-1.0, 1.0) * max(0.0, cfg.size / 2.0 - reach - 1.0) * 0.5
    fixed: dict[int, np.ndarray] = {}
    if kind in ("move", "stop"):
        fixed[0] = c - u * dist / 2
    elif kind == "approach":  # gap of 1 px + the whole path, or as much as fits (the event then ends early)
        sep = min(r[0] + r[1] + 1.0 + dist + 0.25, cfg.size - 1.5 - r[0] - r[1])
        fixed[0], fixed[1] = c - u * sep / 2, c + u * sep / 2
    elif kind == "leave":  # target, then the actor next to it, moving away from it along u
        sep = r[0] + r[1] + MIN_GAP * cfg.scale
        t = c - u * (sep + dist + r[0] - r[1]) / 2
        fixed[1], fixed[0] = t, t + u * sep
    elif kind == "jump":  # room above for the jump
        fixed[0] = np.array([c[0], cfg.size / 2.0 + JUMP_HEIGHT * cfg.scale / 2])
    else:  # grow: the centre has room for the grown radius
        fixed[0] = c
    return sample_positions(cfg, rng, objects, fixed=fixed)


def _timeline(cfg: SynthConfig, rng: np.random.Generator, num_events: int, num_frames: int,
              long: bool, allow_concurrent: bool,
              first: tuple[str, bool, str | None] | None = None) -> list[tuple[int, int, str, bool, bool]]:
    """``(start, end, kind, fast, concurrent_with_previous)`` per event, in start order, inside the clip."""
    lo, hi = (3, 5) if long else ((5, 7) if num_events > 1 else (6, 10))
    out: list[tuple[int, int, str, bool, bool]] = []
    t = int(rng.integers(0, 2 if long or num_events > 1 else 4))
    for i in range(num_events):
        left = num_events - i - 1
        budget = num_frames - t - 3 * left
        concurrent = allow_concurrent and bool(out) and not out[-1][4] and rng.random() < (0.2 if long else 0.3)
        kinds = [k for k in VERBS for f in (True, False) if DURATION.get(k, (lo, lo))[0 if f else 1] <= budget]
        kinds = list(dict.fromkeys(kinds)) or ["move"]
        p = np.array([KIND_P[k] for k in kinds])
        kind = kinds[rng.choice(len(kinds), p=p / p.sum())]
        fast = bool(rng.random() < 0.5)
        if i == 0 and first is not None:
            kind, fast = first[0], first[1]
        elif kind in DURATION and DURATION[kind][0 if fast else 1] > budget:
            fast = True
        if kind in DURATION:
            dur = DURATION[kind][0 if fast else 1]
        else:
            top = hi if not fast or kind not in ("approach", "leave") else max(lo, hi - 3)  # fast paths stay short
            dur = int(min(rng.integers(lo, top + 1), max(budget, 3)))
        if concurrent:
            s = int(out[-1][0] + rng.integers(0, max(1, (out[-1][1] - out[-1][0]) // 2)))
            s = min(s, num_frames - dur)
        else:
            s = t
        out.append((s, s + dur, kind, fast, concurrent))
        t = max(t, s + dur + int(rng.integers(0, 2)))
        t = min(t, num_frames - 3 * left)
    return out


def _fits(cfg: SynthConfig, p: np.ndarray, r: float, step: np.ndarray) -> bool:
    q = p + step
    return bool((q - r >= 0.5).all() and (q + r <= cfg.size - 0.5).all())


def sample_clip(cfg: SynthConfig, rng: np.random.Generator, num_events: int = 1, long: bool = False,
                num_objects: int | None = None, pan: bool | None = None,
                first: tuple[str, bool, str | None] | None = None) -> Clip:
    """A random clip with ``num_events`` events (1-2 for short clips, 3-8 for long ones).

    Args:
        cfg: benchmark configuration; rng: the sample's generator (the only source of randomness).
        long: use ``cfg.long_num_frames``; num_objects: override the drawn object count.
        pan: force the camera pan on / off (default: with probability ``cfg.pan_prob``).
        first: force the first event's ``(kind, fast, direction or None)`` (balanced action classes);
            start positions are redrawn (up to ``RANDOM_LAYOUTS`` times) until it fits, then a layout is
            constructed around it (:func:`_layout_for_first`), so generation never fails.
    """
    num_frames = cfg.long_num_frames if long else cfg.num_frames
    n_obj = num_objects or int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    objects = sample_objects(rng, n_obj)
    n_act = min(n_obj - 1, max(1, min(num_events, 3 if long else 2)))
    for k, o in enumerate(objects):
        o.static = k >= n_act
    plan = _timeline(cfg, rng, num_events, num_frames, long, n_act >= 2, first)
    want_dir = first[2] if first else None
    for _ in range(RANDOM_LAYOUTS):
        pos0 = sample_positions(cfg, rng, objects)
        events = _place_events(cfg, rng, objects, n_act, pos0, plan, num_frames, want_dir)
        if first is None or _matches(events[0], first):
            break
    else:  # the random layouts did not fit the forced first event: build a layout for it (always feasible)
        plan = _fit_first(cfg, objects, plan, first)
        pos0 = _layout_for_first(cfg, rng, objects, plan[0], first)
        events = _place_events(cfg, rng, objects, n_act, pos0, plan, num_frames, want_dir, first_actor=0)
        if not _matches(events[0], first):  # a bug, not bad luck: the layout above is constructed to fit
            raise RuntimeError(f"synthetic generator: the layout built for a forced first event {first} gave "
                               f"{events[0]} (frame size {cfg.size}, objects {objects}, plan {plan})")
    use_pan = (rng.random() < cfg.pan_prob) if pan is None else pan
    pan_speed = float(rng.choice([-0.35, 0.35])) if use_pan else 0.0
    clip = simulate(cfg, objects, events, pos0, num_frames, pan_speed)
    if pan_speed and not clip.inside():
        clip = simulate(cfg, objects, events, pos0, num_frames, 0.0)
    clip.texture = (float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0.25, 0.6)), float(rng.uniform(4, 9)))
    return clip


def _place_events(cfg: SynthConfig, rng: np.random.Generator, objects: list[Obj], n_act: int, pos0: np.ndarray,
                  plan: list[tuple[int, int, str, bool, bool]], num_frames: int,
                  first_direction: str | None = None, first_actor: int | None = None) -> list[Event]:
    """Turn a timeline into events: pick actors and targets, and directions that fit in the frame.

    ``first_actor`` forces the actor of the first event (the constructed layout of :func:`_layout_for_first`).
    """
    n_obj = len(objects)
    events: list[Event] = []
    grown: set[int] = set()
    prev_actor = -1
    for s, e, kind, fast, concurrent in plan:
        cands = [a for a in range(n_act) if a != prev_actor] if concurrent else list(range(n_act))
        busy = {x for ev in events if ev.start < e and s < ev.end for x in (ev.actor, ev.target) if x is not None}
        cands = [a for a in cands if a not in busy] or [a for a in range(n_act) if a not in busy] or [0]
        actor = int(cands[rng.integers(len(cands))])
        if first_actor is not None and not events:
            actor = first_actor
        clip = simulate(cfg, objects, events, pos0, num_frames)
        p, r = clip.pos[s, actor], clip.radius[s, actor]  # planning runs without the camera pan
        dist = (e - s) * speed(cfg, fast or kind == "stop")
        if kind == "grow" and (actor in grown or not _fits(cfg, p, r * GROWTH, np.zeros(2))):
            kind = "jump"
        if kind == "jump" and not _fits(cfg, p, r, np.array([0.0, -JUMP_HEIGHT * cfg.scale])):
            kind = "move"
        ev = Event(kind, actor, s, e, fast)
        if kind in ("approach", "leave"):
            others = [o for o in range(n_obj) if o != actor and o not in busy]
            rng.shuffle(others)
            ok = False
            for tgt in others:
                d = clip.pos[s, tgt] - p
                gap = np.linalg.norm(d) - r - clip.radius[s, tgt]
                v = speed(cfg, fast)
                frames = (e - s) if kind == "leave" else min(e - s, int((gap - 1.0) / v))
                step = (d if kind == "approach" else -d) / max(np.linalg.norm(d), 1e-6) * v * frames
                if frames >= 3 and _fits(cfg, p, r, step):  # an approach may end early, before contact
                    ev.target, ev.end, ok = int(tgt), s + frames, True
                    break
            if not ok:
                ev.kind = kind = "move"
        if kind in ("move", "stop"):
            dirs = [d for d in DIRECTION_NAMES if _fits(cfg, p, r, np.asarray(DIRECTIONS[d]) * dist)]
            if not dirs:  # nothing fits (crowded corner): slow down
                ev.fast = False
                dist = (e - s) * speed(cfg, False)
                dirs = [d for d in DIRECTION_NAMES if _fits(cfg, p, r, np.asarray(DIRECTIONS[d]) * dist)]
                if kind == "stop" or not dirs:
                    ev.kind, ev.fast = "jump", bool(rng.random() < 0.5)
                    ev.end = min(num_frames, s + DURATION["jump"][0 if ev.fast else 1])
            if ev.kind in ("move", "stop"):
                ev.direction = dirs[rng.integers(len(dirs))]
                if not events and first_direction in dirs:
                    ev.direction = first_direction
        if ev.kind == "grow":
            grown.add(actor)
        events.append(ev)
        prev_actor = actor
    return events
