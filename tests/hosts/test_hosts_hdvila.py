"""HD-VILA host: parity with the official code (fixtures from scripts/parity/hdvila.py), host contract, a Finsta
post-training step, checkpoint handling, planning of its paper cells. No downloads, no official code needed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from contract import check_host_contract
from part2_checks import assert_matches, assert_plans, finsta_stage2_step, load_reference, seeded_batch, seeded_tiny

from hosts.base import HostBatch
from hosts.errors import CheckpointError
from hosts.registry import create_host, get_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hosts" / "hdvila"
CKPT = FIXTURES / "hdvila_stage2.pt"
TOL = 1e-5  # relative to the reference's largest magnitude (the ResNet grids reach ~10 in float32)
MEAN = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)


def reference() -> tuple[dict[str, torch.Tensor], list[str]]:
    ref, meta = load_reference(FIXTURES)
    return ref, meta["texts"].split("\n")


def official_host():
    return create_host("hdvila", checkpoint=FIXTURES).eval()


def tiny_host():
    return seeded_tiny("hdvila", FIXTURES)


def batch(t: int = 9, res: int = 32) -> HostBatch:
    return seeded_batch(t, res)


def outputs(host, ref, texts) -> dict[str, torch.Tensor]:
    frames = ref["frames"]  # [B, clips, k, 3, R, R] in 0-255, as the official model takes them
    video = ((frames - MEAN) / STD).flatten(1, 2)  # our host: normalised frames, clips of 7 consecutive frames
    with torch.no_grad():
        fused, vfirst, clips = host.encode_clips(video)
        assert clips == [list(range(7)), list(range(7, 14))]
        tok = host.tokenize(texts)
        assert torch.equal(tok.input_ids, ref["input_ids"])
        text, tfirst, tfeat = host.encode_text_states(tok.input_ids, tok.attention_mask)
        _, cfirst, pooled = host.cross(text, tok.attention_mask, fused)
        tv, vv = host.encode_text(texts), host.encode_video(video)
    return {"video_first": vfirst, "fused": fused, "text_first": tfirst, "cross_first": cfirst, "pooler2": pooled,
            "text_features": tv, "vis_features": vv, "similarity": tv @ vv.t()}


def test_parity_with_official_code():
    """Official HDVILA + HDVILAForPreTraining (microsoft/XPretrain @c37c904, stage 2, tiny, random) vs this host on
    the same weights: first TimeSformer block, fused grids, first text and cross layers, pooler2, the retrieval
    features and their similarities agree to 1e-5."""
    ref, texts = reference()
    host = official_host()
    assert host.load_report["unexpected"] == []
    assert all(k.startswith(("transformer.classifier.", "caption_decoder.")) for k in host.load_report["missing"])
    assert host.load_report["dropped"] and all(k.startswith("transformer.cls.") for k in host.load_report["dropped"])
    got = outputs(host, ref, texts)
    assert_matches(got, ref, TOL, relative=True)
    # negative control: one perturbed weight of the low-resolution ResNet moves the video side, not the text side
    with torch.no_grad():
        host.cnn_low.conv1.weight[0, 0, 0, 0] += 0.5
    bad = outputs(host, ref, texts)
    assert (bad["fused"] - ref["fused"]).abs().max() > 1e-3
    assert (bad["text_features"] - ref["text_features"]).abs().max() < TOL
    # ... and one perturbed cross-encoder weight moves pooler2 only
    host = official_host()
    with torch.no_grad():
        host.transformer.bert.encoder.layer[host.split].attention.self.query.weight[0, 0] += 0.5
    bad = outputs(host, ref, texts)
    assert (bad["pooler2"] - ref["pooler2"]).abs().max() > 10 * TOL
    assert (bad["similarity"] - ref["similarity"]).abs().max() < TOL


def test_checkpoint_handling(tmp_path):
    state = torch.load(CKPT, map_location="cpu", weights_only=True)
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "hdvila_stage2.pt")  # DDP-saved
    host = create_host("hdvila", checkpoint=tmp_path, tokenizer=FIXTURES)
    assert host.load_report["unexpected"] == []
    torch.save({**state, "timesformer.surprise": torch.zeros(1)}, tmp_path / "hdvila_stage2.pt")
    with pytest.raises(CheckpointError, match="unexpected"):
        create_host("hdvila", checkpoint=tmp_path, tokenizer=FIXTURES)
    torch.save({k: v for k, v in state.items() if not k.startswith("timesformer.")}, tmp_path / "hdvila_stage2.pt")
    with pytest.raises(CheckpointError, match="missing"):
        create_host("hdvila", checkpoint=tmp_path, tokenizer=FIXTURES)
    torch.save({"x": torch.zeros(1)}, tmp_path / "hdvila_stage2.pt")
    with pytest.raises(CheckpointError, match="not an HD-VILA checkpoint"):
        create_host("hdvila", checkpoint=tmp_path, tokenizer=FIXTURES)
    spec = get_spec("hdvila")
    assert spec.status == "implemented" and spec.parity.endswith("test_parity_with_official_code")


def test_contract_tiny_random():
    host = tiny_host()
    out = check_host_contract(host, batch())
    assert set(out.losses) == {"itc"}
    # 9 frames -> 2 overlapping clips of 7; 32 px low-res -> 2x2 grid; pooled per clip at its middle frame's time
    assert out.video.pooled.shape == (2, 2, 32) and out.cross.pooled.shape == (2, 2, 32)
    torch.testing.assert_close(out.video.frame_times[0], torch.tensor([1.5, 2.5]))
    assert out.video.first_layer.states.shape == (2, 2 * 4 * 7, 32)


def test_contract_official_fixture_short_video():
    host = official_host()
    check_host_contract(host, batch(t=3), save_load=False)  # one clip of 3 frames
    assert host.task_head(1) is host.transformer.classifier and host.task_head(7) is not host.transformer.classifier


def test_finsta_posttrain_step():
    host = tiny_host()
    b = batch(t=7)
    finsta_stage2_step(host, b.video, b.frame_times)
    assert host.timesformer.blocks[0].attn.qkv.weight.grad is not None


PAPER_TASKS = [("k400", "finetune"), ("ssv2", "finetune"), ("msrvtt_cap", "finetune"), ("youcook2_cap", "finetune"),
               ("didemo_ret", "finetune"), ("lsmdc_ret", "finetune"), ("msrvtt_mc", "finetune"),
               ("msrvtt_qa", "finetune"), ("msvd_qa", "finetune"), ("tgif_frameqa", "finetune")]  # Tables 1-4


@pytest.mark.parametrize("task,mode", PAPER_TASKS)
def test_paper_cells_plan(task, mode, tmp_path):
    assert_plans("hdvila", task, mode, CKPT, tmp_path)
