"""InternVideo (Wang et al., arXiv:2212.03191; github.com/OpenGVLab/InternVideo @3965eef), the multimodal
branch InternVideo-MM as released for pre-training (``InternVideo1/Pretrain/Multi-Modalities-Pretraining``,
``clip_utils/model.py: VideoIntern``), native: transformers' CLIP text tower (``CLIPTextModel`` + projection) and
CLIP vision tower applied per frame (``CLIPVisionModel``), plus the UniFormerV2-style global video module of
``clip_vit_only_global.py`` written here (:class:`GlobalVideoModule`).

Video embedding (official ``VideoIntern.encode_video``): on the outputs of the last ``n_layers`` ViT blocks, a
depth-wise 3D convolution adds positions to the patch tokens (``dpe``) and an ``Extractor`` (cross-attention +
MLP, Eq. of UniFormerV2) updates one learned temporal ``[CLS]`` query; the result is mixed with the mean of the
final per-frame ``[CLS]`` tokens by ``sigmoid(balance)``, then ``visual_ln_post`` and ``visual_proj``. Text: EOT
state of the causal CLIP text transformer -> ``text_projection``. Retrieval score ``exp(logit_scale) * cos``.

Table 10 marks InternVideo ``T V C``; its cross-modal module (the CoCa-style caption decoder) exists only in the
downstream fine-tuning code, not in the released InternVideo-MM checkpoint, so this host has the text and video
encoders (``has_cross`` False, noted in the catalogue). The paper reports InternVideo in Table 1 (K400 / SSV2
fine-tuning: classification on ``encode_video``) and Table 7 (zero-shot K400 by class prompts, LSMDC retrieval,
MSVD open-ended QA by answer-text similarity): all need only the two encoders.

Finsta's outputs: first layers = text ``encoder.layers[0]`` (char spans) and vision ``encoder.layers[0]`` per frame
(``[CLS]`` + patches); pooled text = the projected EOT state; pooled video per frame = the frame's final ``[CLS]``
through ``visual_ln_post`` and ``visual_proj`` (the embedding space of the video embedding); own loss ``vla`` =
symmetric InfoNCE (the VTC objective).

Checkpoint: ``InternVideo-MM-L-14.ckpt`` (HF hub OpenGVLab/InternVideo1.0), a Lightning-style dict whose
``state_dict`` holds ``clip.<OpenAI CLIP names>`` (``visual.conv1`` as a 3D convolution with temporal kernel 1,
``visual.transformer.{temporal_cls_token,dpe.N,dec.N,balance}``, ``visual_ln_post``, ``visual_proj``, the text
tower, ``text_mask_embedding``), as the official ``load_model`` reads it.

Shapes: ``B`` batch, ``T`` frames, ``L`` tokens, ``P`` patches, ``W`` vision width, ``E`` embedding width.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hosts.base import EncoderOutput, Host, HostBatch, HostOutputs, Preprocess, TokenStates
from hosts.clip4clip import QuickGELU, openai_clip_to_hf
from hosts.errors import CheckpointError
from hosts.io import load_state_dict
from hosts.pooling import l2norm, last_token, symmetric_infonce, video_token_maps
from hosts.spec import HostSpec, WeightTag, register_host
from hosts.text import load_tokenizer, tokenize_with_spans

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class Extractor(nn.Module):
    """Cross-attention block of the global module: a query ``x`` ``[1, N, W]`` attends to ``y`` ``[T*L, N, W]``
    (pre-LN on both, ``ln_3`` for ``y``), then a QuickGELU MLP; residual connections (official names)."""

    def __init__(self, width: int, heads: int, mlp_factor: float = 4.0) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1, self.ln_2, self.ln_3 = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(width)
        hidden = round(mlp_factor * width)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(width, hidden)), ("gelu", QuickGELU()),
                                              ("dropout", nn.Dropout(0.0)), ("c_proj", nn.Linear(hidden, width))]))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        q, kv = self.ln_1(x), self.ln_3(y)
        x = x + self.attn(q, kv, kv, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class GlobalVideoModule(nn.Module):
    """``temporal_cls_token``, ``dpe`` (depth-wise 3x3x3 convolutions), ``dec`` (:class:`Extractor`) and ``balance``
    over ``n_layers`` ViT block outputs (``clip_vit_only_global.Transformer``)."""

    def __init__(self, width: int, heads: int, n_layers: int, mlp_factor: float = 4.0) -> None:
        super().__init__()
        self.temporal_cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.dpe = nn.ModuleList([nn.Conv3d(width, width, 3, 1, 1, groups=width) for _ in range(n_layers)])
        self.dec = nn.ModuleList([Extractor(width, heads, mlp_factor) for _ in range(n_layers)])
        self.balance = nn.Parameter(torch.zeros(width))

    def forward(self, layers: list[Tensor], last: Tensor, grid: tuple[int, int]) -> Tensor:
        """``layers``: ``n_layers`` block outputs ``[B, T, 1+P, W]``; ``last``: the final one -> ``[B, W]``."""
        b, t, n, w = last.shape
        cls = self.temporal_cls_token.expand(1, b, w)
        for dpe, dec, x in zip(self.dpe, self.dec, layers):
            patches = x[:, :, 1:].permute(0, 3, 1, 2).reshape(b, w, t, *grid)  # [B, W, T, h, w]
            pos = dpe(patches).reshape(b, w, t, n - 1).permute(0, 2, 3, 1)  # [B, T, P, W]
            x = torch.cat([x[:, :, :1], x[:, :, 1:] + pos], 2)
            cls = dec(cls, x.flatten(1, 2).transpose(0, 1))  # keys: [T*(1+P), B, W]
        weight = torch.sigmoid(self.balance)
        return (1 - weight) * cls[0] + weight * last[:, :, 0].mean(1)


class InternVideoHost(Host):
    """InternVideo-MM (dual encoder): retrieval, classification, multiple choice."""

    def __init__(self, spec: HostSpec, text_config: Any, vision_config: Any, tokenizer: Any, embed_dim: int,
                 n_layers: int = 4, global_heads: int | None = None, max_words: int = 77, num_frames: int = 8,
                 preprocess: Preprocess | None = None) -> None:
        from transformers import CLIPTextModel, CLIPVisionModel

        super().__init__(spec, preprocess or Preprocess(num_frames=num_frames, resolution=vision_config.image_size,
                                                        mean=CLIP_MEAN, std=CLIP_STD))
        self.text = CLIPTextModel(text_config)
        self.text_projection = nn.Linear(text_config.hidden_size, embed_dim, bias=False)
        self.vision = CLIPVisionModel(vision_config)
        self.vision.post_layernorm = nn.Identity()  # the official ViT has no ln_post
        w = vision_config.hidden_size
        self.global_module = GlobalVideoModule(w, global_heads or vision_config.num_attention_heads, n_layers)
        self.visual_ln_post = nn.LayerNorm(w)
        self.visual_proj = nn.Parameter(torch.randn(w, embed_dim) * w ** -0.5)
        self.logit_scale = nn.Parameter(torch.tensor(2.6592))
        self.text_mask_embedding = nn.Parameter(torch.zeros(1, 1, text_config.hidden_size))  # MLM only (unused)
        self.tokenizer, self.max_words, self.n_layers = tokenizer, max_words, n_layers
        side = vision_config.image_size // vision_config.patch_size
        self.grid = (side, side)

    # -- widths ------------------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        return self.visual_proj.shape[1]

    def encoder_widths(self) -> dict[str, int]:
        return {"text": self.embed_dim, "video": self.embed_dim}

    def first_layer_widths(self) -> dict[str, int]:
        return {"text": self.text.config.hidden_size, "video": self.vision.config.hidden_size}

    # -- towers ------------------------------------------------------------------------------------
    def _text(self, texts: list[str], hidden: bool = False) -> tuple[Tensor, Any, Tensor | None]:
        """-> projected EOT ``[B, E]``, tokens, first-layer states ``[B, L, d_t]`` (if ``hidden``)."""
        tok = tokenize_with_spans(self.tokenizer, texts, max_length=self.max_words).to(self.visual_proj.device)
        out = self.text(input_ids=tok.input_ids, attention_mask=tok.attention_mask.long(), output_hidden_states=hidden)
        pooled = self.text_projection(last_token(out.last_hidden_state, tok.attention_mask))
        return pooled, tok, out.hidden_states[1] if hidden else None

    def video_features(self, video: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``[B, T, 3, H, W]`` -> video embedding ``[B, E]`` (not normalised), per-frame embeddings ``[B, T, E]``,
        first-layer states ``[B, T*(1+P), W]``."""
        b, t = video.shape[:2]
        out = self.vision(pixel_values=video.flatten(0, 1), output_hidden_states=True)
        hs = [h.view(b, t, *h.shape[1:]) for h in out.hidden_states]
        feats = self.global_module(hs[len(hs) - self.n_layers:], hs[-1], self.grid)
        video_emb = self.visual_ln_post(feats) @ self.visual_proj
        frames = self.visual_ln_post(hs[-1][:, :, 0]) @ self.visual_proj
        return video_emb, frames, hs[1].reshape(b, -1, hs[1].shape[-1])

    # -- capabilities ------------------------------------------------------------------------------
    def encode_text(self, texts: list[str]) -> Tensor:
        return l2norm(self._text(texts)[0])

    def encode_video(self, video: Tensor, frame_times: Tensor | None = None) -> Tensor:
        return l2norm(self.video_features(video)[0])

    def similarity(self, text_emb: Tensor, video_emb: Tensor) -> Tensor:
        """Retrieval logits ``[N_text, N_video]`` from normalised embeddings."""
        return self.logit_scale.exp() * text_emb @ video_emb.t()

    def score_options(self, video: Tensor, questions: list[str], options: list[list[str]],
                      frame_times: Tensor | None = None) -> Tensor:
        """Multiple choice as retrieval: cosine of the video with ``"question option"``; ``-inf`` pads."""
        k = max(len(o) for o in options)
        v = self.encode_video(video, frame_times)
        out = v.new_full((len(options), k), float("-inf"))
        for i, (q, opts) in enumerate(zip(questions, options)):
            out[i, :len(opts)] = self.encode_text([f"{q} {o}".strip() for o in opts]) @ v[i]
        return out

    # -- Finsta ------------------------------------------------------------------------------------
    def posttrain_outputs(self, batch: HostBatch, with_losses: bool = True) -> HostOutputs:
        text_pooled, tok, text_first = self._text(batch.texts, hidden=True)
        video_emb, frames, video_first = self.video_features(batch.video)
        b, t = frames.shape[:2]
        dev = frames.device
        fidx, prc = video_token_maps(b, t, self.grid, cls_tokens=1, device=dev)
        out = HostOutputs(
            text=EncoderOutput(TokenStates(text_first, tok.attention_mask, char_spans=tok.char_spans), text_pooled),
            video=EncoderOutput(TokenStates(video_first, torch.ones(video_first.shape[:2], dtype=torch.bool,
                                                                    device=dev),
                                            frame_index=fidx, patch_rc=prc, grid=self.grid),
                                frames, frame_times=batch.frame_times))
        if with_losses:
            out.losses["vla"] = symmetric_infonce(l2norm(text_pooled), l2norm(video_emb), self.logit_scale.exp())
        return out


# ---------------------------------------------------------------------------------------------------------
# checkpoint

_GLOBAL = re.compile(r"^visual\.transformer\.(temporal_cls_token|balance|dpe\.|dec\.)")


def official_to_host(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Official InternVideo-MM keys (``state_dict``; ``clip.`` prefix optional) -> this host's names."""
    if any(k.startswith("clip.") for k in state):
        state = {k[5:]: v for k, v in state.items() if k.startswith("clip.")}
    state = dict(state)
    if "visual.conv1.weight" in state and state["visual.conv1.weight"].dim() == 5:  # Conv3d, temporal kernel 1
        state["visual.conv1.weight"] = state["visual.conv1.weight"][:, :, 0]
    out: dict[str, Tensor] = {}
    glob = {k: v for k, v in state.items() if _GLOBAL.match(k)}
    rest = {k: v for k, v in state.items() if k not in glob}
    for k, v in glob.items():
        out["global_module." + k[len("visual.transformer."):]] = v
    for k, v in openai_clip_to_hf(rest).items():
        if k.startswith("vision_model."):  # CLIPVisionModel / CLIPTextModel (transformers 5) have no tower prefix
            out["vision." + k[len("vision_model."):]] = v
        elif k.startswith("text_model."):
            out["text." + k[len("text_model."):]] = v
        elif k == "text_projection.weight":
            out[k] = v
        elif k.startswith(("visual_ln_post.", "visual_proj", "logit_scale", "text_mask_embedding")):
            out[k] = v
        elif k.startswith(("global_module.", "text.", "vision.")):  # this host's own saves
            out[k] = v
    return out


def build_internvideo(spec: HostSpec, tag: WeightTag | None, checkpoint: Path | None, *, text_config: Any = None,
                      vision_config: Any = None, embed_dim: int = 768, n_layers: int = 4, tokenizer: Any = None,
                      max_words: int = 77, num_frames: int = 8, strict: bool = True) -> InternVideoHost:
    """Factory for ``create_host("internvideo", checkpoint=FILE, tokenizer=..., **config)``. Configs default to
    InternVideo-MM-L/14 (vision 1024 x 24, 16 heads, patch 14, 224 px; text 768 x 12, 12 heads, 77 tokens, CLIP
    BPE vocabulary 49408; embedding 768; global module over the last 4 blocks). ``tokenizer``: a CLIP fast
    tokenizer (e.g. the ``tokenizer.json`` of HF ``openai/clip-vit-large-patch14``: the same BPE vocabulary)."""
    from transformers import CLIPTextConfig, CLIPVisionConfig

    if isinstance(text_config, dict) or text_config is None:
        text_config = CLIPTextConfig(**(text_config or dict(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                                                            num_hidden_layers=12, num_attention_heads=12,
                                                            max_position_embeddings=77, hidden_act="quick_gelu")))
    if isinstance(vision_config, dict) or vision_config is None:
        vision_config = CLIPVisionConfig(**(vision_config or dict(hidden_size=1024, intermediate_size=4096,
                                                                  num_hidden_layers=24, num_attention_heads=16,
                                                                  image_size=224, patch_size=14,
                                                                  hidden_act="quick_gelu")))
    tok = load_tokenizer(tokenizer, "CLIP BPE tokenizer", "HF hub openai/clip-vit-large-patch14 (tokenizer.json)")
    host = InternVideoHost(spec, text_config, vision_config, tok, embed_dim, n_layers=n_layers, max_words=max_words,
                           num_frames=num_frames)
    if checkpoint is not None:
        state = official_to_host(load_state_dict(checkpoint, what="InternVideo-MM checkpoint",
                                                 source="HF hub OpenGVLab/InternVideo1.0"))
        own = host.state_dict()
        missing, unexpected = host.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        bad = [k for k in state if k in own and state[k].shape != own[k].shape]
        if strict and (missing or unexpected or bad):
            raise CheckpointError(f"{checkpoint}: does not match internvideo: missing {missing[:5]}, unexpected "
                                  f"{unexpected[:5]}, shape mismatch {bad[:5]}")
    return host


SPEC = register_host(HostSpec(
    name="internvideo", has_text=True, has_video=True, has_cross=False,
    capabilities=frozenset({"retrieval", "classification", "multiple_choice"}),
    factory=build_internvideo, params="1.3B", pretrain_data="~100M",
    paper="Wang et al., InternVideo, arXiv:2212.03191 (2022)", code="https://github.com/OpenGVLab/InternVideo",
    license="Apache-2.0", status="implemented", display="InternVideo", order=100,
    parity="tests/hosts/test_hosts_internvideo.py::test_parity_with_official_code",
    notes="Hosted variant: InternVideo-MM-L/14 as released (CLIP towers + UniFormerV2-style global video module, "
          "~0.48B computed); the paper's 1.3B counts the whole family. Table 10 lists a cross-modal encoder: the "
          "caption decoder exists only in the downstream fine-tuning code, not in the released checkpoint, so this "
          "host has T and V (enough for its paper cells, Tables 1 and 7).",
    tags={"": WeightTag("", "InternVideo-MM-L-14.ckpt", "InternVideo-MM-L/14 (Lightning-style dict, state_dict with "
                        "clip.* keys)", "HF hub OpenGVLab/InternVideo1.0 (InternVideo-MM-L-14.ckpt); tokenizer: "
                        "tokenizer.json of HF openai/clip-vit-large-patch14")},
))
