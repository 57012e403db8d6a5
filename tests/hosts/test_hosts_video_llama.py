"""Video-LLaMA, native (Blip2VisionModel + Q-Former + frame positions + video Q-Former + Linear + Llama): parity of
the video branch with the official code (fixtures from scripts/parity/video_llama.py over
DAMO-NLP-SG/Video-LLaMA@64888c0), loading of the official files, the contract and the LLM-host capabilities."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from contract import check_host_contract
from tiny_builders import make_video, tiny_video_llama, tiny_video_llama_configs

from hosts.base import HostBatch
from hosts.errors import CheckpointError
from hosts.registry import create_host

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "hosts" / "video_llama"
TOL = dict(rtol=0.0, atol=1e-5)


def _official(path: Path = FIXTURE):
    return create_host("video_llama", checkpoint=path, num_frames=3, **tiny_video_llama_configs()).eval()


def test_parity_with_official_code():
    """The official files (EVA ViT, BLIP-2 Q-Former, VL branch with LAVIS names) load into our module; the first
    ViT block, the per-frame image-query outputs and the LLM video tokens (``inputs_llama``) equal the official
    ``encode_videoQformer_visual``'s; a perturbed video-Q-Former weight is caught."""
    refs = torch.load(FIXTURE / "refs.pt", weights_only=True)
    host = _official()
    video = refs["video"]
    b, t = video.shape[:2]
    with torch.no_grad():
        vis = host.visual_encoder(pixel_values=video.flatten(0, 1), output_hidden_states=True)
        torch.testing.assert_close(vis.hidden_states[1], refs["first"], **TOL)
        first, queries, tokens = host.video_branch(video)
        torch.testing.assert_close(queries, refs["queries"], **TOL)
        torch.testing.assert_close(tokens, refs["inputs_llama"], **TOL)
        host.video_Qformer.encoder.layer[1].crossattention.attention.value.weight[0, 0] += 0.05
        bad = host.video_branch(video)[2]
    assert (bad - refs["inputs_llama"]).abs().max() > 10 * TOL["atol"]


def test_missing_official_file_is_named(tmp_path):
    d = tmp_path / "vl"
    shutil.copytree(FIXTURE, d, ignore=shutil.ignore_patterns("refs.pt", "eva_vit_g.pth"))
    with pytest.raises(CheckpointError, match="eva_vit_g.pth.*LAVIS"):
        _official(d)


def test_contract_and_clip_level_cross_output():
    host = tiny_video_llama()
    video, times = make_video(2, 3, 28)
    out = check_host_contract(host, HostBatch(video, times, ["a man throws a red ball .", "the dog runs"]))
    assert set(out.losses) == {"mlm"} and host.spec.arch == "¥V¥"
    assert out.video.pooled.shape == (2, 3, 32) and out.video.first_layer.states.shape == (2, 3 * 5, 48)
    assert out.cross.pooled.shape == (2, 1, 32)  # the video queries see every frame: one clip-level output
    torch.testing.assert_close(out.cross.frame_times, times.mean(1, keepdim=True))


def test_post_trained_file_loads(tmp_path):
    src = _official()
    with torch.no_grad():
        src.llama_proj.bias.add_(1.0)
    src.save(tmp_path / "host.safetensors")
    back = create_host("video_llama", checkpoint=tmp_path / "host.safetensors", llm_config=FIXTURE / "llama",
                       tokenizer=FIXTURE / "llama", num_frames=3, **tiny_video_llama_configs())
    assert torch.equal(back.llama_proj.bias, src.llama_proj.bias)
