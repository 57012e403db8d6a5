"""Diagnostics of the teacher and the transfer (issue 10): collapse statistics, clean alignment accuracy and
linear probes. Pure functions of tensors and a collated :class:`~finsta_core.graphs.batch.GraphBatch`; the
synthetic benchmark's ground truth is supplied by the caller (``harness/diagnose.py``).

* :func:`collapse_stats`: mean pairwise cosine of a set of feature rows and the common-mode share
  ``|mean|^2 / mean |x|^2`` (1: every row is the same vector; the TRS target is then the mean).
* :func:`object_alignment`: for every cross-modal edge (TSG object -> its DSG object, Eq 7), is the true DSG
  object the strictly most similar object of its keyframe? Ties count as misses, so identical regions
  (issue 10, A3) score 0, not a floating-point coin flip. Replaces the old ``acc_cross``.
* :func:`event_alignment`: for every TSG predicate, is its true DSG predicate track the strictly most similar
  track of the sample (track feature = mean of its nodes)? Truth: ``truth`` pairs when given (exact, from the
  synthetic renderer), else the arity-matched cross-edge rule of PTC (a proxy; anchors with several linked
  tracks are skipped).
* :func:`linear_probe`: multinomial logistic regression (full-batch L-BFGS on standardised features).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from finsta_core.graphs.batch import GraphBatch, chain_root_depth, relation_ends
from finsta_core.graphs.scatter import scatter_max, scatter_mean, scatter_sum
from finsta_core.graphs.types import NodeType
from finsta_core.objectives.regions import relation_tracks
from finsta_core.objectives.stats import collapse_stats

DIAG_KEYS = ("align_obj", "align_obj_chance", "align_event", "align_event_chance", "teacher_dsg_cos",
             "teacher_dsg_common", "teacher_tsg_cos", "teacher_tsg_common")


def _strict_top(sim: Tensor, group: Tensor, is_true: Tensor, n_groups: int) -> Tensor:
    """Per group ``[G]`` bool: the (single) true member has a similarity strictly above every other member."""
    neg_inf = torch.finfo(sim.dtype).min
    true_sim = scatter_max(torch.where(is_true, sim, torch.full_like(sim, neg_inf)), group, n_groups, fill=neg_inf)
    other_max = scatter_max(torch.where(is_true, torch.full_like(sim, neg_inf), sim), group, n_groups, fill=neg_inf)
    return true_sim > other_max


def object_alignment(batch: GraphBatch, h_t: Tensor, h_d: Tensor) -> tuple[float, float, int]:
    """Clean object alignment: ``(accuracy, chance, anchors)`` over the cross-modal edges of ``batch``.

    Args:
        h_t: ``[N_T, d]`` TSG features per node; h_d: ``[N_D, d]`` DSG features per node (node states or
            regions scattered back to their centre nodes).
    """
    t_node, d_true = batch.cross_index[0], batch.cross_index[1]
    d = batch.dsg
    ok = (batch.tsg.node_type[t_node] == NodeType.OBJECT) & (d.node_type[d_true] == NodeType.OBJECT)
    t_node, d_true = t_node[ok], d_true[ok]
    if t_node.numel() == 0:
        return 0.0, 0.0, 0
    objs = (d.node_type == NodeType.OBJECT).nonzero().flatten()
    # pairs (edge e, object o of the keyframe of e's true node)
    frame_of = d.frame[objs]
    order = torch.argsort(frame_of, stable=True)
    objs_s, frame_s = objs[order], frame_of[order]
    cnt = torch.bincount(frame_s, minlength=d.num_frames)
    start = torch.cumsum(cnt, 0) - cnt
    f_e = d.frame[d_true]
    n_e = cnt[f_e]
    e = torch.repeat_interleave(torch.arange(t_node.numel(), device=t_node.device), n_e)
    off = torch.arange(e.numel(), device=e.device) - torch.repeat_interleave(torch.cumsum(n_e, 0) - n_e, n_e)
    cand = objs_s[start[f_e][e] + off]
    sim = F.cosine_similarity(h_t[t_node[e]].float(), h_d[cand].float(), dim=-1)
    hit = _strict_top(sim, e, cand == d_true[e], t_node.numel())
    return float(hit.float().mean()), float((1.0 / n_e.float()).mean()), int(t_node.numel())


def predicate_tracks(batch: GraphBatch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Every DSG predicate track (subject-only predicates included): ``rel [R]`` node ids, ``track [R]`` track
    id, ``subj / obj [N_D]`` relation ends."""
    d = batch.dsg
    key = ("diag_tracks",)
    if key not in batch.cache:
        subj, obj = relation_ends(d.node_type, d.edge_index, d.edge_type, d.num_nodes)
        rel = ((d.node_type == NodeType.RELATION) & (subj >= 0)).nonzero().flatten()
        rprev = relation_tracks(rel, subj, obj, d.prev, d.num_nodes)
        track = torch.unique(chain_root_depth(rprev)[0], return_inverse=True)[1] if rel.numel() else rel
        batch.cache[key] = (rel, track, subj, obj)
    return batch.cache[key]


def event_alignment(batch: GraphBatch, h_t: Tensor, h_d: Tensor, anchors: Tensor,
                    truth: Tensor | None = None) -> tuple[float, float, int]:
    """Clean predicate alignment: ``(accuracy, chance, anchors scored)``.

    Args:
        h_t / h_d: per-node TSG / DSG features. anchors: ``[A]`` TSG predicate node ids.
        truth: ``[2, P]`` (TSG predicate node, a DSG node of its true track) pairs; None = the PTC cross-edge
            rule (arity-matched linked tracks; anchors with zero or several such tracks are not scored).
    """
    rel, track, subj, obj = predicate_tracks(batch)
    if anchors.numel() == 0 or rel.numel() == 0:
        return 0.0, 0.0, 0
    n_tr = int(track.max()) + 1
    feat = scatter_mean(h_d[rel].float(), track, n_tr)
    tr_graph = scatter_max(batch.dsg.graph[rel].float(), track, n_tr).long()
    track_of_node = torch.full((batch.dsg.num_nodes,), -1, dtype=torch.long, device=rel.device)
    track_of_node[rel] = track
    a_graph = batch.tsg.graph[anchors]
    # pairs (anchor, track of the same sample)
    order = torch.argsort(tr_graph, stable=True)
    cnt = torch.bincount(tr_graph, minlength=batch.num_graphs)
    start = torch.cumsum(cnt, 0) - cnt
    n_a = cnt[a_graph]
    a = torch.repeat_interleave(torch.arange(anchors.numel(), device=rel.device), n_a)
    off = torch.arange(a.numel(), device=a.device) - torch.repeat_interleave(torch.cumsum(n_a, 0) - n_a, n_a)
    c = order[start[a_graph][a] + off]
    if truth is not None:
        pos_of = torch.full((batch.tsg.num_nodes,), -1, dtype=torch.long, device=rel.device)
        tt = track_of_node[truth[1]]
        pos_of[truth[0][tt >= 0]] = tt[tt >= 0]
        is_true = pos_of[anchors[a]] == c
    else:
        root = chain_root_depth(batch.dsg.prev)[0]
        keys = torch.unique(batch.cross_index[0] * batch.dsg.num_nodes + root[batch.cross_index[1]])
        t = batch.tsg
        s_t, o_t = relation_ends(t.node_type, t.edge_index, t.edge_type, t.num_nodes)
        first = scatter_max(torch.arange(rel.numel(), device=rel.device).float(), track, n_tr).long()
        s_d, o_d = subj[rel[first]][c], obj[rel[first]][c]

        def linked(tn: Tensor, dn: Tensor) -> Tensor:
            ok = (tn >= 0) & (dn >= 0)
            return ok & torch.isin(tn * batch.dsg.num_nodes + root[dn.clamp_min(0)], keys)

        st, ot = s_t[anchors[a]], o_t[anchors[a]]
        is_true = linked(st, s_d) & (((ot < 0) & (o_d < 0)) | ((ot >= 0) & linked(ot, o_d)))
    n_true = scatter_sum(is_true.float(), a, anchors.numel())
    scored = n_true == 1
    if not bool(scored.any()):
        return 0.0, 0.0, 0
    sim = F.cosine_similarity(h_t[anchors[a]].float(), feat[c], dim=-1)
    hit = _strict_top(sim, a, is_true, anchors.numel())
    return float(hit[scored].float().mean()), float((1.0 / n_a[scored].float()).mean()), int(scored.sum())


def alignment_diagnostics(batch: GraphBatch, h_t: Tensor, h_d: Tensor, anchors: Tensor,
                          event_truth: Tensor | None = None) -> dict[str, float]:
    """``align_obj``, ``align_obj_chance``, ``align_event``, ``align_event_chance`` (see the module docstring)."""
    with torch.no_grad():
        oa, oc, _ = object_alignment(batch, h_t.detach(), h_d.detach())
        ea, ec, _ = event_alignment(batch, h_t.detach(), h_d.detach(), anchors, event_truth)
    return {"align_obj": oa, "align_obj_chance": oc, "align_event": ea, "align_event_chance": ec}


def teacher_collapse(readouts: dict[str, Tensor], batch: GraphBatch) -> dict[str, float]:
    """Collapse statistics of the teacher's clip-level readouts: ``teacher_dsg_*`` (mean keyframe readout per
    clip, the video TRS target) and ``teacher_tsg_*`` (caption readout)."""
    with torch.no_grad():
        dsg = scatter_mean(readouts["dsg"].detach().float(), batch.dsg.frame_graph, batch.num_graphs)
        dc, dm = collapse_stats(dsg)
        tc, tm = collapse_stats(readouts["tsg"].detach().float())
    return {"teacher_dsg_cos": dc, "teacher_dsg_common": dm, "teacher_tsg_cos": tc, "teacher_tsg_common": tm}


def linear_probe(x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor, weight_decay: float = 1e-3,
                 iters: int = 200) -> float:
    """Test accuracy of a multinomial logistic regression on standardised ``x [N, d]`` with labels ``y [N]``."""
    mu, sd = x_train.mean(0, keepdim=True), x_train.std(0, keepdim=True).clamp_min(1e-6)
    xtr, xte = (x_train - mu) / sd, (x_test - mu) / sd
    n_cls = int(max(int(y_train.max()), int(y_test.max()))) + 1
    w = torch.zeros(xtr.shape[1], n_cls, requires_grad=True)
    b = torch.zeros(n_cls, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=iters, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(xtr @ w + b, y_train) + weight_decay * w.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        return float(((xte @ w + b).argmax(1) == y_test).float().mean())


__all__ = ["DIAG_KEYS", "alignment_diagnostics", "collapse_stats", "event_alignment", "linear_probe",
           "object_alignment", "predicate_tracks", "teacher_collapse"]
