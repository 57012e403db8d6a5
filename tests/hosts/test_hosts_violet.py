"""VIOLET host: parity with the official code (fixtures from scripts/parity/violet.py), host contract, a Finsta
post-training step, checkpoint handling, planning of its paper cells. No downloads, no official code needed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from contract import check_host_contract
from part2_checks import assert_matches, assert_plans, finsta_stage2_step, load_reference, seeded_batch, seeded_tiny

from hosts.base import HostBatch
from hosts.errors import CapabilityError, CheckpointError
from hosts.registry import create_host, get_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hosts" / "violet"
TOL = 1e-5
MEAN, STD = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def reference() -> tuple[dict[str, torch.Tensor], list[str]]:
    ref, meta = load_reference(FIXTURES)
    return ref, meta["texts"].split("\n")


def official_host():
    return create_host("violet", checkpoint=FIXTURES).eval()


def tiny_host():
    return seeded_tiny("violet", FIXTURES)


def batch(t: int = 3, res: int = 64) -> HostBatch:
    return seeded_batch(t, res)


def outputs(host, ref, texts) -> dict[str, torch.Tensor]:
    video = (ref["video"] - MEAN) / STD  # the official EncImg normalises inside; our preprocessing does it before
    with torch.no_grad():
        img, vfirst, _ = host.enc_img(video)
        tok = host.tokenize(texts)
        assert torch.equal(tok.input_ids, ref["input_ids"])
        txt = host.enc_txt(tok.input_ids)
        last, first = host.cross(img, txt, tok.attention_mask)
        return {"video_first": vfirst, "feat_img": img, "feat_txt": txt, "cross_first": first, "cross_last": last,
                "pair_scores": host.score_pairs(video, texts)}


def test_parity_with_official_code():
    """Official VIOLET_Base + retrieval fc (tsujuifu/pytorch_violet @4f64751, tiny, random) vs this host on the same
    weights: first Swin block, frame tokens, text embeddings, cross encoder and pair scores agree to 1e-5."""
    ref, texts = reference()
    host = official_host()
    assert host.load_report == {"missing": [], "unexpected": [], "dropped": []}
    assert_matches(outputs(host, ref, texts), ref, TOL)
    # negative control: one perturbed Swin weight moves the frame tokens and the scores, not the text embeddings
    with torch.no_grad():
        host.enc_img.swin.layers[2].blocks[0].attn.qkv.weight[0, 0] += 0.5
    bad = outputs(host, ref, texts)
    assert (bad["feat_img"] - ref["feat_img"]).abs().max() > 10 * TOL
    assert (bad["feat_txt"] - ref["feat_txt"]).abs().max() < TOL
    # ... and one perturbed weight of the cross encoder moves its output
    host = official_host()
    with torch.no_grad():
        host.trsfr.layer[0].attention.self.query.weight[0, 0] += 0.5
    bad = outputs(host, ref, texts)
    assert (bad["cross_last"] - ref["cross_last"]).abs().max() > 10 * TOL


def test_checkpoint_handling(tmp_path):
    state = torch.load(FIXTURES / "ckpt_violet_pretrain.pt", map_location="cpu", weights_only=True)
    extra = {**state, "fc_mtm.predictions.bias": torch.zeros(3)}
    torch.save(extra, tmp_path / "ckpt_violet_pretrain.pt")
    host = create_host("violet", checkpoint=tmp_path, tokenizer=FIXTURES)
    assert host.load_report["dropped"] == ["fc_mtm.predictions.bias"]
    torch.save({**state, "enc_img.surprise": torch.zeros(1)}, tmp_path / "ckpt_violet_pretrain.pt")
    with pytest.raises(CheckpointError, match="unexpected"):
        create_host("violet", checkpoint=tmp_path, tokenizer=FIXTURES)
    torch.save({"x": torch.zeros(1)}, tmp_path / "ckpt_violet_pretrain.pt")
    with pytest.raises(CheckpointError, match="not a VIOLET checkpoint"):
        create_host("violet", checkpoint=tmp_path, tokenizer=FIXTURES)
    spec = get_spec("violet")
    assert spec.status == "implemented" and spec.parity.endswith("test_parity_with_official_code")


def test_video_swin_initialisation_loads(tmp_path):
    """The second official file, ckpt_video-swin.pt (a plain SwinTransformer3D state dict), loads into enc_img.swin."""
    state = torch.load(FIXTURES / "ckpt_violet_pretrain.pt", map_location="cpu", weights_only=True)
    swin = {k[len("enc_img.swin."):]: v for k, v in state.items() if k.startswith("enc_img.swin.")}
    torch.save(swin, tmp_path / "ckpt_video-swin.pt")
    host = create_host("violet", random_init=True, size="tiny", tokenizer=FIXTURES,
                       swin_checkpoint=tmp_path / "ckpt_video-swin.pt")
    official = official_host()
    for k, v in official.enc_img.swin.state_dict().items():
        assert torch.equal(host.enc_img.swin.state_dict()[k], v), k
    torch.save({"layers.9.x": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="not VIOLET's Video Swin"):
        create_host("violet", random_init=True, size="tiny", tokenizer=FIXTURES, swin_checkpoint=tmp_path / "bad.pt")


def test_contract_tiny_random():
    host = tiny_host()
    out = check_host_contract(host, batch())
    assert set(out.losses) == {"vla"}
    # one temporal token per frame (stride 1); 64 px -> 16x16 first-block grid, 2x2 output grid + frame [CLS]
    assert out.video.first_layer.states.shape == (2, 3 * 256, 4)
    assert out.cross.first_layer.states.shape[1] == 3 * 5 + out.text.first_layer.states.shape[1]
    assert out.video.pooled.shape == (2, 3, 32) and out.cross.pooled.shape == (2, 3, 32)


def test_contract_official_fixture_and_qa_head():
    host = official_host()
    check_host_contract(host, batch())
    assert host.task_head(1) is host.fc and host.task_head(7) is not host.fc
    with torch.no_grad():
        host.fc[3] = torch.nn.Linear(64, 7)  # an open-ended QA checkpoint: fc has one output per answer
    with pytest.raises(CapabilityError, match="7 outputs"):
        host.score_pairs(batch().video, ["a man"])


def test_finsta_posttrain_step():
    host = tiny_host()
    b = batch()
    finsta_stage2_step(host, b.video, b.frame_times)
    assert host.enc_img.swin.patch_embed.proj.weight.grad is not None


PAPER_TASKS = [("didemo_ret", "finetune"), ("lsmdc_ret", "finetune"), ("msrvtt_mc", "finetune"),
               ("msrvtt_qa", "finetune"), ("msvd_qa", "finetune"), ("tgif_frameqa", "finetune"),
               ("k400", "zeroshot"), ("lsmdc_ret", "zeroshot"), ("msvd_qa", "zeroshot")]  # Tables 3, 4, 7


@pytest.mark.parametrize("task,mode", PAPER_TASKS)
def test_paper_cells_plan(task, mode, tmp_path):
    assert_plans("violet", task, mode, FIXTURES / "ckpt_violet_pretrain.pt", tmp_path)
