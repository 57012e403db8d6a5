"""Batches for jobs: ``tasks.loader.make_loader`` (decoding, protocol sampling, failures) with the order
fixed by the harness, so that data order is a function of (seed, epoch) only and a resumed or sharded
(DDP) run sees exactly the batches of an uninterrupted single-process run."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from tasks.base import Sample, VideoProtocol

__all__ = ["epoch_order", "iter_batches", "rank_shard"]


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """A permutation of ``range(n)`` that depends only on ``(seed, epoch)``."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(n, generator=g).tolist()


def rank_shard(order: Sequence[int], global_batch: int, rank: int, world: int) -> list[int]:
    """This rank's slice of every full global batch of ``order`` (drop-last): ``global_batch // world`` each."""
    if global_batch % world:
        raise ValueError(f"global batch size {global_batch} is not divisible by the {world} processes")
    local = global_batch // world
    steps = len(order) // global_batch
    out: list[int] = []
    for s in range(steps):
        start = s * global_batch + rank * local
        out.extend(order[start:start + local])
    return out


def iter_batches(samples: Sequence[Sample], protocol: VideoProtocol, preprocess: Any = None, batch_size: int = 8,
                 num_workers: int = 0, train: bool = False, seed: int = 0, epoch: int = 0,
                 skip: int = 0) -> Iterator[Any]:
    """Yield ``VideoBatch`` es of ``samples`` in the given order (no shuffling here), skipping ``skip`` batches.

    Data-side randomness (segment sampling, random crops) is seeded by ``(seed, epoch, index)`` inside the
    loader, and the loader runs under a forked torch RNG, so it never perturbs the model's RNG stream.
    """
    from tasks.loader import make_loader

    with torch.random.fork_rng(devices=[]):
        loader = make_loader(list(samples), protocol, preprocess=preprocess, batch_size=batch_size, shuffle=False,
                             num_workers=num_workers, train=train, seed=seed)
        dataset = getattr(loader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        it = iter(loader)
    for i in range(len(loader)):
        with torch.random.fork_rng(devices=[]):
            batch = next(it)
        if i >= skip:
            yield batch
