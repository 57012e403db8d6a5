"""UniVL's (and VideoCLIP's) video feature extractor: the HowTo100M S3D-G (hosts/bert/s3d.py) against the official
network (reference from scripts/parity/s3d.py). The UniVL host itself is not built yet (docs/hosts-bert-family.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from contract import check_host_contract
from part2_checks import assert_matches, assert_plans, finsta_stage2_step, load_reference, stage2_graphs

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


# -- the UniVL host (parity over S3D features; the extractor is proven above) --------------------------------------

UNIVL = ROOT / "tests" / "fixtures" / "hosts" / "univl"


def reference():
    ref, meta = load_reference(UNIVL)
    return ref, meta["texts"].split("\n"), meta["captions"].split("\n")


def outputs(host, ref, texts, captions) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        tok = host.tokenize(texts)
        assert torch.equal(tok.input_ids, ref["input_ids"])
        tl, tf = host.text_states(tok)
        vl, vf, vm = host.visual_states(ref["features"])
        cl, cf, cm = host.cross_states(tl, tok.attention_mask, vl, vm)
        cap = host.tokenize(captions)
        assert torch.equal(cap.input_ids, ref["caption_ids"])
        logits = host.decoder.logits(cap.input_ids, cap.attention_mask, cl, cm)
        t_mean, v_mean = host.mean_pool(tl, tok.attention_mask, vl, vm)
    real = cap.attention_mask.bool()  # the official decoder masks padded queries differently; compare real ones
    return {"text_first": tf, "text_last": tl, "visual_first": vf, "visual_last": vl, "cross_first": cf,
            "cross_last": cl, "decoder_logits": logits[real], "text_mean": t_mean, "video_mean": v_mean}


def test_parity_with_official_code():
    """Official UniVL in its captioning configuration (microsoft/UniVL @8db88f3, tiny, random) vs this host on the
    same weights, over the same S3D features: text / visual / cross first-layer and last states, the caption
    decoder's teacher-forced logits and the stage-one pooled embeddings agree to 1e-5."""
    from hosts.registry import create_host

    ref, texts, captions = reference()
    host = create_host("univl", checkpoint=UNIVL).eval()
    assert host.load_report["unexpected"] == []
    assert host.load_report["missing"] == ["decoder.lm.bert.embeddings.token_type_embeddings.weight"]
    official = {k: (v[reference_mask(ref)] if k == "decoder_logits" else v) for k, v in ref.items()}
    assert_matches(outputs(host, ref, texts, captions), official, TOL)
    # negative control: one perturbed decoder weight moves the logits only
    with torch.no_grad():
        host.decoder.lm.bert.encoder.layer[0].crossattention.self.query.weight[0, 0] += 0.5
    bad = outputs(host, ref, texts, captions)
    assert (bad["decoder_logits"] - official["decoder_logits"]).abs().max() > 10 * TOL
    assert (bad["cross_last"] - official["cross_last"]).abs().max() < TOL


def reference_mask(ref) -> torch.Tensor:
    return ref["caption_mask"].bool()


def test_checkpoint_layout(tmp_path):
    """Official keys load (old gamma/beta names too), pre-training heads are dropped, the decoder stays tied to
    the text encoder's embeddings, and a foreign file is refused."""
    import pytest

    from hosts.errors import CheckpointError
    from hosts.registry import create_host, get_spec

    state = torch.load(UNIVL / "univl.pretrained.bin", map_location="cpu", weights_only=True)
    old = {k.replace("bert.embeddings.LayerNorm.weight", "bert.embeddings.LayerNorm.gamma"): v
           for k, v in state.items()}
    old["cls.predictions.bias"] = torch.zeros(3)
    torch.save(old, tmp_path / "univl.pretrained.bin")
    host = create_host("univl", checkpoint=tmp_path, tokenizer=UNIVL)
    assert host.load_report["dropped"] == ["cls.predictions.bias"]
    emb = host.bert.embeddings.word_embeddings.weight
    assert host.decoder.lm.cls.predictions.decoder.weight is emb
    assert host.decoder.lm.bert.embeddings.word_embeddings.weight is emb
    with pytest.raises(CheckpointError, match="S3D"):
        host.encode_video(torch.rand(1, 2, 3, 32, 32))  # no s3d_checkpoint given: pixels refused in one line
    torch.save({"x": torch.zeros(1)}, tmp_path / "univl.pretrained.bin")
    with pytest.raises(CheckpointError, match="not a UniVL checkpoint"):
        create_host("univl", checkpoint=tmp_path, tokenizer=UNIVL)
    spec = get_spec("univl")
    assert spec.status == "implemented" and spec.parity.endswith("test_parity_with_official_code")


def test_contract_and_finsta_step_tiny_random():
    """Pixels -> S3D clips -> UniVL: the host contract, then one Finsta stage-2 step (OSC + PTC + TRS + vla)."""

    from hosts.base import HostBatch
    from hosts.registry import create_host

    torch.manual_seed(0)
    host = create_host("univl", random_init=True, size="tiny", tokenizer=UNIVL)
    graphs = stage2_graphs()
    batch = HostBatch(torch.rand(2, 4, 3, 32, 32), torch.arange(4.0).repeat(2, 1), [g.tsg.caption for g in graphs])
    out = check_host_contract(host, batch)
    assert out.video.first_layer.states.shape[1] == 4 and set(out.losses) == {"vla"}
    host.train()
    finsta_stage2_step(host, batch.video, batch.frame_times, check_losses=False)
    assert host.visual.embeddings.word_embeddings.weight.grad is not None


def test_paper_cells_plan(tmp_path):
    """UniVL's paper cells (Table 2: MSR-VTT and YouCook2 captioning) plan with the official checkpoint layout."""
    for task in ("msrvtt_cap", "youcook2_cap"):
        assert_plans("univl", task, "finetune", UNIVL / "univl.pretrained.bin", tmp_path)
