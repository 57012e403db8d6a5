"""Checks the part-2 host tests share (tests/hosts/test_hosts_{allinone,clover,hdvila,lfvila,mcq,univl,videoclip,
violet}.py): reading a parity fixture's reference, comparing a host's outputs with it, one Finsta stage-2 step on a
host, and planning a paper cell with the fixture checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch

from hosts.base import Host, HostBatch

CAPTIONS = ("a man throws a red ball", "the dog")


def seeded_tiny(name: str, tokenizer: Path, **options) -> Host:
    """The tiny random build of host ``name`` (torch seed 0, so every test sees the same weights)."""
    from hosts.registry import create_host

    torch.manual_seed(0)
    return create_host(name, random_init=True, size="tiny", tokenizer=tokenizer, **options)


def seeded_batch(t: int, res: int, texts: tuple[str, ...] = CAPTIONS, step: float = 0.5) -> HostBatch:
    """Two seeded random clips ``[2, t, 3, res, res]`` at times ``0, step, 2 step, ...`` with ``texts``."""
    g = torch.Generator().manual_seed(0)
    return HostBatch(torch.randn(len(texts), t, 3, res, res, generator=g),
                     torch.arange(t, dtype=torch.float32).repeat(len(texts), 1) * step, list(texts))

def load_reference(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and the metadata of ``folder/reference.safetensors`` (written by scripts/parity/<host>.py)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = folder / "reference.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    return load_file(str(path)), meta


def assert_matches(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor], tol: float, *,
                   relative: bool = False, what: str = "the official code") -> None:
    """Every ``got[key]`` within ``tol`` of ``want[key]`` in max absolute difference (``relative``: divided by
    ``max(1, max |want[key]|)``), with the key and the figure in the failure message."""
    for key, value in got.items():
        err = (value - want[key]).abs().max().item()
        if relative:
            err /= max(1.0, want[key].abs().max().item())
        kind = "max relative |diff|" if relative else "max |diff|"
        assert err < tol, f"{key}: {kind} {err:.2e} vs {what}"


def stage2_graphs(n: int = 2, num_frames: int = 4) -> list:
    """``n`` seeded random hierarchical scene graphs (seeds 0..n-1), as the Finsta steps below use."""
    from finsta_core.testing import random_hsg

    return [random_hsg(seed=i, num_frames=num_frames) for i in range(n)]


def finsta_stage2_step(host: Host, video: torch.Tensor, frame_times: torch.Tensor, *, optimise: bool = False,
                       check_losses: bool = True):
    """One Finsta stage-2 step (OSC + PTC + TRS + the host's own losses, Eq 42) on ``host`` over ``video``
    ``[B=2, T, 3, H, W]`` captioned by :func:`stage2_graphs`: builds Finsta (preset ``small``) on the host's widths,
    backpropagates the weighted total and asserts Finsta received gradients (``check_losses``: also that TRS ran
    and the total is finite; ``optimise``: then one AdamW step over host and Finsta). Returns the Finsta module;
    the caller checks the host weight it expects a gradient on."""
    from finsta_core.config import FinstaConfig
    from finsta_core.graphs.batch import collate_graphs
    from finsta_core.model import Finsta
    from finsta_core.schedule import loss_weights

    graphs = stage2_graphs()
    batch = HostBatch(video, frame_times, [g.tsg.caption for g in graphs])
    widths = {k: (host.first_layer_widths()[k], w) for k, w in host.encoder_widths().items()}
    cfg = FinstaConfig.preset("small")
    finsta = Finsta(cfg, widths)
    opt = torch.optim.AdamW([*host.parameters(), *finsta.parameters()], lr=1e-3) if optimise else None
    out_host = host.posttrain_outputs(batch)
    out = finsta(collate_graphs(graphs), out_host, stage=2, step=0, task_family="generic")
    w = loss_weights(cfg, 2, 0, 10)
    total = sum(w.get(k, 0.0) * v for k, v in {**out.losses, **out_host.losses}.items())
    if check_losses:
        assert "trs" in out.losses and torch.isfinite(total)
    if opt is not None:
        opt.zero_grad()
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in finsta.parameters())
    if opt is not None:
        opt.step()
    return finsta


def assert_plans(host: str, task: str, mode: str, checkpoint: Path, store_root: Path) -> None:
    """The paper cell ``host`` x ``task`` x ``mode`` plans to exactly one run with ``checkpoint`` (preset small)."""
    from harness.plan import plan_runs

    runs = plan_runs(host, task, mode=mode, overrides=[f"host.checkpoint={checkpoint}"], preset="small",
                     store_root=store_root, check_files=False)
    assert len(runs) == 1
