"""TRS (Eq 41, design note B.5): distil Finsta's readouts into the host's instance-level outputs.

``L_TRS = λ^T dist(P_T R^T, sg(H^T)) + λ^D mean_t dist(P_D R^D_t, sg(H^D_k(t)))
+ λ^C mean_t dist(P_C R^C_t, sg(H^C_k(t)))``
with ``k(t)`` the keyframe nearest to host frame ``t`` (by time; by relative position without times),
``P`` a Linear where the host width differs from Finsta's, ``sg`` stop-gradient (Finsta is the teacher) and
``dist`` the squared L2 averaged over dims (``mse``) or summed (``sum``, Eq 41 literally). A host without an
encoder drops that term. A host cross-modal output with no frame axis (``[B, d]``) is matched to the mean of
the sample's HSG readouts (TSG frame 0 and keyframes 1..T).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from finsta_core.graphs.batch import GraphBatch
from finsta_core.graphs.scatter import scatter_mean
from finsta_core.interface import EncoderOutput, HostOutputs


def _dist(a: Tensor, b: Tensor, kind: str) -> Tensor:
    sq = (a - b).pow(2)
    return sq.mean(-1) if kind == "mse" else sq.sum(-1)


def keyframe_for_host_frames(batch: GraphBatch, out: EncoderOutput) -> Tensor:
    """Global keyframe id ``[B, T_host]`` nearest to each host frame."""
    d = batch.dsg
    b, t_host = out.pooled.shape[0], out.pooled.shape[1]
    dev = d.frame_time.device
    n_key = torch.bincount(d.frame_graph, minlength=b)
    first = torch.cumsum(n_key, 0) - n_key
    kmax = int(n_key.max())
    pad = torch.full((b, kmax), float("inf"), device=dev)
    pad[d.frame_graph, d.frame_local] = d.frame_time
    if out.frame_times is not None:
        ft = out.frame_times.to(dev).float()
        local = (ft.unsqueeze(2) - pad.unsqueeze(1)).abs().argmin(2)
    else:
        rel = torch.arange(t_host, device=dev).float() / max(t_host - 1, 1)
        local = (rel.unsqueeze(0) * (n_key - 1).unsqueeze(1).float()).round().long()
    return first.unsqueeze(1) + local


def trs_loss(host: HostOutputs, readouts: dict[str, Tensor], batch: GraphBatch, proj: nn.ModuleDict,
             lambdas: tuple[float, float, float], distance: str = "mse", detach_teacher: bool = True
             ) -> tuple[Tensor, dict[str, float]]:
    """Eq 41 over the encoders the host has. ``readouts``: ``tsg [B, d]``, ``dsg [F, d]``, ``hsg_text [B, d]``,
    ``hsg [F, d]`` (Finsta side; detached unless ``detach_teacher=False``)."""
    b = batch.num_graphs
    if detach_teacher:
        readouts = {k: v.detach() for k, v in readouts.items()}
    terms: dict[str, Tensor] = {}
    for name, out in host.encoders().items():
        if out.pooled.shape[0] != b:
            raise ValueError(f"TRS: host {name} output has batch {out.pooled.shape[0]} but the scene-graph batch "
                             f"has {b} samples")
        r = proj[name](out.pooled)
        if name == "text":
            terms["text"] = _dist(r.reshape(b, -1), readouts["tsg"], distance).mean()
            continue
        frames = readouts["dsg" if name == "video" else "hsg"]
        if r.dim() == 2:  # no frame axis: sample-level teacher
            teacher = scatter_mean(frames, batch.dsg.frame_graph, b)
            if name == "cross":
                teacher = (teacher * batch.dsg.frame_graph.bincount(minlength=b).unsqueeze(1)
                           + readouts["hsg_text"]) / (batch.dsg.frame_graph.bincount(minlength=b) + 1
                                                                ).unsqueeze(1)
            terms[name] = _dist(r, teacher, distance).mean()
        else:
            k = keyframe_for_host_frames(batch, out)
            terms[name] = _dist(r, frames[k], distance).mean()
    lam = dict(zip(("text", "video", "cross"), lambdas))
    if not terms:
        return torch.zeros((), device=readouts["tsg"].device), {}
    loss = sum(lam[k] * v for k, v in terms.items())
    return loss, {f"trs_{k}": float(v.detach()) for k, v in terms.items()}
