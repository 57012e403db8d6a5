"""VIOLET (Fu et al., arXiv:2111.12681; github.com/tsujuifu/pytorch_violet @4f64751), native, official layout.

Architecture (``model.py``: ``VIOLET_Base``):

* ``enc_img``: ``swin`` = Video Swin (Swin-S sizes: embed 96, depths 2/2/18/2, heads 3/6/12/24, window 8x7x7)
  whose tubelet (2, 4, 4) has temporal stride 1 after padding one frame, so there is one temporal token per frame
  (:class:`hosts.bert.VideoSwin3D` with ``temporal_stride=1``); then a learned per-frame ``[CLS]`` (``emb_cls``),
  spatial positions (``emb_pos``, 1 + 14^2), temporal positions (``emb_len``, 6 frames) and a LayerNorm (``norm``).
* ``enc_txt.emb_txt``: the BERT-base embedding layer (VIOLET's whole "text encoder").
* ``trsfr``: the 12-layer BERT-base encoder over [video tokens ; text tokens].
* ``fc``: the task head on the text ``[CLS]`` of the cross output (``Dropout, Linear(d, 2d), ReLU, Linear(2d, n)``):
  ``n = 1`` scores a (video, text) pair for retrieval (``/ 0.05``) and multiple choice; ``n`` answers for
  open-ended QA.

Capabilities and their scoring rules:

* multiple choice (official ``main_qamc``): ``fc`` score of the cross encoder on "question option";
* classification / open-ended QA (official ``main_qaoe``): ``encode_joint`` = text ``[CLS]`` of the cross output,
  head shaped like ``fc``;
* retrieval: the official code scores every (video, text) pair with the cross encoder (:meth:`score_pairs`,
  O(N^2)); the harness's retrieval evaluation needs embeddings, so :meth:`encode_text` / :meth:`encode_video`
  run ``trsfr`` on one modality alone (text ``[CLS]``; mean of the per-frame ``[CLS]``). This dual rule is **not
  official**; see ``docs/hosts-bert-family.md``.

Finsta reads (sec 5.2): text ``enc_txt.emb_txt`` output (nothing deeper exists), video the first Swin block
(token ``t`` starts at frame ``t``), cross ``trsfr.layer[0]``. Pooled: text = text ``[CLS]`` of the cross output;
video per frame = the frame ``[CLS]`` of ``enc_img``; cross per frame = the frame ``[CLS]`` of the cross output.
Own loss ``vla``: the official retrieval objective (``fc`` scores of all B x B pairs / 0.05, cross-entropy).

Weights: ``ckpt_violet_pretrain.pt`` (Google Drive, README) or a fine-tuned file; plain state dicts loaded by name.
Pre-training heads (``fc_mtm``, ``fc_mvm``) are dropped on load.

Shapes: ``B`` batch, ``T`` frames, ``h x w`` Swin output grid, ``L`` text tokens, ``d`` width.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertEmbeddings, BertEncoder

from hosts.base import EncoderOutput, Host, HostBatch, HostOutputs, Preprocess, TokenStates
from hosts.bert import VideoSwin3D, bert_config, run_layers, swin_from_official
from hosts.bert.core import split_official_state
from hosts.bert.heads import option_texts, pad_option_scores
from hosts.bert.sizes import count_indexed, heads_for_width, swin_window
from hosts.checkpoints import weight_file_in
from hosts.errors import CapabilityError, CheckpointError
from hosts.io import load_state_dict
from hosts.pooling import l2norm, video_token_maps
from hosts.spec import HostSpec, WeightTag, register_host
from hosts.text import load_tokenizer, tokenize_with_spans

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
TEMPERATURE = 0.05  # main_retrieval.py divides the fc scores by 0.05
PRETRAIN_ONLY = ("fc_mtm.", "fc_mvm.")
MAX_POS, MAX_LEN = 1 + 14 ** 2, 6  # emb_pos / emb_len sizes of the official EncImg

VIOLET_SIZES: dict[str, dict[str, Any]] = {
    "base": dict(bert="base", swin=dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
                 window=(8, 7, 7), resolution=224, num_frames=5, max_words=25),
    "tiny": dict(bert="tiny", swin=dict(embed_dim=4, depths=(1, 1, 1, 1), num_heads=(1, 2, 2, 2)),
                 window=(2, 4, 4), resolution=64, num_frames=4, max_words=16),
}

SPEC = register_host(HostSpec(
    name="violet", has_text=True, has_video=True, has_cross=True,
    capabilities=frozenset({"retrieval", "classification", "multiple_choice"}),
    factory="hosts.violet:build_violet",  # a string: the spec is made before the factory
    tags={"": WeightTag("", "ckpt_violet_pretrain.pt", "VIOLET pre-trained (YT180M + WebVid2.5M + CC3M)",
                        "Google Drive link in the tsujuifu/pytorch_violet README (plain state dict)")},
    params="198M", pretrain_data="11.8M", paper="Fu et al., VIOLET, arXiv:2111.12681 (2021)",
    code="https://github.com/tsujuifu/pytorch_violet", license="none stated (no LICENSE file)",
    status="implemented", display="VIOLET", order=20,
    parity="tests/hosts/test_hosts_violet.py::test_parity_with_official_code",
    notes="Native (hosts/violet.py): stride-1 Video Swin on torchvision swin3d blocks + BERT embeddings + 12-layer "
          "cross encoder in the official layout; parity-tested against the official VIOLET_Base. Retrieval embeddings "
          "are a non-official single-modality pass (official retrieval is cross-encoder scoring: score_pairs)."))


def fc_head(d: int, n: int, dropout: float = 0.1) -> nn.Sequential:
    """VIOLET's ``fc``: ``Dropout, Linear(d, 2d), ReLU, Linear(2d, n)``."""
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(d, 2 * d), nn.ReLU(), nn.Linear(2 * d, n))


class VioletImageEncoder(nn.Module):
    """``enc_img`` (official ``EncImg`` without its in-module normalisation: ``host.preprocess`` normalises)."""

    def __init__(self, swin: VideoSwin3D, d: int) -> None:
        super().__init__()
        self.swin = swin
        self.emb_cls = nn.Parameter(0.02 * torch.randn(1, 1, 1, d))
        self.emb_pos = nn.Parameter(0.02 * torch.randn(1, 1, MAX_POS, d))
        self.emb_len = nn.Parameter(0.02 * torch.randn(1, MAX_LEN, 1, d))
        self.norm = nn.LayerNorm(d)

    def forward(self, video: Tensor) -> tuple[Tensor, Tensor, tuple[int, int]]:
        """``[B, T, 3, H, W]`` -> (``[B, T*(1+h*w), d]`` frame tokens, first Swin block ``[B, T, H1, W1, C1]``,
        ``(h, w)``)."""
        b, t = video.shape[:2]
        if t > MAX_LEN:
            raise ValueError(f"VIOLET has {MAX_LEN} temporal positions, got {t} frames "
                             "(task.options.protocol.num_frames)")
        fmap, first = self.swin(video.transpose(1, 2))  # [B, C, T, h, w]
        h, w = fmap.shape[-2:]
        f = fmap.permute(0, 2, 3, 4, 1).reshape(b, t, h * w, -1)
        f = torch.cat([self.emb_cls.expand(b, t, -1, -1), f], 2)
        f = f + self.emb_pos[:, :, :1 + h * w] + self.emb_len[:, :t]
        return self.norm(f).reshape(b, t * (1 + h * w), -1), first, (h, w)


class VioletTextEncoder(nn.Module):
    """``enc_txt``: ``emb_txt`` is BERT's embedding layer."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.emb_txt = BertEmbeddings(config)

    def forward(self, ids: Tensor) -> Tensor:
        return self.emb_txt(input_ids=ids)


class VioletHost(Host):
    """VIOLET implementing the host contract (retrieval, classification, multiple choice)."""

    def __init__(self, spec: HostSpec, config: BertConfig, tokenizer: Any, *, swin: dict[str, Any],
                 window: tuple[int, int, int], resolution: int, num_frames: int, max_words: int = 25,
                 fc_outputs: int = 1) -> None:
        super().__init__(spec, Preprocess(num_frames=num_frames, resolution=resolution, mean=IMAGENET_MEAN,
                                          std=IMAGENET_STD))
        self.tokenizer, self.max_words = tokenizer, max_words
        d = config.hidden_size
        backbone = VideoSwin3D(embed_dim=int(swin["embed_dim"]), depths=tuple(swin["depths"]),
                               num_heads=tuple(swin["num_heads"]), window_size=window, temporal_stride=1)
        if backbone.num_features != d:
            raise ValueError(f"VIOLET needs the Swin output width ({backbone.num_features}) to equal BERT's ({d})")
        self.enc_img = VioletImageEncoder(backbone, d)
        self.enc_txt = VioletTextEncoder(config)
        self.trsfr = BertEncoder(config)
        self.fc = fc_head(d, fc_outputs)

    @property
    def width(self) -> int:
        return self.enc_img.norm.normalized_shape[0]

    @property
    def embed_dim(self) -> int:
        return self.width

    def encoder_widths(self) -> dict[str, int]:
        return {"text": self.width, "video": self.width, "cross": self.width}

    def first_layer_widths(self) -> dict[str, int]:
        return {"text": self.width, "video": self.enc_img.swin.embed_dim, "cross": self.width}

    # -- passes ------------------------------------------------------------------------------------
    def tokenize(self, texts: list[str]):
        return tokenize_with_spans(self.tokenizer, texts, max_length=self.max_words).to(self.enc_img.emb_cls.device)

    def cross(self, img: Tensor, txt: Tensor, txt_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Official ``go_cross``: ``trsfr`` over [video tokens ; text tokens] -> (last, first-layer states)."""
        mask = torch.cat([torch.ones(img.shape[:2], dtype=torch.bool, device=img.device), txt_mask.bool()], 1)
        return run_layers(self.trsfr, torch.cat([img, txt], 1), mask)

    def _joint_cls(self, video: Tensor, texts: list[str]) -> Tensor:
        img, _, _ = self.enc_img(video)
        tok = self.tokenize(texts)
        return self.cross(img, self.enc_txt(tok.input_ids), tok.attention_mask)[0][:, img.shape[1]]

    def _score_head(self) -> nn.Module:
        if self.fc[3].out_features != 1:
            raise CapabilityError(f"this VIOLET checkpoint's fc has {self.fc[3].out_features} outputs (an open-ended "
                                  "QA head); pair scoring needs a retrieval / multiple-choice checkpoint (1 output)")
        return self.fc

    # -- capabilities ------------------------------------------------------------------------------
    def score_pairs(self, video: Tensor, texts: list[str]) -> Tensor:
        """Official retrieval scores ``[B_video, B_text]``: ``fc`` on the cross ``[CLS]`` of every pair / 0.05."""
        img, _, _ = self.enc_img(video)
        tok = self.tokenize(texts)
        txt = self.enc_txt(tok.input_ids)
        bv, bt = img.shape[0], txt.shape[0]
        out = self.cross(img.repeat_interleave(bt, 0), txt.repeat(bv, 1, 1), tok.attention_mask.repeat(bv, 1))[0]
        return self._score_head()(out[:, img.shape[1]]).view(bv, bt) / TEMPERATURE

    def encode_text(self, texts: list[str]) -> Tensor:
        """Non-official dual embedding: ``trsfr`` over the text alone, ``[CLS]``."""
        tok = self.tokenize(texts)
        return l2norm(run_layers(self.trsfr, self.enc_txt(tok.input_ids), tok.attention_mask)[0][:, 0])

    def encode_video(self, video: Tensor, frame_times: Tensor | None = None) -> Tensor:
        """Non-official dual embedding: ``trsfr`` over the video alone, mean of the per-frame ``[CLS]``."""
        img, _, (h, w) = self.enc_img(video)
        out = run_layers(self.trsfr, img)[0]
        return l2norm(out.view(out.shape[0], -1, 1 + h * w, out.shape[-1])[:, :, 0].mean(1))

    def encode_joint(self, video: Tensor, texts: list[str], frame_times: Tensor | None = None) -> Tensor:
        return self._joint_cls(video, texts)

    def task_head(self, num_outputs: int) -> nn.Module:
        if self.fc[3].out_features == num_outputs:
            return self.fc
        return fc_head(self.width, num_outputs).to(self.enc_img.emb_cls.device)

    def score_options(self, video: Tensor, questions: list[str], options: list[list[str]],
                      frame_times: Tensor | None = None) -> Tensor:
        """Official ``main_qamc``: ``fc`` score of the cross ``[CLS]`` for "question option" (ragged: ``-inf``)."""
        rows, texts = option_texts(questions, options, strip=False)
        s = self._score_head()(self._joint_cls(video[rows], texts)).squeeze(-1)
        return pad_option_scores(s, options)

    # -- Finsta ------------------------------------------------------------------------------------
    def posttrain_outputs(self, batch: HostBatch, with_losses: bool = True) -> HostOutputs:
        b, t = batch.video.shape[:2]
        dev = batch.video.device
        img, vfirst, (h, w) = self.enc_img(batch.video)
        tok = self.tokenize(batch.texts)
        txt = self.enc_txt(tok.input_ids)
        last, first = self.cross(img, txt, tok.attention_mask)
        n = t * (1 + h * w)
        _, _, h1, w1, c1 = vfirst.shape
        vfi, vrc = video_token_maps(b, t, (h1, w1), cls_tokens=0, device=dev)
        cfi, crc = video_token_maps(b, t, (h, w), cls_tokens=1, device=dev)
        lt = txt.shape[1]
        cfi = torch.cat([cfi, torch.full((b, lt), -1, dtype=torch.long, device=dev)], 1)
        crc = torch.cat([crc, torch.full((b, lt, 2), -1, dtype=torch.long, device=dev)], 1)
        cspans = torch.cat([torch.full((b, n, 2), -1, dtype=torch.long, device=dev), tok.char_spans], 1)
        cmask = torch.cat([torch.ones(b, n, dtype=torch.bool, device=dev), tok.attention_mask], 1)
        frame_cls = slice(0, n, 1 + h * w)
        out = HostOutputs(
            text=EncoderOutput(TokenStates(txt, tok.attention_mask, char_spans=tok.char_spans), last[:, n]),
            video=EncoderOutput(TokenStates(vfirst.reshape(b, t * h1 * w1, c1),
                                            torch.ones(b, t * h1 * w1, dtype=torch.bool, device=dev),
                                            frame_index=vfi, patch_rc=vrc, grid=(h1, w1)),
                                img[:, frame_cls], frame_times=batch.frame_times),
            cross=EncoderOutput(TokenStates(first, cmask, char_spans=cspans, frame_index=cfi, patch_rc=crc,
                                            grid=(h, w)),
                                last[:, frame_cls], frame_times=batch.frame_times))
        if with_losses and self.fc[3].out_features == 1:
            bv = b
            pair = self.cross(img.repeat_interleave(bv, 0), txt.repeat(bv, 1, 1), tok.attention_mask.repeat(bv, 1))[0]
            logits = self.fc(pair[:, n]).view(bv, bv) / TEMPERATURE
            out.losses["vla"] = F.cross_entropy(logits, torch.arange(bv, device=dev))
        return out


# ---------------------------------------------------------------------------------------------------------
# checkpoint layout


def to_host_state(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Official or own state -> host names (Swin MLP rename; ``module.`` / ``position_ids`` removed;
    pre-training heads dropped and returned)."""
    out, dropped = split_official_state(state, PRETRAIN_ONLY)
    return swin_from_official(out), dropped


def infer_config(state: dict[str, Tensor]) -> dict[str, Any]:
    """Sizes read off a host-named VIOLET state dict."""
    try:
        words = state["enc_txt.emb_txt.word_embeddings.weight"]
        inter = state["trsfr.layer.0.intermediate.dense.weight"]
        patch = state["enc_img.swin.patch_embed.proj.weight"]
        table = state["enc_img.swin.layers.0.blocks.0.attn.relative_position_bias_table"]
        index = state["enc_img.swin.layers.0.blocks.0.attn.relative_position_index"]
        fc = state["fc.3.weight"]
    except KeyError as err:
        raise CheckpointError(f"not a VIOLET checkpoint: no {err.args[0]}") from err
    d = words.shape[1]
    stages = count_indexed(state, "enc_img.swin.layers.")
    depths = tuple(count_indexed(state, f"enc_img.swin.layers.{i}.blocks.") for i in range(stages))
    heads = tuple(int(state[f"enc_img.swin.layers.{i}.blocks.0.attn.relative_position_bias_table"].shape[1])
                  for i in range(stages))
    cfg = bert_config(dict(hidden_size=d, num_hidden_layers=count_indexed(state, "trsfr.layer."),
                           num_attention_heads=heads_for_width(d),
                           intermediate_size=inter.shape[0],
                           max_position_embeddings=state["enc_txt.emb_txt.position_embeddings.weight"].shape[0]),
                      vocab_size=words.shape[0])
    return dict(config=cfg, swin=dict(embed_dim=int(patch.shape[0]), depths=depths, num_heads=heads),
                window=swin_window(int(table.shape[0]), int(index.shape[0])), fc_outputs=int(fc.shape[0]))


def build_violet(spec: HostSpec, tag: WeightTag | None, checkpoint: Path | None, *, tokenizer: Any = None,
                 size: str = "base", num_frames: int | None = None, resolution: int | None = None,
                 max_words: int | None = None, bert_heads: int | None = None, swin_checkpoint: str | Path | None = None,
                 strict: bool = True) -> VioletHost:
    """Factory for ``create_host("violet", checkpoint, **options)``.

    Args:
        tokenizer: fast BERT uncased tokenizer (object, directory or ``tokenizer.json``); defaults to the
            checkpoint's directory when it holds one.
        size: ``base`` (official) or ``tiny`` (CPU smoke runs); only without a checkpoint.
        num_frames, resolution, max_words: override the official 5 frames, 224 px, 25 tokens.
        bert_heads: attention heads when the width is not a multiple of 64.
        swin_checkpoint: the official Video Swin initialisation ``ckpt_video-swin.pt`` (a plain ``SwinTransformer3D``
            state dict, as ``EncImg`` loads it), read into ``enc_img.swin`` before ``checkpoint`` (if any).
    """
    if size not in VIOLET_SIZES:
        raise ValueError(f"violet size must be one of {sorted(VIOLET_SIZES)}, got {size!r}")
    named = VIOLET_SIZES[size]
    if tokenizer is None and checkpoint is not None:
        folder = checkpoint if checkpoint.is_dir() else checkpoint.parent
        tokenizer = folder if any((folder / f).exists() for f in ("tokenizer.json", "vocab.txt")) else None
    tok = load_tokenizer(tokenizer, "BERT uncased tokenizer for violet", "HF hub google-bert/bert-base-uncased "
                         "(tokenizer.json, vocab.txt); pass host.options.tokenizer=DIR")
    dropped: list[str] = []
    state = None
    if checkpoint is not None:
        path = weight_file_in(checkpoint, ("*.pt", "*.safetensors"),
                              "no *.pt / *.safetensors VIOLET checkpoint in the directory")
        state, dropped = to_host_state(load_state_dict(path, what="VIOLET checkpoint", source=SPEC.tags[""].source))
        cfg = infer_config(state)
        if bert_heads:
            cfg["config"].num_attention_heads = bert_heads
        cfg.update(resolution=named["resolution"], num_frames=named["num_frames"], max_words=named["max_words"])
    else:
        cfg = dict(config=bert_config(named["bert"], vocab_size=len(tok)), swin=dict(named["swin"]),
                   window=named["window"], resolution=named["resolution"], num_frames=named["num_frames"],
                   max_words=named["max_words"])
    for key, value in (("num_frames", num_frames), ("resolution", resolution), ("max_words", max_words)):
        if value is not None:
            cfg[key] = value
    cfg["config"]._attn_implementation = cfg["config"]._attn_implementation or "sdpa"  # standalone BertEncoder
    host = VioletHost(spec, cfg.pop("config"), tok, **cfg)
    if swin_checkpoint is not None:
        swin = load_state_dict(Path(swin_checkpoint), what="VIOLET Video Swin initialisation (ckpt_video-swin.pt)",
                               source=SPEC.tags[""].source)
        missing, unexpected = host.enc_img.swin.load_state_dict(swin_from_official(swin), strict=False)
        if missing or unexpected:
            raise CheckpointError(f"{swin_checkpoint}: not VIOLET's Video Swin: missing {list(missing)[:5]}, "
                                  f"unexpected {list(unexpected)[:5]}")
    if state is not None:
        own = host.state_dict()
        bad = [k for k in state if k in own and state[k].shape != own[k].shape]
        missing, unexpected = host.load_state_dict({k: v for k, v in state.items() if k not in bad}, strict=False)
        if strict and (bad or missing or unexpected):
            raise CheckpointError(f"{checkpoint}: does not match violet: missing {list(missing)[:5]}, unexpected "
                                  f"{list(unexpected)[:5]}, shape mismatch {bad[:5]}")
        host.load_report = {"missing": list(missing), "unexpected": list(unexpected), "dropped": dropped}
    return host
