"""OSC (Eqs 37-38) and PTC (Eqs 39-40) on a collated batch, from the final TSG / DSG node states."""

from __future__ import annotations

from torch import Tensor

from finsta_core.config import FinstaConfig
from finsta_core.graphs.batch import GraphBatch, chain_root_depth
from finsta_core.graphs.types import NodeType
from finsta_core.nn.graph import relation_ends
from finsta_core.objectives.contrast import candidate_pairs, info_nce, linked_fn
from finsta_core.objectives.regions import pool_regions, relation_tracks, track_windows


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


def osc_loss(cfg: FinstaConfig, batch: GraphBatch, h_t: Tensor, h_d: Tensor) -> tuple[Tensor, dict[str, float]]:
    """Eq 37-38: TSG object regions (n-hop) against every DSG object region of every keyframe.

    Args:
        h_t: ``[N_T, d]`` final TSG node states; h_d: ``[N_D, d]`` final DSG node states (real nodes).
    """
    t, d = batch.tsg, batch.dsg
    n = cfg.osc_n
    anchors = (t.node_type == NodeType.OBJECT).nonzero().flatten()
    cands = (d.node_type == NodeType.OBJECT).nonzero().flatten()
    ra = pool_regions(h_t, anchors, t.edge_index, n, batch.cache, ("osc_t", n))
    rc = pool_regions(h_d, cands, d.edge_index, n, batch.cache, ("osc_d", n))
    pa, pc, same = candidate_pairs(t.graph[anchors], d.graph[cands], batch.num_graphs, cfg.cross_negatives)
    is_linked, root = _linked(batch)
    loss, diag = info_nce(ra, rc, pa, pc, same, cfg.tau_osc, cfg.rho_osc, cfg.positives, cfg.nce_form,
                          lambda a, c: is_linked(anchors[a], root[cands[c]]))
    return loss, diag


def ptc_loss(cfg: FinstaConfig, batch: GraphBatch, h_t: Tensor, h_d: Tensor) -> tuple[Tensor, dict[str, float]]:
    """Eq 39-40: TSG predicate regions against windows ``t..t+m`` of DSG predicate tracks."""
    t, d = batch.tsg, batch.dsg
    n = cfg.ptc_n
    a_mask = (t.node_type == NodeType.RELATION) & (t.dynamic if cfg.ptc_dynamic_only else True)
    anchors = a_mask.nonzero().flatten()
    key = ("ptc_tracks",)
    if key not in batch.cache:
        subj, obj = relation_ends(d.node_type, d.edge_index, d.edge_type, d.num_nodes)
        rel = ((d.node_type == NodeType.RELATION) & (subj >= 0) & (obj >= 0)).nonzero().flatten()
        batch.cache[key] = (rel, subj, obj, relation_tracks(rel, subj, obj, d.prev, d.num_nodes))
    rel, subj_d, obj_d, rprev = batch.cache[key]
    ra = pool_regions(h_t, anchors, t.edge_index, n, batch.cache, ("ptc_t", n))
    rr = pool_regions(h_d, rel, d.edge_index, n, batch.cache, ("ptc_d", n))
    win, start = track_windows(rr, rprev, cfg.ptc_windows)
    wnode = rel[start]
    pa, pc, same = candidate_pairs(t.graph[anchors], d.graph[wnode], batch.num_graphs, cfg.cross_negatives)
    is_linked, root = _linked(batch)
    subj_t, obj_t = relation_ends(t.node_type, t.edge_index, t.edge_type, t.num_nodes)

    def cross(a: Tensor, c: Tensor) -> Tensor:
        ta, wc = anchors[a], wnode[c]
        ok = is_linked(subj_t[ta], root[subj_d[wc]])
        ot = obj_t[ta]
        return ok & ((ot < 0) | is_linked(ot, root[obj_d[wc]]))

    loss, diag = info_nce(ra, win, pa, pc, same, cfg.tau_ptc, cfg.rho_ptc, cfg.positives, cfg.nce_form, cross)
    diag["windows"] = float(win.shape[0])
    return loss, diag
