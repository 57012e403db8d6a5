"""One check for the temporal spans and times of every loader (YouCook2, Kinetics, ActivityNet, How2QA, DiDeMo).

A span is ``(start, end)`` in the dataset's own unit (seconds; DiDeMo: 5-second segment indices). The check
refuses, with a one-line reason the loaders prefix with file, record and field:

* a value that is not a number (``"abc"``, ``None``, ``True``, ``"1.2.3"``);
* NaN and infinite values (``float("inf")`` used to reach ``int()`` and crash with ``OverflowError``);
* a negative start;
* a reversed span (``end < start``), and an empty one (``end == start``) unless the caller allows it
  (ActivityNet's training file has zero-length segments; DiDeMo's end segment is inclusive);
* a span starting at or after the video's ``duration`` when the annotation gives one (no frame to show).

An end slightly past ``duration`` is accepted: ActivityNet's official files have ends up to 0.01 s past it
(checked on val_1, val_2 and train), and the decoder stops at the last frame it has.
"""

from __future__ import annotations

import math
from typing import Any


class SpanError(ValueError):
    """A start / end pair that is not a valid span (the message says why, without the location)."""


def as_time(value: Any, name: str = "time") -> float:
    """A finite, non-negative number of seconds (or segment index) from an annotation value."""
    if isinstance(value, bool):
        raise SpanError(f"{name} {value!r} is not a number")
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise SpanError(f"{name} {value!r} is not a number") from None
    if math.isnan(t):
        raise SpanError(f"{name} is NaN")
    if math.isinf(t):
        raise SpanError(f"{name} {value!r} is infinite")
    if t < 0:
        raise SpanError(f"{name} {t:g} is negative")
    return t


def check_span(start: Any, end: Any, *, allow_empty: bool = False, duration: Any = None) -> tuple[float, float]:
    """``(start, end)`` as floats after the checks of the module docstring; raises :class:`SpanError`.

    Args:
        start, end: the annotation's values (numbers or numeric strings).
        allow_empty: accept ``end == start``.
        duration: the video's duration in the same unit, when the annotation gives one (None: not checked).
    """
    t0, t1 = as_time(start, "start"), as_time(end, "end")
    if t1 < t0:
        raise SpanError(f"reversed span: end {t1:g} is before start {t0:g}")
    if t1 == t0 and not allow_empty:
        raise SpanError(f"empty span [{t0:g}, {t1:g}]")
    if duration is not None:
        d = as_time(duration, "duration")
        if d > 0 and t0 >= d:
            raise SpanError(f"span [{t0:g}, {t1:g}] starts at or after the video's duration {d:g}")
    return t0, t1
