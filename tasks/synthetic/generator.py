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


def sample_positions(cfg: SynthConfig, rng: np.random.Generator, objects: list[Obj], tries: int = 256) -> np.ndarray:
    """Start centres ``[n, 2]`` inside the frame, at least ``r_i + r_j + 2`` pixels apart (room to grow).

    Draws ``tries`` candidate layouts at once and keeps the first valid one (or the least crowded)."""
    r = base_radius(cfg, objects)
    lo, hi = r * GROWTH + 1.0, cfg.size - r * GROWTH - 1.0
    p = rng.uniform(lo[None, :, None], hi[None, :, None], size=(tries, len(objects), 2))
    d = np.linalg.norm(p[:, :, None] - p[:, None], axis=-1) - (r[:, None] + r[None]) - 2.0
    d[:, np.arange(len(objects)), np.arange(len(objects))] = np.inf
    gap = d.min(axis=(1, 2))
    ok = np.nonzero(gap >= 0)[0]
    return p[ok[0]] if len(ok) else p[int(np.argmax(gap))]


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
            start positions are redrawn until it fits.
    """
    num_frames = cfg.long_num_frames if long else cfg.num_frames
    n_obj = num_objects or int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    objects = sample_objects(rng, n_obj)
    n_act = min(n_obj - 1, max(1, min(num_events, 3 if long else 2)))
    for k, o in enumerate(objects):
        o.static = k >= n_act
    plan = _timeline(cfg, rng, num_events, num_frames, long, n_act >= 2, first)
    for attempt in range(100):
        pos0 = sample_positions(cfg, rng, objects)
        events = _place_events(cfg, rng, objects, n_act, pos0, plan, num_frames, first[2] if first else None)
        ev0 = events[0]
        if first is None or (ev0.kind, ev0.fast) == first[:2] and first[2] in (None, ev0.direction):
            break
        if attempt == 99:
            raise RuntimeError(f"could not place a {first} event in 100 attempts (frame size {cfg.size})")
    use_pan = (rng.random() < cfg.pan_prob) if pan is None else pan
    pan_speed = float(rng.choice([-0.35, 0.35])) if use_pan else 0.0
    clip = simulate(cfg, objects, events, pos0, num_frames, pan_speed)
    if pan_speed and not clip.inside():
        clip = simulate(cfg, objects, events, pos0, num_frames, 0.0)
    clip.texture = (float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0.25, 0.6)), float(rng.uniform(4, 9)))
    return clip


def _place_events(cfg: SynthConfig, rng: np.random.Generator, objects: list[Obj], n_act: int, pos0: np.ndarray,
                  plan: list[tuple[int, int, str, bool, bool]], num_frames: int,
                  first_direction: str | None = None) -> list[Event]:
    """Turn a timeline into events: pick actors and targets, and directions that fit in the frame."""
    n_obj = len(objects)
    events: list[Event] = []
    grown: set[int] = set()
    prev_actor = -1
    for s, e, kind, fast, concurrent in plan:
        cands = [a for a in range(n_act) if a != prev_actor] if concurrent else list(range(n_act))
        busy = {x for ev in events if ev.start < e and s < ev.end for x in (ev.actor, ev.target) if x is not None}
        cands = [a for a in cands if a not in busy] or [a for a in range(n_act) if a not in busy] or [0]
        actor = int(cands[rng.integers(len(cands))])
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
