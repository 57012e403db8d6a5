"""Temporal coreference edges of a DSG (paper Eq 1) and track utilities.

Eq 1: ``a^D(v_i^{t-1}, v_j^t) = IoU(b_i, b_j | c_i = c_j)``; an edge when ``a^D > gamma^D`` (0.6). We make
the matching one-to-one (design note B.8 / C.2) so that tracks are chains: greedy by descending IoU, computed
as iterated mutual-best matching (identical to the greedy order for distinct IoUs), all tensor ops.
"""

from __future__ import annotations

import torch
from torch import Tensor

GAMMA_D = 0.6


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """``[N, 4]`` x ``[M, 4]`` xyxy boxes -> ``[N, M]`` IoU."""
    area_a = (a[:, 2] - a[:, 0]).clamp_min(0) * (a[:, 3] - a[:, 1]).clamp_min(0)
    area_b = (b[:, 2] - b[:, 0]).clamp_min(0) * (b[:, 3] - b[:, 1]).clamp_min(0)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp_min(0).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp_min(1e-9)


def mutual_best_matching(score: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """One-to-one greedy matching on a ``[N, M]`` score matrix, keeping pairs with score > ``threshold``.

    Returns ``(rows, cols)`` long tensors of matched pairs.
    """
    s = torch.where(score > threshold, score, torch.full_like(score, -1.0))
    rows, cols = [], []
    while s.numel() and bool((s > -1).any()):
        best_c = s.argmax(1)
        best_r = s.argmax(0)
        r = torch.arange(s.shape[0])
        mutual = (best_r[best_c] == r) & (s[r, best_c] > -1)
        mr, mc = r[mutual], best_c[mutual]
        rows.append(mr)
        cols.append(mc)
        s[mr, :] = -1.0
        s[:, mc] = -1.0
    if not rows:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    return torch.cat(rows), torch.cat(cols)


def temporal_edges(label_ids: Tensor, frame: Tensor, boxes: Tensor, is_object: Tensor,
                   gamma: float = GAMMA_D) -> tuple[Tensor, dict[str, float]]:
    """Temporal coreference edges (Eq 1) between consecutive keyframes.

    Args:
        label_ids: ``[N]`` long class id per node (equal ids = equal labels).
        frame: ``[N]`` long keyframe index.
        boxes: ``[N, 4]`` xyxy.
        is_object: ``[N]`` bool; only object nodes are tracked.
        gamma: IoU threshold ``gamma^D``.
    Returns:
        ``temporal_index [2, E_t]`` (node in keyframe t-1 -> node in t) and stats: ``continuation_rate`` =
        share of object nodes in keyframes 1..T-1 that continue a track from the previous keyframe.
    """
    obj = is_object.nonzero().flatten()
    if obj.numel() == 0:
        return torch.zeros(2, 0, dtype=torch.long), {"continuation_rate": 0.0, "temporal_edges": 0.0}
    f = frame[obj]
    t_max = int(f.max())
    # one IoU matrix per consecutive pair; loops over keyframes (<= 50), never over nodes
    src, dst = [], []
    for t in range(1, t_max + 1):
        a, b = obj[f == t - 1], obj[f == t]
        if a.numel() == 0 or b.numel() == 0:
            continue
        iou = box_iou(boxes[a], boxes[b])
        # a^D = IoU(b_i, b_j | c_i = c_j) (Eq 1)
        iou = torch.where(label_ids[a][:, None] == label_ids[b][None, :], iou, torch.zeros_like(iou))
        r, c = mutual_best_matching(iou, gamma)  # a^D > gamma^D, one-to-one (Eq 1)
        src.append(a[r])
        dst.append(b[c])
    ti = torch.stack([torch.cat(src), torch.cat(dst)]) if src else torch.zeros(2, 0, dtype=torch.long)
    later = int((f > 0).sum())
    return ti, {"continuation_rate": ti.shape[1] / later if later else 0.0, "temporal_edges": float(ti.shape[1])}


def track_roots(num_nodes: int, temporal_index: Tensor) -> Tensor:
    """``[N]`` long: id of the first node of each node's track (pointer doubling over the chain)."""
    root = torch.arange(num_nodes)
    if temporal_index.numel() == 0:
        return root
    prev = torch.arange(num_nodes)
    prev[temporal_index[1]] = temporal_index[0]
    root = prev.clone()
    while True:
        nxt = root[root]
        if torch.equal(nxt, root):
            return root
        root = nxt
