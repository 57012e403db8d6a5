"""Clip specifications (objects, events) and their exact kinematics.

A :class:`Clip` is the ground truth of one synthetic video: its objects (category, colour, size, static or
actor), its events (who does what, to whom, how fast, in which frames) and the per-frame geometry that
follows from them (:func:`simulate`). The renderer, the caption grammar and the scene-graph builder all
read the same :class:`Clip`, so captions, graphs and pixels agree by construction.

Frame convention: ``pos[t]`` is the centre at frame ``t`` = start position plus the velocities of frames
``0 .. t-1``; an event active over ``[start, end)`` moves the object between frame ``start`` and ``end``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tasks.synthetic.config import SynthConfig
from tasks.synthetic.vocab import ADVERBS, DIRECTIONS, SIZE_RADIUS, TRANSITIVE

JUMP_HEIGHT = 5.0  # pixels at 32 px
GROWTH = 1.6  # radius factor reached by "grow"
DURATION = {"jump": (4, 8), "grow": (3, 7), "stop": (6, 6)}  # (fast, slow) frames of the fixed-length events


@dataclass
class Obj:
    """One object: ``category`` (shape), ``colour``, ``size`` and whether it is a static background object."""

    category: str
    colour: str
    size: str
    static: bool = False


@dataclass
class Event:
    """One event of one actor over frames ``[start, end)``.

    ``kind`` is a verb of :data:`tasks.synthetic.vocab.VERBS`; ``direction`` is set for ``move`` (and is
    the motion direction before a ``stop``); ``target`` is the other object of ``approach`` / ``leave``.
    """

    kind: str
    actor: int
    start: int
    end: int
    fast: bool
    direction: str | None = None
    target: int | None = None

    @property
    def predicate(self) -> str:
        """Canonical predicate label (TSG / DSG relation node): ``move left``, ``approach``, ..."""
        return f"move {self.direction}" if self.kind == "move" else self.kind

    @property
    def adverb(self) -> str:
        return ADVERBS[self.kind][0 if self.fast else 1]

    @property
    def action_class(self) -> str:
        return f"{self.predicate} {self.adverb}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "actor": self.actor, "start": self.start, "end": self.end, "fast": self.fast,
                "direction": self.direction, "target": self.target}


@dataclass
class Clip:
    """Ground truth of one clip. Geometry arrays are in frame pixels (camera applied).

    Attributes:
        objects: ``n`` objects; events: in start order.
        num_frames, fps, size: geometry of the video.
        pos: ``[T, n, 2]`` float centres (x, y); radius: ``[T, n]`` float.
        camera: ``[T]`` float horizontal camera offset (pan), added to the background texture phase.
        texture: background texture parameters (phase, frequency, amplitude) drawn per clip.
    """

    objects: list[Obj]
    events: list[Event]
    num_frames: int
    fps: float
    size: int
    pos: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    radius: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    camera: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    texture: tuple[float, float, float] = (0.0, 0.3, 6.0)

    @property
    def n(self) -> int:
        return len(self.objects)

    def timestamps(self) -> np.ndarray:
        return np.arange(self.num_frames, dtype=np.float32) / np.float32(self.fps)

    def boxes(self) -> np.ndarray:
        """``[T, n, 4]`` xyxy boxes clipped to the frame."""
        r = self.radius[..., None]
        b = np.concatenate([self.pos - r, self.pos + r], -1)
        return np.clip(b, 0.0, float(self.size))

    def inside(self, margin: float = 0.5) -> bool:
        """Whether every object stays fully inside the frame in every frame."""
        lo = self.pos - self.radius[..., None]
        hi = self.pos + self.radius[..., None]
        return bool((lo >= margin).all() and (hi <= self.size - margin).all())


def speed(cfg: SynthConfig, fast: bool) -> float:
    return (cfg.fast_speed if fast else cfg.slow_speed) * cfg.scale


def base_radius(cfg: SynthConfig, objects: list[Obj]) -> np.ndarray:
    return np.array([SIZE_RADIUS[o.size] for o in objects], dtype=np.float64) * cfg.scale


def simulate(cfg: SynthConfig, objects: list[Obj], events: list[Event], start_pos: np.ndarray, num_frames: int,
             pan: float = 0.0) -> Clip:
    """Exact kinematics of ``events`` from ``start_pos`` ``[n, 2]`` (world pixels) -> a :class:`Clip`.

    Vectorised over frames; one pass per event (events are few). ``approach`` / ``leave`` head for /
    away from the target's position at the event start; ``stop`` moves in ``direction`` and decelerates
    to rest at ``end`` (abruptly: full speed then rest; gradually: linear ramp down).
    """
    n, t_all = len(objects), num_frames
    vel = np.zeros((t_all, n, 2))
    lift = np.zeros((t_all, n))
    rad = np.tile(base_radius(cfg, objects), (t_all, 1))
    frames = np.arange(t_all)
    for ev in sorted(events, key=lambda e: (e.start, e.actor)):
        s, e, a = ev.start, ev.end, ev.actor
        v = speed(cfg, ev.fast or ev.kind == "stop")  # a stop starts at full speed; its adverb is the braking
        if ev.kind in ("move", "stop"):
            d = np.asarray(DIRECTIONS[ev.direction])
            if ev.kind == "move" or ev.fast:  # move, or an abrupt stop: constant speed, then rest
                prof = np.ones(e - s)
            else:  # gradual stop: linear deceleration to rest at ``end``
                prof = np.linspace(1.0, 0.0, e - s + 1)[:-1]
            vel[s:e, a] = d * (v * prof)[:, None]
        elif ev.kind in TRANSITIVE:
            p = start_pos + vel[:s].sum(0)
            d = p[ev.target] - p[a]
            d = d / max(np.linalg.norm(d), 1e-6)
            vel[s:e, a] = (d if ev.kind == "approach" else -d) * v
        elif ev.kind == "jump":
            ph = (frames[s:e] - s + 0.5) / (e - s)
            lift[s:e, a] = JUMP_HEIGHT * cfg.scale * np.sin(np.pi * ph)
        elif ev.kind == "grow":
            g = np.minimum((frames - s + 1) / (e - s), 1.0)
            g[frames < s] = 0.0
            rad[:, a] *= 1.0 + (GROWTH - 1.0) * g
    pos = start_pos[None] + np.concatenate([np.zeros((1, n, 2)), np.cumsum(vel, 0)[:-1]], 0)
    pos[..., 1] -= lift
    camera = pan * cfg.scale * frames.astype(np.float64)
    pos[..., 0] -= camera[:, None]
    return Clip(objects, sorted(events, key=lambda e: (e.start, e.actor)), t_all, cfg.fps, cfg.size, pos, rad,
                camera)


def relation(pos_s: np.ndarray, pos_o: np.ndarray) -> np.ndarray:
    """Spatial relation index (``vocab.RELATIONS`` order) of subjects relative to objects, from centres.

    ``[..., 2]`` x ``[..., 2]`` -> ``[...]`` long: dominant axis of the displacement; 0 left of, 1 right of,
    2 above, 3 below.
    """
    d = pos_s - pos_o
    horiz = np.abs(d[..., 0]) >= np.abs(d[..., 1])
    return np.where(horiz, np.where(d[..., 0] < 0, 0, 1), np.where(d[..., 1] < 0, 2, 3))


def event_duration(kind: str, fast: bool, rng: np.random.Generator, lo: int, hi: int) -> int:
    """Frames of an event: fixed per speed for jump / grow / stop, drawn in ``[lo, hi]`` for motion."""
    if kind in DURATION:
        return DURATION[kind][0 if fast else 1]
    return int(rng.integers(lo, hi + 1))
