"""The Finsta module (paper sec 4-5): TSG GTrm, DSG R-GTrm + STGD, HSG R-GTrm + STGD, OSC / PTC / TRS.

``Finsta(cfg, host_widths)``; ``forward(graphs, host, stage, step, task_family) -> FinstaOutput``.

``host_widths`` maps each host encoder present (subset of ``text``, ``video``, ``cross``) to its width: an
``int`` when the first-layer token width (injection, sec 5.2) equals the pooled width (TRS, Eq 41), else a
pair ``(first_layer_width, pooled_width)`` (or a dict with those two keys). A Linear maps a width that
differs from ``cfg.d_model``; equal widths use the identity, as in the paper (``H = X + R``).

Repairs of issue 10 (switches of :class:`FinstaConfig`, defaults measured in ``docs/paper-notes.md``):
``inject_mode="norm_gated"`` (``X + g LayerNorm(P R)``), ``input_scale="unit"``, ``readout_align`` (a trained
readout and HSG), ``trs_proj`` / ``trs_distance`` / ``trs_video_level`` (the transfer).

External teacher hook (contract C4): ``FinstaConfig.trs_teacher = "package.module:function"`` or
:meth:`Finsta.set_teacher`. The function is called in stage 2 as ``fn(batch, readouts, cfg)`` with the
prepared :class:`GraphBatch` and Finsta's readouts (``tsg [B, d]``, ``dsg [F, d]``, ``hsg_text [B, d]``,
``hsg [F, d]``) and returns a dict with the same keys and shapes (any key left out keeps Finsta's readout);
TRS then distils those rows through the same projector and distance into the same host outputs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from finsta_core.config import FinstaConfig
from finsta_core.diagnostics import alignment_diagnostics, teacher_collapse
from finsta_core.graphs.batch import GraphBatch
from finsta_core.graphs.scatter import scatter_mean, set_scatter_backend
from finsta_core.graphs.types import NUM_EDGE_TYPES, EdgeType, NodeType
from finsta_core.interface import HostOutputs
from finsta_core.nn.embed import HashedLabelEmbedding, time_embedding
from finsta_core.nn.encoder import GraphEncoder
from finsta_core.nn.graph import CLS_NODE, NUM_ENC_EDGE_TYPES, NUM_ENC_NODE_TYPES, SELF_EDGE, LayerGraph, build_graphs
from finsta_core.objectives.alignment import osc_loss, ptc_anchors, ptc_loss
from finsta_core.objectives.contrast import symmetric_nce
from finsta_core.objectives.inject import nearest_host_frame, pool_patches, pool_text
from finsta_core.objectives.trs import make_projector, teacher_rows, trs_loss

ENCODERS = ("text", "video", "cross")


@dataclass
class FinstaOutput:
    """Losses (``osc``, ``ptc`` always; ``trs`` in stage 2 with a host), readouts (``tsg [B, d]``,
    ``dsg [F, d]`` per keyframe, ``hsg_text [B, d]`` HSG frame 0, ``hsg [F, d]`` HSG keyframes), final node
    states of the real nodes (``tsg``, ``dsg``, ``hsg``) and float diagnostics."""

    losses: dict[str, Tensor]
    readouts: dict[str, Tensor]
    nodes: dict[str, Tensor] = field(default_factory=dict)
    diagnostics: dict[str, float] = field(default_factory=dict)


def parse_host_widths(host_widths: Mapping[str, Any] | None) -> dict[str, tuple[int, int]]:
    """``{enc: int | (first, pooled) | {"first": .., "pooled": ..}}`` -> ``{enc: (first, pooled)}``."""
    out: dict[str, tuple[int, int]] = {}
    for k, v in (host_widths or {}).items():
        if k not in ENCODERS:
            raise ValueError(f"host_widths key {k!r} is not one of {ENCODERS}")
        if isinstance(v, int):
            out[k] = (v, v)
        elif isinstance(v, Mapping):
            out[k] = (int(v["first"]), int(v["pooled"]))
        else:
            a, b = v
            out[k] = (int(a), int(b))
    return out


def _lin(w: int, d: int) -> nn.Module:
    return nn.Identity() if w == d else nn.Linear(w, d)


TeacherFn = Callable[[GraphBatch, dict[str, Tensor], FinstaConfig], dict[str, Tensor]]


def resolve_teacher(spec: str) -> TeacherFn:
    """``"package.module:function"`` -> the external teacher function (see the module docstring)."""
    mod, _, name = spec.partition(":")
    if not mod or not name:
        raise ValueError(f"FinstaConfig.trs_teacher={spec!r}: expected 'package.module:function'")
    fn = getattr(importlib.import_module(mod), name, None)
    if not callable(fn):
        raise ValueError(f"FinstaConfig.trs_teacher={spec!r}: {mod} has no callable {name!r}")
    return fn


class Finsta(nn.Module):
    """Scene-graph encoders and alignment objectives (Eqs 11-42); see the module docstring."""

    def __init__(self, cfg: FinstaConfig, host_widths: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        set_scatter_backend(cfg.scatter_backend)
        d = cfg.d_model
        self.host_widths = parse_host_widths(host_widths)
        unit = cfg.input_scale == "unit"
        # shared word space for TSG and DSG labels; "unit": rows on the N(0, 1) scale of the type embeddings
        self.label = HashedLabelEmbedding(cfg.vocab_size, d, std=1.0 if unit else None)
        self.type_t = nn.Embedding(NUM_ENC_NODE_TYPES, d)
        self.type_d = nn.Embedding(NUM_ENC_NODE_TYPES, d)
        # "paper": Linear([f, label, time]); "unit": label + Linear([f, time]) (the label keeps its scale)
        self.dsg_in = nn.Linear(cfg.feature_dim + (0 if unit else d) + cfg.time_dim, d)
        self.edge_t = nn.Embedding(NUM_ENC_EDGE_TYPES, d)
        self.edge_d = nn.Embedding(NUM_ENC_EDGE_TYPES, d)
        self.edge_h = nn.Embedding(NUM_ENC_EDGE_TYPES, d)  # fresh embeddings of HSG cross-modal edges
        dsg_kind = "rgtrm" if cfg.dsg_encoder == "rgtrm" else "rgnn"
        self.tsg_enc = GraphEncoder(cfg, cfg.tsg_encoder, cfg.tsg_layers)
        self.dsg_enc = GraphEncoder(cfg, dsg_kind, cfg.dsg_layers, stgd=cfg.stgd)
        self.hsg_enc = GraphEncoder(cfg, dsg_kind, cfg.hsg_layers, stgd=cfg.stgd)  # R-GTrm^C on the HSG (Eq 28)
        self.inject_proj = nn.ModuleDict({k: _lin(w[0], d) for k, w in self.host_widths.items()})
        if cfg.inject_mode == "norm_gated":  # per encoder: LayerNorm of P R and a learned scalar gate per graph side
            self.inject_norm = nn.ModuleDict({k: nn.LayerNorm(d) for k in self.host_widths})
            self.inject_gate = nn.ParameterDict({k: nn.Parameter(torch.full((2,), float(cfg.inject_gate_init)))
                                                 for k in self.host_widths})
        self.trs_proj = nn.ModuleDict({k: make_projector(cfg.trs_proj, w[1], d) for k, w in self.host_widths.items()})
        self._teacher: TeacherFn | None = resolve_teacher(cfg.trs_teacher) if cfg.trs_teacher else None

    def param_groups(self, lr: float, teacher_lr: float | None = None) -> list[dict[str, Any]]:
        """Optimizer groups: every parameter at ``lr``; with ``teacher_lr`` the TRS projector (the student
        side) keeps ``lr`` and the rest of Finsta (the teacher) gets ``teacher_lr`` (0 = a fixed teacher)."""
        if teacher_lr is None:
            return [{"params": list(self.parameters()), "lr": lr}]
        proj = {id(p) for p in self.trs_proj.parameters()}
        return [{"params": list(self.trs_proj.parameters()), "lr": lr},
                {"params": [p for p in self.parameters() if id(p) not in proj], "lr": teacher_lr}]

    def set_teacher(self, fn: TeacherFn | None) -> None:
        """Replace the TRS teacher by ``fn(batch, readouts, cfg) -> readouts`` (None: Finsta's own readouts)."""
        self._teacher = fn

    # ------------------------------------------------------------------ inputs
    def _prepare(self, graphs: GraphBatch) -> GraphBatch:
        c = self.cfg
        dev = self.type_t.weight.device
        key = ("prepared", str(dev), c.adverbs, c.temporal_edges, c.cross_edges)
        if key in graphs.cache:
            return graphs.cache[key]
        g = graphs if graphs.tsg.node_type.device == dev else graphs.to(dev)
        if not c.adverbs:
            g = g.without_adverbs()
        if not c.temporal_edges:
            g = g.without_temporal()
        if not c.cross_edges:
            g = g.without_cross()
        if g is graphs:  # keep derived structures apart from the caller's cache keys
            g = GraphBatch(g.tsg, g.dsg, g.cross_index, g.cross_score, g.sample_ids)
        graphs.cache[key] = g
        return g

    def _inject_tokens(self, name: str, host: HostOutputs | None) -> bool:
        return (self.cfg.inject and host is not None and getattr(host, name) is not None
                and name in self.inject_proj)

    def _pool(self, name: str, host: HostOutputs, b: GraphBatch, text: bool, video: bool) -> tuple[Tensor, Tensor]:
        """Pooled host first-layer states for the TSG nodes and the DSG nodes ``([N_T, d], [N_D, d])``."""
        enc = getattr(host, name)
        tok, proj = enc.first_layer, self.inject_proj[name]
        states = tok.states.detach() if self.cfg.inject_detach else tok.states
        tok = type(tok)(states, tok.mask, tok.char_spans, tok.frame_index, tok.patch_rc, tok.grid)
        t, d = b.tsg, b.dsg
        dm = self.cfg.d_model
        xt = states.new_zeros(t.num_nodes, dm)
        xd = states.new_zeros(d.num_nodes, dm)
        if text:
            p, has = pool_text(tok, t.graph, t.spans)
            xt = self._scale_injection(name, 0, proj(p)) * has.unsqueeze(1)
        if video:
            obj = (d.node_type == NodeType.OBJECT).nonzero().flatten()
            t_host = enc.pooled.shape[1] if enc.pooled.dim() == 3 else int(tok.frame_index.max()) + 1 \
                if tok.frame_index is not None else 1
            fg = d.frame[obj]
            n_key = torch.bincount(d.frame_graph, minlength=b.num_graphs)[d.graph[obj]]
            hf = nearest_host_frame(d.graph[obj], d.time[obj], d.frame_local[fg], n_key, t_host, enc.frame_times)
            p, has = pool_patches(tok, d.graph[obj], d.boxes[obj], d.frame_size[d.graph[obj]], hf, t_host)
            xd = xd.index_copy(0, obj, self._scale_injection(name, 1, proj(p)) * has.unsqueeze(1))
        return xt, xd

    def _scale_injection(self, name: str, side: int, r: Tensor) -> Tensor:
        """``P R`` as is (``inject_mode="add"``, sec 5.2) or ``g LayerNorm(P R)`` (``"norm_gated"``)."""
        if self.cfg.inject_mode == "add":
            return r
        return self.inject_gate[name][side] * self.inject_norm[name](r)

    def _inputs(self, b: GraphBatch, host: HostOutputs | None) -> tuple[Tensor, Tensor]:
        c, t, d = self.cfg, b.tsg, b.dsg
        xt = self.label(t.words, t.word_node, t.num_nodes) + self.type_t(t.node_type)
        unit = c.input_scale == "unit"
        lab_d = self.label(d.words, d.word_node, d.num_nodes)
        parts = [time_embedding(d.time, c.time_dim)] if unit else [lab_d, time_embedding(d.time, c.time_dim)]
        if c.feature_dim > 0:
            if d.features is None:
                f = xt.new_zeros(d.num_nodes, c.feature_dim)
            elif d.features.shape[1] != c.feature_dim:
                raise ValueError(f"DSG detector features are {d.features.shape[1]}-d but FinstaConfig.feature_dim="
                                 f"{c.feature_dim}; set feature_dim={d.features.shape[1]} (or 0 to ignore them)")
            else:
                f = d.features
            parts.insert(0, f)
        xd = self.dsg_in(torch.cat(parts, 1)) + self.type_d(d.node_type)
        if unit:
            xd = xd + lab_d
        if self._inject_tokens("text", host):
            xt = xt + self._pool("text", host, b, True, False)[0]
        if self._inject_tokens("video", host):
            xd = xd + self._pool("video", host, b, False, True)[1]
        return xt, xd

    def _with_cls(self, x: Tensor, g: LayerGraph, emb: nn.Embedding) -> Tensor:
        n_cls = g.num_nodes - g.num_real
        if n_cls == 0:
            return x
        cls = emb.weight[CLS_NODE].unsqueeze(0).expand(n_cls, -1)
        return torch.cat([x, cls], 0)

    @staticmethod
    def _readout(h: Tensor, g: LayerGraph) -> Tensor:
        if g.cls_index.numel():
            return h.index_select(0, g.cls_index)
        return scatter_mean(h.index_select(0, g.real_index), g.group, g.num_groups)

    # ------------------------------------------------------------------ forward
    def encode(self, graphs: GraphBatch, host: HostOutputs | None = None
               ) -> tuple[GraphBatch, dict[str, Tensor], dict[str, Tensor], dict[str, float]]:
        """Run the three encoders. Returns the prepared batch, readouts, real-node states, diagnostics."""
        b = self._prepare(graphs)
        gs = build_graphs(self.cfg, b)
        gt, gd, gh = gs["tsg"], gs["dsg"], gs["hsg"]
        xt, xd = self._inputs(b, host)
        aux = slice(SELF_EDGE, SELF_EDGE + 2)
        ht, et, dt = self.tsg_enc(self._with_cls(xt, gt, self.type_t), self.edge_t(gt.edge_type[: gt.num_stream]), gt,
                                  self.edge_t.weight[aux])
        hd, ed, dd = self.dsg_enc(self._with_cls(xd, gd, self.type_d), self.edge_d(gd.edge_type[: gd.num_stream]), gd,
                                  self.edge_d.weight[aux])
        # HSG (Eq 29): start from the final TSG / DSG states, fresh embeddings for cross-modal edges
        hh0 = torch.cat([ht, hd], 0)  # H^{C,0} <- {H^{T,L} ‖ H^{D,L}} (Eq 29)
        if self.cfg.hsg_inject and self._inject_tokens("cross", host):
            it, idd = self._pool("cross", host, b, True, True)
            hh0 = hh0 + torch.cat([it, it.new_zeros(gt.num_nodes - gt.num_real, it.shape[1]), idd,
                                   idd.new_zeros(gd.num_nodes - gd.num_real, idd.shape[1])], 0)
        eh0 = torch.cat([et, ed, self.edge_h(gh.edge_type[et.shape[0] + ed.shape[0]: gh.num_stream])], 0)
        hh, _, dh = self.hsg_enc(hh0, eh0, gh, self.edge_h.weight[aux])  # Eq 28
        rh = self._readout(hh, gh)
        bsz = b.num_graphs
        readouts = {"tsg": self._readout(ht, gt), "dsg": self._readout(hd, gd), "hsg_text": rh[:bsz], "hsg": rh[bsz:]}
        nodes = {"tsg": ht[: gt.num_real], "dsg": hd[: gd.num_real], "hsg": hh.index_select(0, gh.real_index)}
        diag = {f"tsg_{k}": v for k, v in dt.items()} | {f"dsg_{k}": v for k, v in dd.items()}
        diag |= {f"hsg_{k}": v for k, v in dh.items()}
        diag |= {"nodes_tsg": float(gt.num_real), "nodes_dsg": float(gd.num_real), "edges_tsg": float(gt.num_edges),
                 "edges_dsg": float(gd.num_edges), "edges_hsg": float(gh.num_edges),
                 "edges_temporal": float(b.dsg.temporal_index.shape[1]), "edges_cross": float(b.cross_index.shape[1])}
        return b, readouts, nodes, diag

    def teacher_features(self, b: GraphBatch, readouts: dict[str, Tensor]) -> dict[str, Tensor]:
        """The rows TRS distils: Finsta's readouts, or those of the external teacher (module docstring)."""
        if self._teacher is None:
            return readouts
        ext = self._teacher(b, readouts, self.cfg)
        bad = [k for k, v in ext.items() if k not in readouts or tuple(v.shape) != tuple(readouts[k].shape)]
        if bad:
            raise ValueError(f"external TRS teacher returned {bad} with unknown keys or shapes; expected "
                             f"{ {k: tuple(v.shape) for k, v in readouts.items()} }")
        return {**readouts, **ext}

    def forward(self, graphs: GraphBatch, host: HostOutputs | None = None, stage: int = 1, step: int = 0,
                task_family: str = "generic") -> FinstaOutput:
        """Encode and compute the losses of ``stage`` (1: OSC + PTC [+ readout]; 2: + TRS when a host is given).

        ``diagnostics`` always holds the clean alignment figures and the teacher's collapse statistics
        (``finsta_core.diagnostics.DIAG_KEYS``); in stage 2 also ``trs_<enc>`` and ``student_<enc>_cos`` /
        ``_common``, ``teacher_<enc>_cos`` / ``_common`` of the TRS terms.

        ``step`` is accepted for schedule-aware callers (loss weights come from :func:`loss_weights`).
        """
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {stage}")
        c = self.cfg
        b, readouts, nodes, diag = self.encode(graphs, host)
        zero = nodes["tsg"].sum() * 0.0
        losses: dict[str, Tensor] = {}
        if c.osc:
            losses["osc"], od = osc_loss(c, b, nodes["tsg"], nodes["dsg"])  # Eqs 37-38
            diag |= {f"osc_{k}": v for k, v in od.items()}
        else:
            losses["osc"] = zero
        if c.ptc:
            losses["ptc"], pd = ptc_loss(c, b, nodes["tsg"], nodes["dsg"])  # Eqs 39-40
            diag |= {f"ptc_{k}": v for k, v in pd.items()}
        else:
            losses["ptc"] = zero
        if c.readout_align:  # trains the readouts (the TRS teacher) and the HSG encoder
            bsz = b.num_graphs
            dsg_clip = scatter_mean(readouts["dsg"], b.dsg.frame_graph, bsz)
            hsg_clip = scatter_mean(readouts["hsg"], b.dsg.frame_graph, bsz)
            losses["readout"] = 0.5 * (symmetric_nce(readouts["tsg"], dsg_clip, c.tau_readout)
                                       + symmetric_nce(readouts["hsg_text"], hsg_clip, c.tau_readout))
        diag |= alignment_diagnostics(b, nodes["tsg"], nodes["dsg"], ptc_anchors(c, b))
        diag |= teacher_collapse(readouts, b)
        if stage == 2 and host is not None:
            missing = [k for k in host.encoders() if k not in self.trs_proj]
            if missing:
                raise ValueError(f"host outputs encoders {missing} that are not in host_widths "
                                 f"{sorted(self.host_widths)} given to Finsta")
            teacher = readouts
            if c.trs_dsg_rows != "readout":
                teacher = {**readouts, "dsg": teacher_rows(c.trs_dsg_rows, b, nodes["dsg"], c.trs_orth_rank),
                           "hsg": teacher_rows(c.trs_dsg_rows, b, nodes["hsg"][b.tsg.num_nodes:],
                                               c.trs_orth_rank)}  # HSG states of the DSG nodes
            teacher = self.teacher_features(b, teacher)
            # Eq 41
            losses["trs"], td = trs_loss(host, teacher, b, self.trs_proj, c.trs_lambda(task_family), c.trs_distance,
                                         c.trs_detach_teacher, c.trs_video_level, c.tau_trs)
            diag |= td
        diag["step"] = float(step)
        return FinstaOutput(losses, readouts, nodes, diag)


__all__ = ["Finsta", "FinstaOutput", "parse_host_widths", "EdgeType", "NUM_EDGE_TYPES"]
