"""All-in-one host: parity with the official code (fixtures from scripts/parity/allinone.py), host contract, a
Finsta post-training step, checkpoint handling (Lightning checkpoint, conversion), captioning head, planning of its
paper cells. No downloads, no official code needed."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from contract import check_host_contract
from part2_checks import assert_matches, assert_plans, finsta_stage2_step, load_reference, seeded_batch, seeded_tiny

from hosts.base import HostBatch
from hosts.errors import CheckpointError
from hosts.registry import create_host, get_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hosts" / "allinone"
CKPT = FIXTURES / "all-in-one-base.ckpt"
TOL = 1e-5


def reference() -> tuple[dict[str, torch.Tensor], list[str], list[int]]:
    ref, meta = load_reference(FIXTURES)
    return ref, meta["texts"].split("\n"), [int(s) for s in meta["seeds"].split(",")]


def official_host(patch_shuffle: str = "always"):
    return create_host("allinone", checkpoint=FIXTURES, patch_shuffle=patch_shuffle).eval()


def tiny_host():
    return seeded_tiny("allinone", FIXTURES)


def batch(t: int = 3, res: int = 64) -> HostBatch:
    return seeded_batch(t, res)


def outputs(host, ref, texts, seeds) -> dict[str, torch.Tensor]:
    """The host's passes, each after the same RNG seed as the official one (the patch order is drawn)."""
    video, t = ref["video"], ref["video"].shape[1]
    with torch.no_grad():
        tok = host.tokenize(texts)
        lt = tok.input_ids.shape[1]
        assert torch.equal(tok.input_ids, ref["input_ids"][:, :lt])  # the official pads to max_text_len
        torch.manual_seed(seeds[0])
        img, _, _ = host.embed_video(video)
        last, first = host.fuse(img, t, host.embed_text(tok.input_ids), tok.attention_mask)
        mean = last.view(-1, t, *last.shape[1:]).mean(1)
        cls = host.cls_feats(last, t)
        out = {"block0_text": first[:, :lt], "block0_video": first[:, lt:], "cls_feats": cls,
               "text_feats": mean[:, :lt], "image_feats": mean[:, lt:], "rank_scores": host.rank_output(cls)[:, 0],
               "vqa_logits": host.vqa_classifier(cls), "itc_text": host.text_embedding(texts)}
        torch.manual_seed(seeds[1])
        out["itc_video"] = host.video_embedding(video)
        torch.manual_seed(seeds[2])
        out["pair_scores"] = host.score_pairs(video, texts)
    return out


def expected(ref: dict[str, torch.Tensor], lt: int) -> dict[str, torch.Tensor]:
    pad = ref["input_ids"].shape[1]
    return {**ref, "block0_text": ref["block0"][:, :lt], "block0_video": ref["block0"][:, pad:],
            "text_feats": ref["text_feats"][:, :lt]}


def test_parity_with_official_code():
    """Official AllinoneTransformerSS (showlab/all-in-one @ae0e288, tiny, random; temporal roll, ViLT patch sampling,
    ITM / retrieval / QA / ind_itc heads) vs this host on the same weights and RNG draws: block-0 states, fused
    features, cls_feats, retrieval and QA head outputs, single-modality embeddings and pair scores agree to 1e-5."""
    ref, texts, seeds = reference()
    host = official_host()
    assert all(k.startswith("caption_decoder.") for k in host.load_report["missing"])
    report = host.load_report
    assert report["unexpected"] == [] and all(k.startswith("mlm_score.") for k in report["dropped"])
    got = outputs(host, ref, texts, seeds)
    want = expected(ref, got["block0_text"].shape[1])
    assert_matches(got, want, TOL)
    # the patch order matters (temporal rolling moves tokens by sequence position): another draw differs
    bad = outputs(host, ref, texts, [s + 100 for s in seeds])
    assert (bad["image_feats"] - want["image_feats"]).abs().max() > 10 * TOL
    # negative control: one perturbed weight of the shared ViT moves the fused output, not the text embeddings
    with torch.no_grad():
        host.transformer.blocks[1].attn.qkv.weight[0, 0] += 0.5
        host.transformer.temporal_embed[0, 1, 0] += 0.5
    bad = outputs(host, ref, texts, seeds)
    assert (bad["cls_feats"] - want["cls_feats"]).abs().max() > 10 * TOL
    assert (bad["block0_video"] - want["block0_video"]).abs().max() > 10 * TOL


def test_checkpoint_handling(tmp_path):
    from hosts.allinone import main as allinone_main
    from hosts.allinone import read_allinone_state

    # the Lightning file pickles hyper-parameters (an AttributeDict): weights_only refuses it, the host does not
    with pytest.raises(pickle.UnpicklingError):
        torch.load(CKPT, map_location="cpu", weights_only=True)
    allinone_main(["convert", str(CKPT), str(tmp_path / "all-in-one-base.safetensors")])
    converted = create_host("allinone", checkpoint=tmp_path, tokenizer=FIXTURES)
    ref = official_host()
    for k, v in ref.state_dict().items():
        if not k.startswith("caption_decoder."):
            assert torch.equal(converted.state_dict()[k], v), k
    state, _ = read_allinone_state(CKPT)
    # a pre-training checkpoint has no rank_output: it starts from ITM's "match" row, as officially
    pre = {k: v for k, v in state.items() if not k.startswith("rank_output.")}
    torch.save({"state_dict": pre}, tmp_path / "pre.ckpt")
    host = create_host("allinone", checkpoint=tmp_path / "pre.ckpt", tokenizer=FIXTURES)
    assert torch.equal(host.rank_output.weight, state["itm_score.fc.weight"][1:])
    torch.save({"state_dict": {**state, "transformer.surprise": torch.zeros(1)}}, tmp_path / "extra.ckpt")
    with pytest.raises(CheckpointError, match="unexpected"):
        create_host("allinone", checkpoint=tmp_path / "extra.ckpt", tokenizer=FIXTURES)
    torch.save({"state_dict": {k: v for k, v in state.items() if k != "pooler.dense.weight"}}, tmp_path / "lost.ckpt")
    with pytest.raises(CheckpointError, match="missing"):
        create_host("allinone", checkpoint=tmp_path / "lost.ckpt", tokenizer=FIXTURES)
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="not an All-in-one checkpoint"):
        create_host("allinone", checkpoint=tmp_path / "other.ckpt", tokenizer=FIXTURES)
    spec = get_spec("all-in-one")
    assert spec.name == "allinone" and spec.status == "implemented"
    assert spec.parity.endswith("test_parity_with_official_code") and spec.arch == "--C"


def test_temporal_roll_moves_tokens_between_frames():
    from hosts.allinone import temporal_roll

    x = torch.arange(2 * 3 * 17, dtype=torch.float32).view(2 * 3, 17, 1)  # 2 clips x 3 frames, [CLS] + 16 patches
    out = temporal_roll(x, 3).view(2, 3, 17)
    v = x.view(2, 3, 17)
    assert torch.equal(out[:, :, 0], v[:, :, 0])  # [CLS] stays
    assert torch.equal(out[:, 1, 1:3], v[:, 0, 1:3]) and torch.equal(out[:, 0, 1:3], v[:, 2, 1:3])  # from t-1
    assert torch.equal(out[:, 0, 15:], v[:, 1, 15:])  # last l/8 from t+1
    assert torch.equal(out[:, :, 3:15], v[:, :, 3:15])


def test_contract_tiny_random():
    host = tiny_host()
    out = check_host_contract(host, batch())
    assert set(out.losses) == {"vla"} and set(out.encoders()) == {"cross"}
    lt = len(host.tokenize(batch().texts).input_ids[0])
    assert out.cross.first_layer.states.shape == (2, lt + 3 * 17, 32)
    assert out.cross.pooled.shape == (2, 3, 32)
    assert host.task_head(5)(host.encode_video(batch().video)).shape == (2, 5)  # projected video embeddings too
    # another frame count than the checkpoint's: the official inflation rule (first rows, then zeros)
    emb = host.transformer.frame_embed(5)
    assert torch.equal(emb[:3], host.transformer.temporal_embed[0]) and not emb[3:].any()
    out5 = host.posttrain_outputs(batch(t=5), with_losses=False)
    assert out5.cross.pooled.shape == (2, 5, 32)


def test_contract_official_fixture_and_caption_training():
    host = official_host("train")
    check_host_contract(host, batch())
    head = host.task_head(5)  # the checkpoint's vqa_classifier (wrapped: its txt_proj / vid_proj are narrower)
    assert head.head is host.vqa_classifier and head(host.encode_joint(batch().video, ["what ?"] * 2)).shape == (2, 5)
    # the non-official caption decoder learns: a few teacher-forced steps lower the caption loss
    b = batch()
    host.train()
    opt = torch.optim.Adam(host.caption_decoder.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        loss = host.caption_loss(b.video, b.texts)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_finsta_posttrain_step():
    host = tiny_host()
    b = batch()
    finsta_stage2_step(host, b.video, b.frame_times)
    assert host.transformer.patch_embed.proj.weight.grad is not None


PAPER_TASKS = [("youcook2_cap", "finetune"), ("msrvtt_cap", "finetune"),  # Table 2
               ("lsmdc_ret", "finetune"), ("didemo_ret", "finetune"),  # Table 3
               ("msrvtt_mc", "finetune"), ("msrvtt_qa", "finetune"), ("msvd_qa", "finetune"),
               ("tgif_frameqa", "finetune")]  # Table 4


@pytest.mark.parametrize("task,mode", PAPER_TASKS)
def test_paper_cells_plan(task, mode, tmp_path):
    assert_plans("allinone", task, mode, CKPT, tmp_path)
