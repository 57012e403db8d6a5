"""Offline builders for host tests: tiny tokenizers (WordLevel, built in memory), tiny configs of the real
architectures, and :data:`TINY_HOSTS` (one random-init tiny build per implemented paper host, used by the
registry-wide contract and Finsta post-training step tests). No downloads."""

from __future__ import annotations

import torch

WORDS = ("a the man woman dog cat ball car red blue runs jumps plays with on in of and is what who "
         "describe video briefly . , ? ! yes no user assistant : throws kicks park street green").split()


def make_tokenizer(style: str = "clip"):
    """A fast WordLevel tokenizer. ``clip``: ``<|startoftext|> ... <|endoftext|>``; ``llama``: ``<s> ...``
    with ``</s>`` as EOS and ``<video>``/``<image>`` special tokens (ids 5 and 6)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "</s>", "<|endoftext|>", "<video>", "<image>", "<|startoftext|>"]
    vocab = {t: i for i, t in enumerate(specials + sorted(set(WORDS)))}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    if style == "clip":
        bos, eos = "<|startoftext|>", "<|endoftext|>"
        tk.post_processor = processors.TemplateProcessing(single=f"{bos} $A {eos}",
                                                          special_tokens=[(bos, vocab[bos]), (eos, vocab[eos])])
        return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token=bos, eos_token=eos, pad_token="<pad>",
                                       unk_token="<unk>")
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                  unk_token="<unk>", additional_special_tokens=["<video>", "<image>"])
    return tok


def tiny_clip_config(vocab: int = 64, image: int = 32, patch: int = 16):
    from transformers import CLIPConfig

    return CLIPConfig(
        text_config=dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=32),
        vision_config=dict(hidden_size=48, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=image, patch_size=patch),
        projection_dim=24)


def tiny_video_llava_config(vocab: int = 64, image: int = 32, patch: int = 16):
    from transformers import LlamaConfig, VideoLlavaConfig

    text = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                       bos_token_id=2, eos_token_id=3, pad_token_id=0)
    return VideoLlavaConfig(vision_config=dict(model_type="clip_vision_model", hidden_size=48, intermediate_size=64,
                                               num_hidden_layers=3, num_attention_heads=2, image_size=image,
                                               patch_size=patch, projection_dim=24),
                            text_config=text, image_token_index=6, video_token_index=5, vision_feature_layer=-2)


def make_video(b: int = 2, t: int = 3, res: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    video = torch.randn(b, t, 3, res, res, generator=g)
    times = torch.arange(t, dtype=torch.float32).repeat(b, 1) * 0.5
    return video, times


def tiny_vision_config(hidden: int = 48, image: int = 28, patch: int = 14):
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(hidden_size=hidden, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                            image_size=image, patch_size=patch)


def tiny_llama_config(vocab: int = 64):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, bos_token_id=2,
                       eos_token_id=3, pad_token_id=0)


def tiny_clip4clip(sim_header: str = "seqTransf", **kw):
    from hosts.registry import create_host

    torch.manual_seed(0)
    return create_host("clip4clip", random_init=True, clip_config=tiny_clip_config(vocab=128),
                       tokenizer=make_tokenizer("clip"), sim_header=sim_header, seq_layers=1, **kw)


def tiny_video_llava(**kw):
    from hosts.registry import create_host

    torch.manual_seed(0)
    return create_host("video_llava", random_init=True, config=tiny_video_llava_config(vocab=128),
                       tokenizer=make_tokenizer("llama"), num_frames=2, **kw)


def tiny_video_chatgpt(**kw):
    from hosts.registry import create_host

    torch.manual_seed(0)
    kw = {"num_frames": 3, "temporal_slots": 4, **kw}
    return create_host("video_chatgpt", random_init=True, llm_config=tiny_llama_config(),
                       vision_config=tiny_vision_config(), tokenizer=make_tokenizer("llama"), **kw)


# implemented paper host -> (tiny builder, frames per clip)
TINY_HOSTS = {
    "clip4clip": (tiny_clip4clip, 3),
    "video_llava": (tiny_video_llava, 2),
    "video_chatgpt": (tiny_video_chatgpt, 3),
}


def tiny_video_llama_configs(vit: int = 48, qformer: int = 32, image: int = 28) -> dict:
    """The tiny Video-LLaMA sizes of scripts/parity/video_llama.py (EVA-shaped ViT, two Q-Formers)."""
    from transformers import Blip2QFormerConfig, Blip2VisionConfig

    return dict(
        vision_config=Blip2VisionConfig(hidden_size=vit, intermediate_size=int(vit * 4.3637), num_hidden_layers=2,
                                        num_attention_heads=4, image_size=image, patch_size=14, qkv_bias=True,
                                        layer_norm_eps=1e-6),
        qformer_config=Blip2QFormerConfig(hidden_size=qformer, num_hidden_layers=2, num_attention_heads=4,
                                          intermediate_size=64, encoder_hidden_size=vit, cross_attention_frequency=2),
        video_qformer_config=Blip2QFormerConfig(hidden_size=qformer, num_hidden_layers=2, num_attention_heads=4,
                                                intermediate_size=64, encoder_hidden_size=qformer,
                                                cross_attention_frequency=1),
        num_query_token=4, num_video_query_token=4)


def tiny_video_llama(**kw):
    from hosts.registry import create_host

    torch.manual_seed(0)
    kw = {"num_frames": 3, **tiny_video_llama_configs(), **kw}
    return create_host("video_llama", random_init=True, llm_config=tiny_llama_config(),
                       tokenizer=make_tokenizer("llama"), **kw)


TINY_HOSTS["video_llama"] = (tiny_video_llama, 3)


def tiny_internvideo(**kw):
    from hosts.registry import create_host

    torch.manual_seed(0)
    kw = {"num_frames": 3, **kw}
    return create_host("internvideo", random_init=True, tokenizer=make_tokenizer("clip"), embed_dim=32, n_layers=2,
                       max_words=16, text_config=dict(vocab_size=64, hidden_size=64, intermediate_size=256,
                                                      num_hidden_layers=2, num_attention_heads=2,
                                                      max_position_embeddings=16, hidden_act="quick_gelu"),
                       vision_config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                                          num_attention_heads=2, image_size=28, patch_size=14,
                                          hidden_act="quick_gelu"), **kw)


TINY_HOSTS["internvideo"] = (tiny_internvideo, 3)
