"""Video-LLaVA (Lin et al., arXiv:2311.10122; github.com/PKU-YuanGroup/Video-LLaVA) through transformers'
``VideoLlavaForConditionalGeneration`` (video tower = CLIP-ViT-shaped LanguageBind encoder, projector,
Vicuna-7B v1.5 LLM). Prompts, capabilities and the Finsta outputs are the shared LLM-host machinery
(``hosts/llm_video.py``: retrieval by E5-V prompt embeddings, zero-shot classes by likelihood, ...).

Video tokens: every frame gives ``1 + P`` tokens (``[CLS]`` + patches) of the video tower at
``vision_feature_layer`` (-2), projected to the LLM width (``T * (1 + P)`` LLM video tokens). Finsta's video
encoder outputs: first layer = tower ``encoder.layers[0]`` per frame, pooled per frame = the ``[CLS]`` state at
the feature layer (the layer whose tokens feed the LLM).

Shapes: ``B`` batch, ``T`` frames, ``P`` patches, ``D`` LLM width, ``d_v`` video tower width.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hosts.base import Preprocess
from hosts.errors import CheckpointError
from hosts.io import load_config, load_state_dict
from hosts.llm_video import LLMVideoHost, VideoTokens
from hosts.pooling import video_token_maps
from hosts.spec import HostSpec, WeightTag, register_host
from hosts.text import load_tokenizer

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class VideoLlavaHost(LLMVideoHost):
    """Video-LLaVA: retrieval, classification, generation, multiple choice (see ``hosts/llm_video.py``)."""

    def __init__(self, spec: HostSpec, config: Any, tokenizer: Any, num_frames: int = 8,
                 preprocess: Preprocess | None = None, **options: Any) -> None:
        from transformers import VideoLlavaForConditionalGeneration

        vc = config.vision_config
        super().__init__(spec, tokenizer, preprocess or Preprocess(num_frames=num_frames, resolution=vc.image_size,
                                                                   mean=CLIP_MEAN, std=CLIP_STD), **options)
        if not isinstance(config.vision_feature_layer, int):
            raise ValueError("VideoLlavaHost supports an int vision_feature_layer")
        self.model = VideoLlavaForConditionalGeneration(config)
        self.grid = (vc.image_size // vc.patch_size, vc.image_size // vc.patch_size)
        self.tokens_per_frame = 1 + self.grid[0] * self.grid[1]

    # -- LLM parts ---------------------------------------------------------------------------------
    @property
    def language_model(self) -> nn.Module:
        return self.model.model.language_model

    @property
    def lm_head(self) -> nn.Module:
        return self.model.lm_head

    @property
    def input_embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    @property
    def video_token_id(self) -> int:
        return int(self.model.config.video_token_id)

    @property
    def llm_width(self) -> int:
        return self.model.config.text_config.hidden_size

    @property
    def video_width(self) -> int:
        return self.model.config.vision_config.hidden_size

    def num_video_tokens(self, num_frames: int) -> int:
        return num_frames * self.tokens_per_frame

    # -- video -------------------------------------------------------------------------------------
    def video_tokens(self, video: Tensor) -> VideoTokens:
        """Tower first layer ``[B, T*(1+P), d_v]``, feature-layer ``[CLS]`` ``[B, T, d_v]`` and projected tokens
        ``[B, T*(1+P), D]``."""
        b, t = video.shape[:2]
        inner = self.model.model
        out = inner.video_tower(video.flatten(0, 1).to(self.model.dtype), output_hidden_states=True)
        feat = out.hidden_states[self.model.config.vision_feature_layer]
        proj = inner.multi_modal_projector(feat)
        first = out.hidden_states[1]
        first = first.reshape(b, t * first.shape[1], -1)
        fidx, prc = video_token_maps(b, t, self.grid, cls_tokens=1, device=video.device)
        tokens = proj.reshape(b, -1, proj.shape[-1])
        return VideoTokens(first, fidx, prc, self.grid, feat[:, 0].reshape(b, t, -1), tokens, fidx[0], prc[0])


# ---------------------------------------------------------------------------------------------------------
# checkpoint


_OLD = (("language_model.model.", "model.language_model."), ("language_model.lm_head.", "lm_head."),
        ("video_tower.", "model.video_tower."), ("image_tower.", "model.image_tower."),
        ("multi_modal_projector.", "model.multi_modal_projector."))


def to_model_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Checkpoint keys -> ``VideoLlavaForConditionalGeneration`` keys (older transformers layout, this host's
    own saved layout with a leading ``model.``)."""
    if any(k.startswith(("model.model.", "model.lm_head.")) for k in state):
        state = {k[len("model."):]: v for k, v in state.items()}
    out = {}
    for k, v in state.items():
        for old, new in _OLD:
            if k.startswith(old):
                k = new + k[len(old):]
                break
        out[k] = v
    return out


def build_video_llava(spec: HostSpec, tag: WeightTag | None, checkpoint: Path | None, *, config: Any = None,
                      tokenizer: Any = None, dtype: str | None = None, strict: bool = True,
                      **options: Any) -> VideoLlavaHost:
    """Factory for ``create_host("video_llava", checkpoint=DIR, **config)``.

    ``checkpoint``: a directory in transformers layout (``config.json``, ``*.safetensors``, tokenizer files),
    e.g. ``LanguageBind/Video-LLaVA-7B-hf``, or a single safetensors file saved by this host (a post-trained host:
    then pass ``config``, e.g. ``host.options.config=Video-LLaVA-7B-hf``). ``config``: a ``VideoLlavaConfig``, a
    dict, or a directory / ``config.json`` path (required for random initialisation). Other options go to
    :class:`VideoLlavaHost` (``num_frames``, templates, ``caption_prompt``, ``mc_length_norm`` ...).
    """
    from transformers import VideoLlavaConfig

    config = load_config(config, VideoLlavaConfig, "Video-LLaVA config", "HF hub LanguageBind/Video-LLaVA-7B-hf")
    if config is None:
        if checkpoint is None or not (checkpoint / "config.json").exists():
            raise CheckpointError("video_llava needs `config` (VideoLlavaConfig, dict, or a directory / config.json) "
                                  "or a checkpoint directory with config.json (HF hub LanguageBind/Video-LLaVA-7B-hf)")
        config = VideoLlavaConfig.from_pretrained(str(checkpoint), local_files_only=True)
    if tokenizer is None and checkpoint is not None and checkpoint.is_dir():
        tokenizer = checkpoint
    tok = load_tokenizer(tokenizer, "Video-LLaVA tokenizer", "HF hub LanguageBind/Video-LLaVA-7B-hf")
    host = VideoLlavaHost(spec, config, tok, **options)
    if checkpoint is not None:
        files = sorted(checkpoint.glob("*.safetensors")) if checkpoint.is_dir() else [checkpoint]
        if not files:
            raise CheckpointError(f"{checkpoint}: no *.safetensors weights (Video-LLaVA-7B-hf layout expected)")
        state: dict[str, Tensor] = {}
        for f in files:
            state.update(load_state_dict(f, what="Video-LLaVA weights", source="LanguageBind/Video-LLaVA-7B-hf"))
        missing, unexpected = host.model.load_state_dict(to_model_state(state), strict=False)
        if config.tie_word_embeddings:
            missing = [k for k in missing if k != "lm_head.weight"]
        if strict and (missing or unexpected):
            raise CheckpointError(f"{checkpoint}: does not match video_llava: missing {missing[:5]}, "
                                  f"unexpected {unexpected[:5]}")
    if dtype is not None:
        host.to(getattr(torch, dtype))
    return host


SPEC = register_host(HostSpec(
    name="video_llava", has_text=True, has_video=True, has_cross=True, llm_text_cross=True,
    capabilities=frozenset({"retrieval", "classification", "generation", "multiple_choice"}),
    factory=build_video_llava, params="7.4B", pretrain_data="32B",
    paper="Lin et al., Video-LLaVA, arXiv:2311.10122 (2023)", code="https://github.com/PKU-YuanGroup/Video-LLaVA",
    license="Apache-2.0", status="implemented", display="Video-LLaVA", order=130,
    aliases=("video-llava", "videollava"),
    parity="tests/hosts/test_hosts_video_llava.py::test_parity_with_transformers_class",
    notes="transformers VideoLlavaForConditionalGeneration (LanguageBind video tower + Vicuna-7B v1.5); the LLM "
          "acts as text and cross-modal encoder.",
    tags={"": WeightTag("", "Video-LLaVA-7B-hf", "Video-LLaVA-7B in transformers layout (directory: config.json, "
                        "*.safetensors, tokenizer files)",
                        "download the HF hub repo LanguageBind/Video-LLaVA-7B-hf (e.g. `hf download "
                        "LanguageBind/Video-LLaVA-7B-hf --local-dir Video-LLaVA-7B-hf`)")},
))
