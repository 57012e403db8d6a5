"""Write short test videos with PyAV (moving squares) and a corrupt one."""

from __future__ import annotations

import os

import numpy as np


def write_video(path: str, n_frames: int = 32, size: int = 64, fps: int = 8, seed: int = 0, cut_at: int | None = 16):
    import av

    rng = np.random.default_rng(seed)
    with av.open(path, mode="w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        bg = rng.integers(40, 120, size=3)
        for t in range(n_frames):
            img = np.zeros((size, size, 3), dtype=np.uint8) + bg.astype(np.uint8)
            if cut_at is not None and t >= cut_at:
                img[:] = 255 - img
            x = 4 + t % (size - 24)
            img[10:30, x:x + 16] = (220, 30, 30)
            img[40:56, 40 - t % 20:56 - t % 20] = (30, 200, 60)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def write_corrupt(path: str) -> str:
    with open(path, "wb") as f:
        f.write(os.urandom(2048))
    return path
