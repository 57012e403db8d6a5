"""Fixtures of the tasks tests: the shared annotation excerpts and a short-video writer.

The annotation excerpts (real records of the official files, ``/work/shared/annotations``) live beside the
repository in ``../shared/annotations`` (or where ``FINSTA_ANNOTATIONS`` points). When they are absent:

* in CI (``CI`` or ``FINSTA_REQUIRE_ANNOTATIONS`` set to a non-empty value other than ``0``) every test that needs
  them **fails**, because CI always has ``../shared`` and a silent skip would hide the loader tests;
* elsewhere they are skipped, and the skip is loud: the reason names the path and the variable, a warning is
  issued, and the end of the test session prints how many tests did not run and why.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

DEFAULT_ANNOTATIONS = Path(__file__).resolve().parents[2] / ".." / "shared" / "annotations"
_MARK = "shared annotation excerpts not found"


def annotations_dir() -> Path:
    """Where the excerpts are expected (``FINSTA_ANNOTATIONS`` overrides the default beside the repository)."""
    env = os.environ.get("FINSTA_ANNOTATIONS")
    return (Path(env).expanduser() if env else DEFAULT_ANNOTATIONS).resolve()


def annotations_required() -> bool:
    """True in CI: a missing excerpt folder is then a failure, not a skip."""
    return any(os.environ.get(k, "") not in ("", "0") for k in ("CI", "FINSTA_REQUIRE_ANNOTATIONS"))


@pytest.fixture(scope="session")
def annotations() -> Path:
    path = annotations_dir()
    if path.is_dir():
        return path
    reason = (f"{_MARK} at {path} (they live in ../shared/annotations beside the "
              "repository; set FINSTA_ANNOTATIONS to their folder)")
    if annotations_required():
        pytest.fail(f"{reason}; CI / FINSTA_REQUIRE_ANNOTATIONS is set, so this is an error, not a skip")
    warnings.warn(f"SKIPPING annotation-fixture tests: {reason}", stacklevel=1)
    pytest.skip(f"NOT RUN: {reason}")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001 - pytest hook signature
    """Say at the end of the run that the loader tests on real records did not run."""
    n = sum(1 for r in terminalreporter.stats.get("skipped", []) if _MARK in str(getattr(r, "longrepr", "")))
    if n:
        terminalreporter.write_sep("!", f"{n} tasks test(s) NOT RUN: no annotation excerpts at "
                                        f"{annotations_dir()} (see tests/tasks/conftest.py)", red=True, bold=True)


@pytest.fixture(scope="session")
def video_writer():
    """The :func:`write_video` helper (fixtures cannot be imported across test modules without packages)."""
    return write_video


def write_video(path: Path, n_frames: int = 20, fps: int = 10, size: tuple[int, int] = (48, 64),
                codec: str = "mpeg4", gop: int | None = None, faststart: bool = False) -> Path:
    """A short real video whose frame i is a flat grey level ``(10 * i) % 256`` (decoded frames identify
    themselves). ``gop``: keyframe interval in frames; ``faststart``: index (``moov``) at the start of the
    mp4, the layout of web videos, so a truncated copy still opens and declares the full duration."""
    import av

    h, w = size
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as c:
        st = c.add_stream(codec, rate=fps)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        if gop is not None:
            st.codec_context.gop_size = gop
        for i in range(n_frames):
            img = np.full((h, w, 3), (10 * i) % 256, np.uint8)
            for pkt in st.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in st.encode():
            c.mux(pkt)
    return path
