"""Table 9 analog: what Finsta adds to a host's post-training step, measured in one run (paper sec 6.6).

Host: CLIP4Clip ViT-B/32 (transformers ``CLIPConfig()`` defaults = OpenAI ViT-B/32: vision 768 x 12 layers, patch
32, 224 px; text 512 x 12 layers; projection 512), ``seqTransf`` with 4 temporal layers, 12 frames, random init
(nothing is downloaded). Finsta: ``FinstaConfig.preset("paper")`` (sec 6.1: d = 768, 8 heads, TSG / DSG / HSG
encoders of 12 / 12 / 6 layers), graphs from ``finsta_core.testing.random_hsg`` (one per video, ``--keyframes``
keyframes, ``--objects`` tracked objects, 2048-d detector features as Faster R-CNN gives).

Two steps on the same batch, in the same process:

* ``host``: the host's own post-training loss (symmetric InfoNCE, ``vla``), backward, AdamW step;
* ``host + Finsta``: stage 2 (Eq 42: OSC + PTC + TRS + ``vla`` with the schedule's weights), backward, AdamW
  step over host and Finsta parameters.

Reported per step: parameters (Finsta also without its hashed label-embedding table), FLOPs of forward +
backward (``torch.utils.flop_counter.FlopCounterMode``; the optimizer is not counted), activation memory
(bytes of tensors saved for backward, counted with saved-tensor hooks), training memory (parameters + gradients
+ AdamW moments + activations, fp32: what a GPU would hold), CPU step time (median of ``--reps``), and the
ratios host + Finsta / host.

    OMP_NUM_THREADS=1 nice python benchmarks/table9_cost.py [--batch 2] [--frames 12] [--reps 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from finsta_core.config import FinstaConfig
from finsta_core.graphs.batch import collate_graphs
from finsta_core.model import Finsta
from finsta_core.schedule import loss_weights
from finsta_core.testing import random_hsg
from hosts.base import HostBatch
from hosts.registry import create_host

# Paper Table 9 (HDVILA / Clover with Finsta): relative increase over the raw host.
PAPER = {"params": (0.281, 0.337), "gflops": (0.163, 0.160), "gpu_memory": (0.406, 0.351)}


def word_tokenizer(texts: list[str]) -> Any:
    """A fast CLIP-style WordLevel tokenizer over the words of ``texts`` (offline; ids fit any CLIP vocab)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>"]
    words = sorted({w for t in texts for w in t.lower().replace(".", " . ").replace(",", " , ").split()})
    vocab = {t: i for i, t in enumerate(specials + words)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    bos, eos = "<|startoftext|>", "<|endoftext|>"
    tk.post_processor = processors.TemplateProcessing(single=f"{bos} $A {eos}",
                                                      special_tokens=[(bos, vocab[bos]), (eos, vocab[eos])])
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token=bos, eos_token=eos, pad_token="<pad>",
                                   unk_token="<unk>")


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def saved_activation_bytes(fn: Callable[[], torch.Tensor], params: list[nn.Parameter]) -> tuple[torch.Tensor, int]:
    """Run ``fn`` (a forward returning the loss) and count bytes of distinct tensors saved for backward, leaving
    out the parameters themselves (a matmul saves its weight; that is not activation memory)."""
    weights = {p.untyped_storage().data_ptr() for p in params}
    seen: dict[tuple[int, int], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.device.type != "meta" and t.numel():
            st = t.untyped_storage()
            if st.data_ptr() not in weights:
                seen[(st.data_ptr(), st.nbytes())] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = fn()
    return loss, sum(seen.values())


def measure(name: str, params: list[nn.Parameter], loss_fn: Callable[[], torch.Tensor], reps: int) -> dict[str, Any]:
    """FLOPs (fwd + bwd), activation bytes, step time (fwd + bwd + AdamW) of one configuration."""
    from torch.utils.flop_counter import FlopCounterMode

    opt = torch.optim.AdamW(params, lr=1e-5)
    counter = FlopCounterMode(display=False)
    with counter:
        loss = loss_fn()
        loss.backward()
    flops = counter.get_total_flops()
    opt.zero_grad(set_to_none=True)
    loss, act = saved_activation_bytes(loss_fn, params)
    loss.backward()
    opt.step()  # allocates the AdamW moments (warm-up step, not timed)
    opt.zero_grad(set_to_none=True)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        loss = loss_fn()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    n = sum(p.numel() for p in params)
    train_mem = 4 * (4 * n) + act  # fp32 params + grads + two AdamW moments, plus activations
    step = statistics.median(times) if times else float("nan")  # --reps 0: counts only, no timing
    print(f"[{name}] loss {float(loss.detach()):.3f}; {flops / 1e9:.1f} GFLOPs; activations {act / 2**20:.0f} MiB; "
          f"step {step:.2f} s", flush=True)
    return {"flops": flops, "activation_bytes": act, "train_memory_bytes": train_mem,
            "step_s": step, "step_s_all": times, "trainable_params": n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=2, help="videos per step")
    ap.add_argument("--frames", type=int, default=12, help="host frames per video (CLIP4Clip: 12)")
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--keyframes", type=int, default=12, help="DSG keyframes per video (paper: 10-50)")
    ap.add_argument("--objects", type=int, default=5, help="tracked objects per video")
    ap.add_argument("--reps", type=int, default=2, help="timed steps (0: counts only)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--finsta-preset", default="paper")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from transformers import CLIPConfig

    fcfg = FinstaConfig.preset(args.finsta_preset)
    graphs = [random_hsg(seed=i, num_frames=args.keyframes, num_objects=args.objects,
                         feature_dim=fcfg.feature_dim or None, frame_size=(args.resolution, args.resolution))
              for i in range(args.batch)]
    texts = [g.tsg.caption for g in graphs]
    clip_config = CLIPConfig()  # OpenAI ViT-B/32 shapes
    clip_config.vision_config.image_size = args.resolution
    host = create_host("clip4clip", random_init=True, clip_config=clip_config, tokenizer=word_tokenizer(texts),
                       sim_header="seqTransf", seq_layers=4, num_frames=args.frames)
    host.train()
    video = torch.randn(args.batch, args.frames, 3, args.resolution, args.resolution)
    times = torch.linspace(0, 10, args.frames).repeat(args.batch, 1)
    batch = HostBatch(video, times, texts)
    widths = {k: (host.first_layer_widths()[k], w) for k, w in host.encoder_widths().items()}
    finsta = Finsta(fcfg, widths)
    finsta.train()
    gb = collate_graphs(graphs)
    w = loss_weights(fcfg, 2, 0, 100)

    def host_loss() -> torch.Tensor:
        return host.posttrain_outputs(batch, with_losses=True).losses["vla"]

    def joint_loss() -> torch.Tensor:
        out_host = host.posttrain_outputs(batch, with_losses=True)
        out = finsta(gb, out_host, stage=2, step=0, task_family="retrieval")
        losses = {**out.losses, **out_host.losses}
        return torch.stack([w[k] * v for k, v in losses.items() if w.get(k, 0.0)]).sum()

    p_host, p_fin = n_params(host), n_params(finsta)
    emb = [m for m in finsta.modules() if isinstance(m, nn.Embedding) and m.num_embeddings == fcfg.vocab_size]
    p_emb = sum(n_params(m) for m in emb)
    print(f"params: host {p_host / 1e6:.1f}M, Finsta {p_fin / 1e6:.1f}M (label-embedding tables "
          f"{p_emb / 1e6:.1f}M, rest {(p_fin - p_emb) / 1e6:.1f}M)", flush=True)
    h = measure("host", list(host.parameters()), host_loss, args.reps)
    j = measure("host + Finsta", [*host.parameters(), *finsta.parameters()], joint_loss, args.reps)
    rows = {
        "params": (p_host, p_host + p_fin),
        "params (Finsta without label embeddings)": (p_host, p_host + p_fin - p_emb),
        "GFLOPs / step (fwd + bwd)": (h["flops"] / 1e9, j["flops"] / 1e9),
        "activation memory (MiB)": (h["activation_bytes"] / 2**20, j["activation_bytes"] / 2**20),
        "training memory (MiB, fp32 + AdamW)": (h["train_memory_bytes"] / 2**20, j["train_memory_bytes"] / 2**20),
        "CPU step time (s)": (h["step_s"], j["step_s"]),
    }
    print(f"\nCLIP4Clip ViT-B/32 ({args.frames} frames, {args.resolution} px, batch {args.batch}) + Finsta "
          f"(preset {args.finsta_preset}: d={fcfg.d_model}, {fcfg.tsg_layers}/{fcfg.dsg_layers}/{fcfg.hsg_layers} "
          f"layers, {fcfg.heads} heads), {args.threads} thread(s)")
    print("| item | host | host + Finsta | ratio |\n|---|---|---|---|")
    for k, (a, b) in rows.items():
        fmt = (lambda x: f"{x / 1e6:.1f}M") if k.startswith("params") else (lambda x: f"{x:,.1f}")
        print(f"| {k} | {fmt(a)} | {fmt(b)} | x{b / a:.2f} (+{100 * (b / a - 1):.0f}%) |")
    pp = PAPER["params"]
    print(f"paper Table 9 (HDVILA / Clover): params +{100 * pp[0]:.0f}% / +{100 * pp[1]:.0f}%, "
          f"GFLOPs +{100 * PAPER['gflops'][0]:.0f}% / +{100 * PAPER['gflops'][1]:.0f}%, GPU memory "
          f"+{100 * PAPER['gpu_memory'][0]:.0f}% / +{100 * PAPER['gpu_memory'][1]:.0f}%")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows, "host": h, "host_finsta": j,
                       "finsta_label_embedding_params": p_emb, "paper": PAPER}, f, indent=1)


if __name__ == "__main__":
    main()
