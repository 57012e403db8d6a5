"""MCQ / BridgeFormer (Ge et al., CVPR 2022; github.com/TencentARC/MCQ @3555a9b), native, official layout.

Architecture (``model/model_dist_MCQ.py``, ``model/video_bridge_former.py``; Table 10: T, V and C):

* ``text_model`` ("TextFormer"): ``transformers.DistilBertModel`` (distilbert-base-uncased, 6 layers); the text
  embedding is ``text_proj`` (``ReLU, Linear(768, 256)``) of the last-layer ``[CLS]``.
* ``video_model`` ("VideoFormer", :class:`VideoBridgeFormer`): the Frozen-in-Time space-time ViT-B/16 (12 blocks,
  768, timm parameter names). Per-frame patches get the tiled spatial positions of ``pos_embed`` (no temporal
  positions); in every block each frame's patches attend to the patches of their own frame plus one global
  ``[CLS]``, and the ``[CLS]`` attends to every patch of every frame (:class:`FrameAttention`). The video
  embedding is ``vid_proj`` of the ``[CLS]`` after ``norm1``.
* BridgeFormer (the C encoder, pre-training only: ``crossattn``, ``bridgeattn``, ``bridge_mlp``, ``norm4..7`` in
  each block, ``norm2`` at the end, ``bridge_proj``): block ``i`` reads the DistilBERT hidden state ``i // 2`` of a
  *question* (a caption with a noun or verb phrase erased); the question ``[CLS]`` cross-attends to every patch,
  the other question tokens to each frame's patches (one copy per frame), then a frame-wise self-attention and an
  MLP; its output is ``bridge_proj`` of the question ``[CLS]`` after ``norm2``.

Capabilities: retrieval (official ``sim_matrix``: cosine of ``text_proj`` / ``vid_proj`` embeddings), which also
serves the paper's zero-shot K400 and zero-shot open-ended QA cells (Table 7: class-name / answer-text similarity).
The official code has no other head.

Finsta reads (sec 5.2): text ``text_model.transformer.layer[0]``; video ``video_model.blocks[0]`` main stream
(global ``[CLS]`` has no frame); cross ``video_model.blocks[0]`` bridge stream (question ``[CLS]`` + one copy of
the question tokens per frame). Pooled: text = ``text_proj([CLS])``; video per frame = ``vid_proj`` of the mean
of the frame's patch tokens after ``norm1`` (MCQ has one global ``[CLS]``, no per-frame one); cross per frame =
``bridge_proj`` of the mean of the frame's bridge tokens after ``norm2``. In post-training the bridge reads the
caption itself as its question (no phrase is erased: the host sees no parse), documented in
``docs/hosts-mcq-allinone.md``. Own loss ``vla``: the official ``NormSoftmaxLoss`` (temperature 0.05, the two
directions summed) on text-video similarities.

Weights: ``MCQ.pth`` (Google Drive, README): ``{"state_dict": ..., "config": <ConfigParser>, ...}`` with an
optional DataParallel ``module.`` prefix. It is read without executing pickled code (:func:`read_pickled_checkpoint`)
and may be converted once to safetensors: ``python -m hosts.mcq convert MCQ.pth MCQ.safetensors``. A fine-tuned
downstream checkpoint (``model/model.py``: no BridgeFormer) loads too; the bridge is then reported missing.

Shapes: ``B`` batch, ``T`` frames, ``n`` patches per frame, ``L`` text tokens, ``d`` width, ``P`` projection.
"""

from __future__ import annotations

import math
import pickle
import re
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import DistilBertConfig, DistilBertModel

from hosts.base import EncoderOutput, Host, HostBatch, HostOutputs, Preprocess, TokenStates
from hosts.bert.sizes import count_indexed, heads_for_width
from hosts.checkpoints import weight_file_in
from hosts.errors import CheckpointError
from hosts.io import convert_main, load_state_dict, save_state_dict
from hosts.pooling import l2norm, masked_mean, video_token_maps
from hosts.spec import HostSpec, WeightTag, register_host
from hosts.text import load_tokenizer, tokenize_with_spans

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # data_loader/transforms.py
TEMPERATURE = 0.05  # model/loss.py NormSoftmaxLoss
VIT_EPS = 1e-6  # Video_Former's norm_layer: partial(nn.LayerNorm, eps=1e-6)
MASK_FILL = -10000.0  # attn_mask in video_bridge_former.py

MCQ_SIZES: dict[str, dict[str, Any]] = {
    "base": dict(text=dict(dim=768, n_layers=6, n_heads=12, hidden_dim=3072), embed_dim=768, depth=12,
                 num_heads=12, patch_size=16, resolution=224, num_frames=4, projection_dim=256),
    "tiny": dict(text=dict(dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64), embed_dim=32,
                 depth=4, num_heads=2, patch_size=16, resolution=32, num_frames=3, projection_dim=16),
}

SPEC = register_host(HostSpec(
    name="mcq", has_text=True, has_video=True, has_cross=True, capabilities=frozenset({"retrieval"}),
    factory="hosts.mcq:build_mcq",
    tags={"": WeightTag("", "MCQ.pth", "MCQ pre-trained (VideoFormer + TextFormer + BridgeFormer)",
                        "Google Drive link in the TencentARC/MCQ README; DistilBERT tokenizer: HF hub "
                        "distilbert/distilbert-base-uncased (pass host.options.tokenizer=DIR)")},
    params="168M", pretrain_data="5.8M",
    paper="Ge et al., Bridging Video-text Retrieval with Multiple Choice Questions, CVPR 2022",
    code="https://github.com/TencentARC/MCQ", license="BSD-3-Clause (README)", status="implemented",
    display="MCQ", order=50, parity="tests/hosts/test_hosts_mcq.py::test_parity_with_official_code",
    notes="Native (hosts/mcq.py): DistilBertModel + frame-wise space-time ViT with a global [CLS] + BridgeFormer in "
          "the official layout; parity-tested against the official Video_Bridge_Former / MCQ. BridgeFormer reads the "
          "caption as its question in post-training (no phrase erased)."))


# ---------------------------------------------------------------------------------------------------------
# ViT parts in timm's parameter layout (shared with hosts/allinone.py)


class Mlp(nn.Module):
    """timm's ``Mlp``: ``fc1 -> GELU -> fc2``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


def split_heads(x: Tensor, heads: int) -> Tensor:
    """``[..., N, h*dh]`` -> ``[..., h, N, dh]``."""
    *lead, n, d = x.shape
    return x.view(*lead, n, heads, d // heads).transpose(-3, -2)


def merge_heads(x: Tensor) -> Tensor:
    """``[..., h, N, dh]`` -> ``[..., N, h*dh]``."""
    x = x.transpose(-3, -2)
    return x.reshape(*x.shape[:-2], -1)


def key_bias(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """``[..., M]`` 0/1 key mask -> additive bias ``(1 - mask) * -10000`` (the official ``attn_mask``)."""
    return (1.0 - mask.to(dtype)) * MASK_FILL


def frame_attention(q: Tensor, k: Tensor, v: Tensor, frames: int, mask: Tensor | None = None) -> Tensor:
    """Frozen-in-Time space attention (official ``VarAttention`` with ``'b (f n) d -> (b f) n d'``).

    Args:
        q, k, v: ``[B, h, 1 + T*n, dh]``: a global ``[CLS]`` then ``T`` frames of ``n`` tokens (frame-major).
        frames: ``T``.
        mask: optional ``[B, 1 + n]`` key mask of one frame's layout (``[CLS]`` + ``n`` tokens), tiled over frames
            (the bridge stream's question mask).

    Returns:
        ``[B, h, 1 + T*n, dh]``: the ``[CLS]`` attends to every token; each frame's tokens attend to the
        ``[CLS]`` and to their own frame.
    """
    b, h, length, dh = q.shape
    n = (length - 1) // frames
    cls_bias = frame_bias = None
    if mask is not None:
        tiled = torch.cat([mask[:, :1], mask[:, 1:].repeat(1, frames)], 1)
        cls_bias = key_bias(tiled, q.dtype)[:, None, None, :]
        frame_bias = key_bias(mask, q.dtype)[:, None, None, None, :]
    cls_out = F.scaled_dot_product_attention(q[:, :, :1], k, v, attn_mask=cls_bias)
    qf, kf, vf = (x[:, :, 1:].reshape(b, h, frames, n, dh) for x in (q, k, v))
    kf = torch.cat([k[:, :, None, :1].expand(b, h, frames, 1, dh), kf], 3)
    vf = torch.cat([v[:, :, None, :1].expand(b, h, frames, 1, dh), vf], 3)
    out = F.scaled_dot_product_attention(qf, kf, vf, attn_mask=frame_bias)
    return torch.cat([cls_out, out.reshape(b, h, frames * n, dh)], 2)


class FrameAttention(nn.Module):
    """``attn`` / ``bridgeattn`` (official ``VarAttention``; timm names ``qkv``, ``proj``)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, frames: int, mask: Tensor | None = None) -> Tensor:
        q, k, v = (split_heads(t, self.heads) for t in self.qkv(x).chunk(3, -1))
        return self.proj(merge_heads(frame_attention(q, k, v, frames, mask)))


class BridgeCrossAttention(nn.Module):
    """``crossattn`` (official ``CrossAttention``): question tokens query the video patches.

    The question ``[CLS]`` attends to every patch of every frame; the other ``L - 1`` question tokens are copied
    once per frame and attend to that frame's patches: ``[B, T*n, d]``, ``[B, L, d]`` -> ``[B, 1 + T*(L-1), d]``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_question = nn.Linear(dim, dim)
        self.kv_video = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, patches: Tensor, question: Tensor, frames: int) -> Tensor:
        b = patches.shape[0]
        q = split_heads(self.q_question(question), self.heads)  # [B, h, L, dh]
        k, v = (split_heads(t, self.heads) for t in self.kv_video(patches).chunk(2, -1))
        cls_out = F.scaled_dot_product_attention(q[:, :, :1], k, v)
        h, n, dh = k.shape[1], k.shape[2] // frames, k.shape[3]
        kf, vf = (t.reshape(b, h, frames, n, dh) for t in (k, v))
        qf = q[:, :, None, 1:].expand(b, h, frames, q.shape[2] - 1, dh)
        out = F.scaled_dot_product_attention(qf, kf, vf).reshape(b, h, -1, dh)
        return self.proj(merge_heads(torch.cat([cls_out, out], 2)))


class VideoBridgeBlock(nn.Module):
    """One ``Video_Bridge_Block``: the VideoFormer block (``norm1, attn, norm2, mlp``) and the BridgeFormer block
    (``norm4, norm5, crossattn, norm7, bridgeattn, norm6, bridge_mlp``)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=VIT_EPS)
        self.attn = FrameAttention(dim, heads)
        self.crossattn = BridgeCrossAttention(dim, heads)
        self.bridgeattn = FrameAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=VIT_EPS)
        self.mlp = Mlp(dim, hidden)
        self.bridge_mlp = Mlp(dim, hidden)
        for i in (4, 5, 6, 7):
            setattr(self, f"norm{i}", nn.LayerNorm(dim, eps=VIT_EPS))

    def video(self, x: Tensor, frames: int) -> Tensor:
        """Main stream: ``[B, 1 + T*n, d]`` -> same."""
        x = x + self.attn(self.norm1(x), frames)
        return x + self.mlp(self.norm2(x))

    def bridge(self, x: Tensor, bridge: Tensor | None, question: Tensor, qmask: Tensor, frames: int) -> Tensor:
        """Bridge stream from the block's input ``x`` and the previous bridge state (None in block 0)."""
        out = self.crossattn(self.norm4(x[:, 1:]), self.norm5(question), frames)
        if bridge is not None:
            out = out + bridge
        out = out + self.bridgeattn(self.norm7(out), frames, qmask)
        return out + self.bridge_mlp(self.norm6(out))


class PatchEmbed(nn.Module):
    """``patch_embed.proj``: a ``p x p`` convolution with stride ``p`` per frame."""

    def __init__(self, dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, video: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """``[B, T, 3, H, W]`` -> (``[B, T*n, d]`` frame-major, grid ``(H/p, W/p)``)."""
        b, t = video.shape[:2]
        x = self.proj(video.reshape(b * t, *video.shape[2:]))
        grid = (x.shape[-2], x.shape[-1])
        return x.flatten(2).transpose(1, 2).reshape(b, t * grid[0] * grid[1], -1), grid


class VideoBridgeFormer(nn.Module):
    """``video_model`` (official ``Video_Bridge_Former``): VideoFormer + BridgeFormer in one stack of blocks."""

    def __init__(self, dim: int, depth: int, heads: int, patch_size: int, resolution: int) -> None:
        super().__init__()
        side = resolution // patch_size
        self.patch_embed = PatchEmbed(dim, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + side * side, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.blocks = nn.ModuleList([VideoBridgeBlock(dim, heads) for _ in range(depth)])
        self.norm1 = nn.LayerNorm(dim, eps=VIT_EPS)
        self.norm2 = nn.LayerNorm(dim, eps=VIT_EPS)

    def embed(self, video: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """Patch tokens with the global ``[CLS]`` and spatial positions tiled over frames: ``[B, 1 + T*n, d]``."""
        x, grid = self.patch_embed(video)
        n = grid[0] * grid[1]
        if n + 1 > self.pos_embed.shape[1]:
            raise ValueError(f"MCQ frames of {grid[0]}x{grid[1]} patches exceed its {self.pos_embed.shape[1] - 1} "
                             "positions: feed frames at the host's resolution (host.preprocess)")
        t = video.shape[1]
        x = x + self.pos_embed[:, 1:n + 1].repeat(1, t, 1)
        cls = self.cls_token + self.pos_embed[:, :1]
        return torch.cat([cls.expand(x.shape[0], -1, -1), x], 1), grid

    def forward(self, video: Tensor, questions: list[Tensor] | None = None, qmask: Tensor | None = None
                ) -> dict[str, Any]:
        """Run the blocks.

        Args:
            video: ``[B, T, 3, H, W]`` normalised frames.
            questions: DistilBERT hidden states of the question (embeddings, layer 1, ...), each ``[B, L, d]``;
                block ``i`` reads ``questions[i // 2]``. None runs the video stream only.
            qmask: ``[B, L]`` question attention mask.

        Returns:
            dict with ``video`` ``[B, 1 + T*n, d]`` (last block, before ``norm1``), ``video_first`` (block 0),
            ``grid``, and with questions ``bridge`` ``[B, 1 + T*(L-1), d]`` (before ``norm2``), ``bridge_first``.
        """
        x, grid = self.embed(video)
        t = video.shape[1]
        out: dict[str, Any] = {"grid": grid}
        bridge = None
        for i, blk in enumerate(self.blocks):
            if questions is not None:
                if i // 2 >= len(questions):
                    raise ValueError(f"MCQ block {i} reads text hidden state {i // 2}, the text model has only "
                                     f"{len(questions)}")
                bridge = blk.bridge(x, bridge, questions[i // 2], qmask, t)
                out.setdefault("bridge_first", bridge)
            x = blk.video(x, t)
            out.setdefault("video_first", x)
        out["video"] = x
        if bridge is not None:
            out["bridge"] = bridge
        return out


# ---------------------------------------------------------------------------------------------------------
# the host


class MCQHost(Host):
    """MCQ implementing the host contract (retrieval; Finsta reads T, V and the BridgeFormer as C)."""

    def __init__(self, spec: HostSpec, text_config: DistilBertConfig, tokenizer: Any, *, embed_dim: int, depth: int,
                 num_heads: int, patch_size: int, resolution: int, num_frames: int, projection_dim: int,
                 max_words: int | None = None) -> None:
        super().__init__(spec, Preprocess(num_frames=num_frames, resolution=resolution, mean=IMAGENET_MEAN,
                                          std=IMAGENET_STD))
        if text_config.dim != embed_dim:
            raise ValueError(f"MCQ's BridgeFormer needs the text width ({text_config.dim}) to equal the ViT width "
                             f"({embed_dim})")
        self.tokenizer = tokenizer
        self.max_words = max_words or text_config.max_position_embeddings
        self.text_model = DistilBertModel(text_config)
        self.video_model = VideoBridgeFormer(embed_dim, depth, num_heads, patch_size, resolution)
        self.text_proj = nn.Sequential(nn.ReLU(), nn.Linear(text_config.dim, projection_dim))
        self.vid_proj = nn.Sequential(nn.Linear(embed_dim, projection_dim))
        self.bridge_proj = nn.Sequential(nn.Linear(embed_dim, projection_dim))

    @property
    def width(self) -> int:
        return self.video_model.cls_token.shape[-1]

    @property
    def embed_dim(self) -> int:
        return self.vid_proj[0].out_features

    def encoder_widths(self) -> dict[str, int]:
        return {"text": self.embed_dim, "video": self.embed_dim, "cross": self.embed_dim}

    def first_layer_widths(self) -> dict[str, int]:
        return {"text": self.width, "video": self.width, "cross": self.width}

    # -- passes ------------------------------------------------------------------------------------
    def tokenize(self, texts: list[str]):
        dev = self.video_model.cls_token.device
        return tokenize_with_spans(self.tokenizer, texts, max_length=self.max_words).to(dev)

    def text_states(self, ids: Tensor, mask: Tensor) -> tuple[Tensor, ...]:
        """DistilBERT hidden states (embeddings, layer 1, ..., layer N), each ``[B, L, d]``."""
        return self.text_model(input_ids=ids, attention_mask=mask.long(), output_hidden_states=True).hidden_states

    def text_embedding(self, last: Tensor) -> Tensor:
        """Official ``compute_text``: ``text_proj`` of the ``[CLS]`` state ``[B, L, d]`` -> ``[B, P]``."""
        return self.text_proj(last[:, 0])

    def video_embedding(self, video_last: Tensor) -> Tensor:
        """Official ``compute_video``: ``vid_proj(norm1(x)[:, 0])`` -> ``[B, P]``."""
        return self.vid_proj(self.video_model.norm1(video_last[:, 0]))

    def bridge_embedding(self, bridge_last: Tensor) -> Tensor:
        """``bridge_proj(norm2(bridge)[:, 0])``: the question ``[CLS]`` -> ``[B, P]``."""
        return self.bridge_proj(self.video_model.norm2(bridge_last[:, 0]))

    # -- capabilities ------------------------------------------------------------------------------
    def encode_text(self, texts: list[str]) -> Tensor:
        tok = self.tokenize(texts)
        return l2norm(self.text_embedding(self.text_states(tok.input_ids, tok.attention_mask)[-1]))

    def encode_video(self, video: Tensor, frame_times: Tensor | None = None) -> Tensor:
        return l2norm(self.video_embedding(self.video_model(video)["video"]))

    # -- Finsta ------------------------------------------------------------------------------------
    def bridge_pass(self, video: Tensor, questions: list[str]) -> dict[str, Any]:
        """Official ``compute_text`` (question hidden states) + ``video_model`` with the bridge: the dict of
        :meth:`VideoBridgeFormer.forward` plus ``question`` (the tokenised questions) and ``hidden``."""
        tok = self.tokenize(questions)
        hidden = self.text_states(tok.input_ids, tok.attention_mask)
        return {**self.video_model(video, list(hidden), tok.attention_mask), "question": tok, "hidden": hidden}

    def posttrain_outputs(self, batch: HostBatch, with_losses: bool = True) -> HostOutputs:
        b, t = batch.video.shape[:2]
        dev = batch.video.device
        out = self.bridge_pass(batch.video, batch.texts)  # the caption is the bridge's question (module docstring)
        tok, hidden = out["question"], out["hidden"]
        gh, gw = out["grid"]
        n, lq = gh * gw, tok.input_ids.shape[1]
        # video: the frame-major patches (the global [CLS] belongs to no frame and is left out)
        vfi, vrc = video_token_maps(b, t, (gh, gw), cls_tokens=0, device=dev)
        patches = self.video_model.norm1(out["video"][:, 1:]).view(b, t, n, -1).mean(2)
        # cross: question [CLS] + one copy of the other question tokens per frame
        qm = tok.attention_mask
        cmask = torch.cat([qm[:, :1], qm[:, 1:].repeat(1, t)], 1)
        cspans = torch.cat([tok.char_spans[:, :1], tok.char_spans[:, 1:].repeat(1, t, 1)], 1)
        cfi = torch.cat([torch.full((b, 1), -1, dtype=torch.long, device=dev),
                         torch.arange(t, device=dev).repeat_interleave(lq - 1).expand(b, -1)], 1)
        bridge = self.video_model.norm2(out["bridge"][:, 1:]).view(b, t, lq - 1, -1)
        bridge_frames = masked_mean(bridge.flatten(0, 1), qm[:, 1:].repeat_interleave(t, 0)).view(b, t, -1)
        text_emb = self.text_embedding(hidden[-1])
        result = HostOutputs(
            text=EncoderOutput(TokenStates(hidden[1], qm, char_spans=tok.char_spans), text_emb),
            video=EncoderOutput(TokenStates(out["video_first"][:, 1:],
                                            torch.ones(b, t * n, dtype=torch.bool, device=dev), frame_index=vfi,
                                            patch_rc=vrc, grid=(gh, gw)),
                                self.vid_proj(patches), frame_times=batch.frame_times),
            cross=EncoderOutput(TokenStates(out["bridge_first"], cmask, char_spans=cspans, frame_index=cfi),
                                self.bridge_proj(bridge_frames), frame_times=batch.frame_times))
        if with_losses:
            sims = F.normalize(text_emb, dim=-1) @ F.normalize(self.video_embedding(out["video"]), dim=-1).t()
            result.losses["vla"] = norm_softmax_loss(sims)
        return result


def norm_softmax_loss(sims: Tensor, temperature: float = TEMPERATURE) -> Tensor:
    """Official ``NormSoftmaxLoss`` on a ``[B, B]`` cosine matrix (matched pairs on the diagonal): the two
    directions' mean negative log-likelihoods, summed."""
    target = torch.arange(sims.shape[0], device=sims.device)
    return F.cross_entropy(sims / temperature, target) + F.cross_entropy(sims.t() / temperature, target)


# ---------------------------------------------------------------------------------------------------------
# checkpoint layout


def read_pickled_checkpoint(path: Path, what: str, source: str = "") -> dict[str, Any]:
    """Read a training-framework checkpoint (``torch.save`` of a dict holding config objects, e.g. MCQ's
    ``ConfigParser`` or Lightning's ``AttributeDict`` hyper-parameters) without executing pickled code.

    A plain state dict is read with ``torch.load(weights_only=True)``. Otherwise the file is unpickled with
    :class:`StandInUnpickler`: globals on torch's ``weights_only`` allowlist (tensor rebuild functions, storages,
    dtypes, ``OrderedDict``) resolve as usual, every other global becomes an inert :class:`_Opaque` stand-in, so no
    foreign callable ever runs and tensors and plain containers load. Safetensors files are read as they are.

    Raises:
        CheckpointError: missing / empty / unreadable file (the message names it).
    """
    try:
        return load_state_dict(path, what=what, source=source)
    except CheckpointError:
        if path.suffix == ".safetensors":
            raise
    module = type(pickle)("stand_in_pickle")
    module.Unpickler, module.load, module.__name__ = StandInUnpickler, pickle.load, "stand_in_pickle"
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=module)
    except Exception as err:  # noqa: BLE001 - re-raised with the file named
        raise CheckpointError(f"{path}: cannot read {what} ({err})") from err


class _Opaque(dict):
    """Inert stand-in for a pickled object of a class outside torch's allowlist: accepts any construction,
    state, items (dict subclasses such as Lightning's ``AttributeDict``) and appends; runs no foreign code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def __setstate__(self, state: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass


class StandInUnpickler(pickle.Unpickler):
    """Resolves only the globals of torch's ``weights_only`` allowlist; any other global is a stand-in class."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = torch._weights_only_unpickler._get_allowed_globals()
        found = allowed.get(f"{module}.{name}")
        if found is not None:
            return found
        return type(name, (_Opaque,), {"__module__": f"stand_in.{module}"})


def state_from_checkpoint(obj: Any, path: Path) -> dict[str, Tensor]:
    """The tensor state of a checkpoint object (``state_dict`` / ``model`` / the dict itself)."""
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not a state dict (got {type(obj).__name__})")
    return {k: v for k, v in obj.items() if isinstance(v, Tensor)}


def to_host_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Official (or own) MCQ state -> host names: the DataParallel ``module.`` prefix and ``position_ids``
    buffers of old transformers are removed; every other key is the official name."""
    out = {}
    for k, v in state.items():
        k = k[len("module."):] if k.startswith("module.") else k
        if k.endswith("position_ids"):
            continue
        out[k] = v
    return out


def infer_config(state: dict[str, Tensor]) -> dict[str, Any]:
    """Sizes read off a host-named MCQ state dict (heads: width / 64, or width / 16 below 64)."""
    try:
        words = state["text_model.embeddings.word_embeddings.weight"]
        lin1 = state["text_model.transformer.layer.0.ffn.lin1.weight"]
        patch = state["video_model.patch_embed.proj.weight"]
        pos = state["video_model.pos_embed"]
        proj = state["vid_proj.0.weight"]
    except KeyError as err:
        raise CheckpointError(f"not an MCQ checkpoint: no {err.args[0]}") from err
    d = int(words.shape[1])
    positions = state["text_model.embeddings.position_embeddings.weight"]
    text = DistilBertConfig(vocab_size=int(words.shape[0]), dim=d, n_heads=heads_for_width(d),
                            hidden_dim=int(lin1.shape[0]),
                            n_layers=count_indexed(state, "text_model.transformer.layer."),
                            max_position_embeddings=int(positions.shape[0]))
    p = int(patch.shape[-1])
    return dict(text_config=text, embed_dim=int(patch.shape[0]), depth=count_indexed(state, "video_model.blocks."),
                num_heads=heads_for_width(int(patch.shape[0])), patch_size=p,
                resolution=int(round(math.sqrt(pos.shape[1] - 1))) * p, projection_dim=int(proj.shape[0]))


def _checkpoint_file(path: Path) -> Path:
    return weight_file_in(path, ("*.safetensors", "*.pth", "*.pt"),
                          "no MCQ.pth / *.pth / *.safetensors in the MCQ checkpoint directory")


def read_mcq_state(path: Path) -> dict[str, Tensor]:
    """Host-named tensors of an MCQ checkpoint file or directory (official ``MCQ.pth`` or converted)."""
    path = _checkpoint_file(path)
    obj = read_pickled_checkpoint(path, "MCQ checkpoint", SPEC.tags[""].source)
    return to_host_state(state_from_checkpoint(obj, path))


def convert_checkpoint(src: Path, dst: Path) -> dict[str, Tensor]:
    """One-off conversion of an official ``MCQ.pth`` to a safetensors file in host names (run offline)."""
    state = read_mcq_state(src)
    infer_config(state)  # refuses a non-MCQ file before writing
    save_state_dict(state, dst)
    return state


def build_mcq(spec: HostSpec, tag: WeightTag | None, checkpoint: Path | None, *, tokenizer: Any = None,
              size: str = "base", num_frames: int | None = None, max_words: int | None = None,
              text_heads: int | None = None, vit_heads: int | None = None, strict: bool = True) -> MCQHost:
    """Factory for ``create_host("mcq", checkpoint, **options)``.

    Args:
        tokenizer: fast DistilBERT uncased tokenizer (object, directory or ``tokenizer.json``); defaults to the
            checkpoint's directory when it holds one.
        size: ``base`` (official) or ``tiny`` (CPU smoke runs); only without a checkpoint (else read off it).
        num_frames: frames per clip (official 4; any number works, there are no temporal positions).
        max_words: text truncation (official: the tokenizer's maximum, 512).
        text_heads, vit_heads: attention heads when a width is not a multiple of 64.
        strict: refuse missing / unexpected / misshapen keys, except a missing BridgeFormer (downstream
            checkpoints have none: ``crossattn``, ``bridgeattn``, ``bridge_mlp``, ``norm4..7``, ``norm2``,
            ``bridge_proj`` then keep their random initialisation and are listed in ``host.load_report``).
    """
    if size not in MCQ_SIZES:
        raise ValueError(f"mcq size must be one of {sorted(MCQ_SIZES)}, got {size!r}")
    if tokenizer is None and checkpoint is not None:
        folder = checkpoint if checkpoint.is_dir() else checkpoint.parent
        tokenizer = folder if any((folder / f).exists() for f in ("tokenizer.json", "vocab.txt")) else None
    tok = load_tokenizer(tokenizer, "DistilBERT uncased tokenizer for mcq", "HF hub distilbert/distilbert-base-uncased "
                         "(tokenizer.json, vocab.txt); pass host.options.tokenizer=DIR")
    named = MCQ_SIZES[size]
    state = None
    if checkpoint is not None:
        state = read_mcq_state(checkpoint)
        cfg = infer_config(state)
        cfg["num_frames"] = named["num_frames"]
    else:
        cfg = {k: v for k, v in named.items() if k != "text"}
        cfg["text_config"] = DistilBertConfig(vocab_size=len(tok), **named["text"])
    if text_heads:
        cfg["text_config"].n_heads = text_heads
    if vit_heads:
        cfg["num_heads"] = vit_heads
    if num_frames is not None:
        cfg["num_frames"] = num_frames
    host = MCQHost(spec, cfg.pop("text_config"), tok, max_words=max_words, **cfg)
    if state is not None:
        host.load_report = load_mcq_state(host, state, checkpoint, strict)
    return host


BRIDGE_PARTS = re.compile(r"^(video_model\.blocks\.\d+\.(crossattn|bridgeattn|bridge_mlp|norm[4-7])\.|"
                          r"video_model\.norm2\.|bridge_proj\.)")


def load_mcq_state(host: MCQHost, state: dict[str, Tensor], path: Path | None, strict: bool = True
                   ) -> dict[str, list[str]]:
    """Load host-named tensors; returns ``{"missing", "unexpected"}`` (only BridgeFormer parts may be missing)."""
    own = host.state_dict()
    bad = [k for k in state if k in own and state[k].shape != own[k].shape]
    if bad and strict:
        raise CheckpointError(f"{path}: does not match mcq: shape mismatch {bad[:5]} "
                              f"({tuple(state[bad[0]].shape)} vs {tuple(own[bad[0]].shape)})")
    missing, unexpected = host.load_state_dict({k: v for k, v in state.items() if k not in bad}, strict=False)
    hard = [k for k in missing if not BRIDGE_PARTS.match(k)]
    if strict and (hard or unexpected):
        raise CheckpointError(f"{path}: does not match mcq: missing {hard[:5]}, unexpected {list(unexpected)[:5]}")
    return {"missing": list(missing), "unexpected": list(unexpected)}


def main(argv: list[str] | None = None) -> None:
    """``python -m hosts.mcq convert MCQ.pth MCQ.safetensors``."""
    convert_main("mcq", "MCQ checkpoint tools", "official MCQ.pth -> safetensors in host names (one-off, offline)",
                 convert_checkpoint, argv)


if __name__ == "__main__":
    main()
