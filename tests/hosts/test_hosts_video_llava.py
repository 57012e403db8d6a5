"""Video-LLaVA host on a tiny random VideoLlavaConfig (tiny Llama + tiny CLIP vision tower)."""

from __future__ import annotations

import pytest
import torch
from contract import check_host_contract
from tiny_builders import make_tokenizer, make_video, tiny_video_llava_config

from hosts.base import CheckpointError, HostBatch
from hosts.registry import create_host

TEXTS = ["a man throws a red ball .", "the dog runs"]


def build(**kw):
    torch.manual_seed(0)
    return create_host("video_llava", random_init=True, config=tiny_video_llava_config(),
                       tokenizer=make_tokenizer("llama"), num_frames=2, **kw)


def batch(t=2):
    video, times = make_video(2, t)
    return HostBatch(video, times, TEXTS)


def test_contract():
    host = build()
    out = check_host_contract(host, batch())
    assert set(out.losses) == {"mlm"}
    n_video = 2 * 5  # frames x (CLS + 2x2 patches)
    assert out.video.first_layer.states.shape == (2, n_video, 48)
    assert out.video.pooled.shape == (2, 2, 48)
    assert out.cross.pooled.shape == (2, 2, 32) and out.text.pooled.shape == (2, 32)
    cross = out.cross.first_layer
    assert int((cross.frame_index[0] >= 0).sum()) == n_video
    assert host.spec.arch == "¥V¥"


def test_text_states_are_the_text_tokens_with_spans():
    host = build().eval()
    with torch.no_grad():
        out = host.posttrain_outputs(batch(), with_losses=False)
    fl = out.text.first_layer
    for i, text in enumerate(TEXTS):
        words = [text[s:e] for s, e in fl.char_spans[i][fl.mask[i]].tolist()]
        assert words == text.split()
    # the same states sit at the text positions of the cross (full-sequence) first layer
    cross = out.cross.first_layer
    torch.testing.assert_close(fl.states[1][fl.mask[1]], cross.states[1][cross.char_spans[1, :, 0] >= 0])


def test_text_pooled_does_not_see_the_video_but_cross_does():
    host = build().eval()
    b = batch()
    other = HostBatch(torch.randn_like(b.video), b.frame_times, b.texts)
    with torch.no_grad():
        o1, o2 = host.posttrain_outputs(b, False), host.posttrain_outputs(other, False)
    torch.testing.assert_close(o1.text.pooled, o2.text.pooled)
    assert not torch.allclose(o1.cross.pooled, o2.cross.pooled)


def test_left_padding_is_invisible():
    host = build().eval()
    video, _ = make_video(2, 2)
    with torch.no_grad():
        both = host.score_options(video, ["what is it ?"] * 2, [["a red ball", "the dog runs with a man"]] * 2)
        one = host.score_options(video[:1], ["what is it ?"], [["a red ball", "the dog runs with a man"]])
        gen2 = host.generate(video, ["what is it ?", "who runs in the park with the dog ?"], max_new_tokens=4)
        gen1 = host.generate(video[1:], ["who runs in the park with the dog ?"], max_new_tokens=4)
    torch.testing.assert_close(both[:1], one, atol=1e-4, rtol=1e-4)
    assert gen2[1] == gen1[0]


def test_training_step_on_caption_loss():
    host = build()
    b = batch()
    opt = torch.optim.AdamW(host.parameters(), lr=3e-3)
    losses = []
    for _ in range(4):
        loss = host.caption_loss(b.video, b.texts)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_checkpoint_dir_old_layout_and_save_reload(tmp_path):
    src = build().eval()
    old = {}
    for k, v in src.model.state_dict().items():  # the pre-v5 transformers layout
        k = k.replace("model.language_model.", "language_model.model.").replace("lm_head.", "language_model.lm_head.")
        k = k.replace("model.video_tower.", "video_tower.").replace("model.image_tower.", "image_tower.")
        old[k.replace("model.multi_modal_projector.", "multi_modal_projector.")] = v
    from hosts.io import save_state_dict

    save_state_dict(old, tmp_path / "model.safetensors")
    src.model.config.save_pretrained(tmp_path)
    make_tokenizer("llama").save_pretrained(tmp_path)
    host = create_host("video_llava", checkpoint=tmp_path, num_frames=2).eval()
    video, _ = make_video(1, 2)
    with torch.no_grad():
        q = ["what is it ?"]
        torch.testing.assert_close(host.encode_joint(video, q), src.encode_joint(video, q))
    own = tmp_path / "own.safetensors"
    host.save(own)
    again = create_host("video_llava", checkpoint=own, config=tiny_video_llava_config(),
                        tokenizer=make_tokenizer("llama"), num_frames=2).eval()
    with torch.no_grad():
        torch.testing.assert_close(again.encode_video(video), src.encode_video(video))


def test_missing_weights_are_planning_errors(tmp_path):
    with pytest.raises(CheckpointError, match="Video-LLaVA-7B-hf.*LanguageBind/Video-LLaVA-7B-hf"):
        create_host("video_llava")
    with pytest.raises(CheckpointError, match="missing checkpoint.*video_llava"):
        create_host("video-llava", checkpoint=tmp_path / "absent")
