"""Collation of per-sample scene graphs into one disjoint graph per encoder (PyG-style offsets, no padding).

``collate_graphs(list[HolisticSceneGraph]) -> GraphBatch``. The batch keeps the TSG part and the DSG part as
two disjoint graphs (all captions / all keyframes of all videos); the HSG graph is the union of both plus the
cross-modal edges, assembled by the model (``finsta_core.nn.graph``). Node labels are turned into hashed word
ids here (crc32 of each lower-cased word; the model takes them modulo its vocabulary size), so no external
vocabulary is needed. Predecessor pointers (``prev``) are derived after collation from the offset temporal
edge list (never stored with -1 under an ``index`` name: PyG's collate offsets every ``*index*`` field).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor

from finsta_core.graphs.types import EdgeType, HolisticSceneGraph, NodeType, SceneGraphError, box_centers

_WORD = re.compile(r"[^\s_/]+")


@lru_cache(maxsize=65536)
def label_word_hashes(label: str) -> tuple[int, ...]:
    """Stable hashes (crc32) of the lower-cased words of a label; an empty label hashes as ``"<empty>"``."""
    words = _WORD.findall(label.lower()) or ["<empty>"]
    return tuple(zlib.crc32(w.encode("utf-8")) for w in words)


def _hash_labels(labels: list[str]) -> tuple[Tensor, Tensor]:
    """``labels`` -> (``words [W]`` crc32 ids, ``word_node [W]`` node of each word)."""
    hashes = [label_word_hashes(s) for s in labels]
    counts = torch.tensor([len(h) for h in hashes], dtype=torch.long)
    words = torch.tensor([x for h in hashes for x in h], dtype=torch.long)
    return words, torch.repeat_interleave(torch.arange(len(labels)), counts)


def chain_root_depth(prev: Tensor) -> tuple[Tensor, Tensor]:
    """Track root and depth of every node of chain-shaped tracks given predecessor pointers.

    Args:
        prev: ``[N]`` long predecessor id or -1.
    Returns:
        ``root [N]`` (first node of the node's track) and ``depth [N]`` (0 at the root), by pointer
        doubling in O(N log T).
    """
    n = prev.numel()
    ar = torch.arange(n, device=prev.device)
    anc = torch.where(prev >= 0, prev, ar)
    depth = (prev >= 0).long()
    for _ in range(64):
        nxt = anc.index_select(0, anc)
        if torch.equal(nxt, anc):
            break
        depth = depth + depth.index_select(0, anc)
        anc = nxt
    return anc, depth


def relation_ends(node_type: Tensor, edge_index: Tensor, edge_type: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """Subject and object node of every relation node (``-1`` where missing), ``[n]`` each, from the
    ``SUBJ_PRED`` / ``PRED_OBJ`` edges of a (collated) scene graph."""
    subj = torch.full((n,), -1, dtype=torch.long, device=node_type.device)
    obj = subj.clone()
    s = edge_type == EdgeType.SUBJ_PRED
    o = edge_type == EdgeType.PRED_OBJ
    subj[edge_index[1, s]] = edge_index[0, s]
    obj[edge_index[0, o]] = edge_index[1, o]
    return subj, obj


@dataclass
class TSGBatch:
    """All TSGs of a batch as one disjoint graph. ``N`` nodes, ``E`` semantic edges, ``B`` graphs.

    Attributes:
        labels: ``N`` strings. words / word_node: ``[W]`` hashed word ids and their node.
        node_type / graph: ``[N]`` long. edge_index: ``[2, E]`` (offset). edge_type: ``[E]``.
        spans: ``[N, 2]`` char spans in the sample's caption (-1 none). dynamic: ``[N]`` bool, predicate
            nodes headed by a verb (``tsg.meta["dynamic"]`` when the parser provides it, else every
            relation node).
    """

    labels: list[str]
    words: Tensor
    word_node: Tensor
    node_type: Tensor
    graph: Tensor
    edge_index: Tensor
    edge_type: Tensor
    spans: Tensor
    dynamic: Tensor

    @property
    def num_nodes(self) -> int:
        return self.node_type.numel()


@dataclass
class DSGBatch:
    """All DSGs of a batch as one disjoint graph over ``F`` keyframes (global frame ids).

    Attributes:
        labels, words, word_node, node_type, graph: as in :class:`TSGBatch`.
        frame: ``[N]`` global keyframe id. time: ``[N]`` seconds. boxes: ``[N, 4]`` pixels.
        centers: ``[N, 2]`` box centres normalised by the frame size (objects; 0 elsewhere).
        features: ``[N, F_feat]`` detector features or None. has_feature: ``[N]`` bool.
        edge_index / edge_type: intra-frame edges. temporal_index: ``[2, E_t]`` (t-1 -> t).
        frame_graph / frame_local / frame_time: ``[F]`` sample, keyframe index in the video, seconds.
        frame_size: ``[B, 2]`` (width, height).
    """

    labels: list[str]
    words: Tensor
    word_node: Tensor
    node_type: Tensor
    graph: Tensor
    frame: Tensor
    time: Tensor
    boxes: Tensor
    centers: Tensor
    features: Tensor | None
    has_feature: Tensor
    edge_index: Tensor
    edge_type: Tensor
    temporal_index: Tensor
    frame_graph: Tensor
    frame_local: Tensor
    frame_time: Tensor
    frame_size: Tensor

    @property
    def num_nodes(self) -> int:
        return self.node_type.numel()

    @property
    def num_frames(self) -> int:
        return self.frame_graph.numel()

    @property
    def prev(self) -> Tensor:
        """``[N]`` long temporal-coreference predecessor (-1 none), derived from ``temporal_index``: the
        ``Q^{t-1}`` node of Eq 23 (Eq 4 edges, one-to-one by Eq 1's matching)."""
        p = torch.full((self.num_nodes,), -1, dtype=torch.long, device=self.node_type.device)
        if self.temporal_index.numel():
            p[self.temporal_index[1]] = self.temporal_index[0]  # prev(i) along e_{t-1 -> t} (Eqs 4, 23)
        return p


@dataclass
class GraphBatch:
    """A collated batch: TSG part, DSG part and cross-modal edges (global TSG id -> global DSG id).

    ``cache`` holds derived index structures (regions, tracks) keyed by their parameters; it is emptied by
    every method that returns a modified batch.
    """

    tsg: TSGBatch
    dsg: DSGBatch
    cross_index: Tensor
    cross_score: Tensor
    sample_ids: list[str]
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @property
    def num_graphs(self) -> int:
        return len(self.sample_ids)

    def to(self, device: torch.device | str) -> GraphBatch:
        def mv(obj: Any) -> Any:
            kw = {f.name: getattr(obj, f.name) for f in fields(obj)}
            return replace(obj, **{k: v.to(device) for k, v in kw.items() if isinstance(v, Tensor)})

        return GraphBatch(mv(self.tsg), mv(self.dsg), self.cross_index.to(device), self.cross_score.to(device),
                          list(self.sample_ids))

    def without_temporal(self) -> GraphBatch:
        """Table 8 'w/o temporal coref. edge in DSG': drop every temporal edge."""
        dsg = replace(self.dsg, temporal_index=self.dsg.temporal_index[:, :0])
        return GraphBatch(self.tsg, dsg, self.cross_index, self.cross_score, list(self.sample_ids))

    def without_cross(self) -> GraphBatch:
        """Table 8 'w/o X-modal coref. edge in HSG': drop every cross-modal edge."""
        return GraphBatch(self.tsg, self.dsg, self.cross_index[:, :0], self.cross_score[:0], list(self.sample_ids))

    def without_adverbs(self) -> GraphBatch:
        """Table 8 'w/o adverbial modifier in TSG': remove ADVERB nodes and their edges (vectorised)."""
        t = self.tsg
        keep = t.node_type != NodeType.ADVERB
        if bool(keep.all()):
            return self
        new_id = torch.cumsum(keep.long(), 0) - 1
        ek = keep[t.edge_index[0]] & keep[t.edge_index[1]]
        wk = keep[t.word_node]
        idx = keep.nonzero().flatten()
        tsg = TSGBatch([t.labels[i] for i in idx.tolist()], t.words[wk], new_id[t.word_node[wk]], t.node_type[keep],
                       t.graph[keep], new_id[t.edge_index[:, ek]], t.edge_type[ek], t.spans[keep], t.dynamic[keep])
        ck = keep[self.cross_index[0]]
        ci = torch.stack([new_id[self.cross_index[0, ck]], self.cross_index[1, ck]])
        return GraphBatch(tsg, self.dsg, ci, self.cross_score[ck], list(self.sample_ids))


def collate_graphs(graphs: list[HolisticSceneGraph], validate: bool = True) -> GraphBatch:
    """Collate HSGs into one disjoint graph per encoder.

    Args:
        graphs: per-sample holistic scene graphs (TSG + DSG + cross edges).
        validate: run each graph's ``validate()`` first (clear :class:`SceneGraphError` naming the sample).
    Returns:
        :class:`GraphBatch` with offset edge lists, per-node graph / frame ids and hashed label words.
    """
    if not graphs:
        raise SceneGraphError("collate_graphs: empty list of scene graphs")
    if validate:
        for g in graphs:
            g.validate()
    feat_dims = {g.dsg.features.shape[1] for g in graphs if g.dsg.features is not None}
    if len(feat_dims) > 1:
        raise SceneGraphError(f"collate_graphs: DSG detector features of different widths {sorted(feat_dims)} "
                              "in one batch")
    fdim = feat_dims.pop() if feat_dims else None
    t_parts: dict[str, list[Any]] = {k: [] for k in ("type", "graph", "ei", "et", "spans", "dyn")}
    d_parts: dict[str, list[Any]] = {k: [] for k in ("type", "graph", "frame", "time", "boxes", "centers", "feat",
                                                     "hasf", "ei", "et", "ti", "fg", "fl", "ft", "fs")}
    ci, cs, t_labels, d_labels = [], [], [], []
    nt = nd = nf = 0
    for b, g in enumerate(graphs):
        t, d = g.tsg, g.dsg
        n1, n2, f2 = t.num_nodes, d.num_nodes, d.num_frames
        t_labels += t.labels
        t_parts["type"].append(t.node_type)
        t_parts["graph"].append(torch.full((n1,), b, dtype=torch.long))
        t_parts["ei"].append(t.edge_index + nt)
        t_parts["et"].append(t.edge_type)
        t_parts["spans"].append(t.spans)
        dyn = t.meta.get("dynamic")
        if dyn is None:
            dyn_t = t.node_type == NodeType.RELATION
        else:
            dyn_t = torch.as_tensor(dyn, dtype=torch.bool).reshape(-1)
            if dyn_t.numel() != n1:
                raise SceneGraphError(f"sample {g.sample_id!r} TSG: meta['dynamic'] has {dyn_t.numel()} entries "
                                      f"for {n1} nodes")
            dyn_t = dyn_t & (t.node_type == NodeType.RELATION)
        t_parts["dyn"].append(dyn_t)
        d_labels += d.labels
        d_parts["type"].append(d.node_type)
        d_parts["graph"].append(torch.full((n2,), b, dtype=torch.long))
        d_parts["frame"].append(d.frame + nf)
        d_parts["time"].append(d.timestamps[d.frame])
        d_parts["boxes"].append(d.boxes)
        obj = (d.node_type == NodeType.OBJECT).unsqueeze(1)
        d_parts["centers"].append(box_centers(d.boxes, d.frame_size) * obj)
        if fdim is not None:
            d_parts["feat"].append(d.features if d.features is not None else torch.zeros(n2, fdim))
        d_parts["hasf"].append(torch.full((n2,), d.features is not None))
        d_parts["ei"].append(d.edge_index + nd)
        d_parts["et"].append(d.edge_type)
        d_parts["ti"].append(d.temporal_index + nd)
        d_parts["fg"].append(torch.full((f2,), b, dtype=torch.long))
        d_parts["fl"].append(torch.arange(f2))
        d_parts["ft"].append(d.timestamps)
        d_parts["fs"].append(torch.tensor(d.frame_size, dtype=torch.float32))
        ci.append(g.cross_index + torch.tensor([[nt], [nd]]))
        cs.append(g.cross_score)
        nt, nd, nf = nt + n1, nd + n2, nf + f2
    tw, twn = _hash_labels(t_labels)
    dw, dwn = _hash_labels(d_labels)
    tp, dp = t_parts, d_parts
    tsg = TSGBatch(t_labels, tw, twn, torch.cat(tp["type"]), torch.cat(tp["graph"]), torch.cat(tp["ei"], 1),
                   torch.cat(tp["et"]), torch.cat(tp["spans"]), torch.cat(tp["dyn"]))
    dsg = DSGBatch(d_labels, dw, dwn, torch.cat(dp["type"]), torch.cat(dp["graph"]), torch.cat(dp["frame"]),
                   torch.cat(dp["time"]), torch.cat(dp["boxes"]), torch.cat(dp["centers"]),
                   torch.cat(dp["feat"]) if fdim is not None else None, torch.cat(dp["hasf"]),
                   torch.cat(dp["ei"], 1), torch.cat(dp["et"]), torch.cat(dp["ti"], 1), torch.cat(dp["fg"]),
                   torch.cat(dp["fl"]), torch.cat(dp["ft"]), torch.stack(dp["fs"]))
    return GraphBatch(tsg, dsg, torch.cat(ci, 1), torch.cat(cs), [g.sample_id for g in graphs])
