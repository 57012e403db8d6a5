"""Fixtures of the tasks tests: the shared annotation excerpts (``../shared/annotations`` beside the repo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ANNOTATIONS = Path(__file__).resolve().parents[2] / ".." / "shared" / "annotations"


@pytest.fixture(scope="session")
def annotations() -> Path:
    if not ANNOTATIONS.is_dir():
        pytest.skip(f"shared annotation excerpts not found at {ANNOTATIONS.resolve()}")
    return ANNOTATIONS.resolve()


@pytest.fixture(scope="session")
def video_writer():
    """The :func:`write_video` helper (fixtures cannot be imported across test modules without packages)."""
    return write_video


def write_video(path: Path, n_frames: int = 20, fps: int = 10, size: tuple[int, int] = (48, 64),
                codec: str = "mpeg4") -> Path:
    """A short real video whose frame i is a flat grey level 10 * i (so decoded frames identify themselves)."""
    import av

    h, w = size
    with av.open(str(path), "w") as c:
        st = c.add_stream(codec, rate=fps)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        for i in range(n_frames):
            img = np.full((h, w, 3), min(255, 10 * i), np.uint8)
            for pkt in st.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in st.encode():
            c.mux(pkt)
    return path
