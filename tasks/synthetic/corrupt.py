"""Controlled scene-graph corruption for the robustness studies (paper Table 12, Fig 14).

``sg_noise`` task option, e.g. ``{"drop": 0.3}``, ``{"label_noise": 0.2}``, ``{"rewire": 0.1}``,
``{"degrade": 0.5}`` (keys combine; applied in that order). ``parts`` (default both) restricts the noise to
``["tsg"]`` or ``["dsg"]``. Per-sample seeds come from ``finsta_core.sg.noise.sample_seed(seed, sample.id)``,
so corruption is reproducible and independent of the split order. Only ``Sample.scene_graph`` changes; the
exact graph stays available as ``extra["exact_scene_graph"]`` when ``keep_exact`` is set. Dropping nodes
removes the per-node ground-truth lists (``meta["object"]``, ``["event"]``, ``["track"]``) from the graphs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from finsta_core.sg import noise
from tasks.base import Sample
from tasks.synthetic.vocab import label_vocabulary

NOISE_KEYS = ("drop", "label_noise", "rewire", "degrade")
PER_NODE_META = ("object", "event", "track")  # per-node lists in graph meta; invalid once nodes are dropped


def check_sg_noise(spec: dict[str, Any] | None) -> dict[str, Any]:
    """Validate an ``sg_noise`` option; returns a normalised copy (raises ``ValueError`` naming the key)."""
    if not spec:
        return {}
    if not isinstance(spec, dict):
        raise ValueError(f"sg_noise must be a mapping like {{'drop': 0.3}}, got {spec!r}")
    out = dict(spec)
    for k, v in spec.items():
        if k in ("parts", "seed", "keep_exact"):
            continue
        if k not in NOISE_KEYS:
            raise ValueError(f"sg_noise: unknown key {k!r} (known: {', '.join(NOISE_KEYS)}, parts, seed, keep_exact)")
        if not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"sg_noise: {k} must be a rate in [0, 1], got {v!r}")
    parts = out.get("parts", ["tsg", "dsg"])
    if isinstance(parts, str) or not set(parts) <= {"tsg", "dsg"}:
        raise ValueError(f"sg_noise: parts must be a list drawn from ['tsg', 'dsg'], got {parts!r}")
    return out


def apply_sg_noise(samples: Sequence[Sample], spec: dict[str, Any] | None) -> list[Sample]:
    """Corrupt the HSG of every sample in place according to ``spec`` (see module docstring)."""
    spec = check_sg_noise(spec)
    if not any(spec.get(k) for k in NOISE_KEYS):
        return list(samples)
    parts = tuple(spec.get("parts", ("tsg", "dsg")))
    base = int(spec.get("seed", 0))
    vocab = label_vocabulary()
    for s in samples:
        g = s.scene_graph
        if g is None or isinstance(g, str):
            continue
        seed = noise.sample_seed(base, s.id)
        if spec.get("keep_exact"):
            s.extra["exact_scene_graph"] = g
        if spec.get("label_noise"):
            g = noise.corrupt_labels(g, float(spec["label_noise"]), seed + 1, vocab, parts)
        if spec.get("rewire"):
            g = noise.rewire_edges(g, float(spec["rewire"]), seed + 2, parts)
        if spec.get("degrade"):
            g = noise.degrade(g, float(spec["degrade"]), seed + 3, vocab, parts)
        if spec.get("drop"):
            g = noise.drop_nodes(g, float(spec["drop"]), seed, parts)
        if spec.get("drop") or spec.get("degrade"):
            for part in (g.tsg, g.dsg):
                part.meta = {k: v for k, v in part.meta.items() if k not in PER_NODE_META}
        s.scene_graph = g
    return list(samples)
