"""Forward + backward time and peak memory of the DSG encoder stack (R-GTrm + STGD) against baselines.

Each measurement runs in a fresh subprocess. Memory: the bytes of tensors saved for backward (activation
memory, counted with saved-tensor hooks; exact and comparable across variants) and the peak memory (max RSS
growth during the timed runs on CPU, which is coarse; ``max_memory_allocated`` on CUDA). The parent prints one
table with ratios against our edge-list implementation:

* ``ours``: ``GraphEncoder("rgtrm", stgd=True)`` on one disjoint graph of every keyframe of every video;
* ``dense``: the same layers computed on dense masked ``N x N`` grids (``finsta_core/nn/reference.py``);
* ``previous``: the layer code as it was before the shared edge-list helper (``finsta_core/nn/attend.py``),
  calling the scatter primitives directly (kept here, :func:`previous_encoder`, for this comparison only);
* ``loop``: the same layers evaluated keyframe by keyframe (T sequential calls per layer, all videos
  batched per keyframe; the recurrent-cell schedule the paper's Fig. 3b may suggest), checked equal to ``ours``;
* ``loop_video``: the same, one keyframe of one video per call (B x T calls per layer; the naive loop);
* ``torch_scatter``: ours with the torch-scatter backend (skipped when it is not installed);
* ``transformerconv``: PyG ``TransformerConv`` at the same width and heads with edge features (an anchor
  that does less work: no edge stream, no FFNs, no gate).

``--compare`` instead times ``ours``, ``previous`` and (where it fits) ``dense`` in ONE process, interleaved rep
by rep in a rotating order (so that load from other processes hits every variant alike), checks that they
agree, and prints the ratios ``previous / ours`` and ``dense / ours`` of the process CPU time (median and
minimum; the wall-clock median is shown too).

Usage::

    python benchmarks/bench_dsg_encoder.py                 # CPU-sized defaults (see --help)
    python benchmarks/bench_dsg_encoder.py --device cuda --videos 32 --frames 16 --objects 10 --layers 12
    python benchmarks/bench_dsg_encoder.py --compare --reps 7   # refactor check, same process
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _previous_classes():
    """``GTrmLayer`` / ``STGDBranch`` with their ``forward`` exactly as before ``finsta_core/nn/attend.py``
    (commit c0ee122): every layer called gather / ``segment_softmax`` / ``scatter_sum`` itself."""
    import math

    import torch

    from finsta_core.graphs.scatter import scatter_sum, segment_softmax
    from finsta_core.nn.graph import SELF_EDGE
    from finsta_core.nn.gtrm import GTrmLayer
    from finsta_core.nn.stgd import STGDBranch, motion_kernel

    def edge_attention(q, k, v, ee, edge_index, n, clamp=False):
        src, dst = edge_index[0], edge_index[1]
        s = q.index_select(0, dst) * k.index_select(0, src) * (ee / math.sqrt(q.shape[-1]))
        logit = s.sum(-1)
        if clamp:
            logit = logit.clamp(-5.0, 5.0)
        w = segment_softmax(logit, dst, n)
        agg = scatter_sum(v.index_select(0, src) * w.unsqueeze(-1), dst, n)
        return agg, s, w

    class PreviousSTGD(STGDBranch):
        def forward(self, q, k, v, g):
            n = q.shape[0]
            zmask = torch.zeros(n, dtype=torch.bool, device=q.device)
            if g.stgd_nodes.numel() == 0:
                return torch.zeros_like(q), zmask, {}
            zmask[g.stgd_nodes] = True
            logk = motion_kernel(g.disp, g.stgd_pairs, g.stgd_nodes, self.sigma, self.eps)
            nodes = g.stgd_nodes
            src = torch.cat([g.stgd_pairs[0], nodes])
            dst = torch.cat([g.stgd_pairs[1], nodes])
            dot = (q.index_select(0, dst) * k.index_select(0, src)).sum(-1) / math.sqrt(self.dk)
            lk = logk.index_select(0, src)
            logit = dot + lk if self.attention == "additive" else dot * lk.exp()
            w = segment_softmax(logit, dst, n)
            z = scatter_sum(v.index_select(0, src) * w.unsqueeze(-1), dst, n)
            zb = self.o_z(z.index_select(0, nodes).reshape(nodes.numel(), -1))
            zn = self.norm(self.ffn(zb) + zb)
            out = torch.zeros(n, self.h * self.dk, dtype=q.dtype, device=q.device).index_copy(0, nodes, zn)
            with torch.no_grad():
                kappa = logk[nodes].exp()
            return out.view(n, self.h, self.dk), zmask, {"stgd_kappa": kappa.mean(), "stgd_nodes": torch.tensor(
                float(nodes.numel()))}

    class PreviousGTrm(GTrmLayer):
        def forward(self, h, e, g, e_aux=None):
            n, shape = h.shape[0], (-1, self.h, self.dk)
            q, k, v = self.qkv(h).view(n, 3, self.h, self.dk).unbind(1)
            diag = {}
            if self.gate is not None:
                z = zmask = None
                if self.stgd is not None:
                    z, zmask, sd = self.stgd(q, k, v, g)
                    diag.update(sd)
                q, gd = self.gate(q, k, g, z, zmask)
                diag.update(gd)
            ee = self.e_proj(e)
            ns = g.num_stream
            if ns < g.num_edges:
                if e_aux is None:
                    raise ValueError("this graph has static self / readout edges: pass e_aux")
                ee = torch.cat([ee, self.e_proj(e_aux).index_select(0, g.edge_type[ns:] - SELF_EDGE)], 0)
            agg, s, _ = edge_attention(q, k, v, ee.view(shape), g.edge_index, n, self.clamp)
            h1 = self.norm_h1(h + self.drop(self.o_h(agg.reshape(n, self.d))))
            h_out = self.norm_h2(h1 + self.drop(self.ffn_h(h1)))
            e1 = self.norm_e1(e + self.drop(self.o_e(s[:ns].reshape(-1, self.d))))
            e_out = self.norm_e2(e1 + self.drop(self.ffn_e(e1)))
            return h_out, e_out, diag

    return PreviousGTrm, PreviousSTGD


def previous_encoder(enc):
    """A copy of the encoder ``enc`` (same weights) whose layers run the pre-refactor code."""
    import copy

    prev_gtrm, prev_stgd = _previous_classes()
    old = copy.deepcopy(enc)
    for layer in old.layers:
        layer.__class__ = prev_gtrm
        if layer.stgd is not None:
            layer.stgd.__class__ = prev_stgd
    return old


def _dense_gb(a: argparse.Namespace, num_nodes: int) -> float:
    """Rough size of the dense variant's activations (float32, ~6 live [N, N, d] grids per layer)."""
    return 4.0 * num_nodes ** 2 * a.dim * 6 / 2**30 * a.layers


def compare(a: argparse.Namespace) -> list[tuple]:
    """``ours`` vs ``previous`` vs ``dense`` in this process, interleaved; rows for the ratio table."""
    import torch

    from finsta_core.nn.reference import dense_gtrm_layer

    torch.set_num_threads(a.threads)
    torch, cfg, batch, g, enc = _setup(a)
    enc = enc.eval()  # dropout 0 anyway; the dense reference has no dropout
    h0, e0, ea = torch.randn(g.num_nodes, a.dim), torch.randn(g.num_stream, a.dim), torch.randn(2, a.dim)

    def stack(layer_fn):
        def run():
            h, e = h0, e0
            for layer in enc.layers:
                h, e = layer_fn(layer, h, e, g, ea)
            return h, e
        return run

    old = previous_encoder(enc)

    def layers_of(encoder):
        def run():
            h, e = h0, e0
            for layer in encoder.layers:
                h, e, _ = layer(h, e, g, ea)
            return h, e
        return run

    fns = {"ours": layers_of(enc), "previous": layers_of(old)}
    need = _dense_gb(a, g.num_nodes)
    if need <= a.dense_limit_gb:
        fns["dense"] = stack(dense_gtrm_layer)
    with torch.no_grad():
        ref = fns["ours"]()
        for name, fn in fns.items():
            got = fn()
            tol = 0.0 if name == "previous" else 1e-3
            assert all((x - y).abs().max() <= tol for x, y in zip(got, ref)), f"{name} disagrees with ours"
    params = list(enc.parameters()) + list(old.parameters())
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for rep in range(a.warmup + a.reps):
        for j in range(len(names)):  # rotate the order every rep: no variant always runs first
            name = names[(rep + j) % len(names)]
            for p in params:
                p.grad = None
            t0, c0 = time.perf_counter(), time.process_time()
            h, e = fns[name]()
            (h.sum() + e.sum()).backward()
            if rep >= a.warmup:
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    med = {k: sorted(v)[len(v) // 2] for k, v in cpu.items()}
    medw = {k: sorted(v)[len(v) // 2] for k, v in wall.items()}
    rows = []
    for name in fns:
        rows.append((a.dim, name, f"{med[name] * 1e3:.1f}", f"{min(cpu[name]) * 1e3:.1f}",
                     f"{med[name] / med['ours']:.3f}x", f"{min(cpu[name]) / min(cpu['ours']):.3f}x",
                     f"{medw[name] * 1e3:.1f}", f"N={g.num_nodes} E={g.num_edges}"))
    if "dense" not in fns:
        rows.append((a.dim, "dense", "-", "-", "-", "-", "-",
                     f"skipped: needs ~{need:.0f} GB (limit {a.dense_limit_gb} GB)"))
    return rows


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _setup(a: argparse.Namespace):
    import torch

    from finsta_core import FinstaConfig, collate_graphs
    from finsta_core.nn.encoder import GraphEncoder
    from finsta_core.nn.graph import build_graphs
    from finsta_core.testing import random_hsg

    torch.manual_seed(0)
    cfg = FinstaConfig.preset("small", d_model=a.dim, heads=a.heads, dsg_layers=a.layers, dropout=0.0)
    graphs = [random_hsg(i, num_frames=a.frames, num_objects=a.objects) for i in range(a.videos)]
    batch = collate_graphs(graphs)
    g = build_graphs(cfg, batch)["dsg"]
    enc = GraphEncoder(cfg, "rgtrm", a.layers, stgd=True)
    return torch, cfg, batch, g, enc


def _loop_plan(torch, batch, g, per_video: bool = False):
    """Per keyframe index t (of all videos at once, or of one video at a time with ``per_video``): node set
    (the keyframe's nodes + their predecessors) and its local graph."""
    from dataclasses import replace

    d = batch.dsg
    local = torch.cat([d.frame_local[d.frame], d.frame_local]) if g.num_nodes > d.num_nodes else d.frame_local[d.frame]
    key = local
    if per_video:
        fid = torch.cat([d.frame, torch.arange(d.num_frames)]) if g.num_nodes > d.num_nodes else d.frame
        key = d.frame_local[fid] * batch.num_graphs + d.frame_graph[fid]  # time-major: t, then video
    plans = []
    for t in torch.unique(key).tolist():
        own = (key == t).nonzero().flatten()
        ctx = g.prev[own]
        ctx = torch.unique(ctx[ctx >= 0])
        nodes = torch.cat([own, ctx])
        lid = torch.full((g.num_nodes,), -1, dtype=torch.long)
        lid[nodes] = torch.arange(nodes.numel())
        esel = (lid[g.edge_index[1]] >= 0) & (lid[g.edge_index[1]] < own.numel())
        n_stream = int(esel[: g.num_stream].sum())
        psel = lid[g.stgd_pairs[1]] >= 0
        prev = torch.full((nodes.numel(),), -1, dtype=torch.long)
        prev[: own.numel()] = torch.where(g.prev[own] >= 0, lid[g.prev[own].clamp_min(0)], -1)
        sn = lid[g.stgd_nodes]
        sub = replace(g, num_nodes=nodes.numel(), edge_index=lid[g.edge_index[:, esel]],
                      edge_type=g.edge_type[esel], prev=prev, levels=[], stgd_nodes=sn[(sn >= 0) & (sn < own.numel())],
                      stgd_pairs=lid[g.stgd_pairs[:, psel]], disp=g.disp[nodes], num_stream=n_stream)
        plans.append((own, nodes, esel.nonzero().flatten()[:n_stream], sub))
    return plans


def child(a: argparse.Namespace) -> dict:
    torch, cfg, batch, g, enc = _setup(a)
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    enc = enc.to(dev)
    h0 = torch.randn(g.num_nodes, a.dim, device=dev)
    e0 = torch.randn(g.num_stream, a.dim, device=dev)
    ea = torch.randn(2, a.dim, device=dev)
    gd = g
    if a.device != "cpu":
        from dataclasses import fields, replace

        gd = replace(g, **{f.name: getattr(g, f.name).to(dev) for f in fields(g)
                           if isinstance(getattr(g, f.name), torch.Tensor)}, levels=[x.to(dev) for x in g.levels])
    if a.variant in ("ours", "torch_scatter"):
        if a.variant == "torch_scatter":
            from finsta_core.graphs.scatter import set_scatter_backend, torch_scatter_available

            if not torch_scatter_available():
                return {"skipped": "torch-scatter not installed"}
            set_scatter_backend("torch_scatter")

        def run():
            h, e, _ = enc(h0, e0, gd, ea)
            return h.sum() + e.sum()
    elif a.variant == "dense":
        from finsta_core.nn.reference import dense_gtrm_layer

        need = _dense_gb(a, g.num_nodes)
        if need > a.dense_limit_gb:
            return {"skipped": f"dense needs ~{need:.0f} GB (limit {a.dense_limit_gb} GB)"}

        def run():
            h, e = h0, e0
            for layer in enc.layers:
                h, e = dense_gtrm_layer(layer, h, e, gd, ea)
            return h.sum() + e.sum()
    elif a.variant == "previous":
        enc = previous_encoder(enc)

        def run():
            h, e, _ = enc(h0, e0, gd, ea)
            return h.sum() + e.sum()
    elif a.variant in ("loop", "loop_video"):
        plans = _loop_plan(torch, batch, g, per_video=a.variant == "loop_video")
        plans = [(o.to(dev), n.to(dev), es.to(dev), s) for o, n, es, s in plans]

        def run():
            h, e = h0, e0
            for layer in enc.layers:
                hn, en = h, e
                for own, nodes, esel, sub in plans:
                    ho, eo, _ = layer(h.index_select(0, nodes), e.index_select(0, esel), sub, ea)
                    hn = hn.index_copy(0, own, ho[: own.numel()])
                    en = en.index_copy(0, esel, eo)
                h, e = hn, en
            return h.sum() + e.sum()
        with torch.no_grad():
            ref = enc(h0, e0, gd, ea)[0]
            h = h0
            e = e0
            for layer in enc.layers:
                hn, en = h, e
                for own, nodes, esel, sub in plans:
                    ho, eo, _ = layer(h.index_select(0, nodes), e.index_select(0, esel), sub, ea)
                    hn, en = hn.index_copy(0, own, ho[: own.numel()]), en.index_copy(0, esel, eo)
                h, e = hn, en
            assert torch.allclose(h, ref, atol=1e-4), "per-frame loop disagrees with the parallel encoder"
    elif a.variant == "transformerconv":
        from torch_geometric.nn import TransformerConv

        convs = torch.nn.ModuleList([TransformerConv(a.dim, a.dim // a.heads, heads=a.heads, edge_dim=a.dim)
                                     for _ in range(a.layers)]).to(dev)
        ei = gd.edge_index
        from finsta_core.nn.graph import SELF_EDGE

        e_all = torch.cat([e0, ea[gd.edge_type[gd.num_stream:] - SELF_EDGE]], 0)

        def run():
            h = h0
            for conv in convs:
                h = conv(h, ei, e_all)
            return h.sum()
    else:
        raise ValueError(a.variant)
    params = [p for p in enc.parameters()]
    for _ in range(a.warmup):
        run().backward()
    saved = {}

    def pack(t):
        st = t.untyped_storage()
        saved[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = run()
    del loss
    act_mb = sum(saved.values()) / 2**20
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base = _rss_mb()
    times = []
    for _ in range(a.reps):
        for p in params:
            p.grad = None
        t0 = time.perf_counter()
        run().backward()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
    times.sort()
    return {"time_s": times[len(times) // 2], "peak_mb": max(peak, 0.0), "act_mb": act_mb, "nodes": g.num_nodes,
            "edges": g.num_edges}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--videos", type=int, default=32)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--objects", type=int, default=10, help="entities per video (about 3x nodes per keyframe)")
    p.add_argument("--dims", type=int, nargs="+", default=[256, 768])
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dense-limit-gb", type=float, default=6.0)
    p.add_argument("--variants", nargs="+", default=["ours", "previous", "dense", "loop", "torch_scatter",
                                                     "transformerconv"])
    p.add_argument("--compare", action="store_true", help="ours / previous / dense interleaved in one process")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.compare:
        print(f"DSG encoder fwd+bwd, one process, interleaved: {a.videos} videos x {a.frames} keyframes x "
              f"~{3 * a.objects - 1} nodes, {a.layers} layer(s), heads={a.heads}, threads={a.threads}, "
              f"median of {a.reps} (after {a.warmup} warm-up)")
        print("CPU time of this process (time.process_time: robust to other load on the machine); wall median too")
        print("| d | variant | CPU ms median | CPU ms min | median / ours | min / ours | wall ms median | graph |")
        print("|---|---|---|---|---|---|---|---|", flush=True)
        for dim in a.dims:
            a.dim = dim
            for r in compare(a):  # one width at a time: rows appear as they are measured
                print("| " + " | ".join(str(x) for x in r) + " |", flush=True)
        return
    if a.child:
        a.variant = a.child
        a.dim = a.dims[0]
        print(json.dumps(child(a)))
        return
    rows = []
    for dim in a.dims:
        res = {}
        for v in a.variants:
            cmd = [sys.executable, os.path.abspath(__file__), "--child", v, "--dims", str(dim)] + [
                x for k in ("videos", "frames", "objects", "heads", "layers", "reps", "warmup", "threads")
                for x in (f"--{k}", str(getattr(a, k)))]
            cmd += ["--device", a.device, "--dense-limit-gb", str(a.dense_limit_gb)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                res[v] = {"skipped": "failed: " + out.stderr.strip().splitlines()[-1][:120]}
            else:
                res[v] = json.loads(out.stdout.strip().splitlines()[-1])
        ours = res.get("ours", {})
        for v, r in res.items():
            if "skipped" in r:
                rows.append((dim, v, "-", "-", "-", "-", "-", r["skipped"]))
                continue
            rt = r["time_s"] / ours["time_s"] if "time_s" in ours else float("nan")
            ra = r["act_mb"] / ours["act_mb"] if ours.get("act_mb") else float("nan")
            rows.append((dim, v, f"{r['time_s'] * 1e3:.1f}", f"{r['act_mb']:.1f}", f"{r['peak_mb']:.0f}", f"{rt:.2f}x",
                         f"{ra:.2f}x", f"N={r['nodes']} E={r['edges']}"))
    print(f"DSG encoder fwd+bwd: {a.videos} videos x {a.frames} keyframes x ~{3 * a.objects - 1} nodes, "
          f"{a.layers} layer(s), heads={a.heads}, device={a.device}, threads={a.threads}, median of {a.reps}")
    print("| d | variant | ms | saved act. MB | peak RSS growth MB | time / ours | act. mem / ours | graph |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")


if __name__ == "__main__":
    main()
