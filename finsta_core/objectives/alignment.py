"""OSC (Eqs 37-38) and PTC (Eqs 39-40) on a collated batch, from the final TSG / DSG node states.

Repair switches (issue 10, ``docs/paper-notes.md``): ``region_mode="hub_free"`` (relation nodes end a region),
``region_dedup`` (a candidate whose region equals a positive's is no negative), ``ptc_tracks="subject"``
(subject-only event predicates such as *jump* become PTC candidates; cross-edge positives must match the
anchor's arity: a subject-only TSG predicate is linked to subject-only DSG tracks of its subject, a transitive
one to tracks whose subject and object are both linked).
"""

from __future__ import annotations

from torch import Tensor

from finsta_core.config import FinstaConfig
from finsta_core.graphs.batch import GraphBatch, chain_root_depth, relation_ends
from finsta_core.graphs.types import NodeType
from finsta_core.objectives.contrast import candidate_pairs, info_nce, linked_fn
from finsta_core.objectives.regions import pool_regions, region_keys, region_pairs, relation_tracks, track_windows


def _dsg_roots(batch: GraphBatch) -> Tensor:
    key = ("dsg_roots",)
    if key not in batch.cache:
        batch.cache[key] = chain_root_depth(batch.dsg.prev)[0]
    return batch.cache[key]


def _linked(batch: GraphBatch):
    root = _dsg_roots(batch)
    nd = batch.dsg.num_nodes
    ci = batch.cross_index
    return linked_fn(ci[0] * nd + root[ci[1]], nd), root


def _hub(cfg: FinstaConfig, node_type: Tensor) -> Tensor | None:
    return node_type == NodeType.RELATION if cfg.region_mode == "hub_free" else None


def _keys(cfg: FinstaConfig, centers: Tensor, edge_index: Tensor, n_nodes: int, hops: int, hub: Tensor | None,
          cache: dict, key: object) -> Tensor | None:
    if not cfg.region_dedup:
        return None
    ci, mem = region_pairs(centers, edge_index, n_nodes, hops, hub, cache, key)
    return region_keys(ci, mem, centers.numel())


def osc_loss(cfg: FinstaConfig, batch: GraphBatch, h_t: Tensor, h_d: Tensor) -> tuple[Tensor, dict[str, float]]:
    """Eq 37-38: TSG object regions (n-hop) against every DSG object region of every keyframe.

    Args:
        h_t: ``[N_T, d]`` final TSG node states; h_d: ``[N_D, d]`` final DSG node states (real nodes).
    """
    t, d = batch.tsg, batch.dsg
    n = cfg.osc_n
    mode = cfg.region_mode
    anchors = (t.node_type == NodeType.OBJECT).nonzero().flatten()
    cands = (d.node_type == NodeType.OBJECT).nonzero().flatten()
    hub_t, hub_d = _hub(cfg, t.node_type), _hub(cfg, d.node_type)
    ra = pool_regions(h_t, anchors, t.edge_index, n, batch.cache, ("osc_t", n, mode), hub_t)
    rc = pool_regions(h_d, cands, d.edge_index, n, batch.cache, ("osc_d", n, mode), hub_d)
    ck = _keys(cfg, cands, d.edge_index, d.num_nodes, n, hub_d, batch.cache, ("osc_d", n, mode))
    pa, pc, same = candidate_pairs(t.graph[anchors], d.graph[cands], batch.num_graphs, cfg.cross_negatives)
    is_linked, root = _linked(batch)
    loss, diag = info_nce(ra, rc, pa, pc, same, cfg.tau_osc, cfg.rho_osc, cfg.positives, cfg.nce_form,
                          lambda a, c: is_linked(anchors[a], root[cands[c]]), ck)
    return loss, diag


def ptc_candidates(cfg: FinstaConfig, batch: GraphBatch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """DSG predicate candidates: ``rel [R]`` node ids, ``subj / obj [N_D]`` ends and ``rprev [R]`` track
    predecessors (positions into ``rel``); subject-only predicates included with ``ptc_tracks="subject"``."""
    d = batch.dsg
    key = ("ptc_tracks", cfg.ptc_tracks)
    if key not in batch.cache:
        subj, obj = relation_ends(d.node_type, d.edge_index, d.edge_type, d.num_nodes)
        ok = (d.node_type == NodeType.RELATION) & (subj >= 0)
        if cfg.ptc_tracks == "pair":
            ok &= obj >= 0
        rel = ok.nonzero().flatten()
        batch.cache[key] = (rel, subj, obj, relation_tracks(rel, subj, obj, d.prev, d.num_nodes))
    return batch.cache[key]


def ptc_anchors(cfg: FinstaConfig, batch: GraphBatch) -> Tensor:
    """TSG predicate anchors ``[A]`` (verb-headed ones with ``ptc_dynamic_only``)."""
    t = batch.tsg
    a_mask = (t.node_type == NodeType.RELATION) & (t.dynamic if cfg.ptc_dynamic_only else True)
    return a_mask.nonzero().flatten()


def ptc_cross_fn(cfg: FinstaConfig, batch: GraphBatch, anchors: Tensor, wnode: Tensor):
    """``(a, c) -> bool``: DSG window ``c`` (first node ``wnode[c]``) lies on a track linked to anchor ``a``."""
    t = batch.tsg
    _, subj_d, obj_d, _ = ptc_candidates(cfg, batch)
    is_linked, root = _linked(batch)
    subj_t, obj_t = relation_ends(t.node_type, t.edge_index, t.edge_type, t.num_nodes)
    arity = cfg.ptc_tracks == "subject"

    def cross(a: Tensor, c: Tensor) -> Tensor:
        ta, wc = anchors[a], wnode[c]
        ok = is_linked(subj_t[ta], root[subj_d[wc]])
        ot, od = obj_t[ta], obj_d[wc]
        obj_ok = is_linked(ot, root[od.clamp_min(0)]) & (od >= 0)
        if arity:
            return ok & _arity_match(ot, od, obj_ok)
        return ok & ((ot < 0) | obj_ok)

    return cross


def _arity_match(ot: Tensor, od: Tensor, obj_ok: Tensor) -> Tensor:
    """Arity match: subject-only anchor <-> subject-only track; transitive anchor <-> linked object."""
    return ((ot < 0) & (od < 0)) | ((ot >= 0) & obj_ok)


def ptc_loss(cfg: FinstaConfig, batch: GraphBatch, h_t: Tensor, h_d: Tensor) -> tuple[Tensor, dict[str, float]]:
    """Eq 39-40: TSG predicate regions against windows ``t..t+m`` of DSG predicate tracks."""
    t, d = batch.tsg, batch.dsg
    n = cfg.ptc_n
    mode = cfg.region_mode
    anchors = ptc_anchors(cfg, batch)
    rel, _, _, rprev = ptc_candidates(cfg, batch)
    hub_t, hub_d = _hub(cfg, t.node_type), _hub(cfg, d.node_type)
    ra = pool_regions(h_t, anchors, t.edge_index, n, batch.cache, ("ptc_t", n, mode, cfg.ptc_dynamic_only), hub_t)
    dkey = ("ptc_d", n, mode, cfg.ptc_tracks)
    rr = pool_regions(h_d, rel, d.edge_index, n, batch.cache, dkey, hub_d)
    win, start, length = track_windows(rr, rprev, cfg.ptc_windows, with_length=True)
    wnode = rel[start]
    wkey = None
    if cfg.region_dedup:  # a window is its first region and its length
        wkey = _keys(cfg, rel, d.edge_index, d.num_nodes, n, hub_d, batch.cache, dkey)[start] * 31 + length
    pa, pc, same = candidate_pairs(t.graph[anchors], d.graph[wnode], batch.num_graphs, cfg.cross_negatives)
    cross = ptc_cross_fn(cfg, batch, anchors, wnode)
    loss, diag = info_nce(ra, win, pa, pc, same, cfg.tau_ptc, cfg.rho_ptc, cfg.positives, cfg.nce_form, cross, wkey)
    diag["windows"] = float(win.shape[0])
    return loss, diag
