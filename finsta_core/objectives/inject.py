"""Host injection (sec 5.2, design note B.5): pool the host's first-layer token states per scene-graph node.

* TSG nodes: mean of the tokens whose character span overlaps the node's span (``TokenStates.char_spans``).
* DSG object nodes: mean of the patch tokens whose cell centre lies inside the box, at the host frame nearest
  to the keyframe (by ``EncoderOutput.frame_times`` when given, else by relative position in the clip);
  the cell containing the box centre when the box covers no cell centre.
Both return ``(pooled [N, d_host], has [N] bool)``; everything is a flat (node, token) pair list, O(pairs d).
"""

from __future__ import annotations

import torch
from torch import Tensor

from finsta_core.graphs.scatter import scatter_count, scatter_mean
from finsta_core.interface import TokenStates


def pool_text(tok: TokenStates, node_graph: Tensor, spans: Tensor) -> tuple[Tensor, Tensor]:
    """Per-node mean of the text tokens overlapping ``spans [N, 2]`` of sample ``node_graph [N]``."""
    n, d = node_graph.numel(), tok.states.shape[-1]
    if tok.char_spans is None or n == 0:
        return tok.states.new_zeros(n, d), torch.zeros(n, dtype=torch.bool, device=node_graph.device)
    cs = tok.char_spans.to(node_graph.device)
    valid_tok = tok.mask.to(cs.device) & (cs[..., 0] >= 0) & (cs[..., 1] > cs[..., 0])  # [B, L]
    ts, te = cs[..., 0][node_graph], cs[..., 1][node_graph]  # [N, L]
    ns, ne = spans[:, :1], spans[:, 1:]
    hit = valid_tok[node_graph] & (ns >= 0) & (ts < ne) & (te > ns)
    node, t = hit.nonzero(as_tuple=True)
    flat = tok.states.reshape(-1, d)
    rows = node_graph[node] * tok.states.shape[1] + t
    pooled = scatter_mean(flat.index_select(0, rows), node, n)
    return pooled, scatter_count(node, n) > 0


def nearest_host_frame(graph: Tensor, time: Tensor, local: Tensor, n_key: Tensor, t_host: int,
                       frame_times: Tensor | None) -> Tensor:
    """Host frame index ``[N]`` nearest to each keyframe (time ``[N]`` s, keyframe ``local [N]`` of ``n_key [N]``)."""
    if frame_times is not None:
        ft = frame_times.to(time.device)[graph]  # [N, T]
        return (ft - time.unsqueeze(1)).abs().argmin(1)
    rel = local.float() / (n_key - 1).clamp_min(1).float()
    return (rel * (t_host - 1)).round().long().clamp(0, t_host - 1)


def pool_patches(tok: TokenStates, graph: Tensor, boxes: Tensor, frame_size: Tensor, host_frame: Tensor,
                 t_host: int) -> tuple[Tensor, Tensor]:
    """Per-node mean of the patch tokens inside each box.

    Args:
        tok: token states with ``frame_index``, ``patch_rc`` and ``grid``. graph: ``[N]`` sample.
        boxes: ``[N, 4]`` xyxy pixels. frame_size: ``[N, 2]`` (w, h). host_frame: ``[N]`` host frame.
    """
    n, d = graph.numel(), tok.states.shape[-1]
    dev = graph.device
    if tok.frame_index is None or tok.patch_rc is None or tok.grid is None or n == 0:
        return tok.states.new_zeros(n, d), torch.zeros(n, dtype=torch.bool, device=dev)
    rows, cols = tok.grid
    b, length = tok.mask.shape
    fi, rc = tok.frame_index.to(dev), tok.patch_rc.to(dev)
    ok = tok.mask.to(dev) & (fi >= 0) & (fi < t_host) & (rc[..., 0] >= 0) & (rc[..., 1] >= 0)
    ok &= (rc[..., 0] < rows) & (rc[..., 1] < cols)
    cell = ((torch.arange(b, device=dev).unsqueeze(1) * t_host + fi) * rows + rc[..., 0]) * cols + rc[..., 1]
    lut = torch.full((b * t_host * rows * cols,), -1, dtype=torch.long, device=dev)
    lut[cell[ok]] = (torch.arange(b, device=dev).unsqueeze(1) * length + torch.arange(length, device=dev))[ok]
    nb = boxes / frame_size.repeat(1, 2)
    c0 = torch.ceil(nb[:, 0] * cols - 0.5).long().clamp(0, cols - 1)
    c1 = torch.floor(nb[:, 2] * cols - 0.5).long().clamp(0, cols - 1)
    r0 = torch.ceil(nb[:, 1] * rows - 0.5).long().clamp(0, rows - 1)
    r1 = torch.floor(nb[:, 3] * rows - 0.5).long().clamp(0, rows - 1)
    cc = (((nb[:, 0] + nb[:, 2]) / 2) * cols).floor().long().clamp(0, cols - 1)
    rr = (((nb[:, 1] + nb[:, 3]) / 2) * rows).floor().long().clamp(0, rows - 1)
    empty_c, empty_r = c1 < c0, r1 < r0
    c0, c1 = torch.where(empty_c, cc, c0), torch.where(empty_c, cc, c1)
    r0, r1 = torch.where(empty_r, rr, r0), torch.where(empty_r, rr, r1)
    nc = c1 - c0 + 1
    cnt = (r1 - r0 + 1) * nc
    node = torch.repeat_interleave(torch.arange(n, device=dev), cnt)
    off = torch.arange(node.numel(), device=dev) - torch.repeat_interleave(torch.cumsum(cnt, 0) - cnt, cnt)
    r = r0[node] + torch.div(off, nc[node], rounding_mode="floor")
    c = c0[node] + off % nc[node]
    tokid = lut[((graph[node] * t_host + host_frame[node]) * rows + r) * cols + c]
    keep = tokid >= 0
    node, tokid = node[keep], tokid[keep]
    pooled = scatter_mean(tok.states.reshape(-1, d).index_select(0, tokid), node, n)
    return pooled, scatter_count(node, n) > 0
