"""Video decoding (PyAV; decord optional), frame sampling per :class:`~tasks.base.VideoProtocol`, resize + crop.

Sampling rules (times in seconds, relative to the start of the decoded window ``[start, end)``, of length d):

* ``uniform``: T evenly spaced segment centres, ``start + (i + 0.5) * d / T``.
* ``segment`` (TSN / ClipBERT): the window is cut into T equal segments; one frame per segment, at a
  uniformly random position in training and at the centre in evaluation (so evaluation equals ``uniform``).
* ``fps``: ``start + k / fps`` for every k with ``k / fps < d``; when ``num_frames`` is also set and the clip
  yields more frames, T evenly spaced ones are kept.

The frame returned for time t is the one on screen at t: the last decoded frame whose presentation time is
<= t (the first frame for t before it). Decoding seeks over long gaps between wanted times
(:data:`SEEK_AHEAD_S`), and a time the stream does not reach raises :class:`VideoDecodeError` ("truncated
video"): a partly downloaded file whose container still declares the full duration is never padded with its
last frame (:func:`check_video` finds such files up front, for ``harness data check``).

Frames come back as ``uint8 [T, 3, H, W]`` with the time of each
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
    """A video is missing, unreadable, truncated or has no video stream (message names the file)."""


SEEK_AHEAD_S = 5.0
"""Seek instead of decoding on when the next wanted frame is more than this many seconds ahead. A seek lands on
the keyframe before the target and web videos put keyframes every 2-10 s, so below this gap decoding straight
on costs about as much as the seek."""

CHECK_TAIL_S = 1.0
""":func:`check_video` decodes from the keyframe before ``duration - CHECK_TAIL_S`` to the end: about one
keyframe interval of frames per file, enough to see whether the stream reaches its declared end."""

TRUNCATION_SLACK_FRAMES = 2
"""A wanted time may lie this many frame intervals past the last decoded frame's display interval before the
video counts as truncated (container durations are rounded and the last frame's length is estimated from the
average rate)."""


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
                rng: np.random.Generator | None = None, span: tuple[float, float] | None = None,
                seek_ahead_s: float | None = None, stats: dict[str, int] | None = None) -> tuple[Tensor, Tensor]:
    """Decode the protocol's frames of ``path`` (optionally only the window ``span`` in seconds).

    Targets are visited in time order; when the next one lies more than ``seek_ahead_s`` (default
    :data:`SEEK_AHEAD_S`) past the decoder's position, the decoder seeks to the keyframe before it instead of
    decoding every frame in between. A target the video stream does not reach (a truncated download, or a
    span past the end of the file) raises :class:`VideoDecodeError` instead of repeating the last frame: see
    :func:`_past_end`.

    Args:
        stats: if given, filled with ``decoded`` (frames decoded) and ``seeks`` (seeks made).

    Returns:
        (``uint8 [T, 3, H, W]`` frames, ``float32 [T]`` presentation times in seconds from the video start).
    """
    av = _import_av()
    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError(f"video file not found: {path}")
    stats = stats if stats is not None else {}
    stats.update(decoded=0, seeks=0)
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
            reader = _FrameReader(c, st, t0, SEEK_AHEAD_S if seek_ahead_s is None else float(seek_ahead_s), stats)
            frames, times = reader.pick(targets, path, info)
    except VideoDecodeError:
        raise
    except Exception as err:  # av.error.InvalidDataError, OSError, ...
        raise VideoDecodeError(f"cannot decode video {path}: {type(err).__name__}: {err}") from err
    if not frames:
        raise VideoDecodeError(f"no decodable frame in {path}" + (f" within {span}" if span else ""))
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous(), torch.tensor(times, dtype=torch.float32)


def _past_end(t: float, last_t: float, shown_for: float | None, interval: float | None) -> bool:
    """True when time ``t`` lies beyond what the last decoded frame can cover: that frame is shown from
    ``last_t`` for ``shown_for`` seconds (its own duration, e.g. a GIF's long final delay; else one average
    frame interval), plus ``TRUNCATION_SLACK_FRAMES`` average frame intervals."""
    step = interval or shown_for
    if step is None:
        return False
    return t > last_t + (shown_for or step) + TRUNCATION_SLACK_FRAMES * step + 1e-6


def _shown_for(frame) -> float | None:
    """How long a decoded frame is on screen (seconds), from its own duration when the container gives one."""
    dur, tb = getattr(frame, "duration", None), getattr(frame, "time_base", None)
    if dur and tb:
        return float(dur * tb)
    return None


class _FrameReader:
    """Streams decoded frames of one video stream, seeking forward over long gaps between target times."""

    def __init__(self, container, stream, t0: float, seek_ahead_s: float, stats: dict[str, int]) -> None:
        self.c, self.st, self.t0, self.seek_ahead_s, self.stats = container, stream, t0, seek_ahead_s, stats
        self.decoder = None
        self.prev = None  # (frame, time, seconds shown) of the last frame at or before the current target
        self.nxt = None  # (frame, time, seconds shown) decoded but not yet reached
        self.from_start = True  # the decoder started at the beginning of the stream (no seek)

    def _next(self):
        frame = next(self.decoder, None)
        if frame is None:
            return None
        self.stats["decoded"] += 1
        prev_t = self.prev[1] if self.prev else 0.0
        return frame, ((float(frame.time) - self.t0) if frame.time is not None else prev_t), _shown_for(frame)

    def _position(self) -> float:
        if self.nxt is not None:
            return self.nxt[1]
        return self.prev[1] if self.prev is not None else 0.0

    def _seek(self, t: float) -> None:
        self.c.seek(int((t + self.t0) / self.st.time_base), stream=self.st, backward=True, any_frame=False)
        self.decoder, self.prev, self.nxt, self.from_start = self.c.decode(self.st), None, None, False
        self.stats["seeks"] += 1

    def _restart(self) -> None:
        self.c.seek(0)
        self.decoder, self.prev, self.nxt, self.from_start = self.c.decode(self.st), None, None, True

    def _advance(self, t: float) -> None:
        """Decode until the next frame is shown after ``t``; ``prev`` is then the frame on screen at ``t``."""
        while True:
            if self.nxt is None:
                self.nxt = self._next()
                if self.nxt is None:
                    return
            if self.nxt[1] > t + 1e-6:
                return
            self.prev, self.nxt = self.nxt, None

    def pick(self, targets: np.ndarray, path: Path, info: VideoInfo) -> tuple[list[np.ndarray], list[float]]:
        """For each target time the last frame shown at or before it (the first frame for a time before it)."""
        out: list = [None] * len(targets)
        out_t = [0.0] * len(targets)
        interval = 1.0 / info.fps if info.fps else None
        cached_src, cached = None, None  # convert each chosen frame to RGB once, even if picked repeatedly
        for i in np.argsort(targets, kind="stable"):
            t = float(targets[i])
            if self.decoder is None:
                if t > self.seek_ahead_s:
                    self._seek(t)
                else:
                    self._restart()
            elif t - self._position() > self.seek_ahead_s:
                self._seek(t)
            self._advance(t)
            if self.prev is None and self.nxt is not None and not self.from_start:
                self._restart()  # the seek landed after t (unusual index): decode from the start instead
                self._advance(t)
            got = self.prev if self.prev is not None else self.nxt
            if got is None:
                raise VideoDecodeError(f"truncated or damaged video {path}: no frame decodes at or after "
                                       f"{t:.2f} s (container duration {info.duration} s)")
            if self.nxt is None and _past_end(t, got[1], got[2], interval):
                raise VideoDecodeError(f"truncated video {path}: frames stop at {got[1]:.2f} s but the container "
                                       f"says {info.duration} s (frame wanted at {t:.2f} s); re-download it")
            if got[0] is not cached_src:
                cached_src, cached = got[0], got[0].to_ndarray(format="rgb24")
            out[i], out_t[i] = cached, got[1]
        return out, out_t


def check_video(path: str | Path, tail_s: float | None = None) -> VideoInfo:
    """:func:`probe` plus a look at the end of the stream: decode the last ``tail_s`` seconds (default
    :data:`CHECK_TAIL_S`) and refuse a file whose frames stop before the duration its container declares (a
    truncated download that still opens). Used by ``harness data check``."""
    info = probe(path)
    if not info.duration or not info.fps:
        return info
    av = _import_av()
    tail = CHECK_TAIL_S if tail_s is None else float(tail_s)
    last_t, shown = None, None
    try:
        with av.open(str(path)) as c:
            st = _video_stream(c, path)
            t0 = float(st.start_time * st.time_base) if st.start_time is not None and st.time_base else 0.0
            from_t = max(0.0, info.duration - tail)
            if from_t > 0:
                c.seek(int((from_t + t0) / st.time_base), stream=st, backward=True, any_frame=False)
            for frame in c.decode(st):
                if frame.time is not None:
                    last_t, shown = float(frame.time) - t0, _shown_for(frame)
    except Exception as err:  # a damaged tail can raise inside the demuxer or the decoder
        if last_t is None:
            raise VideoDecodeError(f"cannot decode the end of video {path}: {type(err).__name__}: {err}") from err
    if last_t is None:
        raise VideoDecodeError(f"truncated or damaged video {path}: no frame decodes in its last {tail:g} s "
                               f"(container duration {info.duration:g} s)")
    interval = 1.0 / info.fps
    if _past_end(info.duration - interval, last_t, shown, interval):
        raise VideoDecodeError(f"truncated video {path}: frames stop at {last_t:.2f} s but the container says "
                               f"{info.duration:g} s")
    return info


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
        late = [t for t in targets if _past_end(float(t), (n - 1) / fps, None, 1.0 / fps)]
        if late:  # a span past the stream's end: refuse rather than clamp to the last frame
            raise VideoDecodeError(f"truncated video {path}: {n} frames ({n / fps:.2f} s) but a frame is wanted "
                                   f"at {late[0]:.2f} s")
        idx = np.clip(np.floor(targets * fps + 1e-6).astype(int), 0, n - 1)
        frames = vr.get_batch(idx.tolist()).asnumpy()
    except VideoDecodeError:
        raise
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
