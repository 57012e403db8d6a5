"""Vectorised numpy rendering of a :class:`~tasks.synthetic.scene.Clip` to ``uint8 [T, 3, H, W]`` frames.

Each shape is a signed-distance style predicate evaluated for every (frame, object, pixel) at once
(``[T, n, H, W]`` boolean masks), then objects are painted back to front (static background objects first)
over a textured background whose stripes follow the camera pan. No Python loop runs over frames or pixels.
"""

from __future__ import annotations

import numpy as np

from tasks.synthetic.scene import Clip
from tasks.synthetic.vocab import CATEGORIES, COLOURS

BACKGROUND = np.array([46.0, 48.0, 56.0])


def shape_masks(category: int, dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Boolean mask of shape ``category`` (index into ``vocab.CATEGORIES``).

    ``dx``/``dy`` are pixel offsets from the centre (broadcastable, e.g. ``[T, 1, W]`` and ``[T, H, 1]``);
    ``r`` is the radius, broadcastable likewise (``[T, 1, 1]``).
    """
    ax, ay = np.abs(dx), np.abs(dy)
    if category == 0:  # circle
        return dx * dx + dy * dy <= r * r
    if category == 1:  # square
        return np.maximum(ax, ay) <= 0.86 * r
    if category == 2:  # triangle, apex up
        return (dy >= -r) & (dy <= 0.8 * r) & (ax <= 0.62 * (dy + r))
    if category == 3:  # diamond
        return ax + ay <= 1.15 * r
    return ((ax <= 0.36 * r) & (ay <= r)) | ((ay <= 0.36 * r) & (ax <= r))  # cross


def render(clip: Clip) -> np.ndarray:
    """Frames of ``clip`` as ``uint8 [T, 3, H, W]`` (pixel centres at ``+0.5``)."""
    size = clip.size
    grid = np.arange(size, dtype=np.float32) + 0.5
    phase, freq, amp = clip.texture
    # background: faint diagonal stripes that move with the camera (so a pan is visible)
    xs = grid[None, None, :] + clip.camera.astype(np.float32)[:, None, None]
    stripes = amp * np.sin(freq * (xs + 0.5 * grid[None, :, None]) + phase)  # [T, H, W]
    pos = clip.pos.astype(np.float32)
    rad = clip.radius.astype(np.float32)
    label = np.zeros(stripes.shape, dtype=np.int8)  # 0 = background, i + 1 = object i on top
    order = sorted(range(clip.n), key=lambda i: (not clip.objects[i].static, i))
    for i in order:  # painter's order over <= 6 objects; each mask is vectorised over frames and pixels
        dx = grid[None, None, :] - pos[:, i, 0, None, None]
        dy = grid[None, :, None] - pos[:, i, 1, None, None]
        m = shape_masks(CATEGORIES.index(clip.objects[i].category), dx, dy, rad[:, i, None, None])
        label[m] = i + 1
    palette = np.array([(0, 0, 0)] + [COLOURS[o.colour] for o in clip.objects], dtype=np.float32)
    bg = BACKGROUND.astype(np.float32)[None, None, None, :] + stripes[..., None]
    frames = np.where((label > 0)[..., None], palette[label], bg)
    return np.ascontiguousarray(np.clip(frames, 0, 255).astype(np.uint8).transpose(0, 3, 1, 2))
