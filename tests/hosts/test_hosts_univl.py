"""UniVL's (and VideoCLIP's) video feature extractor: the HowTo100M S3D-G (hosts/bert/s3d.py) against the official
network (reference from scripts/parity/s3d.py). The UniVL host itself is not built yet (docs/hosts-bert-family.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from hosts.bert.s3d import S3D, s3d_from_official

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "hosts" / "s3d"
TOL = 1e-5


def parity_script():
    """scripts/parity/s3d.py (its seeded weights and video are what the reference was computed with)."""
    spec = importlib.util.spec_from_file_location("parity_s3d", ROOT / "scripts" / "parity" / "s3d.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_s3d_parity_with_official_code():
    """Same seeded weights as the official S3D (antoine77340/S3D_HowTo100M s3dg.py): mixed_5c (UniVL's 1024-d
    features) and video_embedding (VideoCLIP's 512-d) agree to 1e-5; one perturbed weight breaks it."""
    from safetensors.torch import load_file

    script = parity_script()
    ref = load_file(str(FIXTURES / "reference.safetensors"))
    torch.manual_seed(0)
    model = S3D().eval()
    official_keys = {**model.state_dict(), "text_module.word_embd.weight": torch.zeros(4, 300)}
    missing, unexpected = model.load_state_dict(s3d_from_official(script.seeded_state(official_keys)), strict=True)
    assert not missing and not unexpected
    video = script.seeded_video()
    with torch.no_grad():
        out = model(video)
    for key in ("mixed_5c", "video_embedding"):
        err = (out[key] - ref[key]).abs().max().item()
        assert err < TOL, f"{key}: max |diff| {err:.2e} vs the official S3D"
    with torch.no_grad():
        model.mixed_5b.conv_b0.bn1.bias[0] += 1.0
        bad = model(video)
    assert (bad["mixed_5c"] - ref["mixed_5c"]).abs().max() > 10 * TOL
