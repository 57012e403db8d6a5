"""Reproducible scene-graph noise for the paper's robustness studies.

* :func:`drop_nodes` - Table 12 ("randomly discard some nodes from the TSG, DSG, and HSG, with the dropping
  rate at 10%, 30% and 50%"). Each node is dropped independently with probability ``rate``; edges touching a
  dropped node vanish (temporal chains break, cross-modal links disappear); at least one node per graph
  survives so the result stays a valid graph.
* :func:`corrupt_labels` - label noise: a ``rate`` share of nodes gets a different label drawn from a
  vocabulary (per node type when the vocabulary is a mapping).
* :func:`rewire_edges` - structural noise: predicate -> object edges re-pointed at another object (of the
  same keyframe in a DSG).
* :func:`degrade` - Fig 14 proxy ("parsers trained with early exiting"): a single ``level`` in [0, 1] that
  mixes the three at once. The paper degrades the parsers themselves; offline we degrade their output,
  which is documented in ``docs/scene-graphs.md``.

All functions take an explicit ``seed`` and return new validated graphs; the input is never modified.
Use :func:`sample_seed` to derive per-sample seeds that are stable across processes and shards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Union

import torch
from torch import Tensor

from finsta_core.graphs.types import (
    DynamicSceneGraph,
    EdgeType,
    HolisticSceneGraph,
    NodeType,
    TextualSceneGraph,
)
from finsta_core.sg.ops import hsg_subgraph

Vocabulary = Union[Sequence[str], Mapping[Union[NodeType, int, str], Sequence[str]]]
_PARTS = ("tsg", "dsg")


def sample_seed(seed: int, sample_id: str) -> int:
    """Stable 63-bit seed for one sample (independent of ``PYTHONHASHSEED``, process and shard)."""
    h = hashlib.blake2b(f"{seed}:{sample_id}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & ((1 << 63) - 1)


def _check_rate(name: str, rate: float) -> float:
    rate = float(rate)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {rate}")
    return rate


def _check_parts(parts: Sequence[str]) -> tuple[str, ...]:
    bad = [p for p in parts if p not in _PARTS]
    if bad:
        raise ValueError(f"parts must be a subset of {_PARTS}, got {list(parts)}")
    return tuple(parts)


def _keep_mask(n: int, rate: float, gen: torch.Generator) -> Tensor:
    """Bernoulli(1 - rate) keep mask of length ``n`` with at least one survivor."""
    keep = torch.rand(n, generator=gen) >= rate
    if n and not bool(keep.any()):
        keep[int(torch.randint(n, (1,), generator=gen))] = True
    return keep


def drop_nodes(hsg: HolisticSceneGraph, rate: float, seed: int,
               parts: Sequence[str] = _PARTS) -> HolisticSceneGraph:
    """Drop each TSG / DSG node independently with probability ``rate`` (Table 12).

    Args:
        hsg: the graph to impair (not modified).
        rate: node missing rate in [0, 1].
        seed: RNG seed; equal seeds give equal outputs.
        parts: which sub-graphs lose nodes (``"tsg"``, ``"dsg"``); cross edges follow both.
    Returns:
        a new validated :class:`HolisticSceneGraph`; ``dsg.meta["dropped_nodes"]`` and
        ``tsg.meta["dropped_nodes"]`` record how many nodes went.
    """
    rate, parts = _check_rate("rate", rate), _check_parts(parts)
    gen = torch.Generator().manual_seed(int(seed))
    kt = _keep_mask(hsg.tsg.num_nodes, rate, gen) if "tsg" in parts else None
    kd = _keep_mask(hsg.dsg.num_nodes, rate, gen) if "dsg" in parts else None
    out = hsg_subgraph(hsg, kt, kd)
    out.tsg.meta["dropped_nodes"] = 0 if kt is None else int((~kt).sum())
    out.dsg.meta["dropped_nodes"] = 0 if kd is None else int((~kd).sum())
    return out.validate()


def _vocab_for(vocabulary: Vocabulary, node_type: NodeType) -> list[str]:
    if isinstance(vocabulary, Mapping):
        for key in (node_type, int(node_type), node_type.name, node_type.name.lower()):
            if key in vocabulary:
                return list(vocabulary[key])
        return []
    return list(vocabulary)


def _corrupt(labels: list[str], node_type: Tensor, rate: float, vocabulary: Vocabulary,
             gen: torch.Generator) -> tuple[list[str], int]:
    """Replace a ``rate`` share of labels with a *different* label of the same node type's vocabulary."""
    labels = list(labels)
    hit = torch.rand(len(labels), generator=gen) < rate
    changed = 0
    for nt in NodeType:
        vocab = _vocab_for(vocabulary, nt)
        sel = (hit & (node_type == int(nt))).nonzero().flatten().tolist()
        if not sel or len(vocab) < 2:
            continue
        index = {w: k for k, w in enumerate(vocab)}
        # draw from V-1 slots and skip the current label's slot, so the label always changes
        r = torch.randint(len(vocab) - 1, (len(sel),), generator=gen).tolist()
        for i, ri in zip(sel, r):
            k = index.get(labels[i], len(vocab) - 1)
            labels[i] = vocab[ri + (ri >= k)]
            changed += 1
    return labels, changed


def corrupt_labels(hsg: HolisticSceneGraph, rate: float, seed: int, vocabulary: Vocabulary,
                   parts: Sequence[str] = _PARTS) -> HolisticSceneGraph:
    """Replace the labels of a ``rate`` share of nodes with different labels from ``vocabulary``.

    Args:
        vocabulary: a flat list of labels, or a mapping ``NodeType | int | name -> labels`` so objects get
            object labels, relations relation labels, etc. Node types absent from the mapping (or with
            fewer than two labels) are left untouched.
    Returns:
        a new validated HSG with the same structure; ``meta["corrupted_labels"]`` counts changes.
    """
    rate, parts = _check_rate("rate", rate), _check_parts(parts)
    gen = torch.Generator().manual_seed(int(seed))
    t, d = hsg.tsg, hsg.dsg
    t_labels, t_n = _corrupt(t.labels, t.node_type, rate, vocabulary, gen) if "tsg" in parts else (t.labels, 0)
    d_labels, d_n = _corrupt(d.labels, d.node_type, rate, vocabulary, gen) if "dsg" in parts else (d.labels, 0)
    tsg = TextualSceneGraph(t.caption, t_labels, t.node_type.clone(), t.edge_index.clone(), t.edge_type.clone(),
                            t.spans.clone(), {**t.meta, "corrupted_labels": t_n})
    dsg = DynamicSceneGraph(d_labels, d.node_type.clone(), d.frame.clone(), d.boxes.clone(), d.timestamps.clone(),
                            d.frame_size, d.edge_index.clone(), d.edge_type.clone(), d.temporal_index.clone(),
                            None if d.features is None else d.features.clone(),
                            None if d.scores is None else d.scores.clone(), {**d.meta, "corrupted_labels": d_n})
    return HolisticSceneGraph(tsg, dsg, hsg.cross_index.clone(), hsg.cross_score.clone(), hsg.sample_id).validate()


def _rewire(edge_index: Tensor, edge_type: Tensor, node_type: Tensor, group: Tensor, rate: float,
            gen: torch.Generator) -> tuple[Tensor, int]:
    """Re-point a ``rate`` share of PRED_OBJ edges to a uniformly drawn object of the same ``group``."""
    ei = edge_index.clone()
    sel = ((edge_type == EdgeType.PRED_OBJ) & (torch.rand(edge_type.numel(), generator=gen) < rate)).nonzero()
    sel = sel.flatten()
    obj = (node_type == NodeType.OBJECT).nonzero().flatten()
    if sel.numel() == 0 or obj.numel() == 0:
        return ei, 0
    # objects sorted by group -> CSR offsets; draw one object inside the target's group (vectorised)
    order = obj[torch.argsort(group[obj], stable=True)]
    n_groups = int(group.max()) + 1
    counts = torch.bincount(group[order], minlength=n_groups)
    offsets = torch.cumsum(counts, 0) - counts
    g = group[ei[1, sel]]
    pick = offsets[g] + (torch.rand(sel.numel(), generator=gen) * counts[g]).long().clamp_max(counts[g] - 1)
    ei[1, sel] = order[pick]
    return ei, int(sel.numel())


def rewire_edges(hsg: HolisticSceneGraph, rate: float, seed: int,
                 parts: Sequence[str] = _PARTS) -> HolisticSceneGraph:
    """Re-point a ``rate`` share of predicate -> object edges at another object (same keyframe in a DSG)."""
    rate, parts = _check_rate("rate", rate), _check_parts(parts)
    gen = torch.Generator().manual_seed(int(seed))
    t, d = hsg.tsg, hsg.dsg
    t_ei, t_n = t.edge_index, 0
    d_ei, d_n = d.edge_index, 0
    if "tsg" in parts:
        t_ei, t_n = _rewire(t.edge_index, t.edge_type, t.node_type, torch.zeros_like(t.node_type), rate, gen)
    if "dsg" in parts:
        d_ei, d_n = _rewire(d.edge_index, d.edge_type, d.node_type, d.frame, rate, gen)
    tsg = TextualSceneGraph(t.caption, list(t.labels), t.node_type.clone(), t_ei, t.edge_type.clone(),
                            t.spans.clone(), {**t.meta, "rewired_edges": t_n})
    dsg = DynamicSceneGraph(list(d.labels), d.node_type.clone(), d.frame.clone(), d.boxes.clone(),
                            d.timestamps.clone(), d.frame_size, d_ei, d.edge_type.clone(),
                            d.temporal_index.clone(), None if d.features is None else d.features.clone(),
                            None if d.scores is None else d.scores.clone(), {**d.meta, "rewired_edges": d_n})
    return HolisticSceneGraph(tsg, dsg, hsg.cross_index.clone(), hsg.cross_score.clone(), hsg.sample_id).validate()


def degrade(hsg: HolisticSceneGraph, level: float, seed: int, vocabulary: Vocabulary,
            parts: Sequence[str] = _PARTS, drop_share: float = 0.5) -> HolisticSceneGraph:
    """Simulate a lower-quality parser (Fig 14 proxy): at ``level`` in [0, 1], labels are corrupted at
    rate ``level``, predicate -> object edges rewired at rate ``level`` and nodes dropped at rate
    ``level * drop_share``. ``level = 0`` returns an equal copy.
    """
    level = _check_rate("level", level)
    gen = torch.Generator().manual_seed(int(seed))
    s1, s2, s3 = torch.randint(1 << 62, (3,), generator=gen).tolist()
    out = corrupt_labels(hsg, level, s1, vocabulary, parts)
    out = rewire_edges(out, level, s2, parts)
    return drop_nodes(out, level * _check_rate("drop_share", drop_share), s3, parts)


def vocabulary_from_graphs(graphs: Sequence[HolisticSceneGraph]) -> dict[NodeType, list[str]]:
    """Per-node-type label vocabulary (sorted, unique) of a collection of HSGs, for :func:`corrupt_labels`."""
    out: dict[NodeType, set[str]] = {nt: set() for nt in NodeType}
    for g in graphs:
        for part in (g.tsg, g.dsg):
            for lab, nt in zip(part.labels, part.node_type.tolist()):
                out[NodeType(nt)].add(lab)
    return {nt: sorted(v) for nt, v in out.items()}
