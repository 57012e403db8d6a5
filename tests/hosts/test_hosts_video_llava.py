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


def _saved_hf_model(tmp_path):
    """A tiny random ``VideoLlavaForConditionalGeneration`` saved in the HF hub layout (Video-LLaVA-7B-hf)."""
    from transformers import VideoLlavaForConditionalGeneration

    torch.manual_seed(1)
    ref = VideoLlavaForConditionalGeneration(tiny_video_llava_config()).eval()
    with torch.no_grad():
        for p in ref.parameters():  # not the init: LayerNorms and biases random too
            p.add_(0.02 * torch.randn_like(p))
    d = tmp_path / "Video-LLaVA-7B-hf"
    ref.save_pretrained(d)
    make_tokenizer("llama").save_pretrained(d)
    return ref, d


def test_parity_with_transformers_class(tmp_path):
    """Our host loads the HF-layout directory and reproduces the transformers class (the reference port of
    PKU-YuanGroup/Video-LLaVA) on the same token sequence: first-layer LLM states and logits; a perturbed
    projector weight is caught (negative control)."""
    ref, d = _saved_hf_model(tmp_path)
    host = create_host("video_llava", checkpoint=tmp_path, num_frames=2).eval()
    video, _ = make_video(2, 2)
    seq = host.build(host.chat_template, ["what is it ?", "who runs ?"], 2, answers=["a red ball", "the dog"])
    with torch.no_grad():
        want = ref(input_ids=seq.input_ids, attention_mask=seq.mask.long(), position_ids=seq.position_ids,
                   pixel_values_videos=video, output_hidden_states=True)
        out = host._llm(seq, host.video_tokens(video).tokens, hidden=True)
        logits = host.model.lm_head(out.last_hidden_state)
        m = seq.mask
        torch.testing.assert_close(out.hidden_states[1][m], want.hidden_states[1][m], rtol=0, atol=1e-5)
        torch.testing.assert_close(logits[m], want.logits[m], rtol=0, atol=1e-5)
        host.model.model.multi_modal_projector.linear_1.weight[0, 0] += 0.05
        bad = host.model.lm_head(host._llm(seq, host.video_tokens(video).tokens).last_hidden_state)
    assert (bad[m] - want.logits[m]).abs().max() > 1e-4


def test_retrieval_embeddings_and_finetune_step():
    host = build()
    video, _ = make_video(2, 2)
    texts = ["a man throws a red ball .", "the dog runs in the park with a woman and a cat ."]
    with torch.no_grad():
        host.eval()
        t2, v2 = host.encode_text(texts), host.encode_video(video)
        t1, v1 = host.encode_text(texts[:1]), host.encode_video(video[:1])
    assert t2.shape == v2.shape == (2, host.embed_dim)
    torch.testing.assert_close(t2[:1], t1, atol=1e-4, rtol=1e-4)  # left padding invisible
    torch.testing.assert_close(v2[:1], v1, atol=1e-4, rtol=1e-4)
    host.train()
    opt = torch.optim.AdamW(host.parameters(), lr=3e-3)
    losses = []
    for _ in range(4):
        t = torch.nn.functional.normalize(host.encode_text(texts), dim=-1)
        v = torch.nn.functional.normalize(host.encode_video(video), dim=-1)
        sim = 20 * t @ v.t()
        loss = torch.nn.functional.cross_entropy(sim, torch.arange(2)) + torch.nn.functional.cross_entropy(
            sim.t(), torch.arange(2))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_zeroshot_classes_by_likelihood_match_option_scores():
    host = build(class_chunk=2).eval()
    video, _ = make_video(2, 2)
    names = ["kicks a ball", "plays with the dog", "runs", "jumps"]
    with torch.no_grad():
        scores = host.zeroshot_class_scores(video, names)
        mc = host.score_options(video, [host.classify_prompt] * 2, [names] * 2)
    assert scores.shape == (2, 4)
    torch.testing.assert_close(scores, mc, atol=1e-4, rtol=1e-4)


def test_answer_loglikelihood_sums_match_option_scores():
    host = build(mc_length_norm=False).eval()
    video, _ = make_video(2, 2)
    opts = [["a red ball", "the dog runs with a man"]] * 2
    with torch.no_grad():
        mc = host.score_options(video, ["what is it ?"] * 2, opts)
        lp, greedy = host.answer_loglikelihood(video.repeat_interleave(2, 0), ["what is it ?"] * 4,
                                               [o for row in opts for o in row])
    torch.testing.assert_close(lp.view(2, 2), mc, atol=1e-4, rtol=1e-4)
    assert greedy.dtype == torch.bool and greedy.shape == (4,)


def test_post_trained_file_loads_with_config_and_tokenizer_paths(tmp_path):
    """A host saved after post-training (one safetensors file) loads from the CLI spelling: config and tokenizer
    given as the HF directory (H3's request; before: config had to be an object)."""
    _, d = _saved_hf_model(tmp_path)
    src = create_host("video_llava", checkpoint=d, num_frames=2).eval()
    with torch.no_grad():
        src.model.lm_head.weight.mul_(1.5)
    src.save(tmp_path / "host.safetensors")
    back = create_host("video_llava", checkpoint=tmp_path / "host.safetensors", config=d, tokenizer=d,
                       num_frames=2).eval()
    assert torch.equal(back.model.lm_head.weight, src.model.lm_head.weight)
    back2 = create_host("video_llava", checkpoint=tmp_path / "host.safetensors", config=d / "config.json",
                        tokenizer=d, num_frames=2)
    assert torch.equal(back2.model.lm_head.weight, src.model.lm_head.weight)
