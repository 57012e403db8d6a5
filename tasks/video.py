"""Video decoding (PyAV; decord optional), frame sampling per :class:`~tasks.base.VideoProtocol`, resize + crop.

Sampling rules (times in seconds, relative to the start of the decoded window ``[start, end)``, of length d):

* ``uniform``: T evenly spaced segment centres, ``start + (i + 0.5) * d / T``.
* ``segment`` (TSN / ClipBERT): the window is cut into T equal segments; one frame per segment, at a
  uniformly random position in training and at the centre in evaluation (so evaluation equals ``uniform``).
* ``fps``: ``start + k / fps`` for every k with ``k / fps < d``; when ``num_frames`` is also set and the clip
  yields more frames, T evenly spaced ones are kept.

The frame returned for time t is the one on screen at t: the last decoded frame whose presentation time is
<= t (the first frame for t before it). Frames come back as ``uint8 [T, 3, H, W]`` with the time of each
returned frame; :func:`resize_crop` resizes the short side to the protocol resolution (bilinear, antialiased)
and crops a square (``center``, ``random`` with one offset for the whole clip, or ``none`` = squash).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tasks.base import VideoProtocol


class VideoDecodeError(RuntimeError):
    """A video is missing, unreadable or has no video stream (message names the file)."""


@dataclass(frozen=True)
class VideoInfo:
    """Stream facts used for sampling: ``duration`` seconds (None if unknown), ``fps`` (None if unknown)."""

    duration: float | None
    fps: float | None
    num_frames: int | None
    width: int
    height: int


def sample_times(duration: float, protocol: VideoProtocol, train: bool = False,
                 rng: np.random.Generator | None = None, start: float = 0.0) -> np.ndarray:
    """Sampling times ``[T]`` (seconds, absolute in the video) for a window ``[start, start + duration)``."""
    d = max(float(duration), 1e-6)
    if protocol.sampling == "fps":
        n = max(1, int(math.ceil(d * float(protocol.fps) - 1e-9)))
        t = np.arange(n, dtype=np.float64) / float(protocol.fps)
        if protocol.num_frames and n > protocol.num_frames:
            t = t[np.linspace(0, n - 1, protocol.num_frames).round().astype(int)]
        return start + t
    n = int(protocol.num_frames)
    seg = d / n
    if protocol.sampling == "segment" and train:
        rng = rng if rng is not None else np.random.default_rng()
        offs = rng.uniform(0.0, 1.0, size=n)
    else:
        offs = np.full(n, 0.5)
    return start + (np.arange(n) + offs) * seg


def probe(path: str | Path) -> VideoInfo:
    """Duration, frame rate and size of the first video stream (PyAV)."""
    av = _import_av()
    try:
        with av.open(str(path)) as c:
            st = _video_stream(c, path)
            return _info(c, st)
    except VideoDecodeError:
        raise
    except Exception as err:  # av.error.* and OSError
        raise VideoDecodeError(f"cannot read video {path}: {err}") from err


def _info(c, st) -> VideoInfo:
    fps = float(st.average_rate) if st.average_rate else None
    duration = None
    if st.duration is not None and st.time_base is not None:
        duration = float(st.duration * st.time_base)
    elif c.duration is not None:
        duration = c.duration / 1_000_000
    frames = int(st.frames) if st.frames else None
    if duration is None and frames and fps:
        duration = frames / fps
    return VideoInfo(duration, fps, frames, st.codec_context.width, st.codec_context.height)


def _import_av():
    try:
        import av
    except ImportError as err:  # pragma: no cover - av is a declared extra
        raise VideoDecodeError("video decoding needs PyAV: pip install 'av>=12' (extra finsta[video])") from err
    return av


def _video_stream(c, path):
    if not c.streams.video:
        raise VideoDecodeError(f"no video stream in {path}")
    st = c.streams.video[0]
    st.thread_type = "AUTO"
    return st


def decode_pyav(path: str | Path, protocol: VideoProtocol, train: bool = False,
                rng: np.random.Generator | None = None, span: tuple[float, float] | None = None
                ) -> tuple[Tensor, Tensor]:
    """Decode the protocol's frames of ``path`` (optionally only the window ``span`` in seconds).

    Returns:
        (``uint8 [T, 3, H, W]`` frames, ``float32 [T]`` presentation times in seconds from the video start).
    """
    av = _import_av()
    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError(f"video file not found: {path}")
    try:
        with av.open(str(path)) as c:
            st = _video_stream(c, path)
            info = _info(c, st)
            t0 = float(st.start_time * st.time_base) if st.start_time is not None and st.time_base else 0.0
            start, end = (float(span[0]), float(span[1])) if span else (0.0, info.duration)
            if end is None:  # unknown duration: read all frame times first (rare: raw streams)
                times_all = [float(f.time) - t0 for f in c.decode(st) if f.time is not None]
                end = (times_all[-1] + 1.0 / (info.fps or 25.0)) if times_all else 0.0
                c.seek(0)
            end = max(end, start + 1e-3)
            targets = sample_times(end - start, protocol, train, rng, start)
            if start > 0:
                c.seek(int((start + t0) / st.time_base), stream=st, backward=True, any_frame=False)
            frames, times = _pick(c.decode(st), targets, t0)
    except VideoDecodeError:
        raise
    except Exception as err:  # av.error.InvalidDataError, OSError, ...
        raise VideoDecodeError(f"cannot decode video {path}: {type(err).__name__}: {err}") from err
    if not frames:
        raise VideoDecodeError(f"no decodable frame in {path}" + (f" within {span}" if span else ""))
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous(), torch.tensor(times, dtype=torch.float32)


def _pick(decoder, targets: np.ndarray, t0: float) -> tuple[list[np.ndarray], list[float]]:
    """Stream through decoded frames, taking for each target time the last frame shown at or before it."""
    order = np.argsort(targets, kind="stable")
    out: list = [None] * len(targets)
    out_t = [0.0] * len(targets)
    k, prev, prev_t = 0, None, 0.0
    cached_src, cached = None, None  # convert each chosen frame to RGB once, even if picked repeatedly
    for frame in decoder:
        ft = (float(frame.time) - t0) if frame.time is not None else prev_t
        while k < len(order) and ft > targets[order[k]] + 1e-6:
            src, src_t = (prev, prev_t) if prev is not None else (frame, ft)
            if src is not cached_src:
                cached_src, cached = src, src.to_ndarray(format="rgb24")
            out[order[k]], out_t[order[k]] = cached, src_t
            k += 1
        if k >= len(order):
            break
        prev, prev_t = frame, ft
    if prev is not None:
        last = prev.to_ndarray(format="rgb24") if k < len(order) else None
        while k < len(order):  # targets past the last frame: the last frame stays on screen
            out[order[k]], out_t[order[k]] = last, prev_t
            k += 1
    if any(o is None for o in out):
        return [], []
    return out, out_t


def decode_decord(path: str | Path, protocol: VideoProtocol, train: bool = False,
                  rng: np.random.Generator | None = None, span: tuple[float, float] | None = None
                  ) -> tuple[Tensor, Tensor]:
    """Same contract as :func:`decode_pyav` with decord (optional dependency, frame-index based)."""
    try:
        import decord
    except ImportError as err:
        raise VideoDecodeError("protocol backend 'decord' needs `pip install decord` (or use backend 'pyav')") from err
    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError(f"video file not found: {path}")
    try:
        vr = decord.VideoReader(str(path), num_threads=1)
        fps = float(vr.get_avg_fps()) or 25.0
        n = len(vr)
        start, end = (float(span[0]), float(span[1])) if span else (0.0, n / fps)
        targets = sample_times(max(end - start, 1e-3), protocol, train, rng, start)
        idx = np.clip(np.floor(targets * fps + 1e-6).astype(int), 0, n - 1)
        frames = vr.get_batch(idx.tolist()).asnumpy()
    except Exception as err:
        raise VideoDecodeError(f"cannot decode video {path} with decord: {err}") from err
    return torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(), torch.tensor(idx / fps, dtype=torch.float32)


def decode(path: str | Path, protocol: VideoProtocol, train: bool = False, rng: np.random.Generator | None = None,
           span: tuple[float, float] | None = None) -> tuple[Tensor, Tensor]:
    """Decode with the protocol's backend; raises :class:`VideoDecodeError` naming the file on failure."""
    if protocol.backend == "pyav":
        return decode_pyav(path, protocol, train, rng, span)
    if protocol.backend == "decord":
        return decode_decord(path, protocol, train, rng, span)
    raise ValueError(f"unknown decode backend {protocol.backend!r} (pyav or decord)")


def resample_frames(frames: Tensor, timestamps: Tensor | None, protocol: VideoProtocol, train: bool = False,
                    rng: np.random.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Apply the protocol's sampling to already decoded frames ``[T0, 3, H, W]`` (synthetic samples).

    ``timestamps [T0]`` seconds (default ``0, 1, 2, ...``). Returns ``(frames [T, 3, H, W], times [T])``.
    """
    n0 = frames.shape[0]
    ts = (timestamps.double().cpu().numpy() if timestamps is not None else np.arange(n0, dtype=np.float64))
    step = float(np.median(np.diff(ts))) if n0 > 1 else 1.0
    start, end = float(ts[0]), float(ts[-1]) + max(step, 1e-6)
    targets = sample_times(end - start, protocol, train, rng, start)
    idx = np.clip(np.searchsorted(ts, targets + 1e-9, side="right") - 1, 0, n0 - 1)
    sel = torch.as_tensor(idx, dtype=torch.long)
    return frames[sel], torch.as_tensor(ts[idx], dtype=torch.float32)


def resize_crop(frames: Tensor, resolution: int, crop: str = "center",
                rng: np.random.Generator | None = None) -> Tensor:
    """``[T, 3, H, W]`` -> ``[T, 3, R, R]``: short side to R (bilinear, antialiased), then a square crop.

    ``crop``: ``center``; ``random`` (one offset for the whole clip); ``none`` (resize straight to R x R).
    uint8 in, uint8 out; float in, float out.
    """
    if crop not in ("center", "random", "none"):
        raise ValueError(f"crop must be center|random|none, got {crop!r}")
    t, _, h, w = frames.shape
    if crop == "none":
        size = (resolution, resolution)
    else:
        scale = resolution / min(h, w)
        size = (max(resolution, round(h * scale)), max(resolution, round(w * scale)))
    x = frames
    if (h, w) != size:
        x = F.interpolate(frames.float(), size=size, mode="bilinear", align_corners=False, antialias=True)
        if frames.dtype == torch.uint8:
            x = x.round().clamp_(0, 255).to(torch.uint8)
        else:
            x = x.to(frames.dtype)
    if crop == "none":
        return x
    hh, ww = x.shape[-2:]
    if crop == "random":
        rng = rng if rng is not None else np.random.default_rng()
        top, left = int(rng.integers(0, hh - resolution + 1)), int(rng.integers(0, ww - resolution + 1))
    else:
        top, left = (hh - resolution) // 2, (ww - resolution) // 2
    return x[..., top:top + resolution, left:left + resolution].contiguous()


def load_clip(path: str | Path, protocol: VideoProtocol, train: bool = False, rng: np.random.Generator | None = None,
              span: tuple[float, float] | None = None) -> tuple[Tensor, Tensor]:
    """Decode + resize + crop: ``(uint8 [T, 3, R, R], float32 [T] seconds)``."""
    frames, times = decode(path, protocol, train, rng, span)
    crop = protocol.crop if train or protocol.crop != "random" else "center"  # random crop only in training
    return resize_crop(frames, protocol.resolution, crop, rng), times
