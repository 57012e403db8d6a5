"""Clustering-based keyframe extraction (paper sec 3.1, ref [45]; design note C.3), frames decoded with PyAV.

A light version of Yahoo's hecate pipeline: decode at ``sample_fps``; drop dark, uniform and blurry frames
(each test removes at most ``max_invalid_share`` of the frames); cut shots where the colour-histogram
difference jumps; k-means on colour histograms with ``k`` clamped to ``[min_k, max_k]``; in each contiguous
same-cluster run inside a shot keep the stillest frame (smallest difference to its neighbours); sort by time;
fill up uniformly when fewer than ``min_k`` and keep the longest runs when more than ``max_k``. Raw
timestamps (seconds in the source video) are returned with the frames.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import Tensor


class VideoDecodeError(RuntimeError):
    """The video could not be opened or decoded; the message names the file."""


@dataclass
class KeyframeConfig:
    sample_fps: float = 2.0
    min_k: int = 10
    max_k: int = 50
    max_side: int = 640  # decoded frames are downscaled so the longer side is at most this
    dark_threshold: float = 0.08  # mean luminance in [0, 1]
    uniform_threshold: float = 0.02  # luminance std
    max_invalid_share: float = 0.15
    shot_z: float = 3.0  # a cut where the histogram difference exceeds mean + shot_z * std
    bins: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        """Refuse settings that cannot give keyframes (one line naming the field)."""
        if not self.sample_fps > 0:
            raise ValueError(f"keyframes: sample_fps must be > 0, got {self.sample_fps}")
        if self.min_k < 1 or self.max_k < 1:
            raise ValueError(f"keyframes: min_k and max_k must be >= 1, got min_k={self.min_k}, max_k={self.max_k}")
        if self.min_k > self.max_k:
            raise ValueError(f"keyframes: min_k={self.min_k} is larger than max_k={self.max_k}")
        if self.max_side < 2:
            raise ValueError(f"keyframes: max_side must be >= 2, got {self.max_side}")
        if not 0.0 <= self.max_invalid_share < 1.0:
            raise ValueError(f"keyframes: max_invalid_share must be in [0, 1), got {self.max_invalid_share}")


def decode_frames(path: str | os.PathLike, sample_fps: float = 2.0, max_side: int = 640,
                  max_frames: int = 2000, span: tuple[float, float] | None = None) -> tuple[Tensor, Tensor]:
    """Decode ``path`` at about ``sample_fps`` -> ``frames [T, 3, H, W]`` float in [0, 1], ``times [T]`` s.

    ``span = (start, end)`` seconds decodes only that window (a clip of a longer video, e.g. HD-VILA); the
    decoder seeks to the keyframe before ``start``. Times stay absolute (seconds from the video start).
    """
    import av

    if not os.path.exists(path):
        raise VideoDecodeError(f"{path}: file does not exist")
    start, end = (float(span[0]), float(span[1])) if span is not None else (0.0, float("inf"))
    if not 0.0 <= start < end:
        raise VideoDecodeError(f"{path}: bad clip span {span!r} (need 0 <= start < end seconds)")
    frames, times = [], []
    try:
        with av.open(os.fspath(path)) as container:
            stream = container.streams.video[0]
            if start > 0 and stream.time_base:
                container.seek(int(start / stream.time_base), stream=stream, backward=True)
            next_t = start
            for fr in container.decode(stream):
                t = float(fr.pts * stream.time_base) if fr.pts is not None else start + len(times) / sample_fps
                if t >= end:
                    break
                if t + 1e-6 < next_t:
                    continue
                next_t = t + 1.0 / sample_fps
                w, h = fr.width, fr.height
                s = min(1.0, max_side / max(w, h))
                img = fr.to_ndarray(format="rgb24", width=max(2, int(w * s)), height=max(2, int(h * s)))
                frames.append(torch.from_numpy(img).permute(2, 0, 1))
                times.append(t)
                if len(frames) >= max_frames:
                    break
    except (av.error.FFmpegError, IndexError, ValueError, OSError) as err:
        raise VideoDecodeError(f"{path}: cannot decode video ({type(err).__name__}: {err})") from None
    if not frames:
        raise VideoDecodeError(f"{path}: no decodable video frames")
    return torch.stack(frames).float() / 255.0, torch.tensor(times, dtype=torch.float32)


def colour_histograms(frames: Tensor, bins: int = 8) -> Tensor:
    """``[T, 3, H, W]`` in [0, 1] -> ``[T, bins**3]`` normalised joint RGB histograms."""
    t = frames.shape[0]
    q = (frames.clamp(0, 1) * (bins - 1e-6)).long()
    code = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
    hist = torch.zeros(t, bins ** 3)
    hist.scatter_add_(1, code.reshape(t, -1), torch.ones(t, code[0].numel()))
    return hist / hist.sum(1, keepdim=True)


def quality_mask(frames: Tensor, cfg: KeyframeConfig) -> Tensor:
    """``[T]`` bool: frames that are not dark, uniform or (among the blurriest ``max_invalid_share``) blurry."""
    lum = frames.mul(frames.new_tensor([0.299, 0.587, 0.114])[:, None, None]).sum(1)  # [T, H, W]
    t = frames.shape[0]
    cap = max(0, int(cfg.max_invalid_share * t))

    def worst(score: Tensor, bad: Tensor) -> Tensor:
        # invalidate at most `cap` frames per test, the lowest scores among those failing it
        out = torch.zeros(t, dtype=torch.bool)
        idx = bad.nonzero().flatten()
        idx = idx[score[idx].argsort()[:cap]]
        out[idx] = True
        return out

    mean, std = lum.mean((1, 2)), lum.std((1, 2))
    lap = (lum[:, 1:-1, 1:-1] * 4 - lum[:, :-2, 1:-1] - lum[:, 2:, 1:-1] - lum[:, 1:-1, :-2] - lum[:, 1:-1, 2:])
    sharp = lap.var((1, 2)) if lum.shape[1] > 2 and lum.shape[2] > 2 else torch.ones(t)
    blur_bad = sharp <= torch.quantile(sharp, cfg.max_invalid_share) if t > 1 else torch.zeros(t, dtype=torch.bool)
    blur_bad &= sharp < 0.5 * sharp.median()
    invalid = worst(mean, mean < cfg.dark_threshold) | worst(std, std < cfg.uniform_threshold) | worst(sharp, blur_bad)
    if bool(invalid.all()):
        invalid[:] = False  # never drop everything: a fully dark video still gets keyframes
    return ~invalid


def kmeans(x: Tensor, k: int, seed: int = 0, iters: int = 25) -> Tensor:
    """k-means++ init + Lloyd iterations; ``x [N, D]`` -> cluster id ``[N]``."""
    g = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    k = max(1, min(k, n))
    centres = x[torch.randint(n, (1,), generator=g)]
    for _ in range(1, k):
        d = torch.cdist(x, centres).min(1).values.pow(2)
        p = d / d.sum() if float(d.sum()) > 0 else torch.full((n,), 1.0 / n)
        centres = torch.cat([centres, x[torch.multinomial(p, 1, generator=g)]])
    assign = torch.cdist(x, centres).argmin(1)
    for _ in range(iters):
        cnt = torch.bincount(assign, minlength=k).clamp_min(1).unsqueeze(1).float()
        centres = torch.zeros(k, x.shape[1]).index_add_(0, assign, x) / cnt
        new = torch.cdist(x, centres).argmin(1)
        if torch.equal(new, assign):
            break
        assign = new
    return assign


def select_keyframes(frames: Tensor, cfg: KeyframeConfig | None = None) -> Tensor:
    """Indices (sorted) of the keyframes among ``frames [T, 3, H, W]``."""
    cfg = cfg or KeyframeConfig()
    t = frames.shape[0]
    if t <= cfg.min_k:
        return torch.arange(t)
    valid = quality_mask(frames, cfg)
    hist = colour_histograms(frames, cfg.bins)
    diff = torch.cat([torch.zeros(1), (hist[1:] - hist[:-1]).abs().sum(1)])  # [T] diff to previous frame
    cut = diff > diff.mean() + cfg.shot_z * diff.std() if t > 2 else torch.zeros(t, dtype=torch.bool)
    shot = torch.cumsum(cut.long(), 0)
    vidx = valid.nonzero().flatten()
    k = int(min(max(vidx.numel() // 2, cfg.min_k), cfg.max_k, vidx.numel()))
    label = torch.full((t,), -1, dtype=torch.long)
    label[vidx] = kmeans(hist[vidx], k, cfg.seed)
    # runs: contiguous valid frames with one cluster label inside one shot
    key = label * (int(shot.max()) + 1) + shot
    new_run = torch.ones(t, dtype=torch.bool)
    new_run[1:] = (key[1:] != key[:-1]) | ~valid[1:] | ~valid[:-1]
    run = torch.cumsum(new_run.long(), 0) - 1
    still = diff.clone()
    still[:-1] = still[:-1] + diff[1:]  # difference to both neighbours
    still[~valid] = float("inf")
    n_runs = int(run.max()) + 1
    best = torch.full((n_runs,), float("inf")).scatter_reduce(0, run, still, "amin", include_self=True)
    is_best = (still == best[run]) & valid
    first_best = torch.full((n_runs,), t, dtype=torch.long).scatter_reduce(
        0, run[is_best], is_best.nonzero().flatten(), "amin", include_self=True)
    length = torch.bincount(run[valid], minlength=n_runs)
    ok = first_best < t
    picks, lengths = first_best[ok], length[ok]
    if picks.numel() > cfg.max_k:
        picks = picks[lengths.argsort(descending=True, stable=True)[: cfg.max_k]]
    picks = picks.unique()
    if picks.numel() < cfg.min_k:
        fill = vidx[torch.linspace(0, vidx.numel() - 1, cfg.min_k).round().long()]
        picks = torch.cat([picks, fill]).unique()
        if picks.numel() > cfg.min_k:  # keep the chosen ones plus uniformly spread fillers
            extra = picks[~torch.isin(picks, first_best[ok])]
            picks = torch.cat([first_best[ok].unique(), extra[: cfg.min_k - first_best[ok].unique().numel()]])
    return picks.sort().values


def extract_keyframes(path: str | os.PathLike, cfg: KeyframeConfig | None = None,
                      span: tuple[float, float] | None = None) -> tuple[Tensor, Tensor]:
    """Decode a video (or its ``span``) and return ``(keyframes [K, 3, H, W] in [0, 1], timestamps [K] s)``."""
    cfg = cfg or KeyframeConfig()
    frames, times = decode_frames(path, cfg.sample_fps, cfg.max_side, span=span)
    idx = select_keyframes(frames, cfg)
    return frames[idx], times[idx]
