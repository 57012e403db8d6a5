"""Sharded, resumable on-disk store of holistic scene graphs.

Layout of ``root``::

    shards/shard-00000.pt     list of HSG dicts (``torch.save``, tensors + strings only, loaded weights_only)
    shards/shard-00000.json   {"ids": [...], "failures": [{"id", "reason"}], "stats": {...}}; written last, so
                              its presence marks the shard complete (resume skips it)
    index.json                {"samples": {id: [shard, position]}, "n_ok", "n_failed", "shards"} (finalize)
    vocab.json                label counts (:class:`~finsta_core.sg.vocab.VocabularyFilter`)
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from finsta_core.graphs.types import HolisticSceneGraph, load_graph, save_graph
from finsta_core.sg.vocab import VocabularyFilter


def _write_json(obj: Any, path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def shard_paths(root: str | os.PathLike, shard: int) -> tuple[str, str]:
    base = os.path.join(os.fspath(root), "shards", f"shard-{shard:05d}")
    return base + ".pt", base + ".json"


def shard_done(root: str | os.PathLike, shard: int) -> bool:
    return os.path.exists(shard_paths(root, shard)[1])


def write_shard(root: str | os.PathLike, shard: int, graphs: list[HolisticSceneGraph],
                failures: list[dict[str, str]], stats: dict[str, Any]) -> None:
    """Write one shard atomically (graphs first, then the JSON that marks completion)."""
    pt, js = shard_paths(root, shard)
    save_graph([g.to_dict() for g in graphs], pt)
    _write_json({"ids": [g.sample_id for g in graphs], "failures": failures, "stats": stats}, js)


def finalize(root: str | os.PathLike, n_shards: int) -> dict[str, Any]:
    """Merge shard indices into ``index.json`` and label counts into ``vocab.json``; return the summary."""
    root = os.fspath(root)
    samples: dict[str, list[int]] = {}
    failures: list[dict[str, str]] = []
    missing, vocab = [], VocabularyFilter()
    cont, n_obj_later = 0.0, 0
    for s in range(n_shards):
        if not shard_done(root, s):
            missing.append(s)
            continue
        with open(shard_paths(root, s)[1]) as f:
            meta = json.load(f)
        for k, sid in enumerate(meta["ids"]):
            samples[sid] = [s, k]
        failures += meta["failures"]
        st = meta["stats"]
        for key, c in st.get("vocab", {}).items():
            vocab.counts[key].update(c)
        cont += st.get("continued", 0)
        n_obj_later += st.get("objects_after_first", 0)
    summary = {"samples": samples, "shards": n_shards, "missing_shards": missing, "n_ok": len(samples),
               "n_failed": len(failures), "failures": failures,
               "track_continuation_rate": cont / n_obj_later if n_obj_later else 0.0}
    _write_json(summary, os.path.join(root, "index.json"))
    vocab.save(os.path.join(root, "vocab.json"))
    return summary


class GraphStore:
    """Read access to a finalized store: ``store[sample_id] -> HolisticSceneGraph``.

    Args:
        vocabulary_filter: ``True`` applies the paper's frequency filter from ``vocab.json``; or pass a
            :class:`VocabularyFilter`; ``None`` returns graphs as parsed.
    """

    def __init__(self, root: str | os.PathLike, vocabulary_filter: VocabularyFilter | bool | None = None,
                 cache_shards: int = 4) -> None:
        self.root = os.fspath(root)
        idx = os.path.join(self.root, "index.json")
        if not os.path.exists(idx):
            raise FileNotFoundError(f"{idx} does not exist: build the store with `python -m harness sg parse`")
        with open(idx) as f:
            self.index = json.load(f)
        if vocabulary_filter is True:
            vocabulary_filter = VocabularyFilter.load(os.path.join(self.root, "vocab.json"))
        self.filter = vocabulary_filter or None
        self._load = lru_cache(maxsize=cache_shards)(lambda s: load_graph(shard_paths(self.root, s)[0]))

    def __len__(self) -> int:
        return len(self.index["samples"])

    def __contains__(self, sample_id: str) -> bool:
        return sample_id in self.index["samples"]

    def ids(self) -> list[str]:
        return list(self.index["samples"])

    def __getitem__(self, sample_id: str) -> HolisticSceneGraph:
        if sample_id not in self.index["samples"]:
            raise KeyError(f"sample {sample_id!r} is not in the scene-graph store {self.root} "
                           f"({self.index['n_failed']} samples failed parsing; see index.json 'failures')")
        s, k = self.index["samples"][sample_id]
        g = HolisticSceneGraph.from_dict(self._load(s)[k])
        return self.filter.apply(g) if self.filter is not None else g

    def __iter__(self) -> Iterator[HolisticSceneGraph]:
        for sid in self.ids():
            yield self[sid]
