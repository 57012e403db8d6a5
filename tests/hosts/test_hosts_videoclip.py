"""VideoCLIP host: parity with the official fairseq MMPT code (fixtures from scripts/parity/videoclip.py), the
one-off checkpoint conversion, host contract, a Finsta post-training step, planning of its paper cells."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from contract import check_host_contract
from part2_checks import assert_matches, assert_plans, finsta_stage2_step, load_reference, stage2_graphs

from hosts.base import HostBatch
from hosts.errors import CheckpointError
from hosts.registry import create_host, get_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hosts" / "videoclip"
TOL = 1e-5


def reference():
    ref, meta = load_reference(FIXTURES)
    return ref, meta["texts"].split("\n")


def outputs(host, ref, texts) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        tok = host.tokenize(texts)
        assert torch.equal(tok.input_ids, ref["input_ids"])
        tl, tf = host.text_states(tok)
        vl, vf, vm = host.video_states(ref["features"])
        return {"text_first": tf, "text_pooled": host.pool_text(tl, tok.attention_mask), "video_first": vf,
                "video_last": vl, "video_pooled": host.pool_video(vl, vm)}


def test_parity_with_official_code():
    """Official MMFusionSeparate (fairseq @3d262bb examples/MMPT, tiny, random) vs this host on the same weights,
    over the same S3D features: first-layer states and the pooled text / video vectors agree to 1e-5."""
    ref, texts = reference()
    host = create_host("videoclip", checkpoint=FIXTURES / "checkpoint_best.pt").eval()
    assert host.load_report == {"missing": [], "unexpected": []}  # built without S3D: none of its keys expected
    assert_matches(outputs(host, ref, texts), ref, TOL)
    with torch.no_grad():  # negative control: one video-MLP weight
        host.video_encoder.videomlp.linear1.weight[0, 0] += 0.5
    bad = outputs(host, ref, texts)
    assert (bad["video_pooled"] - ref["video_pooled"]).abs().max() > 10 * TOL
    assert (bad["text_pooled"] - ref["text_pooled"]).abs().max() < TOL


def test_fairseq_checkpoint_conversion(tmp_path):
    """A fairseq file with pickled config objects is refused by the safe loader (one line), converted once by the
    user-run command, then loads."""
    from hosts.videoclip import main

    state = torch.load(FIXTURES / "checkpoint_best.pt", map_location="cpu", weights_only=True)
    torch.save({"model": state["model"], "args": argparse.Namespace(arch="mmfusion")}, tmp_path / "checkpoint_best.pt")
    with pytest.raises(CheckpointError, match="cannot read"):
        create_host("videoclip", checkpoint=tmp_path / "checkpoint_best.pt", tokenizer=FIXTURES)
    assert main(["convert", str(tmp_path / "checkpoint_best.pt"), str(tmp_path / "videoclip.safetensors")]) == 0
    host = create_host("videoclip", checkpoint=tmp_path / "videoclip.safetensors", tokenizer=FIXTURES)
    assert host.load_report["unexpected"] == []
    with pytest.raises(CheckpointError, match="S3D"):
        host.encode_video(torch.rand(1, 2, 3, 32, 32))
    spec = get_spec("videoclip")
    assert spec.status == "implemented" and not spec.has_cross


def test_contract_and_finsta_step_tiny_random():

    torch.manual_seed(0)
    host = create_host("videoclip", random_init=True, size="tiny", tokenizer=FIXTURES)
    graphs = stage2_graphs()
    batch = HostBatch(torch.rand(2, 4, 3, 32, 32), torch.arange(4.0).repeat(2, 1), [g.tsg.caption for g in graphs])
    out = check_host_contract(host, batch)
    assert set(out.encoders()) == {"text", "video"} and set(out.losses) == {"vla"}
    assert host.task_head(5)(host.encode_joint(batch.video, ["what", "who"])).shape == (2, 5)
    host.train()
    finsta_stage2_step(host, batch.video, batch.frame_times, check_losses=False)
    assert host.video_encoder.videomlp.linear1.weight.grad is not None


PAPER_TASKS = [("didemo_ret", "finetune"), ("lsmdc_ret", "finetune"), ("msrvtt_mc", "finetune"),
               ("msrvtt_qa", "finetune"), ("msvd_qa", "finetune"), ("tgif_frameqa", "finetune"),
               ("k400", "zeroshot"), ("lsmdc_ret", "zeroshot"), ("msvd_qa", "zeroshot")]  # Tables 3, 4, 7


@pytest.mark.parametrize("task,mode", PAPER_TASKS)
def test_paper_cells_plan(task, mode, tmp_path):
    assert_plans("videoclip", task, mode, FIXTURES / "checkpoint_best.pt", tmp_path)
