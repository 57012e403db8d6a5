"""Region and track structures of OSC / PTC (Eqs 37-40, design note B.4), all as flat index lists.

* n-hop regions: ball of radius ``n`` (undirected, centre included) over the intra-graph edges; a DSG region
  stays inside its keyframe because DSG edges do. Pooled by scatter mean.
* DSG predicate tracks: relation node ``r`` at keyframe ``t`` continues relation ``r'`` at ``t-1`` when its
  subject and object are the temporal successors of the subject and object of ``r'`` (labels may change).
* Windows ``t..t+m``: masked means of a track's per-keyframe regions from prefix sums in track order.
"""

from __future__ import annotations

import torch
from torch import Tensor

from finsta_core.graphs.batch import chain_root_depth
from finsta_core.graphs.scatter import khop_pairs, scatter_mean


def pool_regions(h: Tensor, centers: Tensor, edge_index: Tensor, hops: int, cache: dict | None = None,
                 key: object = None) -> Tensor:
    """Mean of ``h [N, d]`` over the ``hops``-hop ball of each centre -> ``[C, d]``."""
    if cache is not None and key in cache:
        ci, mem = cache[key]
    else:
        ci, mem = khop_pairs(centers, edge_index, h.shape[0], hops)
        if cache is not None:
            cache[key] = (ci, mem)
    return scatter_mean(h.index_select(0, mem), ci, centers.numel())


def relation_tracks(rel: Tensor, subj: Tensor, obj: Tensor, prev: Tensor, n: int) -> Tensor:
    """Predecessor of each relation node along predicate tracks.

    Args:
        rel: ``[R]`` relation node ids with a subject and an object. subj / obj: ``[n]`` ends (-1 none).
        prev: ``[n]`` temporal predecessor of object nodes.
    Returns:
        ``[R]`` position (into ``rel``) of the predecessor relation, or -1; one-to-one (chains).
    """
    if rel.numel() == 0:
        return rel.new_full((0,), -1)
    s, o = subj[rel], obj[rel]
    ps, po = prev[s], prev[o]
    order = torch.argsort(s * n + o)
    sk = (s * n + o)[order]
    want = ps * n + po
    pos = torch.searchsorted(sk, want).clamp_max(sk.numel() - 1)
    hit = (ps >= 0) & (po >= 0) & (sk[pos] == want)
    out = torch.where(hit, order[pos], torch.full_like(pos, -1))
    # keep one successor per predecessor (duplicate (subject, object) relations): first claim wins
    claimed = out[out >= 0]
    if claimed.numel():
        idx = (out >= 0).nonzero().flatten()
        first = torch.ones_like(claimed, dtype=torch.bool)
        srt, perm = torch.sort(claimed, stable=True)
        dup = torch.zeros_like(first)
        dup[1:] = srt[1:] == srt[:-1]
        first[perm] = ~dup
        out[idx[~first]] = -1
    return out


def track_windows(feat: Tensor, prev: Tensor, windows: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Window features over chains.

    Args:
        feat: ``[R, d]`` per-node features; prev: ``[R]`` chain predecessor position or -1.
        windows: window lengths ``m`` (a window covers ``m + 1`` consecutive keyframes).
    Returns:
        ``win [W, d]`` mean features and ``start [W]`` position of each window's first node.
    """
    r = feat.shape[0]
    if r == 0:
        return feat.new_zeros(0, feat.shape[1]), torch.zeros(0, dtype=torch.long, device=feat.device)
    root, depth = chain_root_depth(prev)
    order = torch.argsort(root * (int(depth.max()) + 1) + depth)
    cs = torch.cat([feat.new_zeros(1, feat.shape[1]), torch.cumsum(feat.index_select(0, order), 0)])
    root_s = root[order]
    wins, starts = [], []
    ar = torch.arange(r, device=feat.device)
    for m in windows:
        end = ar + m
        ok = end < r
        ok[ok.clone()] = root_s[end[ok]] == root_s[ar[ok]]
        s = ar[ok]
        wins.append((cs[s + m + 1] - cs[s]) / (m + 1))
        starts.append(order[s])
    return torch.cat(wins), torch.cat(starts)
