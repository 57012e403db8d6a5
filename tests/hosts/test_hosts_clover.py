"""Clover host: parity with the official code (fixtures from scripts/parity/clover.py), host contract, a Finsta
post-training step, checkpoint handling, and the captioning head. No downloads, no official code needed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from contract import check_host_contract

from hosts.base import HostBatch
from hosts.errors import CheckpointError
from hosts.registry import create_host, get_spec, resolve_checkpoint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hosts" / "clover"
TOL = 1e-5


def reference() -> tuple[dict[str, torch.Tensor], list[str]]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = FIXTURES / "reference.safetensors"
    with safe_open(str(path), "pt") as f:
        texts = f.metadata()["texts"].split("\n")
    return load_file(str(path)), texts


def official_host():
    return create_host("clover", checkpoint=FIXTURES).eval()


def tiny_host(**kw):
    torch.manual_seed(0)
    return create_host("clover", random_init=True, size="tiny", tokenizer=FIXTURES, **kw)


def batch(t: int = 4, res: int = 32) -> HostBatch:
    g = torch.Generator().manual_seed(0)
    video = torch.randn(2, t, 3, res, res, generator=g)
    return HostBatch(video, torch.arange(t, dtype=torch.float32).repeat(2, 1) * 0.5,
                     ["a man throws a red ball in the park", "the dog runs"])


def outputs(host, ref, texts) -> dict[str, torch.Tensor]:
    """Our host's tensors at the points the parity script recorded from the official forwards."""
    video = ref["video"].permute(0, 2, 1, 3, 4)  # official NCTHW -> ours [B, T, 3, H, W]
    with torch.no_grad():
        tok, last, first = host.text_states(texts)
        assert torch.equal(tok.input_ids, ref["input_ids"])
        fmap, vfirst = host.video_features(video)
        cross_last, cross_first, _ = host.cross(fmap, last, tok.attention_mask)
        cls = host.encode_joint(video, texts)
        return {"text_first": first, "text_last": last, "video_first": vfirst, "video_map": fmap,
                "video_emb": host._video_embedding(fmap), "text_emb": host.ssl_head.forward_text(last),
                "cross_first": cross_first, "cross_last": cross_last, "cross_cls": cls,
                "qa_logits": host.task_head(ref["qa_logits"].shape[1])(cls)}


def test_parity_with_official_code():
    """Official CloverFinetune parts (LeeYN-43/Clover @fa05f2e, tiny, random) vs this host on the same weights:
    first-layer states, Swin map, pooled retrieval embeddings, cross output and QA logits agree to 1e-5."""
    ref, texts = reference()
    host = official_host()
    assert host.load_report["unexpected"] == [] and all(k.startswith("caption_decoder.")
                                                        for k in host.load_report["missing"])
    ours = outputs(host, ref, texts)
    for key, value in ours.items():
        err = (value - ref[key]).abs().max().item()
        assert err < TOL, f"{key}: max |diff| {err:.2e} vs the official code"
    # negative control: one perturbed weight in the last Swin stage changes the video side, not the text side
    with torch.no_grad():
        host.backbone.layers[1].blocks[0].attn.qkv.weight[0, 0] += 0.5
    bad = outputs(host, ref, texts)
    assert (bad["video_emb"] - ref["video_emb"]).abs().max() > 1e-3
    assert (bad["text_emb"] - ref["text_emb"]).abs().max() < TOL
    # ... and one perturbed weight of the cross encoder's first layer moves the joint [CLS] the QA head reads
    host = official_host()
    with torch.no_grad():
        host.multimodal_backbone.bert_encoder.layer[0].attention.self.query.weight[0, 0] += 0.5
    bad = outputs(host, ref, texts)
    assert (bad["cross_first"] - ref["cross_first"]).abs().max() > 1e-3
    assert (bad["cross_cls"] - ref["cross_cls"]).abs().max() > 10 * TOL


def test_official_checkpoint_keys_and_pretraining_heads(tmp_path):
    """The official file loads strictly; pre-training-only heads are dropped and reported; other keys refused."""
    state = torch.load(FIXTURES / "latest.pth", map_location="cpu", weights_only=True)["state_dict"]
    assert any(".mlp.fc1." in k for k in state) and "multimodal_backbone.vis_space_pos" in state
    extra = dict(state)
    extra["module.mlm_head.dense.weight"] = torch.zeros(2, 2)  # DataParallel prefix + pretraining head
    extra["backbone.mask_token"] = torch.zeros(1, 24, 1, 1, 1)
    torch.save({"state_dict": extra}, tmp_path / "latest.pth")
    host = create_host("clover", checkpoint=tmp_path, tokenizer=FIXTURES)
    assert sorted(host.load_report["dropped"]) == ["backbone.mask_token", "mlm_head.dense.weight"]
    extra["backbone.surprise"] = torch.zeros(1)
    torch.save({"state_dict": extra}, tmp_path / "latest.pth")
    with pytest.raises(CheckpointError, match="unexpected"):
        create_host("clover", checkpoint=tmp_path, tokenizer=FIXTURES)
    torch.save({"state_dict": {"foo": torch.zeros(1)}}, tmp_path / "latest.pth")
    with pytest.raises(CheckpointError, match="not a Clover checkpoint"):
        create_host("clover", checkpoint=tmp_path, tokenizer=FIXTURES)


def test_no_weights_says_why_and_what_to_pass():
    spec = get_spec("clover")
    assert spec.status == "implemented" and spec.parity.endswith("test_parity_with_official_code")
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint("clover", None)
    msg = str(err.value)
    assert "\n" not in msg and "released no weights" in msg and "random_init=true" in msg


def test_contract_tiny_random():
    host = tiny_host()
    out = check_host_contract(host, batch())
    assert set(out.losses) == {"vla"}
    # video: first Swin block, 4 frames x 8x8 tokens (each 2-frame tubelet listed under both of its frames)
    assert out.video.first_layer.states.shape == (2, 4 * 64, 16) and out.video.first_layer.grid == (8, 8)
    assert out.video.pooled.shape == (2, 4, 32) and out.cross.pooled.shape == (2, 4, 32)
    assert torch.equal(out.video.pooled[:, 0], out.video.pooled[:, 1])  # one tubelet covers frames 0 and 1


def test_contract_official_layout_fixture():
    check_host_contract(official_host(), batch())


def test_odd_frame_count_and_host_resolution():
    host = tiny_host().eval()
    b = batch(t=3, res=48)  # 3 frames (last tubelet padded); 48 px frames resized by the host preprocessing
    video = host.preprocess(torch.rand(2, 3, 3, 48, 48))
    assert video.shape[-2:] == (32, 32)
    out = host.posttrain_outputs(HostBatch(video, b.frame_times, b.texts), with_losses=False)
    assert out.video.pooled.shape[1] == 3 and int(out.video.first_layer.frame_index.max()) == 2


def test_own_save_reloads_through_the_factory(tmp_path):
    """A host saved by the harness (safetensors, our names) is rebuilt with the same sizes and outputs."""
    host = tiny_host().eval()
    host.save(tmp_path / "host.safetensors")
    again = create_host("clover", checkpoint=tmp_path / "host.safetensors", tokenizer=FIXTURES).eval()
    assert again.load_report["missing"] == []
    b = batch()
    with torch.no_grad():
        torch.testing.assert_close(again.encode_video(b.video), host.encode_video(b.video))
        assert again.generate(b.video, max_new_tokens=3) == host.generate(b.video, max_new_tokens=3)


def test_caption_decoder_learns_a_caption():
    """The non-official caption head trains by teacher forcing: a few steps fit one caption per video."""
    host = tiny_host()
    b = batch()
    caps = ["a man throws a red ball", "the dog runs"]
    opt = torch.optim.AdamW(host.parameters(), lr=3e-3)
    first = None
    for _ in range(25):
        loss = host.caption_loss(b.video, caps)
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.5 * first
    host.eval()
    assert host.generate(b.video, max_new_tokens=8) == caps


def test_finsta_posttrain_step():
    """Stage 2 of Finsta (OSC + PTC + TRS + Clover's own vla loss, Eq 42) on the tiny host: both learn."""
    from finsta_core.config import FinstaConfig
    from finsta_core.graphs.batch import collate_graphs
    from finsta_core.model import Finsta
    from finsta_core.schedule import loss_weights
    from finsta_core.testing import random_hsg

    host = tiny_host()
    graphs = [random_hsg(seed=i, num_frames=4) for i in range(2)]
    b = batch()
    hb = HostBatch(b.video, b.frame_times, [g.tsg.caption for g in graphs])
    widths = {k: (host.first_layer_widths()[k], w) for k, w in host.encoder_widths().items()}
    cfg = FinstaConfig.preset("small")
    finsta = Finsta(cfg, widths)
    opt = torch.optim.AdamW([*host.parameters(), *finsta.parameters()], lr=1e-3)
    out_host = host.posttrain_outputs(hb)
    out = finsta(collate_graphs(graphs), out_host, stage=2, step=0, task_family="generic")
    w = loss_weights(cfg, 2, 0, 10)
    total = sum(w.get(k, 0.0) * v for k, v in {**out.losses, **out_host.losses}.items())
    assert "trs" in out.losses and torch.isfinite(total)
    opt.zero_grad()
    total.backward()
    assert host.backbone.patch_embed.proj.weight.grad is not None
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in finsta.parameters())
    opt.step()
