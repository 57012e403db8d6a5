"""OSC (Eqs 37-38) and PTC (Eqs 39-40) as InfoNCE on flat pair lists (design note B.4).

Candidates of an anchor (a TSG region) are every candidate region of the same video plus up to
``cross_negatives`` sampled candidates of other videos (the denominator ``Z`` that the paper leaves
undefined). Positives are same-video candidates selected by any of the configured modes: ``threshold``
(``sg(S) > rho``), ``top1`` (arg-max of ``sg(S)`` over the same video; guarantees a positive) and
``cross`` (the candidate lies on a DSG track linked to the anchor by cross-modal coreference edges, Eq 7).
``supcon`` loss: mean over positives of ``-log softmax(S / tau)``; ``milnce``: ``-log(sum_P exp / sum exp)``.
Log-sum-exp by scatter over the anchor id: no dense batch x batch matrix.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from finsta_core.graphs.scatter import group_pairs, scatter_logsumexp, scatter_max, scatter_sum


def candidate_pairs(a_graph: Tensor, c_graph: Tensor, num_graphs: int, negatives: int,
                    generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Flat anchor-candidate pairs: all same-video pairs plus sampled other-video pairs.

    Returns:
        ``pa [P]`` anchor position, ``pc [P]`` candidate position, ``same [P]`` bool.
    """
    qi, mi = group_pairs(a_graph, c_graph, num_graphs)
    a, c, dev = a_graph.numel(), c_graph.numel(), a_graph.device
    if negatives == 0 or a == 0 or c == 0 or num_graphs < 2:
        return qi, mi, torch.ones_like(qi, dtype=torch.bool)
    if negatives < 0:
        ai, ci = group_pairs(torch.zeros_like(a_graph), torch.zeros_like(c_graph), 1)
    else:
        ai = torch.arange(a, device=dev).repeat_interleave(negatives)
        ci = torch.randint(c, (ai.numel(),), device=dev, generator=generator)
        key = torch.unique(ai * c + ci)
        ai, ci = key // c, key % c
    other = c_graph[ci] != a_graph[ai]
    ai, ci = ai[other], ci[other]
    same = torch.cat([torch.ones_like(qi, dtype=torch.bool), torch.zeros_like(ai, dtype=torch.bool)])
    return torch.cat([qi, ai]), torch.cat([mi, ci]), same


def info_nce(anchor: Tensor, cand: Tensor, pa: Tensor, pc: Tensor, same: Tensor, tau: float, rho: float,
             positives: tuple[str, ...], form: str = "supcon",
             cross_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
             cand_key: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
    """Contrastive loss of Eq 38 / 40 over a pair list.

    Args:
        anchor: ``[A, d]`` anchor regions; cand: ``[C, d]`` candidate regions.
        pa, pc, same: pairs from :func:`candidate_pairs`.
        cross_fn: ``(pa, pc) -> [P] bool`` cross-modal-edge positives (None: no such links).
        cand_key: ``[C]`` region hash (:func:`~finsta_core.objectives.regions.region_keys`); given, a
            non-positive candidate whose region equals one of the anchor's positives is no negative.
    Returns:
        scalar loss (mean over anchors with at least one positive) and diagnostics.
    """
    n_a = anchor.shape[0]
    if pa.numel() == 0:
        return anchor.sum() * 0.0 + cand.sum() * 0.0, {"anchors": float(n_a), "anchors_with_pos": 0.0}
    # S = cos(h̄^T, h̄^D) (Eq 37 / Eq 39)
    sim = (F.normalize(anchor, dim=-1).index_select(0, pa) * F.normalize(cand, dim=-1).index_select(0, pc)).sum(-1)
    s_d = sim.detach()
    neg_inf = torch.finfo(s_d.dtype).min
    top = scatter_max(torch.where(same, s_d, torch.full_like(s_d, neg_inf)), pa, n_a, fill=neg_inf)
    is_top = same & (s_d >= top.index_select(0, pa))
    cross = cross_fn(pa, pc) & same if cross_fn is not None else torch.zeros_like(same)
    pos = torch.zeros_like(same)
    if "threshold" in positives:
        pos |= same & (s_d > rho)
    if "top1" in positives:
        pos |= is_top
    if "cross" in positives:
        pos |= cross
    if cand_key is not None:
        pair_key = cand_key.index_select(0, pc) * 1000003 + pa
        dup = ~pos & torch.isin(pair_key, pair_key[pos])
        if bool(dup.any()):
            keep = ~dup
            pa, pc, same, sim, s_d, pos, cross = pa[keep], pc[keep], same[keep], sim[keep], s_d[keep], pos[keep], \
                cross[keep]
    logits = sim / tau  # S / τ (Eq 38 / Eq 40)
    lse = scatter_logsumexp(logits, pa, n_a)
    npos = scatter_sum(pos.float(), pa, n_a)
    valid = npos > 0
    if not bool(valid.any()):
        loss = sim.sum() * 0.0
    elif form == "supcon":
        # -log exp(S_j*/τ)/Z, supcon form (Eq 38 / 40)
        per = scatter_sum((lse.index_select(0, pa) - logits) * pos, pa, n_a) / npos.clamp_min(1)
        loss = per[valid].mean()
    else:
        lse_pos = scatter_logsumexp(logits[pos], pa[pos], n_a)
        loss = (lse - lse_pos)[valid].mean()  # milnce form of Eq 38 / 40
    with torch.no_grad():
        diag = {"anchors": float(n_a), "anchors_with_pos": float(valid.sum()),
                "pos_per_anchor": float(npos[valid].mean()) if bool(valid.any()) else 0.0,
                "cands_per_anchor": float(pa.numel()) / max(n_a, 1),
                "sim_pos": float(s_d[pos].mean()) if bool(pos.any()) else 0.0,
                "sim_neg": float(s_d[~pos].mean()) if bool((~pos).any()) else 0.0}
    return loss, diag


def linked_fn(pairs_key: Tensor, n_track: int) -> Callable[[Tensor, Tensor], Tensor]:
    """Membership test for ``(TSG node, DSG track root)`` keys ``tsg * n_track + root``."""
    keys = torch.unique(pairs_key)

    def is_linked(tsg_node: Tensor, dsg_root: Tensor) -> Tensor:
        ok = (tsg_node >= 0) & (dsg_root >= 0)
        return ok & torch.isin(tsg_node * n_track + dsg_root, keys)

    return is_linked


def symmetric_nce(a: Tensor, b: Tensor, tau: float) -> Tensor:
    """Symmetric InfoNCE between matched rows of ``a [B, d]`` and ``b [B, d]`` (row i of each is a pair; the
    other rows are negatives). Used by ``FinstaConfig.readout_align`` on graph readouts; 0 for ``B < 2``."""
    if a.shape[0] < 2:
        return (a.sum() + b.sum()) * 0.0
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).t() / tau
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
