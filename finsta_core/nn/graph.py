"""Attention graphs the encoders run on, built from a :class:`GraphBatch` (vectorised, no node loops).

Each encoder sees one :class:`LayerGraph`: the semantic edges plus (``FinstaConfig`` switches, see
docs/paper-notes.md "Readouts", "HSG") reverse edges with their own types, one self loop per node, one virtual
readout (CLS) node per group (TSG graph, DSG / HSG keyframe) fed by one-way edges node -> CLS, optional temporal
attention edges, and for the HSG the cross-modal edges in both directions. Real nodes come first, CLS nodes after.

Encoder edge-type ids: semantic ``EdgeType`` ``0..5``, reverses ``6..11``, ``SELF = 12``, ``READ = 13``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from finsta_core.config import FinstaConfig
from finsta_core.graphs.batch import GraphBatch, chain_root_depth, relation_ends
from finsta_core.graphs.scatter import group_pairs
from finsta_core.graphs.types import NUM_EDGE_TYPES, EdgeType, NodeType
from finsta_core.nn.attend import EdgeList

SELF_EDGE = 2 * NUM_EDGE_TYPES
READ_EDGE = 2 * NUM_EDGE_TYPES + 1
NUM_ENC_EDGE_TYPES = 2 * NUM_EDGE_TYPES + 2
CLS_NODE = len(NodeType)  # node-type id of a virtual readout node
NUM_ENC_NODE_TYPES = len(NodeType) + 1

__all__ = ["CLS_NODE", "NUM_ENC_EDGE_TYPES", "NUM_ENC_NODE_TYPES", "READ_EDGE", "SELF_EDGE", "LayerGraph",
           "build_graphs", "relation_ends"]  # relation_ends lives in finsta_core.graphs.batch (re-exported)


@dataclass
class LayerGraph:
    """One encoder's graph. ``N`` nodes (real then CLS), ``E`` edges.

    Attributes:
        num_nodes / num_real: all nodes / real (scene-graph) nodes.
        edge_index: ``[2, E]`` (row 0 source j, row 1 target i). edge_type: ``[E]`` encoder edge types.
        group: ``[num_real]`` readout group (TSG graph, keyframe); num_groups: number of groups.
        prev: ``[N]`` recurrence predecessor of the gate (Eq 23), -1 none. depth / levels: depth along the
            prev chains and per-depth node lists (for ``query_scan`` and the recurrent GNN).
        stgd_nodes: ``[M]`` objects with a motion kernel; stgd_pairs: ``[2, P]`` neighbour j -> object i
            (tracked objects of one keyframe, Eq 30); disp: ``[N]`` squared centre displacement to the
            tracked predecessor.
    """

    num_nodes: int
    num_real: int
    edge_index: Tensor
    edge_type: Tensor
    group: Tensor
    num_groups: int
    prev: Tensor
    depth: Tensor
    levels: list[Tensor]
    stgd_nodes: Tensor
    stgd_pairs: Tensor
    disp: Tensor
    real_index: Tensor
    cls_index: Tensor
    num_stream: int = -1  # edges [0, num_stream) carry evolving edge states; the rest (self / read) are static

    def __post_init__(self) -> None:
        if self.num_stream < 0:
            self.num_stream = self.edge_index.shape[1]

    @property
    def num_edges(self) -> int:
        return self.edge_index.shape[1]

    @property
    def edges(self) -> EdgeList:
        """The attention edges as an :class:`EdgeList` (what the layers gather and scatter over)."""
        return EdgeList.of(self.edge_index, self.num_nodes)

    def edge_rows(self, stream: Tensor, static: Tensor | None) -> Tensor:
        """One row per edge ``[E, *]``: the evolving stream rows ``[E_stream, *]``, then for each static self /
        readout edge the row of its type in ``static [2, *]`` (``SELF_EDGE``, ``READ_EDGE`` order)."""
        if self.num_stream == self.num_edges:
            return stream
        if static is None:
            raise ValueError("this graph has static self / readout edges: pass e_aux (their type embeddings)")
        return torch.cat([stream, static.index_select(0, self.edge_type[self.num_stream:] - SELF_EDGE)], 0)


def _levels(prev: Tensor) -> tuple[Tensor, list[Tensor]]:
    _, depth = chain_root_depth(prev)
    dmax = int(depth.max()) if depth.numel() else 0
    order = torch.argsort(depth, stable=True)
    counts = torch.bincount(depth, minlength=dmax + 1).tolist()
    return depth, list(torch.split(order, counts))[1:]


def _attention_edges(cfg: FinstaConfig, n_real: int, edge_index: Tensor, edge_type: Tensor, group: Tensor,
                     num_groups: int) -> tuple[Tensor, Tensor, int, int]:
    dev = edge_index.device
    ei, et = [edge_index], [edge_type]
    if cfg.reverse_edges:
        ei.append(edge_index.flip(0))
        et.append(edge_type + NUM_EDGE_TYPES)
    n_stream = sum(x.shape[1] for x in ei)
    n = n_real
    if cfg.readout == "cls":
        n = n_real + num_groups
        ar = torch.arange(n_real, device=dev)
        ei.append(torch.stack([ar, group + n_real]))
        et.append(torch.full((n_real,), READ_EDGE, dtype=torch.long, device=dev))
    if cfg.self_loops or cfg.readout == "cls":
        ar = torch.arange(0 if cfg.self_loops else n_real, n, device=dev)
        ei.append(torch.stack([ar, ar]))
        et.append(torch.full((ar.numel(),), SELF_EDGE, dtype=torch.long, device=dev))
    ei_all = torch.cat(ei, 1)
    return ei_all, torch.cat(et), n, ei_all.shape[1] if cfg.aux_edge_stream else n_stream


def _stgd_structure(cfg: FinstaConfig, batch: GraphBatch, motion_prev: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Kernel objects, neighbour pairs and displacements of Eq 30 on the DSG (global DSG ids): ``D_i`` and the
    neighbour set ``N_i`` of the kernel ``κ_i``."""
    d = batch.dsg
    n, dev = d.num_nodes, d.node_type.device
    tracked = (d.node_type == NodeType.OBJECT) & (motion_prev >= 0)
    disp = torch.zeros(n, device=dev)
    if tracked.any():
        idx = tracked.nonzero().flatten()
        disp[idx] = (d.centers[idx] - d.centers[motion_prev[idx]]).pow(2).sum(1)  # D_i = ‖p_i - p_prev(i)‖² (Eq 30)
    subj, obj = relation_ends(d.node_type, d.edge_index, d.edge_type, n)
    rel = (subj >= 0) & (obj >= 0)
    s, o = subj[rel], obj[rel]
    keep = tracked[s] & tracked[o] & (s != o)  # N_i: tracked objects sharing a relation with i (Eq 30)
    pj = torch.cat([s[keep], o[keep]])
    pi = torch.cat([o[keep], s[keep]])
    # objects without a tracked relation neighbour: every other tracked object of the keyframe
    has_nb = torch.zeros(n, dtype=torch.bool, device=dev)
    has_nb[pi] = True
    need = (tracked & ~has_nb).nonzero().flatten()
    members = tracked.nonzero().flatten()
    if need.numel() and members.numel():
        qi, mi = group_pairs(d.frame[need], d.frame[members], d.num_frames)
        fi, fj = need[qi], members[mi]
        ok = fi != fj
        pi, pj = torch.cat([pi, fi[ok]]), torch.cat([pj, fj[ok]])
    key = torch.unique(pi * n + pj)
    pairs = torch.stack([key % n, key // n])
    nodes = torch.unique(pairs[1])
    return nodes, pairs, disp


def build_graphs(cfg: FinstaConfig, batch: GraphBatch) -> dict[str, LayerGraph]:
    """The TSG, DSG and HSG attention graphs of a batch (cached on ``batch.cache``)."""
    key = ("graphs", cfg.aux_edge_stream, cfg.reverse_edges, cfg.self_loops, cfg.readout, cfg.temporal_attention_edges,
           cfg.stgd, cfg.temporal_edges)
    if key in batch.cache:
        return batch.cache[key]
    t, d = batch.tsg, batch.dsg
    dev = t.node_type.device
    empty = torch.zeros(0, dtype=torch.long, device=dev)
    nt, nd, b, f = t.num_nodes, d.num_nodes, batch.num_graphs, d.num_frames
    # TSG
    tei, tet, nt_all, ts = _attention_edges(cfg, nt, t.edge_index, t.edge_type, t.graph, b)
    none_t = torch.full((nt_all,), -1, dtype=torch.long, device=dev)
    cls = cfg.readout == "cls"
    real_t = torch.arange(nt, device=dev)
    cls_t = torch.arange(nt, nt_all, device=dev) if cls else empty
    no_pairs = torch.zeros(2, 0, dtype=torch.long, device=dev)
    tsg = LayerGraph(nt_all, nt, tei, tet, t.graph, b, none_t, torch.zeros_like(none_t), [], empty, no_pairs,
                     torch.zeros(nt_all, device=dev), real_t, cls_t, ts)
    # DSG
    prev = d.prev
    dei, det = d.edge_index, d.edge_type
    if cfg.temporal_attention_edges and d.temporal_index.numel():
        dei = torch.cat([dei, d.temporal_index], 1)
        det = torch.cat([det, torch.full((d.temporal_index.shape[1],), EdgeType.TEMPORAL, device=dev)])
    dei, det, nd_all, ds = _attention_edges(cfg, nd, dei, det, d.frame, f)
    pad_d = torch.full((nd_all - nd,), -1, dtype=torch.long, device=dev)
    prev_d = torch.cat([prev, pad_d])
    depth_d, levels_d = _levels(prev_d)
    if cfg.stgd:
        sn, sp, disp = _stgd_structure(cfg, batch, prev)
    else:
        sn, sp, disp = empty, torch.zeros(2, 0, dtype=torch.long, device=dev), torch.zeros(nd, device=dev)
    disp_d = torch.cat([disp, torch.zeros(nd_all - nd, device=dev)])
    real_d = torch.arange(nd, device=dev)
    cls_d = torch.arange(nd, nd_all, device=dev) if cls else empty
    dsg = LayerGraph(nd_all, nd, dei, det, d.frame, f, prev_d, depth_d, levels_d, sn, sp, disp_d, real_d, cls_d, ds)
    # HSG (Eqs 8-10): union (TSG block = frame G_0^C first, DSG block offset by nt_all) + cross edges both ways
    off = nt_all
    ci = batch.cross_index
    cross_e = torch.stack([ci[0], ci[1] + off])
    # edge order: TSG stream, DSG stream, cross, reverse cross | TSG static, DSG static
    hei = torch.cat([tei[:, :ts], dei[:, :ds] + off, cross_e, cross_e.flip(0), tei[:, ts:], dei[:, ds:] + off], 1)
    cet = torch.full((ci.shape[1],), EdgeType.CROSS, dtype=torch.long, device=dev)
    het = torch.cat([tet[:ts], det[:ds], cet, cet + NUM_EDGE_TYPES, tet[ts:], det[ds:]])
    hs = ts + ds + 2 * ci.shape[1]  # E^C_{v^T <-> v^D} in both directions (Eq 10)
    prev_h = torch.cat([none_t, torch.where(prev_d >= 0, prev_d + off, prev_d)])
    if ci.numel():
        # first node of a DSG track: predecessor = linked TSG object (highest a^C when several), B.2 Eq 28
        o1 = torch.argsort(batch.cross_score, stable=True)
        o2 = o1[torch.argsort(ci[1, o1], stable=True)]
        dst_sorted = ci[1, o2]
        last = torch.ones_like(dst_sorted, dtype=torch.bool)
        last[:-1] = dst_sorted[1:] != dst_sorted[:-1]
        sel = o2[last]
        dst = ci[1, sel]
        free = prev[dst] < 0
        prev_h[dst[free] + off] = ci[0, sel[free]]
    depth_h, levels_h = _levels(prev_h)
    hgroup = torch.cat([t.graph, d.frame + b])
    hsg = LayerGraph(nt_all + nd_all, nt + nd, hei, het, hgroup, b + f, prev_h, depth_h, levels_h, sn + off,
                     sp + off, torch.cat([torch.zeros(nt_all, device=dev), disp_d]), torch.cat([real_t, real_d + off]),
                     torch.cat([cls_t, cls_d + off]), hs)
    out = {"tsg": tsg, "dsg": dsg, "hsg": hsg}
    batch.cache[key] = out
    return out
