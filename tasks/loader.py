"""``make_loader``: a torch DataLoader over samples that decodes, samples and crops frames per protocol.

Each item is decoded in the dataset (so in worker processes with ``num_workers > 0``); missing or unreadable
videos never raise: they are returned as failures and collected in ``VideoBatch.failed`` as
``(sample_id, reason)``. Samples that already carry ``frames`` (synthetic benchmark) are resampled to the
protocol and resized, without decoding. A sample may restrict decoding to a window of its video with
``Sample.extra["clip_span"] = (start_s, end_s)`` (YouCook2 segments, How2QA clips, DiDeMo moments).

Randomness (segment sampling and random crops in training) comes from ``np.random.default_rng([seed, epoch,
index])``: reproducible whatever the number of workers; call ``loader.dataset.set_epoch(e)`` between epochs.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from tasks.base import Sample, VideoProtocol
from tasks.video import VideoDecodeError, load_clip, resample_frames, resize_crop


@dataclass
class VideoBatch:
    """A batch of decoded clips.

    Attributes:
        video: ``[B, T, 3, H, W]`` float, normalised by the host's ``Preprocess`` if given, else in [0, 1].
        frame_times: ``[B, T]`` seconds from the start of each video.
        samples: the B samples that decoded, in batch order.
        failed: ``(sample_id, reason)`` for samples of this batch that were skipped.
        frame_mask: ``[B, T]`` bool, False on padding frames (only ``fps`` sampling gives clips of different
            lengths; padding repeats the last frame and its time).
    """

    video: Tensor
    frame_times: Tensor
    samples: list[Sample]
    failed: list[tuple[str, str]] = field(default_factory=list)
    frame_mask: Tensor | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def to(self, device: Any) -> VideoBatch:
        mask = self.frame_mask.to(device) if self.frame_mask is not None else None
        return VideoBatch(self.video.to(device), self.frame_times.to(device), self.samples, self.failed, mask)


class VideoDataset(Dataset):
    """Map-style dataset returning ``(sample, frames uint8/float [T,3,R,R] | None, times [T] | None, error)``."""

    def __init__(self, samples: Sequence[Sample], protocol: VideoProtocol, train: bool = False, seed: int = 0):
        self.samples = list(samples)
        self.protocol = protocol
        self.train = train
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Sample, Tensor | None, Tensor | None, str | None]:
        s = self.samples[i]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        p = self.protocol
        try:
            if s.frames is not None:
                frames, times = resample_frames(s.frames, s.timestamps, p, self.train, rng)
                crop = p.crop if self.train or p.crop != "random" else "center"
                return s, resize_crop(frames, p.resolution, crop, rng), times, None
            if not s.video:
                return s, None, None, "sample has neither a video path nor frames"
            span = s.extra.get("clip_span")
            frames, times = load_clip(s.video, p, self.train, rng, tuple(span) if span else None)
            return s, frames, times, None
        except VideoDecodeError as err:
            return s, None, None, str(err)
        except Exception as err:  # a corrupt file can raise anything inside the decoder: record, do not crash
            return s, None, None, f"{type(err).__name__}: {err}"


def collate_videos(items: list[tuple[Sample, Tensor | None, Tensor | None, str | None]],
                   preprocess: Any = None, resolution: int = 224) -> VideoBatch:
    """Stack decoded clips (padding to the longest T), normalise, and collect failures."""
    ok = [(s, f, t) for s, f, t, e in items if e is None]
    failed = [(s.id, e) for s, f, t, e in items if e is not None]
    if not ok:
        return VideoBatch(torch.zeros(0, 0, 3, resolution, resolution), torch.zeros(0, 0), [], failed)
    tmax = max(f.shape[0] for _, f, _ in ok)
    vids, times, masks = [], [], []
    for _, f, t in ok:
        pad = tmax - f.shape[0]
        x = f.float() / 255.0 if f.dtype == torch.uint8 else f.float()
        if preprocess is not None:
            x = preprocess(f) if f.dtype == torch.uint8 else preprocess(x)
        if pad:
            x = torch.cat([x, x[-1:].expand(pad, *x.shape[1:])])
            t = torch.cat([t, t[-1:].expand(pad)])
        vids.append(x)
        times.append(t.float())
        masks.append(torch.arange(tmax) < f.shape[0])
    return VideoBatch(torch.stack(vids), torch.stack(times), [s for s, _, _ in ok], failed, torch.stack(masks))


def make_loader(samples: Sequence[Sample], protocol: VideoProtocol, preprocess: Any = None, batch_size: int = 8,
                shuffle: bool = False, num_workers: int = 0, train: bool = False, seed: int = 0) -> DataLoader:
    """A DataLoader of :class:`VideoBatch` (see the module docstring for failures and randomness).

    Args:
        samples: the split's samples (with ``video`` paths or pre-decoded ``frames``).
        protocol: the task's :class:`VideoProtocol` (frames, sampling, resolution, crop, backend).
        preprocess: the host's ``Preprocess`` (normalisation); None gives floats in [0, 1].
        shuffle: reshuffle each epoch with a generator seeded by ``seed``.
        train: random segment offsets / random crops (per protocol); evaluation is deterministic.
    """
    ds = VideoDataset(samples, protocol, train=train, seed=seed)
    gen = torch.Generator()
    gen.manual_seed(int(seed))
    collate = functools.partial(collate_videos, preprocess=preprocess, resolution=protocol.resolution)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers, collate_fn=collate,
                      generator=gen, persistent_workers=False, pin_memory=False)
