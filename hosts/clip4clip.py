"""CLIP4Clip (Luo et al., arXiv:2104.08860; github.com/ArrowLuo/CLIP4Clip) on transformers' CLIP.

Architecture (Table 10: T and V, no C): CLIP text tower (EOT token -> ``text_projection``) and CLIP image
tower applied per frame (``[CLS]`` -> ``visual_projection``), then a temporal aggregation ``sim_header``:

* ``meanP``: parameter-free; per-frame embeddings are L2-normalised and averaged;
* ``seqTransf``: learned frame positions + a residual OpenAI-style transformer over frames (4 layers in
  the paper's runs), then the same normalise-and-average.

Retrieval score: ``exp(logit_scale) * <t, v>`` of the normalised embeddings; training loss: the symmetric
InfoNCE (CLIP4Clip's ``CrossEn`` on ``sim`` and ``sim.T``), which is also this host's own VLA loss for
Finsta post-training (Eq 42, ``"vla"``). It has no MLM loss.

Weights: plain CLIP (transformers names, or OpenAI names such as a converted ``ViT-B-32.pt``), the
official CLIP4Clip checkpoint layout (``clip.<openai names>``, ``transformerClip.resblocks.N``,
``frame_position_embeddings``), or this host's own saved state. Key names are mapped on load.

Shapes: ``B`` batch, ``T`` frames, ``L`` tokens, ``P`` patches, ``E`` embedding width, ``d`` tower width.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hosts.base import EncoderOutput, Host, HostBatch, HostOutputs, Preprocess, TokenStates
from hosts.checkpoints import weight_files
from hosts.errors import CheckpointError
from hosts.io import load_state_dict
from hosts.pooling import l2norm, last_token, masked_mean, symmetric_infonce, video_token_maps
from hosts.spec import HostSpec, WeightTag, register_host
from hosts.text import load_tokenizer, tokenize_with_spans

SIM_HEADERS = ("meanP", "seqTransf")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class QuickGELU(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


# The official temporal blocks (``module_clip.ResidualAttentionBlock`` inside ``TransformerClip``) use the
# TF-style ``until_module.LayerNorm`` with eps 1e-12, not CLIP's 1e-5 (the parity test catches 1e-5).
SEQ_LN_EPS = 1e-12


class ResidualBlock(nn.Module):
    """Pre-LN attention block with OpenAI CLIP parameter names (``attn``, ``ln_1``, ``mlp.c_fc`` ...)."""

    def __init__(self, width: int, heads: int, eps: float = SEQ_LN_EPS) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_1 = nn.LayerNorm(width, eps=eps)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(width, 4 * width)), ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(4 * width, width))]))
        self.ln_2 = nn.LayerNorm(width, eps=eps)

    def forward(self, x: Tensor, pad: Tensor | None) -> Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, key_padding_mask=pad, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class SeqTransformer(nn.Module):
    """CLIP4Clip's ``seqTransf`` temporal encoder: ``[B, T, E]`` frames -> ``[B, T, E]`` (residual added
    by the caller). Padded frames (``mask`` False) are excluded as keys."""

    def __init__(self, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualBlock(width, heads) for _ in range(layers)])

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        pad = ~mask
        for block in self.resblocks:
            x = block(x, pad)
        return x


class CLIP4ClipHost(Host):
    """CLIP4Clip wrapper implementing the host contract (retrieval, classification, multiple choice)."""

    def __init__(self, spec: HostSpec, clip_config: Any, tokenizer: Any, sim_header: str = "meanP",
                 seq_layers: int = 4, seq_heads: int | None = None, max_words: int = 32,
                 preprocess: Preprocess | None = None) -> None:
        from transformers import CLIPModel

        if sim_header not in SIM_HEADERS:
            raise ValueError(f"sim_header must be one of {SIM_HEADERS} (seqLSTM/tightTransf are not provided), "
                             f"got {sim_header!r}")
        vc = clip_config.vision_config
        super().__init__(spec, preprocess or Preprocess(num_frames=12, resolution=vc.image_size,
                                                        mean=CLIP_MEAN, std=CLIP_STD))
        self.clip = CLIPModel(clip_config)
        self.tokenizer = tokenizer
        self.sim_header = sim_header
        self.max_words = max_words
        e = clip_config.projection_dim
        self.grid = (vc.image_size // vc.patch_size, vc.image_size // vc.patch_size)
        if sim_header == "seqTransf":
            self.frame_position_embeddings = nn.Embedding(clip_config.text_config.max_position_embeddings, e)
            self.seq_transformer = SeqTransformer(e, seq_layers, seq_heads or max(1, e // 64))

    # -- widths ------------------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        return self.clip.config.projection_dim

    def encoder_widths(self) -> dict[str, int]:
        return {"text": self.embed_dim, "video": self.embed_dim}

    def first_layer_widths(self) -> dict[str, int]:
        return {"text": self.clip.config.text_config.hidden_size, "video": self.clip.config.vision_config.hidden_size}

    @property
    def logit_scale(self) -> Tensor:
        return self.clip.logit_scale.exp()

    # -- towers ------------------------------------------------------------------------------------
    def tokenize(self, texts: list[str]):
        dev = self.clip.logit_scale.device
        return tokenize_with_spans(self.tokenizer, texts, max_length=self.max_words).to(dev)

    def _text(self, texts: list[str], hidden: bool = False) -> tuple[Tensor, Any]:
        """-> pooled ``[B, E]`` (EOT projected, not normalised) and (tokens, first-layer ``[B, L, d_t]``)."""
        tok = self.tokenize(texts)
        out = self.clip.text_model(input_ids=tok.input_ids, attention_mask=tok.attention_mask.long(),
                                   output_hidden_states=hidden)
        pooled = self.clip.text_projection(last_token(out.last_hidden_state, tok.attention_mask))
        return pooled, (tok, out.hidden_states[1] if hidden else None)

    def _frames(self, video: Tensor, hidden: bool = False) -> tuple[Tensor, Tensor | None]:
        """``[B, T, 3, H, W]`` -> per-frame ``[B, T, E]`` (CLS projected) and first-layer ``[B, T*(1+P), d_v]``."""
        b, t = video.shape[:2]
        out = self.clip.vision_model(pixel_values=video.flatten(0, 1), output_hidden_states=hidden)
        frames = self.clip.visual_projection(out.pooler_output).view(b, t, -1)
        first = out.hidden_states[1].reshape(b, -1, out.hidden_states[1].shape[-1]) if hidden else None
        return frames, first

    def aggregate(self, frames: Tensor, mask: Tensor | None = None) -> Tensor:
        """Temporal aggregation ``sim_header`` on per-frame embeddings ``[B, T, E]`` -> ``[B, T, E]``."""
        if self.sim_header == "meanP":
            return frames
        b, t, _ = frames.shape
        if mask is None:
            mask = torch.ones(b, t, dtype=torch.bool, device=frames.device)
        pos = self.frame_position_embeddings(torch.arange(t, device=frames.device)).unsqueeze(0)
        return self.seq_transformer(frames + pos, mask) + frames

    @staticmethod
    def pool_video(frames: Tensor, mask: Tensor | None = None) -> Tensor:
        """CLIP4Clip's video embedding: normalise each frame, masked mean, normalise: ``[B, T, E]`` -> ``[B, E]``."""
        if mask is None:
            mask = torch.ones(frames.shape[:2], dtype=torch.bool, device=frames.device)
        return l2norm(masked_mean(l2norm(frames), mask))

    # -- capabilities ------------------------------------------------------------------------------
    def encode_text(self, texts: list[str]) -> Tensor:
        return l2norm(self._text(texts)[0])

    def encode_video(self, video: Tensor, frame_times: Tensor | None = None) -> Tensor:
        return self.pool_video(self.aggregate(self._frames(video)[0]))

    def similarity(self, text_emb: Tensor, video_emb: Tensor) -> Tensor:
        """Retrieval logits ``[N_text, N_video]`` from normalised embeddings."""
        return self.logit_scale * text_emb @ video_emb.t()

    def score_options(self, video: Tensor, questions: list[str], options: list[list[str]],
                      frame_times: Tensor | None = None) -> Tensor:
        """Multiple choice as retrieval: cosine of the video with ``"question option"`` for each option."""
        k = len(options[0])
        if any(len(o) != k for o in options):
            raise ValueError("score_options needs the same number of options for every question")
        texts = [f"{q} {o}".strip() for q, opts in zip(questions, options) for o in opts]
        t = self.encode_text(texts).view(len(options), k, -1)
        v = self.encode_video(video, frame_times)
        return torch.einsum("bkd,bd->bk", t, v)

    def retrieval_loss(self, video: Tensor, texts: list[str]) -> Tensor:
        """Symmetric InfoNCE over the batch (fine-tuning objective)."""
        return symmetric_infonce(self.encode_text(texts), self.encode_video(video), self.logit_scale)

    # -- Finsta ------------------------------------------------------------------------------------
    def posttrain_outputs(self, batch: HostBatch, with_losses: bool = True) -> HostOutputs:
        text_pooled, (tok, text_first) = self._text(batch.texts, hidden=True)
        frames, video_first = self._frames(batch.video, hidden=True)
        b, t = frames.shape[:2]
        agg = self.aggregate(frames)
        fidx, prc = video_token_maps(b, t, self.grid, cls_tokens=1, device=frames.device)
        out = HostOutputs(
            text=EncoderOutput(TokenStates(text_first, tok.attention_mask, char_spans=tok.char_spans), text_pooled),
            video=EncoderOutput(
                TokenStates(video_first, torch.ones(video_first.shape[:2], dtype=torch.bool, device=frames.device),
                            frame_index=fidx, patch_rc=prc, grid=self.grid),
                agg, frame_times=batch.frame_times))
        if with_losses:
            out.losses["vla"] = symmetric_infonce(l2norm(text_pooled), self.pool_video(agg), self.logit_scale)
        return out


# ---------------------------------------------------------------------------------------------------------
# checkpoint layouts


_BLOCK = {"attn.out_proj.": "self_attn.out_proj.", "ln_1.": "layer_norm1.", "ln_2.": "layer_norm2.",
          "mlp.c_fc.": "mlp.fc1.", "mlp.c_proj.": "mlp.fc2."}
_TOP = {"visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
        "visual.class_embedding": "vision_model.embeddings.class_embedding",
        "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
        "visual.ln_pre.weight": "vision_model.pre_layrnorm.weight",
        "visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
        "visual.ln_post.weight": "vision_model.post_layernorm.weight",
        "visual.ln_post.bias": "vision_model.post_layernorm.bias",
        "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
        "positional_embedding": "text_model.embeddings.position_embedding.weight",
        "ln_final.weight": "text_model.final_layer_norm.weight", "ln_final.bias": "text_model.final_layer_norm.bias",
        "logit_scale": "logit_scale"}
_RES = re.compile(r"^(visual\.)?transformer\.resblocks\.(\d+)\.(.+)$")


def openai_clip_to_hf(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Map OpenAI CLIP parameter names (``visual.conv1``, ``transformer.resblocks.N.attn.in_proj_weight``,
    ``text_projection`` ...) to transformers' ``CLIPModel`` names (fused qkv split, projections transposed)."""
    out: dict[str, Tensor] = {}
    for k, v in state.items():
        if k in ("input_resolution", "context_length", "vocab_size"):
            continue
        if k in _TOP:
            out[_TOP[k]] = v
        elif k == "visual.proj":
            out["visual_projection.weight"] = v.t().contiguous()
        elif k == "text_projection":
            out["text_projection.weight"] = v.t().contiguous()
        elif m := _RES.match(k):
            tower = "vision_model" if m.group(1) else "text_model"
            pre, rest = f"{tower}.encoder.layers.{m.group(2)}.", m.group(3)
            if rest.startswith("attn.in_proj_"):
                kind = rest.rsplit("_", 1)[1]  # weight / bias
                for name, part in zip(("q", "k", "v"), v.chunk(3, dim=0)):
                    out[f"{pre}self_attn.{name}_proj.{kind}"] = part.contiguous()
            else:
                for a, b in _BLOCK.items():
                    if rest.startswith(a):
                        rest = b + rest[len(a):]
                        break
                out[pre + rest] = v
        else:
            out[k] = v  # left for the caller to judge
    return out


def hf_clip_to_openai(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Inverse of :func:`openai_clip_to_hf` (export to the OpenAI / official CLIP4Clip naming)."""
    inv_top = {v: k for k, v in _TOP.items()}
    out: dict[str, Tensor] = {}
    qkv: dict[str, dict[str, Tensor]] = {}
    for k, v in state.items():
        if k in inv_top:
            out[inv_top[k]] = v
        elif k == "visual_projection.weight":
            out["visual.proj"] = v.t().contiguous()
        elif k == "text_projection.weight":
            out["text_projection"] = v.t().contiguous()
        elif m := re.match(r"^(vision|text)_model\.encoder\.layers\.(\d+)\.(.+)$", k):
            pre = ("visual." if m.group(1) == "vision" else "") + f"transformer.resblocks.{m.group(2)}."
            rest = m.group(3)
            if q := re.match(r"self_attn\.([qkv])_proj\.(weight|bias)", rest):
                qkv.setdefault(f"{pre}attn.in_proj_{q.group(2)}", {})[q.group(1)] = v
                continue
            for a, b in _BLOCK.items():
                if rest.startswith(b):
                    rest = a + rest[len(b):]
                    break
            out[pre + rest] = v
        else:
            out[k] = v
    for k, parts in qkv.items():
        out[k] = torch.cat([parts["q"], parts["k"], parts["v"]], 0)
    return out


def to_host_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Any supported layout -> this host's ``state_dict`` names (``clip.<transformers names>``,
    ``seq_transformer.resblocks.N``, ``frame_position_embeddings``). Official tight-type / LSTM parts
    (``cross.*``, ``similarity_dense``, ``lstm_visual``) are dropped: those heads are not provided."""
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    if any(k.startswith("clip.") for k in state):  # official CLIP4Clip or our own layout
        clip = {k[5:]: v for k, v in state.items() if k.startswith("clip.")}
        rest = {k: v for k, v in state.items() if not k.startswith("clip.")}
    else:  # plain CLIP
        clip, rest = state, {}
    if any(k.startswith("visual.") or k.startswith("transformer.resblocks") for k in clip):
        clip = openai_clip_to_hf(clip)
    out = {f"clip.{k}": v for k, v in clip.items()}
    for k, v in rest.items():
        if k.startswith(("cross.", "similarity_dense.", "lstm_visual.")):
            continue
        out[k.replace("transformerClip.", "seq_transformer.", 1)] = v
    # OpenAI-style seq blocks use fused in_proj names; nn.MultiheadAttention keeps the same names.
    return out


def infer_clip_config(state: dict[str, Tensor]) -> Any:
    """A ``CLIPConfig`` whose shapes match a host-named state dict (widths, depths, patch, grid, vocab)."""
    from transformers import CLIPConfig

    def count(prefix: str) -> int:
        return len({int(m.group(1)) for k in state if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))})

    try:
        patch = state["clip.vision_model.embeddings.patch_embedding.weight"]
        vpos = state["clip.vision_model.embeddings.position_embedding.weight"]
        tok = state["clip.text_model.embeddings.token_embedding.weight"]
        tpos = state["clip.text_model.embeddings.position_embedding.weight"]
        proj = state["clip.text_projection.weight"]
        vfc = state["clip.vision_model.encoder.layers.0.mlp.fc1.weight"]
        tfc = state["clip.text_model.encoder.layers.0.mlp.fc1.weight"]
    except KeyError as err:
        raise CheckpointError(f"not a CLIP / CLIP4Clip checkpoint: no {err.args[0]}") from err
    vw, tw = patch.shape[0], tok.shape[1]
    grid = int(round(math.sqrt(vpos.shape[0] - 1)))
    t_layers, v_layers = count("clip.text_model.encoder.layers."), count("clip.vision_model.encoder.layers.")
    return CLIPConfig(
        text_config=dict(vocab_size=tok.shape[0], hidden_size=tw, intermediate_size=tfc.shape[0],
                         num_hidden_layers=t_layers, num_attention_heads=max(1, tw // 64),
                         max_position_embeddings=tpos.shape[0]),
        vision_config=dict(hidden_size=vw, intermediate_size=vfc.shape[0], patch_size=patch.shape[-1],
                           image_size=patch.shape[-1] * grid, num_hidden_layers=v_layers,
                           num_attention_heads=max(1, vw // 64)),
        projection_dim=proj.shape[0])


def _read_checkpoint(path: Path) -> dict[str, Tensor]:
    """A file, an HF directory (all ``*.safetensors``) or a directory with one official weight file."""
    if path.is_dir():
        files = sorted(path.glob("*.safetensors")) or weight_files(path)
        if not files:
            raise CheckpointError(f"{path}: no weight file in the CLIP / CLIP4Clip checkpoint directory")
        if len(files) > 1 and files[0].suffix != ".safetensors":
            raise CheckpointError(f"{path}: several weight files ({', '.join(f.name for f in files)}); pass the one "
                                  "to load as host.checkpoint")
        state: dict[str, Tensor] = {}
        for f in files:
            state.update(load_state_dict(f, what="CLIP4Clip checkpoint"))
        return state
    return load_state_dict(path, what="CLIP4Clip checkpoint")


def build_clip4clip(spec: HostSpec, tag: WeightTag | None, checkpoint: Path | None, *, clip_config: Any = None,
                    tokenizer: Any = None, sim_header: str | None = None, seq_layers: int | None = None,
                    seq_heads: int | None = None, max_words: int = 32, num_frames: int = 12,
                    strict: bool = True) -> CLIP4ClipHost:
    """Factory for ``create_host("clip4clip[.tag]", checkpoint, **config)``.

    Args:
        clip_config: a ``transformers.CLIPConfig`` (or its dict); read from an HF directory's ``config.json``,
            else inferred from the checkpoint's shapes if None; required for random initialisation.
        tokenizer: a fast CLIP tokenizer object, a local directory or a ``tokenizer.json``; defaults to the
            checkpoint directory when it holds tokenizer files.
        sim_header: ``meanP`` or ``seqTransf``; inferred from the checkpoint (``transformerClip`` keys) if None.
        seq_layers: ``seqTransf`` depth (official ``--cross_num_hidden_layers``, 4); inferred if None.
        max_words: text length (official 32), num_frames: frames per video (official ``--max_frames`` 12).
    """
    from transformers import CLIPConfig

    state = to_host_state(_read_checkpoint(checkpoint)) if checkpoint is not None else None
    if isinstance(clip_config, dict):
        clip_config = CLIPConfig(**clip_config)
    if clip_config is None and checkpoint is not None and (checkpoint / "config.json").is_file():
        clip_config = CLIPConfig.from_pretrained(str(checkpoint), local_files_only=True)  # HF directory
    if clip_config is None:
        if state is None:
            raise ValueError("clip4clip with random_init needs clip_config (a transformers CLIPConfig)")
        clip_config = infer_clip_config(state)
    seq_keys = [k for k in (state or {}) if k.startswith("seq_transformer.resblocks.")]
    if sim_header is None:
        sim_header = "seqTransf" if seq_keys else "meanP"
    if seq_layers is None:
        seq_layers = len({k.split(".")[2] for k in seq_keys}) or 4
    if tokenizer is None and checkpoint is not None and checkpoint.is_dir():
        tokenizer = checkpoint
    tok = load_tokenizer(tokenizer, "CLIP tokenizer", "the HF hub repo of the CLIP weights (tokenizer.json)")
    preprocess = Preprocess(num_frames=num_frames, resolution=clip_config.vision_config.image_size,
                            mean=CLIP_MEAN, std=CLIP_STD)
    host = CLIP4ClipHost(spec, clip_config, tok, sim_header=sim_header, seq_layers=seq_layers, seq_heads=seq_heads,
                         max_words=max_words, preprocess=preprocess)
    if state is not None:
        _load_into(host, state, checkpoint, strict)
    return host


def _load_into(host: CLIP4ClipHost, state: dict[str, Tensor], path: Path | None, strict: bool) -> None:
    own = host.state_dict()
    if host.sim_header == "seqTransf":
        # plain CLIP weights: CLIP4Clip initialises the frame positions from the text positions and the
        # temporal transformer from the first text blocks (its "initialization trick"); same here.
        if "frame_position_embeddings.weight" not in state:
            state["frame_position_embeddings.weight"] = state["clip.text_model.embeddings.position_embedding.weight"]
        if not any(k.startswith("seq_transformer.") for k in state):
            text_blocks = hf_clip_to_openai({k[5:]: v for k, v in state.items()
                                             if k.startswith("clip.text_model.encoder.layers.")})
            for k, v in text_blocks.items():
                new = k.replace("transformer.resblocks.", "seq_transformer.resblocks.", 1)
                if new in own and own[new].shape == v.shape:
                    state[new] = v
    missing, unexpected = host.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    bad = [k for k in state if k in own and state[k].shape != own[k].shape]
    if strict and (missing or unexpected or bad):
        raise CheckpointError(f"{path}: does not match clip4clip ({host.sim_header}): missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}, shape mismatch {bad[:5]}")


SPEC = register_host(HostSpec(
    name="clip4clip", has_text=True, has_video=True, has_cross=False,
    capabilities=frozenset({"retrieval", "classification", "multiple_choice"}),
    factory=build_clip4clip, params="86M", pretrain_data="380K",
    paper="Luo et al., CLIP4Clip, Neurocomputing 2022 (arXiv:2104.08860)", code="https://github.com/ArrowLuo/CLIP4Clip",
    license="MIT", status="implemented", display="CLIP4Clip", order=40,
    parity="tests/hosts/test_hosts_clip4clip.py::test_parity_with_official_code",
    notes="CLIP ViT-B/32 text+image towers (transformers CLIPModel) with meanP / seqTransf temporal aggregation. "
          "Loads plain CLIP (HF directory or file, OpenAI names), the official CLIP4Clip checkpoint "
          "(pytorch_model.bin.N written by its main_task_retrieval.py) and this host's own saves. The official repo "
          "releases no fine-tuned weights.",
    tags={t.tag: t for t in (
        WeightTag("", "clip-vit-base-patch32", "CLIP ViT-B/32 initialisation (HF directory: config.json, "
                  "model.safetensors, tokenizer.json; or one safetensors file in HF or OpenAI names)",
                  "download the HF hub repo openai/clip-vit-base-patch32 (e.g. `hf download "
                  "openai/clip-vit-base-patch32 --local-dir clip-vit-base-patch32`)"),
        WeightTag("vitb16", "clip-vit-base-patch16", "CLIP ViT-B/16 initialisation (HF directory)",
                  "download the HF hub repo openai/clip-vit-base-patch16"),
        WeightTag("msrvtt_ft", "pytorch_model.bin.4", "CLIP4Clip fine-tuned on MSR-VTT 9k (official checkpoint "
                  "format, user-trained)", "train it with ArrowLuo/CLIP4Clip main_task_retrieval.py (README MSRVTT "
                  "command), which writes ckpts/<run>/pytorch_model.bin.N; there is no official release"))},
))
