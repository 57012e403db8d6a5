"""Speed of the synthetic benchmark and the tiny hosts (issue 7 budget: the demo must fit in 10 CPU minutes).

Prints: clips + exact HSGs generated per second (and the share of time spent on graphs, as a ratio against
generation without graphs in the same process), parameter counts of ``tiny`` / ``tiny_dual`` / ``tiny_cross``,
and the wall time of one training step (own losses, batch 32) and one no-grad forward.

    python benchmarks/synthetic_speed.py [--n 1000] [--batch 32] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from hosts.base import HostBatch
from hosts.registry import create_host
from tasks.synthetic import SynthConfig, build_split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = SynthConfig(size=args.size)
    t = time.perf_counter()
    samples = build_split("pairs", "train", cfg, n=args.n)
    with_g = time.perf_counter() - t
    t = time.perf_counter()
    build_split("pairs", "train", cfg, n=args.n, with_graphs=False)
    without = time.perf_counter() - t
    print(f"generation: {args.n} clips + HSGs in {with_g:.2f} s ({args.n / with_g:.0f} clips/s); "
          f"without graphs {without:.2f} s (graphs add x{with_g / without:.2f})")
    b = samples[: args.batch]
    idx = torch.linspace(0, cfg.num_frames - 1, cfg.host_frames).round().long()  # the task protocol's frames
    times = torch.stack([s.timestamps[idx] for s in b])
    for name in ("tiny", "tiny_dual", "tiny_cross"):
        host = create_host(name, image_size=args.size)
        video = host.preprocess(torch.stack([s.frames[idx] for s in b]))
        batch = HostBatch(video, times, [s.texts[0] for s in b])
        opt = torch.optim.AdamW(host.parameters(), 1e-3)
        host.train()
        steps = []
        for _ in range(4):
            t = time.perf_counter()
            out = host.posttrain_outputs(batch, with_losses=True)
            loss = sum(out.losses.values())
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps.append(time.perf_counter() - t)
        host.eval()
        with torch.no_grad():
            t = time.perf_counter()
            host.posttrain_outputs(batch, with_losses=False)
            fwd = time.perf_counter() - t
        n_par = sum(p.numel() for p in host.parameters())
        print(f"{name:11s} params {n_par / 1e6:.3f}M  train step (batch {args.batch}) {1000 * min(steps[1:]):.0f} ms  "
              f"forward {1000 * fwd:.0f} ms")


if __name__ == "__main__":
    main()
