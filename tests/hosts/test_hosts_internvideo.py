"""InternVideo-MM, native (CLIP towers + the UniFormerV2-style global video module): parity with the official
code (fixtures from scripts/parity/internvideo.py over OpenGVLab/InternVideo@3965eef), contract."""

from __future__ import annotations

from pathlib import Path

import torch
from contract import check_host_contract
from tiny_builders import make_video, tiny_internvideo

from hosts.base import HostBatch
from hosts.registry import create_host

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "hosts" / "internvideo"
TOL = dict(rtol=0.0, atol=1e-5)


def _official():
    return create_host("internvideo", checkpoint=FIXTURE, tokenizer=FIXTURE / "tokenizer.json", embed_dim=32,
                       n_layers=2, max_words=16, num_frames=3,
                       text_config=dict(vocab_size=19, hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                                        num_attention_heads=2, max_position_embeddings=16, hidden_act="quick_gelu"),
                       vision_config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                                          num_attention_heads=2, image_size=28, patch_size=14,
                                          hidden_act="quick_gelu")).eval()


def test_parity_with_official_code():
    """The official checkpoint (``state_dict`` of ``clip.*``, Conv3d patch embedding) loads; first-layer text and
    video token states, the video embedding (global module), the text embedding, the per-frame final ``[CLS]`` and
    the retrieval logits equal the official ``VideoIntern``'s; a perturbed global-module weight is caught."""
    refs = torch.load(FIXTURE / "refs.pt", weights_only=True)
    assert refs["meta"]["vocab"] == 19
    host = _official()
    video = refs["video"]
    mask = refs["attention_mask"].bool()
    with torch.no_grad():
        out = host.posttrain_outputs(HostBatch(video, torch.zeros(video.shape[:2]), refs["texts"]), with_losses=False)
        tok_mask = out.text.first_layer.mask
        n = tok_mask.shape[1]
        torch.testing.assert_close(out.text.first_layer.states[tok_mask], refs["text_first"][:, :n][mask[:, :n]], **TOL)
        torch.testing.assert_close(out.video.first_layer.states, refs["video_first"], **TOL)
        emb, _, _ = host.video_features(video)
        torch.testing.assert_close(emb, refs["video_emb"], **TOL)
        torch.testing.assert_close(out.text.pooled, refs["text_emb"], **TOL)
        b, t = video.shape[:2]
        hs = host.vision(pixel_values=video.flatten(0, 1), output_hidden_states=True).hidden_states[-1]
        torch.testing.assert_close(hs[:, 0].view(b, t, -1), refs["frame_cls"], **TOL)
        logits = host.similarity(host.encode_text(refs["texts"]), host.encode_video(video))
        torch.testing.assert_close(logits, refs["logits"], **TOL)
        host.global_module.dec[1].attn.in_proj_weight[0, 0] += 0.05
        bad = host.video_features(video)[0]
    assert (bad - refs["video_emb"]).abs().max() > 10 * TOL["atol"]


def test_contract():
    host = tiny_internvideo()
    video, times = make_video(2, 3, 28)
    out = check_host_contract(host, HostBatch(video, times, ["a man throws a red ball .", "the dog runs"]))
    assert set(out.losses) == {"vla"} and out.video.pooled.shape == (2, 3, 32)


def test_own_save_reloads(tmp_path):
    src = _official()
    with torch.no_grad():
        src.global_module.balance.add_(1.0)
    src.save(tmp_path / "host.safetensors")
    back = create_host("internvideo", checkpoint=tmp_path / "host.safetensors", tokenizer=FIXTURE / "tokenizer.json",
                       embed_dim=32, n_layers=2, max_words=16, num_frames=3,
                       text_config=src.text.config, vision_config=src.vision.config)
    for k, v in src.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
