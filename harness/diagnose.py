"""Teacher / transfer diagnostics on the synthetic benchmark (issue 10), in minutes on CPU.

``run_diagnose(DiagnoseConfig(...)) -> dict`` trains Finsta's stage 1 (OSC + PTC [+ readout]) on the synthetic
post-training corpus (``synth_pairs``), optionally a short stage 2 with a host (TRS + the host's own losses),
then measures on ``synth_action`` (whose ground truth the renderer knows):

* linear probes (train split -> test split) for ``action`` (18 classes), ``predicate`` (9) and ``manner``
  (4 adverbs) of Finsta's clip-level readouts (``finsta_dsg``: mean keyframe readout, the video TRS teacher;
  ``finsta_tsg``; ``finsta_hsg``; ``finsta_dynamic``: the clip mean of the ``dynamic`` TRS rows, the DSG states
  of the caption's actions), of the host's video features (``host``, before and after stage 2) and of
  the oracle bags of DSG labels (``oracle_bag``: counts of each DSG label word per clip; ``oracle_event_bag``:
  the event predicates only, what the event-only oracle teacher carries);
* clean alignment on the held-out test graphs (``finsta_core.diagnostics``): TSG object -> true DSG object of
  its keyframe, TSG predicate -> true DSG event track (exact truth from the renderer's event ids); ties miss;
* collapse statistics (mean pairwise cosine, common-mode share) of the teacher's readouts and the host's
  video features.

The ``dynamic`` flag of synthetic TSG predicates comes from the grammar (``meta["dynamic"]``); when a graph
lacks it, it is derived here from ``meta["event"]`` (event predicates), and the count is reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from finsta_core import Finsta, FinstaConfig, collate_graphs, loss_weights
from finsta_core.diagnostics import alignment_diagnostics, collapse_stats, event_alignment, linear_probe
from finsta_core.graphs.batch import GraphBatch
from finsta_core.graphs.scatter import scatter_mean
from finsta_core.graphs.types import NodeType
from finsta_core.objectives.alignment import ptc_anchors
from finsta_core.objectives.trs import teacher_rows
from harness.jobs.data import iter_batches
from hosts.base import HostBatch
from hosts.registry import create_host
from tasks.registry import create_task
from tasks.synthetic.oracle import EVENT_LABELS
from tasks.synthetic.vocab import CATEGORIES, COLOUR_NAMES, PREDICATE_LABELS

ACTION_TARGETS = ("action", "predicate", "manner")  # what the teacher should carry (ratios against the oracles)
PROBE_TARGETS = (*ACTION_TARGETS, "actor_shape", "actor_colour")  # + appearance of the event's actor
_MANNERS = ("quickly", "slowly", "abruptly", "gradually")


@dataclass
class DiagnoseConfig:
    """What to train and measure. ``finsta``: FinstaConfig overrides on ``preset``; ``host``: a host name (""
    = no host: no injection, no host probe, no stage 2); ``host_checkpoint``: its weights ("" = random init)."""

    finsta: dict[str, Any] = field(default_factory=dict)
    preset: str = "small"
    steps: int = 150
    stage2_steps: int = 0
    batch_size: int = 16
    lr: float = 1e-3
    host_lr: float = 1e-3
    stage2_teacher_lr: float | None = None  # Finsta's lr in stage 2 except the TRS projector (None: lr; 0: frozen)
    host: str = ""
    host_checkpoint: str = ""
    n_corpus: int = 400
    n_probe_train: int = 400
    n_probe_test: int = 200
    seed: int = 0
    threads: int = 1


def _with_dynamic(samples: list[Any]) -> int:
    """Set ``tsg.meta["dynamic"]`` from ``meta["event"]`` where the grammar did not; returns how many."""
    n = 0
    for s in samples:
        t = s.scene_graph.tsg
        if "dynamic" not in t.meta and "event" in t.meta:
            t.meta["dynamic"] = [bool(e >= 0 and nt == NodeType.RELATION)
                                 for e, nt in zip(t.meta["event"], t.node_type.tolist())]
            n += 1
    return n


def _event_truth(graphs: list[Any], batch: GraphBatch) -> Tensor:
    """``[2, P]`` (TSG predicate node, DSG node of the same event) over the batch (global node ids)."""
    pairs = []
    ot = od = 0
    for g in graphs:
        ev_t, ev_d = g.tsg.meta.get("event"), g.dsg.meta.get("event")
        if ev_t is not None and ev_d is not None:
            first: dict[int, int] = {}
            for j, e in enumerate(ev_d):
                if e >= 0 and e not in first:
                    first[e] = j
            for i, (e, nt) in enumerate(zip(ev_t, g.tsg.node_type.tolist())):
                if e >= 0 and nt == NodeType.RELATION and e in first:
                    pairs.append((ot + i, od + first[e]))
        ot += g.tsg.num_nodes
        od += g.dsg.num_nodes
    dev = batch.tsg.node_type.device
    return torch.tensor(pairs, dtype=torch.long, device=dev).t() if pairs else torch.zeros(2, 0, dtype=torch.long)


def _labels(samples: list[Any]) -> dict[str, Tensor]:
    """Probe targets of ``synth_action`` samples: from their class names (``move left quickly``) the action,
    predicate and manner; from the renderer's object list the shape and colour of the event's actor (what a
    still frame shows: how much *appearance* a feature carries next to the action)."""
    action = torch.tensor([int(s.label) for s in samples])
    names = [str(s.extra["class_name"]) for s in samples]
    pred = torch.tensor([PREDICATE_LABELS.index(n.rsplit(" ", 1)[0]) for n in names])
    manner = torch.tensor([_MANNERS.index(n.rsplit(" ", 1)[1]) for n in names])
    actors = [s.extra["objects"][s.extra["events"][0]["actor"]] for s in samples]
    shape = torch.tensor([CATEGORIES.index(a[0]) for a in actors])
    colour = torch.tensor([COLOUR_NAMES.index(a[1]) for a in actors])
    return {"action": action, "predicate": pred, "manner": manner, "actor_shape": shape, "actor_colour": colour}


def _bag(samples: list[Any], vocab: dict[str, int]) -> Tensor:
    """Oracle: per clip, the count of each DSG label (over keyframes, divided by the keyframe count)."""
    x = torch.zeros(len(samples), len(vocab))
    for i, s in enumerate(samples):
        d = s.scene_graph.dsg
        for lab in d.labels:
            if lab in vocab:
                x[i, vocab[lab]] += 1.0
        x[i] /= max(d.num_frames, 1)
    return x


class _HostSide:
    """The host and its batches (video through the host's preprocessing, as in training)."""

    def __init__(self, cfg: DiagnoseConfig) -> None:
        opts = {} if cfg.host_checkpoint else {"random_init": True}
        self.host = create_host(cfg.host, checkpoint=cfg.host_checkpoint or None, **opts)
        self.host.eval()

    def widths(self) -> dict[str, tuple[int, int]]:
        pooled = self.host.encoder_widths()
        first = self.host.first_layer_widths() if hasattr(self.host, "first_layer_widths") else pooled
        return {k: (int(first.get(k, w)), int(w)) for k, w in pooled.items()}

    def batches(self, samples: list[Any], protocol: Any, batch_size: int):
        yield from iter_batches(samples, protocol, self.host.preprocess, batch_size=batch_size)

    def outputs(self, vb: Any, with_losses: bool) -> Any:
        texts = [s.scene_graph.tsg.caption for s in vb.samples]
        return self.host.posttrain_outputs(HostBatch(video=vb.video, frame_times=vb.frame_times, texts=texts),
                                           with_losses=with_losses)


def _encode_all(model: Finsta, samples: list[Any], hs: _HostSide | None, protocol: Any, bs: int
                ) -> tuple[dict[str, Tensor], dict[str, float], Tensor | None]:
    """Clip-level readouts ``{finsta_dsg, finsta_tsg, finsta_hsg}`` ``[N, d]``, alignment figures over the
    samples (weighted by batch), and the host's clip video features ``[N, d]`` (None without host)."""
    feats: dict[str, list[Tensor]] = {"finsta_dsg": [], "finsta_tsg": [], "finsta_hsg": [], "finsta_dynamic": []}
    host_feats: list[Tensor] = []
    align: dict[str, list[float]] = {}
    model.eval()
    chunks: list[tuple[list[Any], Any]] = []
    if hs is None:
        chunks = [(samples[i:i + bs], None) for i in range(0, len(samples), bs)]
    with torch.no_grad():
        it = ((vb.samples, vb) for vb in hs.batches(samples, protocol, bs)) if hs is not None else iter(chunks)
        for ss, vb in it:
            graphs = [s.scene_graph for s in ss]
            b = collate_graphs(graphs)
            host_out = hs.outputs(vb, False) if hs is not None else None
            if host_out is not None and host_out.video is not None:
                host_feats.append(host_out.video.pooled.float().mean(1))
            pb, readouts, nodes, _ = model.encode(b, host_out)
            n = pb.num_graphs
            feats["finsta_dsg"].append(scatter_mean(readouts["dsg"], pb.dsg.frame_graph, n))
            feats["finsta_tsg"].append(readouts["tsg"])
            feats["finsta_hsg"].append(scatter_mean(readouts["hsg"], pb.dsg.frame_graph, n))
            kind = model.cfg.trs_dsg_rows if model.cfg.trs_dsg_rows != "readout" else "dynamic"
            rows = teacher_rows(kind, pb, nodes["dsg"], model.cfg.trs_orth_rank)
            feats["finsta_dynamic"].append(scatter_mean(rows, pb.dsg.frame_graph, n))
            a = alignment_diagnostics(pb, nodes["tsg"], nodes["dsg"], ptc_anchors(model.cfg, pb))
            ea, ec, ne = event_alignment(pb, nodes["tsg"], nodes["dsg"], ptc_anchors(model.cfg, pb),
                                         _event_truth(graphs, pb))
            a["align_event_exact"], a["align_event_exact_chance"] = ea, ec
            for k, v in a.items():
                align.setdefault(k, []).append(v)
    model.train()
    out = {k: torch.cat(v) for k, v in feats.items()}
    return out, {k: sum(v) / len(v) for k, v in align.items()}, torch.cat(host_feats) if host_feats else None


def _train(model: Finsta, cfg: DiagnoseConfig, fcfg: FinstaConfig, corpus: list[Any], protocol: Any,
           hs: _HostSide | None, stage: int, steps: int, trs: bool = True) -> list[dict[str, float]]:
    """``steps`` optimizer steps of ``stage`` on the corpus; returns the logged dicts (every 10th step)."""
    params = model.param_groups(cfg.lr, cfg.stage2_teacher_lr if stage == 2 else None)
    if stage == 2 and hs is not None:
        hs.host.train()
        params.append({"params": [p for p in hs.host.parameters() if p.requires_grad], "lr": cfg.host_lr})
    opt = torch.optim.AdamW(params, weight_decay=5e-3, betas=(0.9, 0.98))
    g = torch.Generator().manual_seed(cfg.seed + stage)
    logs: list[dict[str, float]] = []
    step = 0
    while step < steps:
        order = torch.randperm(len(corpus), generator=g).tolist()
        subset = [corpus[i] for i in order]
        it = hs.batches(subset, protocol, cfg.batch_size) if hs is not None else \
            (type("VB", (), {"samples": subset[i:i + cfg.batch_size]})
             for i in range(0, len(subset) - cfg.batch_size + 1, cfg.batch_size))
        for vb in it:
            if step >= steps:
                break
            graphs = [s.scene_graph for s in vb.samples]
            b = collate_graphs(graphs)
            host_out = None
            if hs is not None:
                if stage == 2:
                    host_out = hs.outputs(vb, True)
                else:
                    with torch.no_grad():
                        host_out = hs.outputs(vb, False)
            out = model(b, host_out, stage=stage, step=step, task_family="generic")
            w = loss_weights(fcfg, stage, step, steps)
            if not trs:
                w["trs"] = 0.0
            losses = dict(out.losses)
            if stage == 2 and host_out is not None:
                losses.update(host_out.losses)
            terms = [w[k] * v for k, v in losses.items() if w.get(k, 0.0) != 0.0]
            loss = torch.stack(terms).sum()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for grp in params for p in grp["params"]], 1.0)
            opt.step()
            if step % 10 == 0 or step == steps - 1:
                logs.append({"step": step, **{f"L_{k}": float(v.detach()) for k, v in losses.items()},
                             **out.diagnostics})
            step += 1
    if hs is not None:
        hs.host.eval()
    return logs


def _probe_all(features: dict[str, Tensor], ytr: dict[str, Tensor], yte: dict[str, Tensor], n_train: int
               ) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, x in features.items():
        out[name] = {t: linear_probe(x[:n_train], ytr[t], x[n_train:], yte[t]) for t in PROBE_TARGETS}
    return out


def run_diagnose(cfg: DiagnoseConfig) -> dict[str, Any]:
    """Train and measure (module docstring). Returns ``{"probe": {features: {target: acc}}, "align": {...},
    "collapse": {...}, "chance": {...}, "train_log": [...], "seconds": s, "config": {...}}``."""
    t0 = time.time()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    fcfg = FinstaConfig.preset(cfg.preset, **cfg.finsta)
    corpus_task = create_task("synth_pairs", n_pairs=cfg.n_corpus)
    probe_task = create_task("synth_action", n_train=cfg.n_probe_train, n_test=cfg.n_probe_test)
    corpus = corpus_task.samples("train")
    ptr, pte = probe_task.samples("train"), probe_task.samples("test")
    derived = sum(_with_dynamic(x) for x in (corpus, ptr, pte))
    hs = _HostSide(cfg) if cfg.host else None
    model = Finsta(fcfg, hs.widths() if hs is not None else None)
    logs = _train(model, cfg, fcfg, corpus, corpus_task.protocol, hs, 1, cfg.steps)
    feats_tr, _, host_tr = _encode_all(model, ptr, hs, probe_task.protocol, cfg.batch_size)
    feats_te, align, host_te = _encode_all(model, pte, hs, probe_task.protocol, cfg.batch_size)
    ytr, yte = _labels(ptr), _labels(pte)
    vocab = {lab: i for i, lab in enumerate(sorted({lab for s in ptr for lab in s.scene_graph.dsg.labels}))}
    features = {k: torch.cat([feats_tr[k], feats_te[k]]) for k in feats_tr}
    features["oracle_bag"] = torch.cat([_bag(ptr, vocab), _bag(pte, vocab)])
    events = {lab: i for i, lab in enumerate(sorted(set(vocab) & EVENT_LABELS))}
    features["oracle_event_bag"] = torch.cat([_bag(ptr, events), _bag(pte, events)])
    collapse: dict[str, float] = {}
    for k in ("finsta_dsg", "finsta_tsg", "finsta_hsg"):
        collapse[f"{k}_cos"], collapse[f"{k}_common"] = collapse_stats(feats_te[k])
    if host_tr is not None:
        features["host"] = torch.cat([host_tr, host_te])
        collapse["host_cos"], collapse["host_common"] = collapse_stats(host_te)
    if hs is not None and cfg.stage2_steps > 0:
        logs += _train(model, cfg, fcfg, corpus, corpus_task.protocol, hs, 2, cfg.stage2_steps)
        _, _, s_tr = _encode_all(model, ptr, hs, probe_task.protocol, cfg.batch_size)
        _, _, s_te = _encode_all(model, pte, hs, probe_task.protocol, cfg.batch_size)
        if s_tr is not None:
            features["student"] = torch.cat([s_tr, s_te])
            collapse["student_cos"], collapse["student_common"] = collapse_stats(s_te)
    probe = _probe_all(features, ytr, yte, len(ptr))
    chance = {t: 1.0 / (int(ytr[t].max()) + 1) for t in PROBE_TARGETS}
    majority = {t: float((yte[t] == torch.mode(ytr[t]).values).float().mean()) for t in PROBE_TARGETS}
    ratio = {t: probe["finsta_dsg"][t] / max(probe["oracle_bag"][t], 1e-9) for t in ACTION_TARGETS}
    ratio_dyn = {t: probe["finsta_dynamic"][t] / max(probe["oracle_event_bag"][t], 1e-9) for t in ACTION_TARGETS}
    return {"probe": probe, "probe_ratio_teacher_vs_oracle": ratio, "probe_ratio_dynamic_vs_events": ratio_dyn,
            "trs_dsg_rows": fcfg.trs_dsg_rows, "align": align, "collapse": collapse,
            "chance": chance, "majority": majority, "train_log": logs, "dynamic_derived": derived,
            "seconds": time.time() - t0, "config": {**cfg.__dict__, "finsta_config": fcfg.to_dict()}}


def format_report(res: dict[str, Any]) -> str:
    """Human-readable tables of :func:`run_diagnose`'s result."""
    lines = ["linear probes on synth_action (test accuracy)", f"{'features':17s}" + "".join(
        f"{t:>13s}" for t in PROBE_TARGETS)]
    for name, accs in res["probe"].items():
        lines.append(f"{name:17s}" + "".join(f"{accs[t]:13.3f}" for t in PROBE_TARGETS))
    lines.append(f"{'chance':17s}" + "".join(f"{res['chance'][t]:13.3f}" for t in PROBE_TARGETS))
    lines.append(f"{'majority':17s}" + "".join(f"{res['majority'][t]:13.3f}" for t in PROBE_TARGETS))
    lines.append("teacher (finsta_dsg) / oracle_bag: " + ", ".join(
        f"{t} {v:.2f}" for t, v in res["probe_ratio_teacher_vs_oracle"].items()))
    if "probe_ratio_dynamic_vs_events" in res:
        lines.append("dynamic rows (finsta_dynamic) / oracle_event_bag: " + ", ".join(
            f"{t} {v:.2f}" for t, v in res["probe_ratio_dynamic_vs_events"].items())
            + f"  [TRS video teacher rows: {res.get('trs_dsg_rows', 'readout')}]")
    a = res["align"]
    lines.append("clean alignment on held-out graphs (ties = misses): "
                 f"object {a['align_obj']:.3f} (chance {a['align_obj_chance']:.3f}); "
                 f"event, exact truth {a['align_event_exact']:.3f} (chance {a['align_event_exact_chance']:.3f}); "
                 f"event, cross-edge proxy {a['align_event']:.3f} (chance {a['align_event_chance']:.3f})")
    lines.append("collapse (mean pairwise cosine / common-mode share): " + ", ".join(
        f"{k[:-4]} {res['collapse'][k]:.3f}/{res['collapse'][k[:-4] + '_common']:.3f}"
        for k in res["collapse"] if k.endswith("_cos")))
    if res.get("dynamic_derived"):
        lines.append(f"note: meta['dynamic'] derived from meta['event'] for {res['dynamic_derived']} graphs")
    lines.append(f"({res['seconds']:.0f} s)")
    return "\n".join(lines)


__all__ = ["ACTION_TARGETS", "DiagnoseConfig", "PROBE_TARGETS", "format_report", "run_diagnose"]
