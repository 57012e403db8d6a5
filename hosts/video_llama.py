"""Video-LLaMA (Zhang et al., EMNLP 2023 demo; github.com/DAMO-NLP-SG/Video-LLaMA @64888c0), vision-language
branch, native: transformers' ``Blip2VisionModel`` (EVA ViT-g shape) + ``ln_vision`` + the BLIP-2 Q-Former
(``Blip2QFormerModel``) per frame + learned frame positions + the video Q-Former (``Blip2QFormerModel``, cross
attention in every layer) + ``llama_proj`` (Linear) + ``LlamaForCausalLM``. Prompts, capabilities and the Finsta
outputs are the shared LLM-host machinery (``hosts/llm_video.py``).

Video tokens (official ``VideoLLAMA.encode_videoQformer_visual``): per frame, ``ln_vision(ViT(frame))`` is read by
the 32 image queries; frame ``t``'s query outputs get ``video_frame_position_embedding[t]``; the 32 video queries
read all frames' query outputs; ``llama_proj`` maps them to the LLM width (32 LLM video tokens, belonging to no
single frame). Finsta's video encoder outputs: first layer = ViT ``encoder.layers[0]`` per frame (``[CLS]`` +
patches); pooled per frame = the mean of that frame's image-query outputs (Q-Former width). The cross encoder
(the LLM) gives one clip-level pooled output (the video queries see every frame).

Module names follow the official checkpoint (``visual_encoder``, ``ln_vision`` inside it as ``post_layernorm``,
``Qformer``, ``query_tokens``, ``video_frame_position_embedding``, ``video_Qformer``, ``video_query_tokens``,
``llama_proj``, ``llama_model``); LAVIS layer names are renamed on load (:func:`lavis_to_host`).

Checkpoint (``create_host("video_llama", checkpoint=DIR)``), the official files side by side::

    DIR/finetune-vicuna7b-v2.pth          # HF DAMO-NLP-SG/Video-LLaMA-Series: video Q-Former, positions, llama_proj
    DIR/eva_vit_g.pth                     # LAVIS storage: EVA ViT-g (the official code downloads it)
    DIR/blip2_pretrained_flant5xxl.pth    # LAVIS storage: BLIP-2 Q-Former, query tokens, ln_vision
    DIR/llama/                            # the LLM in HF layout (Vicuna-7B v0, merged from its delta)

The official ``.pth`` files are pickles with a ``model`` dict; when they hold non-tensor objects (training
configs), ``torch.load(weights_only=True)`` refuses them: re-save their ``["model"]`` dict once, offline.

Shapes: ``B`` batch, ``T`` frames, ``P`` patches, ``W`` ViT width, ``H`` Q-Former width, ``D`` LLM width.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hosts.base import Preprocess
from hosts.checkpoints import check_checkpoint_path, weight_files
from hosts.errors import CheckpointError
from hosts.io import load_config, load_state_dict
from hosts.llm_video import LLMVideoHost, VideoTokens
from hosts.pooling import video_token_maps
from hosts.spec import HostSpec, WeightTag, register_host
from hosts.text import load_tokenizer

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
VL_FILE, EVA_FILE, BLIP2_FILE, LLM_DIR = ("finetune-vicuna7b-v2.pth", "eva_vit_g.pth", "blip2_pretrained_flant5xxl.pth",
                                          "llama")
LN_VISION_EPS = 1e-5  # blip2.LayerNorm = nn.LayerNorm default (the EVA blocks use 1e-6)


class VideoLlamaHost(LLMVideoHost):
    """Video-LLaMA (VL branch): retrieval, classification, generation, multiple choice."""

    def __init__(self, spec: HostSpec, vision_config: Any, qformer_config: Any, video_qformer_config: Any,
                 llm_config: Any, tokenizer: Any, num_query_token: int = 32, num_video_query_token: int = 32,
                 max_frame_pos: int = 32, num_frames: int = 8, preprocess: Preprocess | None = None,
                 **options: Any) -> None:
        from transformers import Blip2QFormerModel, Blip2VisionModel, LlamaForCausalLM

        options.setdefault("chat_template", "###Human: <Video><video></Video> {text} ###Assistant:")
        options.setdefault("posttrain_template", "###Human: {text} <Video><video></Video>")
        options.setdefault("embed_video_template",
                           "###Human: <Video><video></Video> Summarize the above video in one word: ###Assistant:")
        options.setdefault("embed_text_template", "###Human: {text} Summarize the above sentence in one word: "
                                                  "###Assistant:")
        super().__init__(spec, tokenizer, preprocess or Preprocess(num_frames=num_frames,
                                                                   resolution=vision_config.image_size,
                                                                   mean=MEAN, std=STD), **options)
        if num_frames > max_frame_pos:
            raise ValueError(f"num_frames {num_frames} > max_frame_pos {max_frame_pos} (frame position table)")
        self.visual_encoder = Blip2VisionModel(vision_config)
        self.visual_encoder.post_layernorm.eps = LN_VISION_EPS  # = the official ln_vision
        self.Qformer = Blip2QFormerModel(qformer_config)
        self.query_tokens = nn.Parameter(torch.zeros(1, num_query_token, qformer_config.hidden_size))
        self.video_frame_position_embedding = nn.Embedding(max_frame_pos, qformer_config.hidden_size)
        self.video_Qformer = Blip2QFormerModel(video_qformer_config)
        self.video_query_tokens = nn.Parameter(torch.zeros(1, num_video_query_token, video_qformer_config.hidden_size))
        self.llama_proj = nn.Linear(video_qformer_config.hidden_size, llm_config.hidden_size)
        self.llama_model = LlamaForCausalLM(llm_config)
        nn.init.normal_(self.query_tokens, std=qformer_config.initializer_range)
        nn.init.normal_(self.video_query_tokens, std=video_qformer_config.initializer_range)
        side = vision_config.image_size // vision_config.patch_size
        self.grid = (side, side)
        if "<ImageHere>" not in tokenizer.get_vocab():  # the official slot token; never embedded (no resize)
            tokenizer.add_tokens(["<ImageHere>"], special_tokens=True)
        self._slot = tokenizer.convert_tokens_to_ids("<ImageHere>")

    # -- LLM parts ---------------------------------------------------------------------------------
    @property
    def language_model(self) -> nn.Module:
        return self.llama_model.model

    @property
    def lm_head(self) -> nn.Module:
        return self.llama_model.lm_head

    @property
    def input_embeddings(self) -> nn.Module:
        return self.llama_model.get_input_embeddings()

    @property
    def video_token_id(self) -> int:
        return int(self._slot)

    @property
    def llm_width(self) -> int:
        return self.llama_model.config.hidden_size

    @property
    def video_width(self) -> int:
        return self.Qformer.config.hidden_size

    def first_layer_widths(self) -> dict[str, int]:
        return {**self.encoder_widths(), "video": self.visual_encoder.config.hidden_size}

    def num_video_tokens(self, num_frames: int) -> int:
        return self.video_query_tokens.shape[1]

    # -- video -------------------------------------------------------------------------------------
    def video_branch(self, video: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``[B, T, 3, H, W]`` -> ViT first layer ``[B, T*(1+P), W]``, image-query outputs ``[B, T, Q, H]`` and
        ``llama_proj`` inputs' image ``[B, Qv, D]`` (official ``encode_videoQformer_visual``)."""
        b, t = video.shape[:2]
        vis = self.visual_encoder(pixel_values=video.flatten(0, 1), output_hidden_states=True)
        image_embeds = vis.last_hidden_state  # post_layernorm = ln_vision
        first = vis.hidden_states[1]
        q = self.Qformer(query_embeds=self.query_tokens.expand(b * t, -1, -1), encoder_hidden_states=image_embeds,
                         encoder_attention_mask=torch.ones(image_embeds.shape[:2], dtype=torch.long,
                                                           device=video.device)).last_hidden_state
        q = q.view(b, t, *q.shape[1:])
        frames = q + self.video_frame_position_embedding(torch.arange(t, device=video.device)).view(1, t, 1, -1)
        frames = frames.flatten(1, 2)
        vq = self.video_Qformer(query_embeds=self.video_query_tokens.expand(b, -1, -1), encoder_hidden_states=frames,
                                encoder_attention_mask=torch.ones(frames.shape[:2], dtype=torch.long,
                                                                  device=video.device)).last_hidden_state
        return first.reshape(b, t * first.shape[1], -1), q, self.llama_proj(vq)

    def video_tokens(self, video: Tensor) -> VideoTokens:
        b, t = video.shape[:2]
        first, q, tokens = self.video_branch(video)
        fidx, prc = video_token_maps(b, t, self.grid, cls_tokens=1, device=video.device)
        n = tokens.shape[1]
        none = torch.full((n,), -1, dtype=torch.long, device=video.device)
        return VideoTokens(first, fidx, prc, self.grid, q.mean(2), tokens, none, none[:, None].expand(n, 2))


# ---------------------------------------------------------------------------------------------------------
# checkpoint

_QFORMER = ((".attention.self.", ".attention.attention."), (".crossattention.self.", ".crossattention.attention."))


def _qformer_keys(prefix: str, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """LAVIS ``<prefix>.bert.*`` -> ``Blip2QFormerModel`` names; the text-only parts Video-LLaMA deletes
    (word / position embeddings, ``intermediate`` / ``output`` text FFNs, ``cls``) are dropped."""
    out = {}
    for k, v in state.items():
        if not k.startswith(prefix + ".bert."):
            continue
        rest = k[len(prefix) + 6:]
        if rest.startswith("embeddings."):
            if rest.startswith("embeddings.LayerNorm."):
                out[f"{prefix}.layernorm.{rest.rsplit('.', 1)[1]}"] = v
            continue
        if re.search(r"\.layer\.\d+\.(intermediate|output)\.", "." + rest):
            continue
        for a, b in _QFORMER:
            rest = ("." + rest).replace(a, b)[1:]
        out[f"{prefix}.{rest}"] = v
    return out


def _eva_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """EVA ViT-g (``eva_vit_g.pth`` names, optionally under ``visual_encoder.``) and ``ln_vision`` ->
    ``visual_encoder.<Blip2VisionModel names>`` (q/v biases fused into the qkv bias with a zero k bias)."""
    out: dict[str, Tensor] = {}
    top = {"cls_token": "embeddings.class_embedding", "pos_embed": "embeddings.position_embedding",
           "patch_embed.proj.weight": "embeddings.patch_embedding.weight",
           "patch_embed.proj.bias": "embeddings.patch_embedding.bias"}
    block = {"norm1": "layer_norm1", "norm2": "layer_norm2", "attn.proj": "self_attn.projection",
             "attn.qkv.weight": "self_attn.qkv.weight", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
    biases: dict[str, dict[str, Tensor]] = {}
    for k, v in state.items():
        if k.startswith("ln_vision."):
            out[f"visual_encoder.post_layernorm.{k.split('.', 1)[1]}"] = v
            continue
        k = k[len("visual_encoder."):] if k.startswith("visual_encoder.") else k
        if k in top:
            out[f"visual_encoder.{top[k]}"] = v
        elif m := re.match(r"blocks\.(\d+)\.(.+)$", k):
            pre, rest = f"visual_encoder.encoder.layers.{m.group(1)}.", m.group(2)
            if rest in ("attn.q_bias", "attn.v_bias"):
                biases.setdefault(pre, {})[rest[5]] = v
                continue
            for a, b in block.items():
                if rest.startswith(a):
                    out[pre + b + rest[len(a):]] = v
                    break
    for pre, qv in biases.items():
        out[pre + "self_attn.qkv.bias"] = torch.cat([qv["q"], torch.zeros_like(qv["v"]), qv["v"]])
    return out


def lavis_to_host(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Official (LAVIS-style) Video-LLaMA keys -> this host's ``state_dict`` names."""
    out = _eva_keys({k: v for k, v in state.items() if k.startswith(("visual_encoder.", "ln_vision.", "blocks.",
                                                                       "cls_token", "pos_embed", "patch_embed."))})
    out.update(_qformer_keys("Qformer", state))
    out.update(_qformer_keys("video_Qformer", state))
    for k in ("query_tokens", "video_query_tokens", "video_frame_position_embedding.weight", "llama_proj.weight",
              "llama_proj.bias"):
        if k in state:
            out[k] = state[k]
    out.update({k: v for k, v in state.items() if k.startswith("llama_model.")})
    return out


def _pth(path: Path, what: str, source: str) -> dict[str, Tensor]:
    return load_state_dict(path, what=what, source=source)


def _load_checked(host: VideoLlamaHost, state: dict[str, Tensor], path: Path, strict: bool) -> None:
    have = host.state_dict()
    missing, unexpected = host.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if host.llama_model.config.tie_word_embeddings:
        missing = [k for k in missing if k != "llama_model.lm_head.weight"]
    bad = [k for k in state if k in have and state[k].shape != have[k].shape]
    if strict and (missing or unexpected or bad):
        raise CheckpointError(f"{path}: does not match video_llama: missing {missing[:5]}, unexpected "
                              f"{unexpected[:5]}, shape mismatch {bad[:5]}")


def build_video_llama(spec: HostSpec, tag: WeightTag | None, checkpoint: Path | None, *, llm: Any = None,
                      vision_config: Any = None, qformer_config: Any = None, video_qformer_config: Any = None,
                      llm_config: Any = None, tokenizer: Any = None, dtype: str | None = None, strict: bool = True,
                      **options: Any) -> VideoLlamaHost:
    """Factory for ``create_host("video_llama", checkpoint=DIR_OR_VL_FILE, **config)`` (layout in the module
    docstring). Configs default to the official sizes (EVA ViT-g 1408 x 39 at 224 px, BERT-base Q-Formers with
    cross attention every 2nd / every layer, 32 + 32 queries); the LLM config is read from ``DIR/llama``."""
    from transformers import Blip2QFormerConfig, Blip2VisionConfig, LlamaConfig

    def cfg(value: Any, cls: Any, default: dict[str, Any]) -> Any:
        return cls(**value) if isinstance(value, dict) else (value if value is not None else cls(**default))

    vision_config = cfg(vision_config, Blip2VisionConfig, dict(hidden_size=1408, intermediate_size=6144,
                                                               num_hidden_layers=39, num_attention_heads=16,
                                                               image_size=224, patch_size=14, qkv_bias=True))
    qformer_config = cfg(qformer_config, Blip2QFormerConfig, dict(encoder_hidden_size=vision_config.hidden_size))
    video_qformer_config = cfg(video_qformer_config, Blip2QFormerConfig,
                               dict(num_hidden_layers=2, cross_attention_frequency=1,
                                    encoder_hidden_size=qformer_config.hidden_size))
    root = checkpoint.parent if checkpoint is not None and checkpoint.is_file() else checkpoint
    llm_dir = Path(llm) if llm is not None else (root / LLM_DIR if root is not None else None)
    llm_config = load_config(llm_config, LlamaConfig, "Video-LLaMA LLM config")
    own = None
    if checkpoint is not None and checkpoint.is_file():
        first = _pth(checkpoint, "Video-LLaMA checkpoint", "HF hub DAMO-NLP-SG/Video-LLaMA-Series")
        if any(k.startswith("visual_encoder.embeddings.") for k in first):  # saved by this host
            own = first
            if llm_config is None and not (llm_dir is not None and llm_dir.is_dir()):
                raise CheckpointError(f"{checkpoint}: a video_llama host save needs llm_config (object, dict or a "
                                      "directory / config.json) and tokenizer, or the LLM directory `llm=`")
    if llm_config is None:
        if llm_dir is None:
            raise CheckpointError("video_llama needs its checkpoint directory or llm_config for random_init")
        check_checkpoint_path(llm_dir, "Video-LLaMA LLM directory (HF layout)", "Vicuna-7B v0 (LLaMA-7B + delta)")
        llm_config = LlamaConfig.from_pretrained(str(llm_dir), local_files_only=True)
    if tokenizer is None and llm_dir is not None:
        tokenizer = llm_dir
    tok = load_tokenizer(tokenizer, "Video-LLaMA (LLaMA) tokenizer", "the LLM directory (Vicuna-7B v0)")
    host = VideoLlamaHost(spec, vision_config, qformer_config, video_qformer_config, llm_config, tok, **options)
    if own is not None:
        _load_checked(host, own, checkpoint, strict)
    elif checkpoint is not None:
        vl = checkpoint if checkpoint.is_file() else checkpoint / VL_FILE
        state = dict(_pth(vl, "Video-LLaMA VL branch", "HF hub DAMO-NLP-SG/Video-LLaMA-Series"))
        state.update({f"visual_encoder.{k}": v for k, v in _pth(root / EVA_FILE, "EVA ViT-g weights",
                                                                 "LAVIS storage (eva_vit_g.pth)").items()})
        blip2 = _pth(root / BLIP2_FILE, "BLIP-2 Q-Former", "LAVIS storage (blip2_pretrained_flant5xxl.pth)")
        state.update({k: v for k, v in blip2.items() if k.startswith(("Qformer.", "query_tokens", "ln_vision."))})
        files = sorted(llm_dir.glob("*.safetensors")) or weight_files(llm_dir)
        for f in files:
            state.update({f"llama_model.{k}": v for k, v in
                          load_state_dict(f, what="Video-LLaMA LLM weights", source="Vicuna-7B v0").items()})
        _load_checked(host, lavis_to_host(state), checkpoint, strict)
    if dtype is not None:
        host.to(getattr(torch, dtype))
    return host


SPEC = register_host(HostSpec(
    name="video_llama", has_text=True, has_video=True, has_cross=True, llm_text_cross=True,
    capabilities=frozenset({"retrieval", "classification", "generation", "multiple_choice"}),
    factory=build_video_llama, params="7.6B", pretrain_data="2B",
    paper="Zhang et al., Video-LLaMA, EMNLP 2023 demo", code="https://github.com/DAMO-NLP-SG/Video-LLaMA",
    license="BSD-3-Clause", status="implemented", display="Video-LLaMA", order=110, aliases=("video-llama",),
    parity="tests/hosts/test_hosts_video_llama.py::test_parity_with_official_code",
    notes="Native VL branch: Blip2VisionModel (EVA ViT-g) + BLIP-2 Q-Former per frame + frame positions + video "
          "Q-Former + Linear + LlamaForCausalLM (Vicuna-7B); computed ~7.85B. No audio branch.",
    tags={"": WeightTag("", VL_FILE, f"Video-LLaMA VL branch; next to it {EVA_FILE}, {BLIP2_FILE} and the LLM "
                        f"directory {LLM_DIR}/", "HF hub DAMO-NLP-SG/Video-LLaMA-Series (finetune-vicuna7b-v2.pth); "
                        "LAVIS storage googleapis sfr-vision-language-research/LAVIS/models/BLIP2/eva_vit_g.pth and "
                        "blip2_pretrained_flant5xxl.pth; Vicuna-7B v0 merged from its delta into llama/")},
))
