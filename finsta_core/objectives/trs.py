"""TRS (Eq 41, design note B.5): distil Finsta's readouts into the host's instance-level outputs.

``L_TRS = λ^T dist(P_T H^T, sg(R^T)) + λ^D mean_t dist(P_D H^D_t, sg(R^D_k(t)))
+ λ^C mean_t dist(P_C H^C_t, sg(R^C_k(t)))``
with ``k(t)`` the keyframe nearest to host frame ``t`` (by time; by relative position without times),
``P`` the student-side projector (``FinstaConfig.trs_proj``: the literal reading is the identity at equal
widths, else a Linear), ``sg`` stop-gradient (Finsta is the teacher) and ``dist`` one of
(``FinstaConfig.trs_distance``):

* ``mse``: squared L2 averaged over dims; ``sum``: summed (Eq 41 literally). Both are minimised by
  predicting the teacher's mean when the teacher is mostly common mode (issue 10, A5: the host collapses).
* ``cos``: ``1 - cos``; ``cos_centred``: ``1 - cos`` after subtracting each side's batch mean (rows of the
  term), so the shared common mode carries no reward.
* ``rkd``: relational KD: mean squared difference of the row-by-row cosine matrices of the centred student
  and teacher (Park et al. 2019, distance-wise form on cosine similarities).
* ``crd``: contrastive distillation: InfoNCE of each student row against all teacher rows of the term
  (temperature ``tau_trs``); rows that share a teacher row (host frames of one keyframe) are positives.

``trs_video_level``: video / cross terms on per-frame outputs (``frame``), on their clip means (``clip``),
the average of both (``both``), on the within-clip deviations of both sides (``temporal``: each clip's
per-frame rows minus their mean over the clip's frames, so what a still frame shows, constant over the clip,
carries no reward; only what changes over time does), or the average of the clip and temporal terms
(``split``: the clip mean and the deviations from it distilled separately, so the temporal part is not
dwarfed by the appearance shared by a clip's frames). A host without an encoder drops that term. A host
cross-modal output with no frame axis (``[B, d]``) is matched to the mean of the sample's HSG readouts (TSG
frame 0 and keyframes 1..T).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from finsta_core.graphs.batch import GraphBatch, relation_ends
from finsta_core.graphs.scatter import scatter_mean
from finsta_core.graphs.types import NodeType
from finsta_core.interface import EncoderOutput, HostOutputs
from finsta_core.objectives.stats import collapse_stats


def make_projector(kind: str, width: int, d: int) -> nn.Module:
    """Student-side projector host width -> ``d``: ``paper`` (identity at equal widths), ``linear``, ``mlp``."""
    if kind == "paper":
        return nn.Identity() if width == d else nn.Linear(width, d)
    if kind == "linear":
        return nn.Linear(width, d)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(width, d), nn.GELU(), nn.Linear(d, d))
    raise ValueError(f"unknown TRS projector {kind!r}: choose paper, linear or mlp")


def distill(student: Tensor, teacher: Tensor, kind: str, key: Tensor | None = None, tau: float = 0.1) -> Tensor:
    """Distance of Eq 41 between ``student [N, d]`` and ``teacher [N, d]`` rows (see the module docstring).

    ``key [N]``: id of each row's teacher (rows with one key are positives of ``crd``); None = all distinct.
    """
    if kind in ("mse", "sum"):
        sq = (student - teacher).pow(2)  # ‖R - H‖² (Eq 41)
        return (sq.mean(-1) if kind == "mse" else sq.sum(-1)).mean()
    if kind == "cos":
        return (1 - F.cosine_similarity(student, teacher, dim=-1)).mean()
    n = student.shape[0]
    s_c = student - student.mean(0, keepdim=True)
    t_c = teacher - teacher.mean(0, keepdim=True)
    if kind == "cos_centred":
        if n < 2:
            return (1 - F.cosine_similarity(student, teacher, dim=-1)).mean()
        return (1 - F.cosine_similarity(s_c, t_c, dim=-1)).mean()
    if kind == "rkd":
        if n < 2:
            return student.sum() * 0.0
        sn, tn = F.normalize(s_c, dim=-1), F.normalize(t_c, dim=-1)
        return (sn @ sn.t() - tn @ tn.t()).pow(2).mean()
    if kind == "crd":
        logits = F.normalize(student, dim=-1) @ F.normalize(teacher, dim=-1).t() / tau
        k = torch.arange(n, device=student.device) if key is None else key
        pos = (k.unsqueeze(1) == k.unsqueeze(0)).float()
        logp = logits.log_softmax(1)
        return -((logp * pos).sum(1) / pos.sum(1)).mean()
    raise ValueError(f"unknown TRS distance {kind!r}")


def dynamic_mask(batch: GraphBatch) -> Tensor:
    """``[N_D]`` bool: DSG relation nodes whose label is the label of a *dynamic* (verb-headed,
    ``tsg.dynamic``) TSG predicate of the same sample, e.g. the DSG event node ``move left`` of a clip captioned
    "the red square moves left" (after lemmatisation both graphs carry the predicate label). Cached in
    ``batch.cache`` (the DSG and HSG rows of one step share it)."""
    if "dynamic_mask" in batch.cache:
        return batch.cache["dynamic_mask"]
    t, d = batch.tsg, batch.dsg
    dyn_t = ((t.node_type == NodeType.RELATION) & t.dynamic).tolist()
    wanted = {(g, lab) for lab, g, ok in zip(t.labels, t.graph.tolist(), dyn_t) if ok}
    rel = (d.node_type == NodeType.RELATION).tolist()
    mask = [r and (g, lab) in wanted for lab, g, r in zip(d.labels, d.graph.tolist(), rel)]
    batch.cache["dynamic_mask"] = torch.tensor(mask, dtype=torch.bool, device=d.node_type.device)
    return batch.cache["dynamic_mask"]


def dynamic_rows(batch: GraphBatch, h_d: Tensor) -> Tensor:
    """The ``dynamic`` teacher rows (``FinstaConfig.trs_dsg_rows``): per keyframe, the mean final state of
    the DSG nodes of :func:`dynamic_mask` (the DSG's instances of the caption's actions), 0 where the keyframe
    has none. ``h_d [N_D, d]`` states of the real DSG nodes (DSG encoder, or the HSG encoder's states of the
    same nodes for the cross term) -> ``[F, d]``.

    The readout of a keyframe mixes everything a still frame shows (objects, colours, layout) with the
    events; these rows keep only the nodes of the actions, the part of the DSG that carries *what moves, how*
    (issue 10: a target dominated by appearance is met without encoding motion).
    """
    idx = dynamic_mask(batch).nonzero().squeeze(1)
    return scatter_mean(h_d.index_select(0, idx), batch.dsg.frame.index_select(0, idx), batch.dsg.num_frames)


def dynamic_residual_rows(batch: GraphBatch, h_d: Tensor) -> Tensor:
    """``trs_dsg_rows="dynamic_residual"``: like :func:`dynamic_rows`, but each verb node's state minus the mean
    state of its participants (subject, and object when it has one), so that what message passing brought in
    from the actor (its shape, colour: what a still frame shows) is removed and the event remains.
    ``h_d [N_D, d]`` -> ``[F, d]``."""
    d = batch.dsg
    idx = dynamic_mask(batch).nonzero().squeeze(1)
    subj, obj = relation_ends(d.node_type, d.edge_index, d.edge_type, d.num_nodes)
    s, o = subj.index_select(0, idx), obj.index_select(0, idx)
    has_s, has_o = (s >= 0).unsqueeze(1).to(h_d.dtype), (o >= 0).unsqueeze(1).to(h_d.dtype)
    parts = h_d.index_select(0, s.clamp_min(0)) * has_s + h_d.index_select(0, o.clamp_min(0)) * has_o
    ends = parts / (has_s + has_o).clamp_min(1.0)
    return scatter_mean(h_d.index_select(0, idx) - ends, d.frame.index_select(0, idx), d.num_frames)


def dynamic_orth_rows(batch: GraphBatch, h_d: Tensor, rank: int = 16) -> Tensor:
    """``trs_dsg_rows="dynamic_orth"``: :func:`dynamic_rows` with the ``rank`` principal directions of the
    batch's DSG *object* states projected out, so what the objects look like (shape, colour, size: what a still
    frame shows) leaves the target and the event part remains. ``h_d [N_D, d]`` -> ``[F, d]``."""
    rows = dynamic_rows(batch, h_d)
    objs = h_d[batch.dsg.node_type == NodeType.OBJECT]
    if objs.shape[0] < 2 or rank < 1:
        return rows
    with torch.no_grad():
        _, _, vh = torch.linalg.svd(objs - objs.mean(0, keepdim=True), full_matrices=False)
        basis = vh[: min(rank, vh.shape[0])]  # [k, d] appearance subspace of this batch
    return rows - (rows @ basis.t()) @ basis


def teacher_rows(kind: str, batch: GraphBatch, h_d: Tensor, rank: int = 16) -> Tensor:
    """The per-keyframe TRS teacher rows of ``FinstaConfig.trs_dsg_rows`` other than ``readout``."""
    if kind == "dynamic":
        return dynamic_rows(batch, h_d)
    if kind == "dynamic_residual":
        return dynamic_residual_rows(batch, h_d)
    if kind == "dynamic_orth":
        return dynamic_orth_rows(batch, h_d, rank)
    raise ValueError(f"unknown trs_dsg_rows {kind!r}")


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


def _sample_teacher(name: str, frames: Tensor, readouts: dict[str, Tensor], batch: GraphBatch) -> Tensor:
    """Clip-level teacher ``[B, d]``: mean keyframe readout (cross: with the HSG text readout)."""
    b = batch.num_graphs
    teacher = scatter_mean(frames, batch.dsg.frame_graph, b)
    if name == "cross":
        cnt = batch.dsg.frame_graph.bincount(minlength=b).unsqueeze(1)
        teacher = (teacher * cnt + readouts["hsg_text"]) / (cnt + 1)
    return teacher


def trs_loss(host: HostOutputs, readouts: dict[str, Tensor], batch: GraphBatch, proj: nn.ModuleDict,
             lambdas: tuple[float, float, float], distance: str = "mse", detach_teacher: bool = True,
             video_level: str = "frame", tau: float = 0.1) -> tuple[Tensor, dict[str, float]]:
    """Eq 41 over the encoders the host has. ``readouts`` (the teacher): ``tsg [B, d]``, ``dsg [F, d]``,
    ``hsg_text [B, d]``, ``hsg [F, d]`` (detached unless ``detach_teacher=False``).

    Diagnostics: ``trs_<enc>`` per term, and the collapse statistics (mean pairwise cosine ``*_cos`` and
    common-mode share ``*_common``) of the host's outputs (``student_<enc>``) and of the teacher rows they
    are distilled toward (``teacher_<enc>``), measured over the batch's clips.
    """
    b = batch.num_graphs
    if detach_teacher:
        readouts = {k: v.detach() for k, v in readouts.items()}
    terms: dict[str, Tensor] = {}
    diag: dict[str, float] = {}
    for name, out in host.encoders().items():
        if out.pooled.shape[0] != b:
            raise ValueError(f"TRS: host {name} output has batch {out.pooled.shape[0]} but the scene-graph batch "
                             f"has {b} samples")
        r = proj[name](out.pooled)
        if name == "text":
            student, teacher = r.reshape(b, -1), readouts["tsg"]
            terms["text"] = distill(student, teacher, distance, None, tau)
        else:
            frames = readouts["dsg" if name == "video" else "hsg"]
            clip_t = _sample_teacher(name, frames, readouts, batch)
            if r.dim() == 2:  # no frame axis: sample-level teacher
                student, teacher = r, clip_t
                terms[name] = distill(r, clip_t, distance, None, tau)
            else:
                k = keyframe_for_host_frames(batch, out)
                student, teacher = r.mean(1), clip_t
                parts = []
                if video_level in ("frame", "both"):
                    parts.append(distill(r.reshape(-1, r.shape[-1]), frames[k].reshape(-1, frames.shape[-1]),
                                         distance, k.reshape(-1), tau))
                if video_level in ("clip", "both", "split"):
                    parts.append(distill(student, clip_t, distance, None, tau))
                if video_level in ("temporal", "split"):  # within-clip deviations: what changes over time
                    t_rows = frames[k]
                    parts.append(distill((r - r.mean(1, keepdim=True)).reshape(-1, r.shape[-1]),
                                         (t_rows - t_rows.mean(1, keepdim=True)).reshape(-1, frames.shape[-1]),
                                         distance, k.reshape(-1), tau))
                terms[name] = sum(parts) / len(parts)
        with torch.no_grad():
            for side, x in (("student", out.pooled.reshape(b, -1, out.pooled.shape[-1]).mean(1)),
                            ("teacher", teacher)):
                cos, common = collapse_stats(x.detach().float())
                diag[f"{side}_{name}_cos"], diag[f"{side}_{name}_common"] = cos, common
    lam = dict(zip(("text", "video", "cross"), lambdas))
    if not terms:
        return torch.zeros((), device=readouts["tsg"].device), diag
    loss = sum(lam[k] * v for k, v in terms.items())  # λ^T ... + λ^D ... + λ^C ... (Eq 41)
    return loss, {**{f"trs_{k}": float(v.detach()) for k, v in terms.items()}, **diag}
