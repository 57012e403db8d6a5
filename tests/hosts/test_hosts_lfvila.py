"""LF-VILA host: parity with the official code (fixtures from scripts/parity/lfvila.py), host contract, a Finsta
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

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hosts" / "lfvila"
CKPT = FIXTURES / "lfvila_stage2.bin"
TOL = 1e-5  # relative to the reference's largest magnitude


def reference() -> tuple[dict[str, torch.Tensor], list[str], torch.Tensor]:
    ref, meta = load_reference(FIXTURES)
    g = torch.Generator().manual_seed(int(meta["video_seed"]))  # as scripts/parity/lfvila.py:make_video
    video = torch.randn(2, 3, 8, 96, 160, generator=g)
    assert abs(video.double().sum().item() - ref["video_sum"].item()) < 1e-6, "torch RNG changed: regenerate"
    return ref, meta["texts"].split("\n"), video.transpose(1, 2)


def official_host():
    return create_host("lfvila", checkpoint=FIXTURES, size="tiny").eval()


def tiny_host():
    return seeded_tiny("lfvila", FIXTURES)


def batch(t: int = 4, res: int = 160) -> HostBatch:
    return seeded_batch(t, res, ("a man throws a red ball. the dog runs.", "the dog"), step=1.0)


def outputs(host, video, texts, ref) -> dict[str, torch.Tensor]:
    caught = {}

    def keep(module, inputs, output) -> None:  # a forward hook must return None (else it replaces the output)
        caught.setdefault("global_first", output[0] if isinstance(output, tuple) else output)

    hook = host.text_encoder.bert.encoder.layer[host.num_local].register_forward_hook(keep)
    with torch.no_grad():
        tokens, vfirst = host.encode_frames(video)
        ids, mask, _ = host.tokenize(texts)
        assert torch.equal(ids, ref["input_ids"]) and torch.equal(mask.long(), ref["attention_mask"].long())
        glob, gmask, tfirst = host.encode_paragraph(ids, mask)
        hook.remove()
        _, cfirst, pooled = host.cross(glob, gmask, tokens)
        tv, vv = host.encode_text(texts), host.encode_video(video)
    return {"video_first": vfirst, "text_first": tfirst, "global_first": caught["global_first"],
            "cross_first": cfirst, "pooler": pooled, "logits": host.text_encoder.classifier(pooled),
            "text_features": tv, "vis_features": vv, "similarity": tv @ vv.t()}


def test_parity_with_official_code():
    """Official LFVILA_QA_Classification + LFVILA_Retrieval (microsoft/XPretrain @c37c904, tiny, random) vs this
    host on the same weights: first Swin block, first sentence / paragraph / cross layers, pooler, QA logits,
    retrieval features and similarities agree to 1e-5."""
    ref, texts, video = reference()
    host = official_host()
    assert host.load_report["unexpected"] == [] and host.load_report["missing"] == []
    got = outputs(host, video, texts, ref)
    assert_matches(got, ref, TOL, relative=True)
    # negative control: one perturbed Swin weight moves the video side, not the text features
    with torch.no_grad():
        host.video_encoder.layers[2].blocks[0].attn.qkv.weight[0, 0] += 0.5
    bad = outputs(host, video, texts, ref)
    assert (bad["vis_features"] - ref["vis_features"]).abs().max() > 1e-4
    assert (bad["text_features"] - ref["text_features"]).abs().max() < TOL
    # ... and one perturbed cross-encoder weight moves the QA logits only
    host = official_host()
    with torch.no_grad():
        host.text_encoder.bert.encoder.layer[host.num_stage1].attention.output.dense.weight[0, 0] += 0.5
    bad = outputs(host, video, texts, ref)
    assert (bad["cross_first"] - ref["cross_first"]).abs().max() > 1e-2
    assert (bad["pooler"] - ref["pooler"]).abs().max() > 1e-4
    assert (bad["similarity"] - ref["similarity"]).abs().max() < TOL


def test_sentence_chunks():
    from hosts.lfvila import sentence_spans

    text = "one. two two! three? " + " ".join(f"s{i}." for i in range(9))
    spans = sentence_spans(text)
    assert len(spans) == 8 and spans[0] == (0, 4) and text[spans[1][0]:spans[1][1]] == "two two!"
    assert sentence_spans("no punctuation") == [(0, 14)]


def test_checkpoint_handling(tmp_path):
    state = torch.load(CKPT, map_location="cpu", weights_only=True)
    extra = {**state, "text_encoder.cls.predictions.bias": torch.zeros(3)}
    torch.save(extra, tmp_path / "lfvila_stage2.bin")
    host = create_host("lfvila", checkpoint=tmp_path, tokenizer=FIXTURES, size="tiny")
    assert host.load_report["dropped"] == ["text_encoder.cls.predictions.bias"]
    torch.save({**state, "video_encoder.surprise": torch.zeros(1)}, tmp_path / "lfvila_stage2.bin")
    with pytest.raises(CheckpointError, match="unexpected"):
        create_host("lfvila", checkpoint=tmp_path, tokenizer=FIXTURES, size="tiny")
    torch.save({"x": torch.zeros(1)}, tmp_path / "lfvila_stage2.bin")
    with pytest.raises(CheckpointError, match="not an LF-VILA checkpoint"):
        create_host("lfvila", checkpoint=tmp_path, tokenizer=FIXTURES, size="tiny")
    spec = get_spec("lfvila")
    assert spec.status == "implemented" and spec.parity.endswith("test_parity_with_official_code")


def test_contract_tiny_random():
    host = tiny_host()
    out = check_host_contract(host, batch())
    assert set(out.losses) == {"ct_global"}
    assert out.video.pooled.shape == (2, 4, 32) and out.cross.pooled.shape == (2, 4, 32)
    assert out.text.first_layer.states.shape == (2, 8 * 50, 32)


def test_contract_official_fixture():
    host = official_host()
    check_host_contract(host, batch(), save_load=False)
    assert host.task_head(1) is host.text_encoder.classifier


def test_finsta_posttrain_step():
    host = tiny_host()
    b = batch()
    finsta_stage2_step(host, b.video, b.frame_times)
    assert host.video_encoder.patch_embed.proj.weight.grad is not None


PAPER_TASKS = [("activitynet_para", "finetune"), ("queryd_para", "finetune"), ("how2qa", "finetune"),
               ("violin", "finetune")]  # Tables 5, 6


@pytest.mark.parametrize("task,mode", PAPER_TASKS)
def test_paper_cells_plan(task, mode, tmp_path):
    assert_plans("lfvila", task, mode, CKPT, tmp_path)
