"""Vectorised structural operations on scene graphs: node subsets with index remapping.

Used by the noise tools (Table 12 node dropping), vocabulary filtering and the HSG builder. Every
operation returns a *new* graph; inputs are never modified.
"""

from __future__ import annotations

import torch
from torch import Tensor

from finsta_core.graphs.types import DynamicSceneGraph, HolisticSceneGraph, TextualSceneGraph


def remap(keep: Tensor) -> Tensor:
    """``[N]`` bool keep mask -> ``[N]`` long map from old to new node ids (``-1`` for dropped nodes)."""
    keep = keep.bool()
    out = torch.full((keep.numel(),), -1, dtype=torch.long)
    out[keep] = torch.arange(int(keep.sum()), dtype=torch.long)
    return out


def _sub_edges(edge_index: Tensor, new_id: Tensor, *extra: Tensor) -> tuple[Tensor, ...]:
    """Keep the edges whose two ends survive; relabel them. ``extra`` are ``[E]`` per-edge tensors."""
    if edge_index.numel() == 0:
        return (edge_index.clone(), *[x.clone() for x in extra])
    mapped = new_id[edge_index]
    ok = (mapped >= 0).all(0)
    return (mapped[:, ok], *[x[ok] for x in extra])


def _sub_meta(meta: dict, keep: Tensor) -> dict:
    """Copy of ``meta`` where every per-node list (length N, e.g. ``dynamic``) is subset with ``keep``.

    Lists of node ids (such as ``negated``) are remapped rather than masked."""
    n, out = keep.numel(), {}
    idx = keep.nonzero().flatten().tolist()
    new_id = remap(keep).tolist()
    for k, v in meta.items():
        if k == "negated" and isinstance(v, list):
            out[k] = [new_id[i] for i in v if 0 <= i < n and new_id[i] >= 0]
        elif isinstance(v, list) and len(v) == n:
            out[k] = [v[i] for i in idx]
        else:
            out[k] = v
    return out


def tsg_subgraph(tsg: TextualSceneGraph, keep: Tensor) -> TextualSceneGraph:
    """Induced sub-graph of a TSG on the ``[N]`` bool mask ``keep`` (edges with a dropped end vanish)."""
    keep = torch.as_tensor(keep, dtype=torch.bool).reshape(-1)
    new_id = remap(keep)
    idx = keep.nonzero().flatten().tolist()
    ei, et = _sub_edges(tsg.edge_index, new_id, tsg.edge_type)
    return TextualSceneGraph(tsg.caption, [tsg.labels[i] for i in idx], tsg.node_type[keep], ei, et,
                             tsg.spans[keep], _sub_meta(tsg.meta, keep))


def dsg_subgraph(dsg: DynamicSceneGraph, keep: Tensor) -> DynamicSceneGraph:
    """Induced sub-graph of a DSG; keyframes and timestamps are kept even when a keyframe empties."""
    keep = torch.as_tensor(keep, dtype=torch.bool).reshape(-1)
    new_id = remap(keep)
    idx = keep.nonzero().flatten().tolist()
    ei, et = _sub_edges(dsg.edge_index, new_id, dsg.edge_type)
    (ti,) = _sub_edges(dsg.temporal_index, new_id)
    return DynamicSceneGraph(
        [dsg.labels[i] for i in idx], dsg.node_type[keep], dsg.frame[keep], dsg.boxes[keep],
        dsg.timestamps.clone(), dsg.frame_size, ei, et, ti,
        None if dsg.features is None else dsg.features[keep],
        None if dsg.scores is None else dsg.scores[keep], _sub_meta(dsg.meta, keep))


def hsg_subgraph(hsg: HolisticSceneGraph, keep_tsg: Tensor | None = None,
                 keep_dsg: Tensor | None = None) -> HolisticSceneGraph:
    """Sub-graph of an HSG: cross-modal edges survive only when both their ends do."""
    keep_t = torch.ones(hsg.tsg.num_nodes, dtype=torch.bool) if keep_tsg is None else keep_tsg.bool()
    keep_d = torch.ones(hsg.dsg.num_nodes, dtype=torch.bool) if keep_dsg is None else keep_dsg.bool()
    tsg = tsg_subgraph(hsg.tsg, keep_t)
    dsg = dsg_subgraph(hsg.dsg, keep_d)
    ci, cs = hsg.cross_index, hsg.cross_score
    if ci.numel():
        a, b = remap(keep_t)[ci[0]], remap(keep_d)[ci[1]]
        ok = (a >= 0) & (b >= 0)
        ci, cs = torch.stack([a[ok], b[ok]]), cs[ok]
    return HolisticSceneGraph(tsg, dsg, ci.clone(), cs.clone(), hsg.sample_id)
