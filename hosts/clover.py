"""Clover (Huang et al., CVPR 2023; github.com/LeeYN-43/Clover @fa05f2e), native, in the official layout.

Architecture (Table 10: T, V and C), as the official ``CloverFinetune`` / ``CloverPretrain`` build it:

* ``backbone``: Video Swin-B (embed 128, depths 2/2/18/2, heads 4/8/16/32, tubelet and stride (2, 4, 4), window
  8x7x7); 8 frames at 224 px give a ``[B, 1024, 4, 7, 7]`` map (:class:`hosts.bert.VideoSwin3D`, torchvision
  ``swin3d`` blocks).
* ``text_backbone.bert``: BERT-base (``BertFromPretrained``; no token types passed).
* ``multimodal_backbone``: ``CrossModalTransformerFromPretrained`` with ``use_text_cls=True``: ``fc_in``
  (1024 -> 768) on the video tokens, learned spatial (``vis_space_pos``, 49) and temporal (``vis_tempor_pos``,
  4) positions, token types (video 0, text 1), a LayerNorm (``norm``), then the first 3 layers of BERT-base
  (``bert_encoder``) over [video tokens ; text-encoder outputs]. Its ``bert_embedding`` is kept for the layout
  (the official forward never uses it when text states are passed in).
* ``ssl_head`` (``NCEHeadForMM``, ``ln=True``, ``text_agg_type='cls'``): ``img_projector`` on the
  spatio-temporal mean of the Swin map and ``text_projector`` on the text ``[CLS]``; retrieval is the cosine of
  the two (``separate_test=True``), trained with ``NormSoftmaxLoss`` (temperature 0.05).
* ``qa_head`` (``QA_OE_Head``, only in QA checkpoints): MLP on the text ``[CLS]`` of the cross output.

Non-official addition (documented in ``docs/hosts-bert-family.md``): ``caption_decoder``, a 3-layer BERT decoder
(:class:`hosts.bert.CaptionDecoder`) over the cross encoder's output for the video with an empty text
(``[CLS] [SEP]``), or with the question for generated answers; trained in fine-tuning, so that the paper's
Clover captioning cells (Table 2) run.

Weights: the authors released none (README to-do unchecked at the last commit). ``checkpoint`` accepts an mmcv
checkpoint written by the official code (``{"state_dict": ..., "meta": ...}``, ``latest.pth`` /
``epoch_N.pth``), this host's own safetensors, or nothing with ``random_init=True`` (smoke tests).
Pre-training-only parts of an official checkpoint (``backbone.mask_token``, ``mlm_head``, ``mlm_ssl_V_head``,
``mlm_ssl_T_head``) are dropped on load: their losses are not provided here.

Finsta reads (sec 5.2): text ``text_backbone.bert.encoder.layer[0]``; video the first Swin block (each tubelet
token listed under both frames it covers); cross ``multimodal_backbone.bert_encoder.layer[0]``. Pooled: text
``text_projector([CLS])``; video per frame ``img_projector`` of each temporal token's spatial mean; cross per
frame the mean of that frame's video tokens in the cross output. Own loss: ``vla`` (NormSoftmaxLoss).

Shapes: ``B`` batch, ``T`` frames, ``T'`` tubelets (``ceil(T / 2)``), ``S`` spatial tokens, ``L`` text tokens.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertEmbeddings, BertEncoder

from hosts.base import EncoderOutput, Host, HostBatch, HostOutputs, Preprocess, TokenStates
from hosts.bert import (
    SWIN_SIZES,
    BertTextEncoder,
    CaptionDecoder,
    ProjectionMLP,
    QAClassifier,
    VideoSwin3D,
    bert_config,
    embed_video_tokens,
    expand_tubes,
    run_layers,
    swin_from_official,
)
from hosts.bert.core import split_official_state
from hosts.bert.decoder import DECODER_LAYERS, DecoderCaptioning
from hosts.bert.heads import option_similarities, option_texts, symmetric_nce
from hosts.bert.sizes import count_indexed, heads_for_width, swin_window
from hosts.checkpoints import weight_file_in
from hosts.errors import CheckpointError
from hosts.io import load_state_dict
from hosts.pooling import l2norm, video_token_maps
from hosts.spec import HostSpec, WeightTag, register_host
from hosts.text import load_tokenizer, tokenize_with_spans

# mmaction's Normalize with Clover's config (mean [103.53, 116.28, 123.675], std [57.375, 57.12, 58.395],
# to_rgb=False) applied to decord's RGB frames: the BGR-ordered statistics meet RGB channels. Kept as is.
CLOVER_MEAN = (103.53 / 255, 116.28 / 255, 123.675 / 255)
CLOVER_STD = (57.375 / 255, 57.12 / 255, 58.395 / 255)
TEMPERATURE = 0.05  # NormSoftmaxLoss temperature of every Clover config
PRETRAIN_ONLY = ("backbone.mask_token", "mlm_head.", "mlm_ssl_V_head.", "mlm_ssl_T_head.", "cls_head.")

# Named sizes: ``base`` is the official configuration; ``tiny`` is CPU-sized (tests, smoke runs).
CLOVER_SIZES: dict[str, dict[str, Any]] = {
    "base": dict(bert="base", swin="B", window=(8, 7, 7), cross_layers=3, resolution=224, num_frames=8,
                 max_words=30),
    "tiny": dict(bert="tiny", swin="tiny_test", window=(2, 4, 4), cross_layers=1, resolution=32, num_frames=8,
                 max_words=16),
}

SPEC = register_host(HostSpec(
    name="clover", has_text=True, has_video=True, has_cross=True,
    capabilities=frozenset({"retrieval", "classification", "generation", "multiple_choice"}),
    factory="hosts.clover:build_clover",  # a string: the spec is made before the factory
    tags={"": WeightTag(
        "", "latest.pth", "a Clover checkpoint trained with the official code (mmcv work_dir latest.pth or "
        "epoch_N.pth)",
        "nowhere: the authors released no weights (README to-do, LeeYN-43/Clover@fa05f2e); train one with "
        "LeeYN-43/Clover configs/exp_local/pretrain_webvid_cc3m.py, or smoke-test with host.options.random_init=true")},
    params="258M", pretrain_data="5.3M", paper="Huang et al., Clover, CVPR 2023",
    code="https://github.com/LeeYN-43/Clover", license="Apache-2.0", status="implemented", display="Clover", order=70,
    parity="tests/hosts/test_hosts_clover.py::test_parity_with_official_code",
    notes="Native (hosts/clover.py): Video Swin-B on torchvision swin3d blocks + BERT-base + 3-layer cross encoder "
          "in the official layout; parity-tested against the official modules (tests/hosts/test_hosts_clover.py). "
          "No weights were released. Captioning uses the harness's caption decoder (not official)."))


class CloverCrossEncoder(nn.Module):
    """``multimodal_backbone`` (official ``CrossModalTransformerFromPretrained``, ``use_text_cls=True``)."""

    def __init__(self, config: BertConfig, img_in_size: int, num_frames: int, spatial_tokens: int) -> None:
        super().__init__()
        d = config.hidden_size
        self.bert_embedding = BertEmbeddings(config)  # official layout; unused when text states are passed in
        self.bert_encoder = BertEncoder(config)
        self.vis_space_pos = nn.Parameter(0.02 * torch.randn(1, 1, spatial_tokens, d))
        self.vis_tempor_pos = nn.Parameter(0.02 * torch.randn(1, num_frames, 1, d))
        self.token_type_embeddings = nn.Embedding(2, d)
        self.norm = nn.LayerNorm(d)
        self.fc_in = nn.Linear(img_in_size, d) if img_in_size != d else None

    def forward(self, video_tokens: Tensor, text_states: Tensor, text_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``[B, T', S, C]`` video tokens, ``[B, L, d]`` text-encoder states and ``[B, L]`` mask ->
        (last ``[B, T'*S + L, d]``, first-layer ``[B, T'*S + L, d]``, joint mask ``[B, T'*S + L]``)."""
        if self.fc_in is not None:
            video_tokens = self.fc_in(video_tokens)
        text = text_states + self.token_type_embeddings(torch.ones(text_states.shape[:2], dtype=torch.long,
                                                                   device=text_states.device))
        video = embed_video_tokens(video_tokens, self.vis_space_pos, self.vis_tempor_pos, self.token_type_embeddings,
                                   self.norm, type_id=0)
        mask = torch.cat([torch.ones(video.shape[:2], dtype=torch.bool, device=video.device), text_mask.bool()], 1)
        last, first = run_layers(self.bert_encoder, torch.cat([video, text], 1), mask)
        return last, first, mask


class CloverSSLHead(nn.Module):
    """``ssl_head`` (official ``NCEHeadForMM`` with ``ln=True``, ``text_agg_type='cls'``, dropout 0)."""

    def __init__(self, visual_in: int, text_in: int, img_hidden: int, embed: int) -> None:
        super().__init__()
        self.img_projector = ProjectionMLP(visual_in, img_hidden, embed, norm="ln", final_norm=True)
        self.text_projector = ProjectionMLP(text_in, text_in, embed)

    def forward_vision(self, tokens: Tensor) -> Tensor:
        """``[..., C]`` pooled video features -> ``[..., embed]``."""
        return self.img_projector(tokens)

    def forward_text(self, states: Tensor) -> Tensor:
        """``[B, L, d]`` text states -> ``[B, embed]`` from ``[CLS]``."""
        return self.text_projector(states[:, 0])


class CloverQAHead(nn.Module):
    """``qa_head`` (official ``QA_OE_Head``): ``vqa_classifier`` over the answer vocabulary."""

    def __init__(self, d: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.vqa_classifier = QAClassifier(d, num_labels, inner=d // 2, dropout=dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.vqa_classifier(x)


class CloverHost(DecoderCaptioning, Host):
    """Clover implementing the host contract (retrieval, classification, generation, multiple choice)."""

    def __init__(self, spec: HostSpec, text_config: BertConfig, tokenizer: Any, *, swin: dict[str, Any],
                 window: tuple[int, int, int], cross_layers: int, resolution: int, num_frames: int,
                 max_words: int = 30, qa_labels: int | None = None, decoder_layers: int = DECODER_LAYERS,
                 preprocess: Preprocess | None = None) -> None:
        super().__init__(spec, preprocess or Preprocess(num_frames=num_frames, resolution=resolution,
                                                        mean=CLOVER_MEAN, std=CLOVER_STD))
        self.tokenizer = tokenizer
        self.max_words = max_words
        d = text_config.hidden_size
        self.backbone = VideoSwin3D(embed_dim=int(swin["embed_dim"]), depths=tuple(swin["depths"]),
                                    num_heads=tuple(swin["num_heads"]), window_size=window)
        self.tubelet = self.backbone.patch_size[0]
        c = self.backbone.num_features
        side = resolution // self.backbone.patch_size[1] // 2 ** (len(swin["depths"]) - 1)
        self.grid = (side, side)
        self.text_backbone = BertTextEncoder(text_config)
        cross_cfg = BertConfig(**{**text_config.to_dict(), "num_hidden_layers": cross_layers})
        cross_cfg._attn_implementation = text_config._attn_implementation or "sdpa"  # standalone BertEncoder
        self.multimodal_backbone = CloverCrossEncoder(cross_cfg, c, max(1, math.ceil(num_frames / self.tubelet)),
                                                      side * side)
        self.ssl_head = CloverSSLHead(c, d, 2 * d, d)
        self.qa_head = CloverQAHead(d, qa_labels) if qa_labels else None
        self.caption_decoder = CaptionDecoder(text_config, tokenizer.cls_token_id, tokenizer.sep_token_id,
                                              tokenizer.pad_token_id, num_layers=decoder_layers)
        self.caption_decoder.init_embeddings(self.text_backbone.bert.embeddings)

    # -- widths ------------------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        return self.ssl_head.text_projector[2].out_features

    def encoder_widths(self) -> dict[str, int]:
        d = self.text_backbone.width
        return {"text": self.embed_dim, "video": self.embed_dim, "cross": d}

    def first_layer_widths(self) -> dict[str, int]:
        d = self.text_backbone.width
        return {"text": d, "video": self.backbone.embed_dim, "cross": d}

    # -- encoders ----------------------------------------------------------------------------------
    def tokenize(self, texts: list[str]):
        return tokenize_with_spans(self.tokenizer, texts, max_length=self.max_words).to(self.vis_device)

    @property
    def vis_device(self) -> torch.device:
        return self.multimodal_backbone.vis_space_pos.device

    def text_states(self, texts: list[str]) -> tuple[Any, Tensor, Tensor]:
        """-> (tokens, last ``[B, L, d]``, first-layer ``[B, L, d]``) of ``text_backbone``."""
        tok = self.tokenize(texts)
        last, first = self.text_backbone(tok.input_ids, tok.attention_mask)
        return tok, last, first

    def video_features(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, T, 3, H, W]`` -> (Swin map ``[B, C, T', H', W']``, first-block ``[B, T', H1, W1, C1]``)."""
        return self.backbone(video.permute(0, 2, 1, 3, 4).contiguous())

    @staticmethod
    def video_tokens(fmap: Tensor) -> Tensor:
        """``[B, C, T', H', W']`` -> ``[B, T', H'*W', C]`` (official ``view(B, D, T, -1).permute(0, 2, 3, 1)``)."""
        b, c, t = fmap.shape[:3]
        return fmap.reshape(b, c, t, -1).permute(0, 2, 3, 1)

    def cross(self, fmap: Tensor, text_last: Tensor, text_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.multimodal_backbone(self.video_tokens(fmap), text_last, text_mask)

    def _video_embedding(self, fmap: Tensor) -> Tensor:
        return self.ssl_head.forward_vision(fmap.mean(dim=(2, 3, 4)))

    # -- capabilities ------------------------------------------------------------------------------
    def encode_text(self, texts: list[str]) -> Tensor:
        return l2norm(self.ssl_head.forward_text(self.text_states(texts)[1]))

    def encode_video(self, video: Tensor, frame_times: Tensor | None = None) -> Tensor:
        return l2norm(self._video_embedding(self.video_features(video)[0]))

    def similarity(self, text_emb: Tensor, video_emb: Tensor) -> Tensor:
        """Retrieval logits ``[N_text, N_video]`` (cosine over the official temperature)."""
        return text_emb @ video_emb.t() / TEMPERATURE

    def encode_joint(self, video: Tensor, texts: list[str], frame_times: Tensor | None = None) -> Tensor:
        """Text ``[CLS]`` of the cross output (official ``answer_cls=True``): ``[B, d]``."""
        tok, last, _ = self.text_states(texts)
        out = self.cross(self.video_features(video)[0], last, tok.attention_mask)[0]
        return out[:, out.shape[1] - last.shape[1]]

    def task_head(self, num_outputs: int) -> nn.Module:
        """The loaded ``qa_head`` when its answer count matches, else a fresh ``QA_OE_Head``-shaped MLP."""
        if self.qa_head is not None and self.qa_head.vqa_classifier.num_outputs == num_outputs:
            return self.qa_head
        d = self.text_backbone.width
        return CloverQAHead(d, num_outputs).to(self.vis_device)

    def score_options(self, video: Tensor, questions: list[str], options: list[list[str]],
                      frame_times: Tensor | None = None) -> Tensor:
        """Multiple choice by retrieval similarity of the video and ``"question option"`` (the official MSR-VTT
        multiple-choice protocol, ``separate_test=True``); ragged rows are padded with ``-inf``."""
        _, texts = option_texts(questions, options)
        t = self.encode_text(texts)
        v = self.encode_video(video, frame_times)
        return option_similarities(t, v, options)

    def _caption_memory(self, video: Tensor, prompts: list[str] | None) -> tuple[Tensor, Tensor]:
        texts = prompts if prompts is not None else [""] * video.shape[0]
        tok, last, _ = self.text_states(texts)
        out, _, mask = self.cross(self.video_features(video)[0], last, tok.attention_mask)
        return out, mask

    def retrieval_loss(self, video: Tensor, texts: list[str]) -> Tensor:
        """The official fine-tuning objective (NormSoftmaxLoss, temperature 0.05)."""
        t = self.ssl_head.forward_text(self.text_states(texts)[1])
        return symmetric_nce(t, self._video_embedding(self.video_features(video)[0]), TEMPERATURE)

    # -- Finsta ------------------------------------------------------------------------------------
    def posttrain_outputs(self, batch: HostBatch, with_losses: bool = True) -> HostOutputs:
        b, t = batch.video.shape[:2]
        dev = batch.video.device
        tok, text_last, text_first = self.text_states(batch.texts)
        fmap, vfirst = self.video_features(batch.video)
        text_pooled = self.ssl_head.forward_text(text_last)
        # video: first Swin block, each tubelet token listed under the frames it covers
        _, t1, h1, w1, c1 = vfirst.shape
        vstates = expand_tubes(vfirst, self.tubelet, t).reshape(b, t * h1 * w1, c1)
        vfi, vrc = video_token_maps(b, t, (h1, w1), cls_tokens=0, device=dev)
        per_tube = self.ssl_head.forward_vision(fmap.mean(dim=(3, 4)).transpose(1, 2))  # [B, T', d]
        video_pooled = expand_tubes(per_tube, self.tubelet, t)
        # cross: first layer over [video tokens ; text], video part expanded to frames like above
        last, first, _ = self.cross(fmap, text_last, tok.attention_mask)
        tp, s = fmap.shape[2], fmap.shape[3] * fmap.shape[4]
        d = first.shape[-1]
        cv = expand_tubes(first[:, :tp * s].reshape(b, tp, s, d), self.tubelet, t).reshape(b, t * s, d)
        cstates = torch.cat([cv, first[:, tp * s:]], 1)
        lt = text_last.shape[1]
        cmask = torch.cat([torch.ones(b, t * s, dtype=torch.bool, device=dev), tok.attention_mask], 1)
        cfi, crc = video_token_maps(b, t, self.grid, cls_tokens=0, device=dev)
        cfi = torch.cat([cfi, torch.full((b, lt), -1, dtype=torch.long, device=dev)], 1)
        crc = torch.cat([crc, torch.full((b, lt, 2), -1, dtype=torch.long, device=dev)], 1)
        cspans = torch.cat([torch.full((b, t * s, 2), -1, dtype=torch.long, device=dev), tok.char_spans], 1)
        cross_pooled = expand_tubes(last[:, :tp * s].reshape(b, tp, s, d).mean(2), self.tubelet, t)
        out = HostOutputs(
            text=EncoderOutput(TokenStates(text_first, tok.attention_mask, char_spans=tok.char_spans), text_pooled),
            video=EncoderOutput(TokenStates(vstates, torch.ones(b, t * h1 * w1, dtype=torch.bool, device=dev),
                                            frame_index=vfi, patch_rc=vrc, grid=(h1, w1)),
                                video_pooled, frame_times=batch.frame_times),
            cross=EncoderOutput(TokenStates(cstates, cmask, char_spans=cspans, frame_index=cfi, patch_rc=crc,
                                            grid=self.grid),
                                cross_pooled, frame_times=batch.frame_times))
        if with_losses:
            v = self.ssl_head.forward_vision(fmap.mean(dim=(2, 3, 4)))
            out.losses["vla"] = symmetric_nce(text_pooled, v, TEMPERATURE)
        return out


# ---------------------------------------------------------------------------------------------------------
# checkpoint layout


def to_host_state(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Official (mmcv ``CloverFinetune`` / ``CloverPretrain``) or own state dict -> this host's names.

    Returns the mapped state and the dropped pre-training-only keys. The only renames are the Video Swin block
    MLPs (``mlp.fc1``/``mlp.fc2`` -> torchvision's ``mlp.0``/``mlp.3``); ``module.`` prefixes (DataParallel)
    and the ``position_ids`` buffers older transformers saved are removed."""
    out, dropped = split_official_state(state, PRETRAIN_ONLY)
    backbone = swin_from_official({k: v for k, v in out.items() if k.startswith("backbone.")})
    out = {**{k: v for k, v in out.items() if not k.startswith("backbone.")}, **backbone}
    return out, dropped


def infer_config(state: dict[str, Tensor]) -> dict[str, Any]:
    """Architecture sizes read off a host-named state dict (text BERT, Video Swin, cross encoder, heads)."""
    try:
        words = state["text_backbone.bert.embeddings.word_embeddings.weight"]
        inter = state["text_backbone.bert.encoder.layer.0.intermediate.dense.weight"]
        patch = state["backbone.patch_embed.proj.weight"]
        table = state["backbone.layers.0.blocks.0.attn.relative_position_bias_table"]
        index = state["backbone.layers.0.blocks.0.attn.relative_position_index"]
        space = state["multimodal_backbone.vis_space_pos"]
        tempo = state["multimodal_backbone.vis_tempor_pos"]
    except KeyError as err:
        raise CheckpointError(f"not a Clover checkpoint: no {err.args[0]}") from err
    d = words.shape[1]
    stages = count_indexed(state, "backbone.layers.")
    depths = tuple(count_indexed(state, f"backbone.layers.{i}.blocks.") for i in range(stages))
    heads = tuple(int(state[f"backbone.layers.{i}.blocks.0.attn.relative_position_bias_table"].shape[1])
                  for i in range(stages))
    text = bert_config(dict(hidden_size=d, num_hidden_layers=count_indexed(state, "text_backbone.bert.encoder.layer."),
                            num_attention_heads=heads_for_width(d), intermediate_size=inter.shape[0],
                            max_position_embeddings=state[
                                "text_backbone.bert.embeddings.position_embeddings.weight"].shape[0]),
                       vocab_size=words.shape[0])
    side = int(round(math.sqrt(space.shape[2])))
    tube, ph = int(patch.shape[2]), int(patch.shape[3])
    cfg: dict[str, Any] = dict(
        text_config=text, swin=dict(embed_dim=int(patch.shape[0]), depths=depths, num_heads=heads),
        window=swin_window(int(table.shape[0]), int(index.shape[0])),
        cross_layers=count_indexed(state, "multimodal_backbone.bert_encoder.layer."),
        resolution=side * ph * 2 ** (stages - 1), num_frames=int(tempo.shape[1]) * tube)
    if "qa_head.vqa_classifier.4.weight" in state:
        cfg["qa_labels"] = int(state["qa_head.vqa_classifier.4.weight"].shape[0])
    if (n := count_indexed(state, "caption_decoder.lm.bert.encoder.layer.")) > 0:
        cfg["decoder_layers"] = n
    return cfg


def load_clover_state(host: CloverHost, state: dict[str, Tensor], path: Path | None, strict: bool = True) -> dict[
        str, list[str]]:
    """Load a host-named state (see :func:`to_host_state`) into ``host``.

    Missing keys are allowed only for parts an official checkpoint may lack: ``caption_decoder.*`` (ours) and
    ``ssl_head.*`` (QA fine-tuning checkpoints have no retrieval head); anything else missing, unexpected or
    misshapen raises :class:`CheckpointError` under ``strict``. Returns ``{"missing": ..., "dropped": ...}``."""
    own = host.state_dict()
    bad = [k for k in state if k in own and state[k].shape != own[k].shape]
    if bad and strict:
        raise CheckpointError(f"{path}: does not match clover: shape mismatch {bad[:5]} "
                              f"({tuple(state[bad[0]].shape)} vs {tuple(own[bad[0]].shape)})")
    missing, unexpected = host.load_state_dict({k: v for k, v in state.items() if k not in bad}, strict=False)
    allowed = ("caption_decoder.", "ssl_head.")
    hard = [k for k in missing if not k.startswith(allowed)]
    if strict and (hard or unexpected):
        raise CheckpointError(f"{path}: does not match clover: missing {hard[:5]}, unexpected {unexpected[:5]}")
    return {"missing": list(missing), "unexpected": list(unexpected)}


def _read(path: Path) -> dict[str, Tensor]:
    path = weight_file_in(path, ("*.safetensors", "*.pth"),
                          "no latest.pth / *.pth / *.safetensors in the Clover checkpoint directory")
    return load_state_dict(path, what="Clover checkpoint", source=SPEC.tags[""].source)


def build_clover(spec: HostSpec, tag: WeightTag | None, checkpoint: Path | None, *, tokenizer: Any = None,
                 size: str = "base", num_frames: int | None = None, max_words: int | None = None,
                 qa_labels: int | None = None, decoder_layers: int | None = None, bert_heads: int | None = None,
                 strict: bool = True) -> CloverHost:
    """Factory for ``create_host("clover", checkpoint, **options)``.

    Args:
        tokenizer: a fast BERT (uncased WordPiece) tokenizer object, a local directory or ``tokenizer.json``
            (bert-base-uncased from the HF hub; never downloaded); defaults to the checkpoint directory.
        size: ``base`` (official) or ``tiny`` (CPU smoke runs); used only without a checkpoint, otherwise the
            sizes are read off the checkpoint.
        num_frames, max_words: override the official 8 frames / 30 tokens.
        qa_labels: answer count of a fresh ``qa_head`` (read from QA checkpoints).
        decoder_layers: caption decoder depth (3, UniVL's).
        bert_heads: attention heads of the BERTs when the checkpoint's width is not a multiple of 64.
    """
    if size not in CLOVER_SIZES:
        raise ValueError(f"clover size must be one of {sorted(CLOVER_SIZES)}, got {size!r}")
    if tokenizer is None and checkpoint is not None:
        tokenizer = checkpoint if checkpoint.is_dir() else checkpoint.parent
        if not any((Path(tokenizer) / f).exists() for f in ("tokenizer.json", "vocab.txt")):
            tokenizer = None
    tok = load_tokenizer(tokenizer, "BERT uncased tokenizer for clover", "HF hub google-bert/bert-base-uncased "
                         "(tokenizer.json, vocab.txt); pass host.options.tokenizer=DIR")
    dropped: list[str] = []
    if checkpoint is not None:
        state, dropped = to_host_state(_read(checkpoint))
        cfg = infer_config(state)
        if bert_heads:
            cfg["text_config"].num_attention_heads = bert_heads
    else:
        state = None
        named = CLOVER_SIZES[size]
        cfg = dict(text_config=bert_config(named["bert"], vocab_size=len(tok)), swin=dict(SWIN_SIZES[named["swin"]]),
                   window=named["window"], cross_layers=named["cross_layers"], resolution=named["resolution"],
                   num_frames=named["num_frames"], max_words=named["max_words"])
    if num_frames is not None:
        cfg["num_frames"] = num_frames
    if max_words is not None:
        cfg["max_words"] = max_words
    if qa_labels is not None:
        cfg["qa_labels"] = qa_labels
    if decoder_layers is not None:
        cfg["decoder_layers"] = decoder_layers
    cfg.setdefault("max_words", CLOVER_SIZES["base"]["max_words"])
    host = CloverHost(spec, cfg.pop("text_config"), tok, **cfg)
    if state is not None:
        report = load_clover_state(host, state, checkpoint, strict)
        if any(k.startswith("caption_decoder.") for k in report["missing"]):  # official file: no decoder
            host.caption_decoder.init_embeddings(host.text_backbone.bert.embeddings)
        host.load_report = {**report, "dropped": dropped}
    return host

