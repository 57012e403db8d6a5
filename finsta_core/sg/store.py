"""Sharded, resumable on-disk store of holistic scene graphs, keyed by sample id and by fingerprints.

Layout of ``root``::

    manifest.json             {"corpus": <what was parsed>, "corpus_fingerprint", "pipeline": <parser / detector
                              config>, "pipeline_fingerprint", "fingerprint", "n_records", "shard_size",
                              "n_shards", "command"}; written before any shard
    corpus.jsonl              the records parsed, one {"id", "video", "caption", ...} per line (materialised)
    shards/shard-00000.pt     list of HSG dicts (``torch.save``, tensors + strings only, loaded weights_only)
    shards/shard-00000.json   {"ids", "failures": [{"id", "reason"}], "stats", "fingerprint"}; written last, so
                              its presence *with the store's fingerprint* marks the shard complete (resume)
    index.json                {"samples": {id: [shard, position]}, "n_ok", "n_failed", "failures",
                              "missing_shards", "fingerprint", ...} (finalize)
    vocab.json                label counts (:class:`~finsta_core.sg.vocab.VocabularyFilter`)

``fingerprint`` = hash of the corpus fingerprint and the pipeline fingerprint: a shard written for another
corpus or another parser / detector configuration never counts as done.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from finsta_core.graphs.types import HolisticSceneGraph, load_graph, save_graph
from finsta_core.io import atomic_write_text
from finsta_core.sg.vocab import VocabularyFilter

MANIFEST = "manifest.json"
CORPUS = "corpus.jsonl"
INDEX = "index.json"


class StoreError(ValueError):
    """A graph store is missing, partial, corrupt or was built for something else (message names the file)."""


def _write_json(obj: Any, path: str) -> None:
    atomic_write_text(path, json.dumps(obj))


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise StoreError(f"{path} is corrupt (not valid JSON: {err.msg}, line {err.lineno}); rebuild the store "
                         "with `python -m harness sg parse ... --rebuild`") from None


def digest(obj: Any) -> str:
    """16 hex digits of sha256 over the canonical JSON of ``obj``."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def path_fingerprint(path: str | os.PathLike | None) -> str:
    """Cheap fingerprint of a file or directory: relative path + size + mtime_ns of every file, hashed.

    ``""`` for no path; ``"missing"`` for a path that does not exist.
    """
    if not path:
        return ""
    path = os.fspath(path)
    if not os.path.exists(path):
        return "missing"
    items: list[tuple[str, int, int]] = []
    if os.path.isdir(path):
        for d, _, files in sorted(os.walk(path)):
            for name in sorted(files):
                full = os.path.join(d, name)
                st = os.stat(full)
                items.append((os.path.relpath(full, path), st.st_size, st.st_mtime_ns))
    else:
        st = os.stat(path)
        items.append((os.path.basename(path), st.st_size, st.st_mtime_ns))
    return digest(items)


def store_key(corpus_fingerprint: str, pipeline_fingerprint: str) -> str:
    """The store's fingerprint: what it was built from (corpus) and how (parser / detector configuration)."""
    return digest({"corpus": corpus_fingerprint, "pipeline": pipeline_fingerprint})


def shard_paths(root: str | os.PathLike, shard: int) -> tuple[str, str]:
    base = os.path.join(os.fspath(root), "shards", f"shard-{shard:05d}")
    return base + ".pt", base + ".json"


def shard_done(root: str | os.PathLike, shard: int, fingerprint: str | None = None) -> bool:
    """Whether shard ``shard`` is complete (and, given ``fingerprint``, was written for that store key)."""
    js = shard_paths(root, shard)[1]
    if not os.path.exists(js):
        return False
    if fingerprint is None:
        return True
    try:
        return _read_json(js).get("fingerprint") == fingerprint
    except StoreError:
        return False  # a corrupt shard file is redone


def write_shard(root: str | os.PathLike, shard: int, graphs: list[HolisticSceneGraph],
                failures: list[dict[str, str]], stats: dict[str, Any], fingerprint: str = "") -> None:
    """Write one shard atomically (graphs first, then the JSON that marks completion)."""
    pt, js = shard_paths(root, shard)
    save_graph([g.to_dict() for g in graphs], pt)
    _write_json({"ids": [g.sample_id for g in graphs], "failures": failures, "stats": stats,
                 "fingerprint": fingerprint}, js)


def write_manifest(root: str | os.PathLike, manifest: dict[str, Any]) -> None:
    _write_json(manifest, os.path.join(os.fspath(root), MANIFEST))


def read_manifest(root: str | os.PathLike) -> dict[str, Any] | None:
    """The store's manifest, or ``None`` when there is none (no store, or one from before manifests)."""
    path = os.path.join(os.fspath(root), MANIFEST)
    return _read_json(path) if os.path.exists(path) else None


def clear_store(root: str | os.PathLike) -> None:
    """Delete what ``sg parse`` wrote under ``root`` (shards, index, vocabulary, manifest, corpus)."""
    root = os.fspath(root)
    shutil.rmtree(os.path.join(root, "shards"), ignore_errors=True)
    for name in (INDEX, "vocab.json", MANIFEST, CORPUS):
        p = os.path.join(root, name)
        if os.path.exists(p):
            os.remove(p)


def finalize(root: str | os.PathLike, n_shards: int, fingerprint: str | None = None) -> dict[str, Any]:
    """Merge shard indices into ``index.json`` and label counts into ``vocab.json``; return the summary.

    Shards absent or written under another ``fingerprint`` are listed in ``missing_shards``.
    """
    root = os.fspath(root)
    samples: dict[str, list[int]] = {}
    failures: list[dict[str, str]] = []
    missing, vocab = [], VocabularyFilter()
    cont, n_obj_later = 0.0, 0
    for s in range(n_shards):
        if not shard_done(root, s, fingerprint):
            missing.append(s)
            continue
        meta = _read_json(shard_paths(root, s)[1])
        for k, sid in enumerate(meta["ids"]):
            samples[sid] = [s, k]
        failures += meta["failures"]
        st = meta["stats"]
        for key, c in st.get("vocab", {}).items():
            vocab.counts[key].update(c)
        cont += st.get("continued", 0)
        n_obj_later += st.get("objects_after_first", 0)
    summary = {"samples": samples, "shards": n_shards, "missing_shards": missing, "n_ok": len(samples),
               "n_failed": len(failures), "failures": failures, "fingerprint": fingerprint or "",
               "track_continuation_rate": cont / n_obj_later if n_obj_later else 0.0}
    _write_json(summary, os.path.join(root, INDEX))
    vocab.save(os.path.join(root, "vocab.json"))
    return summary


@dataclass
class StoreState:
    """What :func:`store_state` found: ``state`` is ``missing`` | ``partial`` | ``complete``."""

    state: str
    detail: str
    manifest: dict[str, Any] | None = None
    index: dict[str, Any] | None = None

    @property
    def fingerprint(self) -> str:
        """The store's content fingerprint (store key + index digest); ``""`` unless complete."""
        if self.state != "complete" or self.manifest is None or self.index is None:
            return ""
        return digest({"key": self.manifest.get("fingerprint", ""), "index": digest(self.index)})


def store_state(root: str | os.PathLike) -> StoreState:
    """Inspect a store without loading graphs (planning): missing, partial (shards or index lacking), complete."""
    root = os.fspath(root)
    manifest = read_manifest(root)
    if manifest is None:
        if os.path.exists(os.path.join(root, INDEX)):
            return StoreState("partial", f"{root} has no {MANIFEST} (built by an older `sg parse`)")
        return StoreState("missing", f"no scene-graph store at {root}")
    idx_path = os.path.join(root, INDEX)
    if not os.path.exists(idx_path):
        done = sum(shard_done(root, s, manifest.get("fingerprint")) for s in range(int(manifest["n_shards"])))
        return StoreState("partial", f"{root}: {done} of {manifest['n_shards']} shards parsed, not finalized",
                          manifest)
    index = _read_json(idx_path)
    if index.get("fingerprint", "") != manifest.get("fingerprint") or index.get("missing_shards"):
        miss = index.get("missing_shards") or []
        return StoreState("partial", f"{root}: {len(miss)} of {index.get('shards')} shards missing"
                          if miss else f"{root}: index.json does not belong to manifest.json", manifest, index)
    return StoreState("complete", f"{root}: {index['n_ok']} graphs, {index['n_failed']} failed", manifest, index)


class GraphStore:
    """Read access to a finalized store: ``store[sample_id] -> HolisticSceneGraph``.

    Args:
        vocabulary_filter: ``True`` applies the paper's frequency filter from ``vocab.json``; or pass a
            :class:`VocabularyFilter`; ``None`` returns graphs as parsed.
    """

    def __init__(self, root: str | os.PathLike, vocabulary_filter: VocabularyFilter | bool | None = None,
                 cache_shards: int = 4) -> None:
        self.root = os.fspath(root)
        idx = os.path.join(self.root, INDEX)
        if not os.path.exists(idx):
            raise FileNotFoundError(f"{idx} does not exist: build the store with `python -m harness sg parse`")
        self.index = _read_json(idx)
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

    def failures(self) -> dict[str, str]:
        """Sample id -> why it has no graph (unreadable video, empty caption, ...)."""
        return {f["id"]: f["reason"] for f in self.index.get("failures", [])}

    def __getitem__(self, sample_id: str) -> HolisticSceneGraph:
        if sample_id not in self.index["samples"]:
            why = self.failures().get(sample_id)
            raise KeyError(f"sample {sample_id!r} is not in the scene-graph store {self.root} "
                           + (f"(parsing failed: {why})" if why else
                              f"({self.index['n_failed']} samples failed parsing; see index.json 'failures')"))
        s, k = self.index["samples"][sample_id]
        g = HolisticSceneGraph.from_dict(self._load(s)[k])
        return self.filter.apply(g) if self.filter is not None else g

    def __iter__(self) -> Iterator[HolisticSceneGraph]:
        for sid in self.ids():
            yield self[sid]
