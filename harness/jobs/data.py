"""Data for jobs.

* Batches: ``tasks.loader.make_loader`` (decoding, protocol sampling, failures) with the order fixed by the
  harness, so that data order is a function of (seed, epoch) only and a resumed or sharded (DDP) run sees
  exactly the batches of an uninterrupted single-process run.
* The post-training dataset (contract C3): the pairs of a corpus (or a task split) that have a scene graph in
  the store ``harness sg parse`` built, with their graphs (:func:`posttrain_dataset`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from finsta_core.graphs import HolisticSceneGraph
from finsta_core.sg.store import CORPUS, GraphStore, read_manifest, store_state
from tasks.base import Sample, Task, VideoProtocol

__all__ = ["epoch_order", "iter_batches", "posttrain_dataset", "rank_shard"]

log = logging.getLogger(__name__)


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


def posttrain_dataset(sources: dict[str, Any], data_task: Task | None = None, limit: int | None = None,
                      vocabulary_filter: bool = False) -> tuple[list[Sample], dict[str, HolisticSceneGraph]]:
    """The post-training pairs and their scene graphs (contract C3).

    Args:
        sources: ``PosttrainSources.to_dict()`` (``harness.sources``), as the planner put it into the run config.
        data_task: the post-training data task (kind ``task``: its split's samples are used).
        limit: only the first ``limit`` pairs of the corpus / split (``data.limit``).
        vocabulary_filter: apply the paper's label-frequency filter (sec 7.1: TSG >= 5, DSG > 500 occurrences in
            the parsed corpus); meant for corpora of the paper's size, it empties the DSGs of small ones.

    Returns:
        ``samples`` (kind ``corpus``: ``Sample(id, video, texts=[caption])``; kind ``task``: the task's own samples)
        of every pair that has a graph (each with ``scene_graph`` set), and ``{sample id: graph}``. Pairs whose
        parsing failed (unreadable video, empty caption, ...) are left out and counted in the log.

    Raises:
        ValueError: the store changed since the run was planned, or no pair has a graph (one line).
    """
    root = str(sources["sg_store"])
    st = store_state(root)
    manifest = read_manifest(root) or {}
    if st.state != "complete" or manifest.get("corpus_fingerprint") != sources["corpus_fingerprint"] \
            or st.fingerprint != sources["sg_fingerprint"]:
        raise ValueError(f"scene-graph store {root} changed since this run was planned ({st.detail}); plan the run "
                         "again (python -m harness run ...) so that its identity matches the store")
    store = GraphStore(root, vocabulary_filter=True if vocabulary_filter else None)
    if sources["kind"] == "task":
        if data_task is None:
            raise ValueError("post-training sources of kind 'task' need the data task")
        split = str(sources["corpus"]["spec"]["split"])
        candidates = data_task.samples(split, limit=limit)
    else:
        candidates = []
        with open(os.path.join(root, CORPUS), encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    r = json.loads(line)
                    extra = {"source": r.get("source", "")}
                    if r.get("clip_span"):
                        extra["clip_span"] = tuple(r["clip_span"])
                    candidates.append(Sample(id=str(r["id"]), video=r["video"], texts=[r["caption"]], extra=extra))
                    if limit is not None and len(candidates) >= limit:
                        break
    samples = [s for s in candidates if s.id in store]
    graphs = {s.id: store[s.id] for s in samples}
    for s in samples:
        s.scene_graph = graphs[s.id]
    dropped = len(candidates) - len(samples)
    if dropped:
        why = store.failures()
        reasons: dict[str, int] = {}
        for s in candidates:
            if s.id not in store:
                key = why.get(s.id, "not in the store").split(":")[0]
                reasons[key] = reasons.get(key, 0) + 1
        log.warning("post-training: %d of %d pairs have no scene graph and are left out (%s)", dropped,
                    len(candidates), ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items())))
    if not samples:
        raise ValueError(f"no post-training pair of {len(candidates)} has a scene graph in {root}")
    return samples, graphs
