"""Optional on-disk cache of generated splits (``cache_dir`` task option).

Generation is fast (a few ms per clip), so the cache is only worth it for large splits or repeated runs.
A cache file is keyed by a hash of everything that changes the bytes (kind, split, config, sizes, version)
and holds plain tensors, strings and lists, written atomically and read with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from finsta_core.graphs.types import HolisticSceneGraph
from finsta_core.io import atomic_write
from tasks.base import Sample

_FIELDS = ("id", "video", "texts", "label", "answer", "options", "answer_index", "references", "spans", "frames",
           "timestamps", "extra")


def cache_path(cache_dir: str | os.PathLike, kind: str, split: str, identity: dict[str, Any]) -> Path:
    key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"synth_{kind}-{split}-{key}.pt"


def save_samples(path: Path, samples: list[Sample]) -> None:
    """Write ``samples`` atomically (HSGs as ``to_dict()``)."""
    recs = []
    for s in samples:
        rec = {f: getattr(s, f) for f in _FIELDS}
        rec["spans"] = None if s.spans is None else [list(x) for x in s.spans]
        g = s.scene_graph
        rec["scene_graph"] = g.to_dict() if isinstance(g, HolisticSceneGraph) else g
        recs.append(rec)
    atomic_write(path, lambda tmp: torch.save(recs, tmp))


def load_samples(path: Path) -> list[Sample]:
    """Read a cache file written by :func:`save_samples` (no code is unpickled)."""
    try:
        recs = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - re-raised with the file named
        raise ValueError(f"{path}: unreadable synthetic split cache ({err}); delete it to regenerate") from err
    out = []
    for r in recs:
        g = r.pop("scene_graph")
        spans = r.pop("spans")
        out.append(Sample(**r, spans=None if spans is None else [tuple(x) for x in spans],
                          scene_graph=HolisticSceneGraph.from_dict(g) if isinstance(g, dict) else g))
    return out
