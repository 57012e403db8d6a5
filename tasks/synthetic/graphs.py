"""Exact DSG of a rendered clip and the HSG of a (clip, caption) pair.

The DSG is read off the renderer's ground truth (paper sec 3.1 with a perfect detector and tracker): per
keyframe, one OBJECT node per object (label = category, exact box), ATTRIBUTE nodes for colour and size,
RELATION nodes for the spatial relation of every object pair (from geometry, the same rule the captions
use) and for every event active at that frame (label = the canonical predicate, subject -> predicate ->
object; ``meta["dynamic"]`` flags these event predicate nodes), and temporal coreference edges linking each
object to itself in the next keyframe (Eq 1 with the true tracks). The HSG links every TSG object to the DSG
node of the same object in its first keyframe (Eq 7, "only the first occurred frame"), with score 1.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from finsta_core.graphs.types import DynamicSceneGraph, EdgeType, HolisticSceneGraph, NodeType, TextualSceneGraph
from tasks.synthetic.scene import Clip, relation
from tasks.synthetic.vocab import RELATIONS


@lru_cache(maxsize=64)
def _keyframes(num_frames: int, keyframes: int) -> tuple[int, ...]:
    if keyframes <= 0 or keyframes >= num_frames:
        return tuple(range(num_frames))
    return tuple(sorted(set(np.round(np.linspace(0, num_frames - 1, keyframes)).astype(int).tolist())))


def keyframe_indices(num_frames: int, keyframes: int) -> np.ndarray:
    """Evenly spaced keyframe indices (``keyframes <= 0`` or ``>= num_frames``: every frame)."""
    return np.asarray(_keyframes(num_frames, keyframes), dtype=np.int64)


def build_dsg(clip: Clip, keyframes: int) -> DynamicSceneGraph:
    """The exact DSG of ``clip`` over ``keyframes`` evenly spaced keyframes.

    Node layout: keyframe ``k`` owns the block ``[k*B, (k+1)*B)`` with ``B = 3n + P`` (``n`` objects, their
    colour and size attributes, ``P = n(n-1)/2`` pairwise spatial relations); event predicate nodes of all
    keyframes follow after the ``K`` blocks. Edges are one per-frame template offset by ``k*B`` (vectorised).
    """
    kf = keyframe_indices(clip.num_frames, keyframes)
    n, k_all = clip.n, len(kf)
    ii, jj = np.triu_indices(n, 1)
    n_rel = len(ii)
    blk = 3 * n + n_rel
    obj = np.arange(n)
    # per-frame template: object -> colour / size, subject -> relation -> object
    rel_nodes = 3 * n + np.arange(n_rel)
    t_src = np.concatenate([obj, obj, ii, rel_nodes])
    t_dst = np.concatenate([n + obj, 2 * n + obj, rel_nodes, jj])
    t_typ = np.repeat([int(EdgeType.OBJ_ATTR), int(EdgeType.SUBJ_PRED), int(EdgeType.PRED_OBJ)],
                      [2 * n, n_rel, n_rel])
    off = (np.arange(k_all) * blk)[:, None]
    src, dst = [(off + t_src).reshape(-1)], [(off + t_dst).reshape(-1)]
    typ = [np.tile(t_typ, k_all)]
    # event predicate nodes: one per (keyframe, active event)
    start = np.array([e.start for e in clip.events])
    end = np.array([e.end for e in clip.events])
    kk, ee = np.nonzero((start[None] <= kf[:, None]) & (kf[:, None] < end[None]))
    pred = k_all * blk + np.arange(len(kk))
    actor = np.array([clip.events[e].actor for e in ee], dtype=np.int64)
    src.append(kk * blk + actor), dst.append(pred), typ.append(np.full(len(kk), int(EdgeType.SUBJ_PRED)))
    has_t = np.array([clip.events[e].target is not None for e in ee], dtype=bool)
    tgt = np.array([clip.events[e].target or 0 for e in ee], dtype=np.int64)
    src.append(pred[has_t]), dst.append((kk * blk + tgt)[has_t])
    typ.append(np.full(int(has_t.sum()), int(EdgeType.PRED_OBJ)))
    # labels, types, frames, boxes
    rel = relation(clip.pos[kf][:, ii], clip.pos[kf][:, jj])  # [K, P]
    fixed = [o.category for o in clip.objects] + [o.colour for o in clip.objects] + [o.size for o in clip.objects]
    labels = [lab for k in range(k_all) for lab in fixed + [RELATIONS[r] for r in rel[k]]]
    labels += [clip.events[e].predicate for e in ee]
    t_block = np.repeat([int(NodeType.OBJECT), int(NodeType.ATTRIBUTE), int(NodeType.RELATION)],
                        [n, 2 * n, n_rel])
    ntype = np.concatenate([np.tile(t_block, k_all), np.full(len(kk), int(NodeType.RELATION))])
    frame = np.concatenate([np.repeat(np.arange(k_all), blk), kk])
    boxes = np.zeros((k_all, blk, 4), dtype=np.float32)
    boxes[:, :n] = clip.boxes()[kf]
    boxes = np.concatenate([boxes.reshape(-1, 4), np.zeros((len(kk), 4), dtype=np.float32)])
    track = np.concatenate([np.tile(np.concatenate([obj, np.full(blk - n, -1)]), k_all), np.full(len(kk), -1)])
    event_of = np.concatenate([np.full(k_all * blk, -1), ee])
    # temporal coreference: object i in keyframe k-1 -> object i in keyframe k (true tracks)
    temporal = np.stack([(off[:-1] + obj).reshape(-1), (off[1:] + obj).reshape(-1)])
    return DynamicSceneGraph(
        labels=labels, node_type=torch.from_numpy(ntype), frame=torch.from_numpy(frame),
        boxes=torch.from_numpy(boxes), timestamps=torch.from_numpy(clip.timestamps()[kf]),
        frame_size=(clip.size, clip.size),
        edge_index=torch.from_numpy(np.stack([np.concatenate(src), np.concatenate(dst)]).astype(np.int64)),
        edge_type=torch.from_numpy(np.concatenate(typ).astype(np.int64)),
        temporal_index=torch.from_numpy(temporal.astype(np.int64)),
        meta={"track": track.tolist(), "event": event_of.tolist(), "dynamic": (event_of >= 0).tolist(),
              "keyframes": kf.tolist(),
              "source": "synthetic renderer"},
    )


def build_hsg(tsg: TextualSceneGraph, dsg: DynamicSceneGraph, sample_id: str = "") -> HolisticSceneGraph:
    """HSG: link every TSG object node to the DSG node of the same clip object in its first keyframe."""
    t_obj = [k for k, (nt, o) in enumerate(zip(tsg.node_type.tolist(), tsg.meta["object"]))
             if nt == NodeType.OBJECT and o >= 0]
    first: dict[int, int] = {}
    for node, (tr, nt) in enumerate(zip(dsg.meta["track"], dsg.node_type.tolist())):
        if nt == NodeType.OBJECT and tr >= 0 and tr not in first:
            first[tr] = node
    pairs = [(k, first[tsg.meta["object"][k]]) for k in t_obj if tsg.meta["object"][k] in first]
    ci = torch.tensor(pairs, dtype=torch.long).t() if pairs else torch.zeros(2, 0, dtype=torch.long)
    return HolisticSceneGraph(tsg, dsg, ci, torch.ones(ci.shape[1]), sample_id)
