"""Video-ChatGPT, native (CLIPVisionModel + spatio-temporal pooling + Linear + LlamaForCausalLM): parity with
the official code (fixtures from scripts/parity/video_chatgpt.py over mbzuai-oryx/Video-ChatGPT@659e04b),
loading of the official layout, the contract and a Finsta post-training step."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from contract import check_host_contract
from tiny_builders import make_video, tiny_video_chatgpt

from hosts.base import HostBatch
from hosts.errors import CheckpointError
from hosts.registry import create_host
from hosts.video_chatgpt import spatio_temporal_pool

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "hosts" / "video_chatgpt"
TOL = dict(rtol=0.0, atol=1e-5)


def _vision_config(hidden: int = 1024):
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(hidden_size=hidden, intermediate_size=64, num_hidden_layers=2, num_attention_heads=8,
                            image_size=28, patch_size=14)


def _official_dir(tmp_path: Path) -> Path:
    """The fixture's official files plus a tiny CLIP vision directory (transformers' own class: nothing to
    compare, so it is not committed)."""
    from transformers import CLIPVisionModel

    d = tmp_path / "vcg"
    shutil.copytree(FIXTURE, d, ignore=shutil.ignore_patterns("refs.pt"))
    torch.manual_seed(0)
    CLIPVisionModel(_vision_config()).save_pretrained(d / "clip-vit-large-patch14")
    return d


def test_parity_with_official_code(tmp_path):
    """Pooling (official float16 output), first-layer LLM states and logits of the official class; the projector
    comes from video_chatgpt-7B.bin over the LLM directory's own; a perturbed weight is caught."""
    refs = torch.load(FIXTURE / "refs.pt", weights_only=True)
    host = create_host("video_chatgpt", checkpoint=_official_dir(tmp_path), num_frames=3).eval()
    pooled = spatio_temporal_pool(refs["features"].float(), host.temporal_slots)
    torch.testing.assert_close(pooled.half(), refs["pooled"], rtol=0, atol=0)
    tokens = host.llm.model.mm_projector(refs["pooled"].float())
    seq = host.build(host.chat_template, refs["questions"], 3)
    assert torch.equal(seq.input_ids, refs["input_ids"]) and bool(seq.mask.all())
    with torch.no_grad():
        out = host._llm(seq, tokens, hidden=True)
        torch.testing.assert_close(out.hidden_states[1], refs["first"], **TOL)
        torch.testing.assert_close(host.lm_head(out.last_hidden_state), refs["logits"], **TOL)
        host.llm.model.layers[1].mlp.down_proj.weight[0, 0] += 0.05
        bad = host.lm_head(host._llm(seq, tokens).last_hidden_state)
    assert (bad - refs["logits"]).abs().max() > 10 * TOL["atol"]


def test_official_layout_errors_name_the_missing_piece(tmp_path):
    d = _official_dir(tmp_path)
    shutil.rmtree(d / "clip-vit-large-patch14")
    with pytest.raises(CheckpointError, match="clip-vit-large-patch14.*openai/clip-vit-large-patch14"):
        create_host("video_chatgpt", checkpoint=d)
    with pytest.raises(CheckpointError, match="video_chatgpt-7B.bin.*MBZUAI/Video-ChatGPT-7B"):
        create_host("video_chatgpt", checkpoint=tmp_path / "elsewhere")


def build(**kw):
    return tiny_video_chatgpt(**kw)


def test_contract_and_token_maps():
    host = build()
    video, times = make_video(2, 3, 28)
    out = check_host_contract(host, HostBatch(video, times, ["a man throws a red ball .", "the dog runs"]))
    assert set(out.losses) == {"mlm"} and host.spec.arch == "¥V¥"
    assert out.video.pooled.shape == (2, 3, 48) and out.cross.pooled.shape == (2, 3, 32)
    cross = out.cross.first_layer
    # 4 temporal slots (3 frames + 1 zero pad) + 4 spatial tokens
    assert sorted(cross.frame_index[0][cross.frame_index[0] >= 0].tolist()) == [0, 1, 2]
    assert int((cross.patch_rc[0, :, 0] >= 0).sum()) == 0  # spatial tokens average all frames: no single frame


def test_post_trained_file_loads(tmp_path):
    """A host saved after post-training reloads from the file with config / tokenizer paths."""
    d = _official_dir(tmp_path)
    src = create_host("video_chatgpt", checkpoint=d, num_frames=3).eval()
    with torch.no_grad():
        src.llm.model.mm_projector.bias.add_(1.0)
    src.save(tmp_path / "host.safetensors")
    llm = d / "LLaVA-7B-Lightening-v1-1"
    back = create_host("video_chatgpt", checkpoint=tmp_path / "host.safetensors", llm_config=llm,
                       vision_config=d / "clip-vit-large-patch14", tokenizer=llm, num_frames=3)
    assert torch.equal(back.llm.model.mm_projector.bias, src.llm.model.mm_projector.bias)
