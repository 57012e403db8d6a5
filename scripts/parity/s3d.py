"""Regenerate the S3D parity reference (tests/fixtures/hosts/s3d/reference.safetensors) from the official code.

Method (issue 12): build the official ``S3D`` of antoine77340/S3D_HowTo100M (``s3dg.py``, the network UniVL's and
VideoCLIP's feature extractors use), fill every parameter and BatchNorm statistic with values drawn from a
generator seeded per key name (:func:`seeded_state`; the test builds the same values for ``hosts.bert.s3d.S3D``, so
no 30 MB checkpoint is committed), run it in ``eval()`` on a seeded random video, and store ``mixed_5c`` and
``video_embedding``. The official text branch needs a word list: a tiny one is written to a temporary file.

Usage: python scripts/parity/s3d.py --repo <git checkout of antoine77340/S3D_HowTo100M>
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import types
import zlib
from pathlib import Path

import numpy as np
import torch

SEED, SHAPE = 0, (2, 3, 8, 32, 32)  # [B, 3, T, H, W] in [0, 1]


def seeded_state(state: dict[str, torch.Tensor], seed: int = SEED) -> dict[str, torch.Tensor]:
    """Deterministic values per key (independent of which other keys exist): fan-in-scaled weights, BatchNorm
    scales near 1, positive running variances."""
    out = {}
    for k, v in state.items():
        if not v.is_floating_point():
            out[k] = v
            continue
        g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(k.encode()))
        r = torch.randn(v.shape, generator=g)
        if k.endswith("running_var"):
            out[k] = 1.0 + 0.1 * r.abs()
        elif k.endswith("running_mean") or k.endswith("bias"):
            out[k] = 0.1 * r
        elif v.dim() == 1:
            out[k] = 1.0 + 0.1 * r
        else:
            out[k] = r / (v[0].numel() ** 0.5)
    return out


def seeded_video(seed: int = SEED) -> torch.Tensor:
    return torch.rand(SHAPE, generator=torch.Generator().manual_seed(seed + 1))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, required=True, help="checkout or git mirror of antoine77340/S3D_HowTo100M")
    ap.add_argument("--out", type=Path, default=Path("tests/fixtures/hosts/s3d"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    src = (args.repo / "s3dg.py").read_text() if (args.repo / "s3dg.py").is_file() else subprocess.run(
        ["git", "--git-dir", str(args.repo / ".git" if (args.repo / ".git").exists() else args.repo), "show",
         "HEAD:s3dg.py"], check=True, capture_output=True, text=True).stdout
    official = types.ModuleType("s3dg")
    exec(compile(src, "s3dg.py", "exec"), official.__dict__)
    with tempfile.TemporaryDirectory() as tmp:
        words = Path(tmp) / "dict.npy"
        np.save(words, np.array(["video", "man", "dog"]))
        model = official.S3D(str(words), 512)
    model.load_state_dict(seeded_state(model.state_dict()))
    model.eval()
    with torch.no_grad():
        out = model(seeded_video())
    args.out.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in out.items()}, str(args.out / "reference.safetensors"),
              metadata={"source": "antoine77340/S3D_HowTo100M s3dg.py", "seed": str(SEED), "shape": str(SHAPE)})
    print(f"wrote {args.out / 'reference.safetensors'}: {({k: tuple(v.shape) for k, v in out.items()})}")


if __name__ == "__main__":
    main()
