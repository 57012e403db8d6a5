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


def region_pairs(centers: Tensor, edge_index: Tensor, num_nodes: int, hops: int, hub: Tensor | None = None,
                 cache: dict | None = None, key: object = None) -> tuple[Tensor, Tensor]:
    """``(ci, member)`` of the regions (``hub`` given: hub-free balls), cached under ``key``."""
    if cache is not None and key in cache:
        return cache[key]
    out = khop_pairs(centers, edge_index, num_nodes, hops, hub)
    if cache is not None:
        cache[key] = out
    return out


def pool_regions(h: Tensor, centers: Tensor, edge_index: Tensor, hops: int, cache: dict | None = None,
                 key: object = None, hub: Tensor | None = None) -> Tensor:
    """Mean of ``h [N, d]`` over the ``hops``-hop ball (hub-free with ``hub [N]``) of each centre -> ``[C, d]``."""
    ci, mem = region_pairs(centers, edge_index, h.shape[0], hops, hub, cache, key)
    return scatter_mean(h.index_select(0, mem), ci, centers.numel())  # region pooling h̄ (Eq 37) / ĥ (Eq 39)


_HASH_MUL = 0x9E3779B97F4A7C15 - (1 << 64)  # golden-ratio multiplier as a signed int64 (wrap-around hashing)


def region_keys(ci: Tensor, mem: Tensor, n_centers: int) -> Tensor:
    """A hash ``[C]`` of each region's member set: equal for two centres whose regions hold the same nodes
    (the duplicates that OSC would otherwise use as negatives of each other)."""
    code = (mem + 1) * _HASH_MUL
    code = code ^ (code >> 29)
    out = torch.zeros(n_centers, dtype=torch.long, device=mem.device)
    return out.index_add_(0, ci, code) + torch.bincount(ci, minlength=n_centers) * 1000003


def relation_tracks(rel: Tensor, subj: Tensor, obj: Tensor, prev: Tensor, n: int) -> Tensor:
    """Predecessor of each relation node along predicate tracks.

    Args:
        rel: ``[R]`` relation node ids with a subject (and an object, or none: subject-only predicates
            continue along their subject's track). subj / obj: ``[n]`` ends (-1 none).
        prev: ``[n]`` temporal predecessor of object nodes.
    Returns:
        ``[R]`` position (into ``rel``) of the predecessor relation, or -1; one-to-one (chains).
    """
    if rel.numel() == 0:
        return rel.new_full((0,), -1)
    s, o = subj[rel], obj[rel]
    has_o = o >= 0
    ps = prev[s]
    po = torch.where(has_o, prev[o.clamp_min(0)], torch.full_like(o, -1))
    m = n + 1  # key (subject, object + 1): subject-only relations (object -1) get their own keys
    order = torch.argsort(s * m + o + 1)
    sk = (s * m + o + 1)[order]
    want = ps * m + po + 1
    pos = torch.searchsorted(sk, want).clamp_max(sk.numel() - 1)
    hit = (ps >= 0) & (~has_o | (po >= 0)) & (sk[pos] == want)
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


def track_windows(feat: Tensor, prev: Tensor, windows: tuple[int, ...], with_length: bool = False
                  ) -> tuple[Tensor, ...]:
    """Window features over chains.

    Args:
        feat: ``[R, d]`` per-node features; prev: ``[R]`` chain predecessor position or -1.
        windows: window lengths ``m`` (a window covers ``m + 1`` consecutive keyframes).
    Returns:
        ``win [W, d]`` mean features and ``start [W]`` position of each window's first node (and, with
        ``with_length``, ``m [W]`` the window length of each).
    """
    r = feat.shape[0]
    if r == 0:
        empty = torch.zeros(0, dtype=torch.long, device=feat.device)
        return (feat.new_zeros(0, feat.shape[1]), empty, empty) if with_length else (feat.new_zeros(0, feat.shape[1]),
                                                                                      empty)
    root, depth = chain_root_depth(prev)
    order = torch.argsort(root * (int(depth.max()) + 1) + depth)
    cs = torch.cat([feat.new_zeros(1, feat.shape[1]), torch.cumsum(feat.index_select(0, order), 0)])
    root_s = root[order]
    wins, starts, lengths = [], [], []
    ar = torch.arange(r, device=feat.device)
    for m in windows:
        end = ar + m
        ok = end < r
        ok[ok.clone()] = root_s[end[ok]] == root_s[ar[ok]]
        s = ar[ok]
        wins.append((cs[s + m + 1] - cs[s]) / (m + 1))  # ĥ^D_{t:t+m} (Eq 39)
        starts.append(order[s])
        lengths.append(torch.full_like(s, m))
    if with_length:
        return torch.cat(wins), torch.cat(starts), torch.cat(lengths)
    return torch.cat(wins), torch.cat(starts)
