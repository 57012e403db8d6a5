"""Bring-your-own-model adapter on real small modules: a dual encoder (no cross-modal encoder) and a
single-stream model (cross-modal encoder only)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from byo_models import DualEncoder
from contract import check_host_contract
from tiny_builders import make_tokenizer, make_video

from hosts.base import HostBatch
from hosts.byo import Recipe, RecipeError, create_byo_host
from hosts.io import save_state_dict

TEXTS = ["a man throws a red ball.", "the dog runs"]

DUAL = {
    "name": "my_dual", "model": "byo_models:DualEncoder", "num_frames": 3, "resolution": 32, "patch_size": 16,
    "capabilities": ["retrieval", "classification"],
    "call": {"args": {"input_ids": "text.input_ids", "attention_mask": "text.attention_mask", "video": "video"}},
    "calls": {"text": {"method": "encode_text",
                       "args": {"input_ids": "text.input_ids", "attention_mask": "text.attention_mask"}},
              "video": {"method": "encode_video", "args": {"video": "video"}}},
    "encoders": {"text": {"first_layer": "text.layers.0", "pooled": "text.norm", "select": "cls",
                          "project": "text_proj"},
                 "video": {"first_layer": "video.layers.0", "pooled": "video.norm", "layout": "video",
                           "select": "frame_cls", "project": "video_proj"}},
}
SINGLE = {
    "name": "my_single", "model": "byo_models:SingleStream", "num_frames": 2, "resolution": 32, "patch_size": 16,
    "cls_tokens": 0, "losses": "byo_models:itm_loss",
    "call": {"args": {"input_ids": "text.input_ids", "attention_mask": "text.attention_mask", "video": "video"}},
    "encoders": {"cross": {"first_layer": "enc.layers.0", "pooled": "enc.norm", "layout": "concat",
                           "segments": ["text", "video"], "select": "frame_mean"}},
}


def batch(t):
    video, times = make_video(2, t)
    return HostBatch(video, times, TEXTS)


def test_dual_encoder_contract():
    torch.manual_seed(0)
    host = create_byo_host(DUAL, tokenizer=make_tokenizer("clip"))
    assert host.spec.arch == "TV-"
    out = check_host_contract(host, batch(3))
    assert out.video.first_layer.states.shape == (2, 3 * 5, 40) and out.video.pooled.shape == (2, 3, 40)
    assert out.text.pooled.shape == (2, 32) and host.embed_dim == 16
    assert host.encoder_widths() == {"text": 32, "video": 40}


def test_single_stream_contract_with_own_loss():
    torch.manual_seed(0)
    host = create_byo_host(SINGLE, tokenizer=make_tokenizer("clip"))
    assert host.spec.arch == "--C"
    out = check_host_contract(host, batch(2))
    assert set(out.losses) == {"vla"}
    fl = out.cross.first_layer
    lt = int(fl.char_spans.shape[1] - 2 * 4)
    assert (fl.frame_index[:, :lt] == -1).all() and (fl.frame_index[:, lt:] >= 0).all()
    words = [TEXTS[0][s:e] for s, e in fl.char_spans[0].tolist() if s >= 0]
    assert words == ["a", "man", "throws", "a", "red", "ball", "."]
    # per-frame mean of the video segment = what the hooks saw
    torch.testing.assert_close(out.cross.pooled, host._captured["enc.norm"][:, lt:].reshape(2, 2, 4, -1).mean(2))


def test_checkpoint_prefix_stripped(tmp_path: Path):
    torch.manual_seed(0)
    src = DualEncoder()
    save_state_dict({"module." + k: v for k, v in src.state_dict().items()}, tmp_path / "w.safetensors")
    host = create_byo_host(DUAL, checkpoint=tmp_path / "w.safetensors", tokenizer=make_tokenizer("clip"))
    for k, v in src.state_dict().items():
        assert torch.equal(host.model.state_dict()[k], v)


def test_bad_recipes_are_clear_errors():
    with pytest.raises(RecipeError, match="no submodule 'text.layers.9'"):
        bad = {**DUAL, "encoders": {**DUAL["encoders"], "text": {**DUAL["encoders"]["text"],
                                                                   "first_layer": "text.layers.9"}}}
        create_byo_host(bad, tokenizer=make_tokenizer("clip"))
    with pytest.raises(RecipeError, match="geometry expects"):
        host = create_byo_host({**DUAL, "patch_size": 8}, tokenizer=make_tokenizer("clip"))
        host.posttrain_outputs(batch(3))
    with pytest.raises(RecipeError, match="select must be one of"):
        Recipe.from_dict({**SINGLE, "encoders": {"cross": {**SINGLE["encoders"]["cross"], "select": "cls"}}})
    with pytest.raises(RecipeError, match="cannot import.*PYTHONPATH"):
        create_byo_host({**DUAL, "model": "not_installed_pkg.model:Net"}, tokenizer=make_tokenizer("clip"))


def test_hooks_snapshot_model_outputs():
    """A ModelOutput whose field is reassigned after the hook fired (transformers 5 ``get_*_features``) is read as
    it was when the hooked module returned (before: the reassigned, e.g. already projected, tensor)."""
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    host = create_byo_host(DUAL, tokenizer=make_tokenizer("clip"))
    before = torch.ones(2, 3)
    out = BaseModelOutputWithPooling(last_hidden_state=torch.zeros(2, 4, 3), pooler_output=before)
    host._hook("probe")(None, None, out)
    out.pooler_output = torch.full((2, 3), 7.0)
    assert torch.equal(host._get("probe", 1, False), before)
