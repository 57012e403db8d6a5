"""VideoCLIP host: parity with the official fairseq MMPT code (fixtures from scripts/parity/videoclip.py), the
one-off checkpoint conversion, host contract, a Finsta post-training step, planning of its paper cells."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest
import torch

from hosts.base import HostBatch
from hosts.errors import CheckpointError
from hosts.registry import create_host, get_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hosts" / "videoclip"
TOL = 1e-5


def reference():
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = FIXTURES / "reference.safetensors"
    with safe_open(str(path), "pt") as f:
        texts = f.metadata()["texts"].split("\n")
    return load_file(str(path)), texts


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
    for key, value in outputs(host, ref, texts).items():
        err = (value - ref[key]).abs().max().item()
        assert err < TOL, f"{key}: max |diff| {err:.2e} vs the official code"
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
    sys.path.insert(0, str(Path(__file__).parent))
    from contract import check_host_contract

    from finsta_core.config import FinstaConfig
    from finsta_core.graphs.batch import collate_graphs
    from finsta_core.model import Finsta
    from finsta_core.schedule import loss_weights
    from finsta_core.testing import random_hsg

    torch.manual_seed(0)
    host = create_host("videoclip", random_init=True, size="tiny", tokenizer=FIXTURES)
    graphs = [random_hsg(seed=i, num_frames=4) for i in range(2)]
    batch = HostBatch(torch.rand(2, 4, 3, 32, 32), torch.arange(4.0).repeat(2, 1), [g.tsg.caption for g in graphs])
    out = check_host_contract(host, batch)
    assert set(out.encoders()) == {"text", "video"} and set(out.losses) == {"vla"}
    assert host.task_head(5)(host.encode_joint(batch.video, ["what", "who"])).shape == (2, 5)
    widths = {k: (host.first_layer_widths()[k], w) for k, w in host.encoder_widths().items()}
    cfg = FinstaConfig.preset("small")
    finsta = Finsta(cfg, widths)
    host.train()
    out_host = host.posttrain_outputs(batch)
    res = finsta(collate_graphs(graphs), out_host, stage=2, step=0, task_family="generic")
    w = loss_weights(cfg, 2, 0, 10)
    sum(w.get(k, 0.0) * v for k, v in {**res.losses, **out_host.losses}.items()).backward()
    assert host.video_encoder.videomlp.linear1.weight.grad is not None
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in finsta.parameters())


PAPER_TASKS = [("didemo_ret", "finetune"), ("lsmdc_ret", "finetune"), ("msrvtt_mc", "finetune"),
               ("msrvtt_qa", "finetune"), ("msvd_qa", "finetune"), ("tgif_frameqa", "finetune"),
               ("k400", "zeroshot"), ("lsmdc_ret", "zeroshot"), ("msvd_qa", "zeroshot")]  # Tables 3, 4, 7


@pytest.mark.parametrize("task,mode", PAPER_TASKS)
def test_paper_cells_plan(task, mode, tmp_path):
    from harness.plan import plan_runs

    runs = plan_runs("videoclip", task, mode=mode, overrides=[f"host.checkpoint={FIXTURES / 'checkpoint_best.pt'}"],
                     preset="small", store_root=tmp_path, check_files=False)
    assert len(runs) == 1
