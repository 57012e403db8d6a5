"""LF-VILA (Sun et al., NeurIPS 2022; github.com/microsoft/XPretrain ``LF-VILA/`` @c37c904), native, official layout.

Architecture (``src/models/{video_encoder,bert,text_encoder,lfvila_retrieval,lfvila_qa_*,lfvila_pretrain}.py``):

* ``video_encoder``: a hierarchical Video Swin with hierarchical temporal window attention (HTWA): 6 stages
  (depths 2/2/14/2/2/2, widths ``128 * 2^[0,1,2,2,2,3]``, heads 4/8/16/16/16/32), patch ``[1, 8, 8]`` with
  ``patch_norm``, ``PatchMerging`` after stages 0, 1 and 4, per-stage windows (t, h, w) [2,3,5] ... [32,3,5], **no
  temporal shift**; a ``local_feat_proj`` / ``norm_local`` branch before the first stage whose temporal window
  exceeds 8, and a final ``norm``. Built from torchvision's ``SwinTransformerBlock`` + ``ShiftedWindowAttention3d``,
  ``PatchMerging`` and ``PatchEmbed3d`` (the official blocks are the Video Swin ones; only the MLP is named
  ``mlp.fc1/fc2`` there, mapped by :func:`hosts.bert.swin_from_official`).
* ``text_encoder.bert``: one BERT-large in three stages: layers ``0 .. 7`` per sentence (stage 0), layers ``8 .. 11``
  over the paragraph (stage 1: ``sent_embedding`` adds positions over the concatenated sentences, a sentence-index
  segment embedding and a LayerNorm; a leading token = the mean of the sentence ``[CLS]`` states), layers
  ``12 .. 23`` the cross encoder (stage 2) over [paragraph states ; video tokens] with ``bert.pooler``.
* Video tokens: the final map max-pooled ``(2, 3)`` with stride 1 per frame (``video_downsample``); retrieval
  feature = the mean over frames and space through ``video_global_proj``; cross tokens = the map plus
  ``video_token_pos`` (spatial and temporal positions, LayerNorm).
* Retrieval: ``normalize(text_global_proj(stage-1 [:, 0]))`` against ``normalize(video_global_proj(...))``;
  contrastive loss at temperature 0.05, both directions summed. QA: ``text_encoder.classifier`` on the stage-2
  pooler (``Linear(d, n)``; multiple choice: one output per (video, question + option) pair).

Inputs (documented in ``docs/hosts-vila.md``): the host takes square ``320 x 320`` frames and uses their middle
``192`` rows (the official ``input_res`` is 192 x 320); ``T <= 32`` frames, the temporal positions of the cross
tokens are the first ``T`` of 32. A text is split into sentences (at most 8, merged as the official loader merges
them), each padded to 50 tokens, 8 chunks per text (empty chunks all padding), as ``RetrievalDataset.tokenize``.

Finsta reads (sec 5.2): text = ``encoder.layer[0]`` (per sentence, spans in the paragraph), video =
``video_encoder.layers[0].blocks[0]`` (one temporal token per frame), cross = ``encoder.layer[12]``. Pooled: text =
the stage-1 paragraph token; video per frame = the spatial mean of the pooled final map; cross per frame = the
mean of that frame's cross-encoder video tokens.

Shapes: ``B`` batch, ``T`` frames, ``M`` sentences, ``L`` tokens per sentence, ``X`` video tokens per frame,
``d`` width.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.swin_transformer import PatchMerging, SwinTransformerBlock
from torchvision.models.video.swin_transformer import PatchEmbed3d, ShiftedWindowAttention3d
from transformers import BertConfig, BertModel

from hosts.base import EncoderOutput, Host, HostBatch, HostOutputs, Preprocess, TokenStates
from hosts.bert import bert_config, swin_from_official
from hosts.bert.core import BUFFERS_NOT_LOADED, split_official_state
from hosts.bert.heads import option_texts, pad_option_scores
from hosts.bert.sizes import count_indexed, heads_for_width
from hosts.checkpoints import weight_file_in
from hosts.errors import CapabilityError, CheckpointError
from hosts.io import load_state_dict
from hosts.pooling import l2norm
from hosts.spec import HostSpec, WeightTag, register_host
from hosts.text import load_tokenizer, tokenize_with_spans

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
TEMPERATURE = 0.05  # TRAINING.temp of the retrieval configs
CHUNKS, CHUNK_LEN = 8, 50  # RetrievalDataset.tokenize(total_chunk=8, max_length=50)
NEG = -10000.0  # transformers-4 extended attention mask value (matters for all-padding sentence chunks)
PRETRAIN_ONLY = ("text_encoder.cls.", "text_encoder.seq_relationship.", "video_local_proj.", "text_local_proj.",
                 "text_encoder.span_classifier.")
OPTIONAL = ("text_encoder.classifier.", "video_token_pos.", "video_global_proj.", "text_global_proj.")

LFVILA_SIZES: dict[str, dict[str, Any]] = {
    "large": dict(bert="large", swin=dict(patch=(1, 8, 8), embed_dim=128, depths=(2, 2, 14, 2, 2, 2),
                                          heads=(4, 8, 16, 16, 16, 32), stages=(0, 1, 2, 2, 2, 3),
                                          downsample=(0, 1, 4),
                                          windows=((2, 3, 5), (4, 3, 5), (8, 3, 5), (16, 3, 5), (16, 3, 5),
                                                   (32, 3, 5)), local_window=8),
                  num_local=8, num_stage1=12, frames=32, patches=6, height=192, width=320),
    "tiny": dict(bert=dict(hidden_size=32, num_hidden_layers=6, num_attention_heads=2, intermediate_size=64),
                 swin=dict(patch=(1, 4, 4), embed_dim=4, depths=(1, 1, 1, 1, 1, 1), heads=(1, 1, 2, 2, 2, 2),
                           stages=(0, 1, 2, 2, 2, 3), downsample=(0, 1, 4),
                           windows=((2, 3, 5), (2, 3, 5), (4, 3, 5), (4, 3, 5), (8, 3, 5), (8, 3, 5)),
                           local_window=2),
                 num_local=2, num_stage1=4, frames=16, patches=6, height=96, width=160),
}

SPEC = register_host(HostSpec(
    name="lfvila", has_text=True, has_video=True, has_cross=True,
    capabilities=frozenset({"retrieval", "classification", "multiple_choice"}),
    factory="hosts.lfvila:build_lfvila",
    tags={"": WeightTag("", "lfvila_stage2.bin", "LF-VILA stage-2 pre-trained (plain state dict)",
                        "lfvila_release.zip via microsoft/XPretrain LF-VILA/scripts/download_data.sh "
                        "(lfvila_stage1.bin for retrieval also loads)")},
    params="277M", pretrain_data="8.5M",
    paper="Sun et al., Long-Form Video-Language Pre-Training with Multimodal Temporal Contrastive Learning "
          "(LF-VILA), NeurIPS 2022",
    code="https://github.com/microsoft/XPretrain/tree/main/LF-VILA",
    license="Microsoft Research License (non-commercial)", status="implemented", display="LFVILA", order=80,
    parity="tests/hosts/test_hosts_lfvila.py::test_parity_with_official_code",
    notes="Native (hosts/lfvila.py): HTWA Video Swin on torchvision swin3d blocks + BERT-large split 8 sentence / 4 "
          "paragraph / 12 cross layers (transformers), official key layout; parity-tested against the official "
          "LFVILA_Retrieval and LFVILA_QA_Classification at a tiny size. S-Vid / L-Vid (Tables 5-6) is a "
          "post-training corpus choice. Size: the paper says 277M; the released configuration computes to ~425M."))


# ---------------------------------------------------------------------------------------------------------
# video encoder


class HTWAStage(nn.Module):
    """One stage (official ``BasicLayer``): Video Swin blocks with this stage's window, shifted by half a window in
    space only on odd blocks (``temporal_no_shifting``), then an optional ``PatchMerging``."""

    def __init__(self, dim: int, depth: int, heads: int, window: tuple[int, int, int], downsample: bool) -> None:
        super().__init__()
        norm = partial(nn.LayerNorm, eps=1e-5)
        shift = [0, window[1] // 2, window[2] // 2]
        self.blocks = nn.ModuleList([
            SwinTransformerBlock(dim, heads, window_size=list(window), shift_size=[0, 0, 0] if i % 2 == 0 else shift,
                                 mlp_ratio=4.0, stochastic_depth_prob=0.0, norm_layer=norm,
                                 attn_layer=ShiftedWindowAttention3d)
            for i in range(depth)])
        self.downsample = PatchMerging(dim, norm) if downsample else None
        self.window = window

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, T, H, W, C]`` -> (output, first block output)."""
        first = None
        for blk in self.blocks:
            x = blk(x)
            first = x if first is None else first
        if first is None:
            raise ValueError("stage has no blocks")
        return (self.downsample(x) if self.downsample is not None else x), first


class HTWASwin(nn.Module):
    """``video_encoder`` (official ``SwinTransformer3D`` of LF-VILA)."""

    def __init__(self, patch: tuple[int, ...], embed_dim: int, depths: tuple[int, ...], heads: tuple[int, ...],
                 stages: tuple[int, ...], downsample: tuple[int, ...], windows: tuple[tuple[int, int, int], ...],
                 local_window: int) -> None:
        super().__init__()
        norm = partial(nn.LayerNorm, eps=1e-5)
        self.patch_embed = PatchEmbed3d(list(patch), 3, embed_dim, norm_layer=norm)
        self.layers = nn.ModuleList([HTWAStage(embed_dim * 2 ** s, depths[i], heads[i], tuple(windows[i]),
                                               i in downsample) for i, s in enumerate(stages)])
        self.num_features = embed_dim * 2 ** stages[-1]
        self.norm = norm(self.num_features)
        self.norm_local = norm(self.num_features)
        self.local_feat_proj = PatchMerging(embed_dim * 4, norm)
        self.local_window = local_window
        self.embed_dim = embed_dim

    def forward(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, 3, T, H, W]`` -> (final map ``[B, T, h, w, C]``, first block output ``[B, T, H1, W1, C1]``)."""
        x = self.patch_embed(video)
        first = None
        for layer in self.layers:
            x, f = layer(x.contiguous())
            first = f if first is None else first
        return self.norm(x), first


# ---------------------------------------------------------------------------------------------------------
# text side


class SentEmbedding(nn.Module):
    """``sent_embedding``: positions over the concatenated sentences + sentence index segment + LayerNorm."""

    def __init__(self, config: BertConfig, segments: int = CHUNKS) -> None:
        super().__init__()
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.segment_embeddings = nn.Embedding(segments, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: Tensor, segment: Tensor) -> Tensor:
        pos = self.position_embeddings(torch.arange(x.shape[1], device=x.device))
        return self.dropout(self.norm(x + pos + self.segment_embeddings(segment)))


class VideoTokenPos(nn.Module):
    """``video_token_pos``: spatial and temporal positions of the cross-encoder video tokens, LayerNorm."""

    def __init__(self, patches: int, frames: int, d: int) -> None:
        super().__init__()
        self.s_pos_embed = nn.Parameter(0.02 * torch.randn(1, 1, patches, d))
        self.t_pos_embed = nn.Parameter(0.02 * torch.randn(1, frames, 1, d))
        self.norm = nn.LayerNorm(d)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, T, X, d]`` (``T`` up to the trained frames) -> same shape."""
        t, frames = x.shape[1], self.t_pos_embed.shape[1]
        if t > frames:
            raise ValueError(f"LF-VILA has {frames} temporal positions, got {t} frames (task.options.protocol)")
        if x.shape[2] != self.s_pos_embed.shape[2]:
            raise ValueError(f"LF-VILA's cross encoder has {self.s_pos_embed.shape[2]} spatial positions, the video "
                             f"gives {x.shape[2]} tokens per frame (input size {tuple(x.shape)})")
        return self.norm(x + self.s_pos_embed + self.t_pos_embed[:, :t])


class TextEncoder(nn.Module):
    """``text_encoder``: ``bert`` (with pooler) and the QA ``classifier``."""

    def __init__(self, config: BertConfig, num_labels: int) -> None:
        super().__init__()
        self.bert = BertModel(config, add_pooling_layer=True)
        self.classifier = nn.Linear(config.hidden_size, num_labels)


def run_stage(layers: Any, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """BERT layers with the transformers-4 additive mask ``(1 - m) * -10000`` -> (last, first-layer output)."""
    add = (1.0 - mask.to(x.dtype))[:, None, None, :] * NEG
    first = None
    for layer in layers:
        x = layer(x, add)
        x = x[0] if isinstance(x, tuple) else x
        first = x if first is None else first
    if first is None:
        raise ValueError("stage has no layers")
    return x, first


_SENTENCE = re.compile(r"[^.!?]+[.!?]*")


def sentence_spans(text: str, chunks: int = CHUNKS) -> list[tuple[int, int]]:
    """Char spans of the sentences of ``text``, merged to at most ``chunks`` as the official loader merges them
    (repeatedly join the adjacent pair with the smallest total length)."""
    spans = [(m.start() + len(m.group()) - len(m.group().lstrip()), m.end() - len(m.group()) + len(m.group().rstrip()))
             for m in _SENTENCE.finditer(text) if m.group().strip()]
    spans = spans or [(0, len(text))]
    while len(spans) > chunks:
        sizes = [(spans[i][1] - spans[i][0]) + (spans[i + 1][1] - spans[i + 1][0]) for i in range(len(spans) - 1)]
        i = sizes.index(min(sizes))
        spans = spans[:i] + [(spans[i][0], spans[i + 1][1])] + spans[i + 2:]
    return spans


# ---------------------------------------------------------------------------------------------------------
# host


class LFVILAHost(Host):
    """LF-VILA implementing the host contract (retrieval, classification, multiple choice)."""

    def __init__(self, spec: HostSpec, config: BertConfig, tokenizer: Any, *, swin: dict[str, Any], num_local: int,
                 num_stage1: int, frames: int, patches: int, height: int, width: int, num_labels: int = 1,
                 num_frames: int | None = None) -> None:
        super().__init__(spec, Preprocess(num_frames=num_frames or frames, resolution=width, mean=IMAGENET_MEAN,
                                          std=IMAGENET_STD))
        self.tokenizer, self.num_local, self.num_stage1, self.height = tokenizer, num_local, num_stage1, height
        d = config.hidden_size
        self.video_encoder = HTWASwin(**swin)
        if self.video_encoder.num_features != d:
            raise ValueError(f"LF-VILA needs the Swin width ({self.video_encoder.num_features}) to equal BERT's ({d})")
        self.text_encoder = TextEncoder(config, num_labels)
        self.video_downsample = nn.MaxPool2d((2, 3), stride=(1, 1))
        self.video_global_proj = nn.Linear(d, d)
        self.text_global_proj = nn.Linear(d, d)
        self.sent_embedding = SentEmbedding(config)
        self.video_token_pos = VideoTokenPos(patches, frames, d)

    @property
    def width(self) -> int:
        return self.video_global_proj.in_features

    @property
    def embed_dim(self) -> int:
        return self.width

    def encoder_widths(self) -> dict[str, int]:
        return {"text": self.width, "video": self.width, "cross": self.width}

    def first_layer_widths(self) -> dict[str, int]:
        return {"text": self.width, "video": self.video_encoder.embed_dim, "cross": self.width}

    # -- passes ------------------------------------------------------------------------------------
    def encode_frames(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, T, 3, S, S]`` -> (video tokens ``[B, T, X, d]`` after the max-pool, first Swin block ``[B, T, H1,
        W1, C1]``). Square frames are cropped to their middle ``height`` rows (official 192 x 320 input)."""
        s = video.shape[-2]
        if s > self.height:
            top = (s - self.height) // 2
            video = video[..., top:top + self.height, :]
        fmap, first = self.video_encoder(video.transpose(1, 2))  # [B, T, h, w, C]
        b, t, h, w, c = fmap.shape
        pooled = self.video_downsample(fmap.reshape(b * t, h, w, c).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return pooled.reshape(b, t, -1, c), first

    def tokenize(self, texts: list[str]) -> tuple[Tensor, Tensor, Tensor]:
        """``B`` paragraphs -> ids ``[B, M, L]``, mask ``[B, M, L]`` bool, char spans in the paragraph ``[B, M, L, 2]``
        (``M`` = 8 sentence chunks, ``L`` = 50, as the official loader)."""
        b = len(texts)
        ids = torch.zeros(b, CHUNKS, CHUNK_LEN, dtype=torch.long)
        mask = torch.zeros(b, CHUNKS, CHUNK_LEN, dtype=torch.bool)
        spans = torch.full((b, CHUNKS, CHUNK_LEN, 2), -1, dtype=torch.long)
        for i, text in enumerate(texts):
            sents = sentence_spans(text)
            tok = tokenize_with_spans(self.tokenizer, [text[s:e] for s, e in sents], max_length=CHUNK_LEN)
            n, lq = tok.input_ids.shape
            ids[i, :n, :lq], mask[i, :n, :lq] = tok.input_ids, tok.attention_mask
            off = torch.tensor([s for s, _ in sents]).view(n, 1, 1)
            spans[i, :n, :lq] = torch.where(tok.char_spans >= 0, tok.char_spans + off, tok.char_spans)
        dev = self.video_global_proj.weight.device
        return ids.to(dev), mask.to(dev), spans.to(dev)

    def encode_paragraph(self, ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Stages 0 and 1: -> (paragraph states ``[B, 1 + M*L, d]``, their mask, first-layer states ``[B, M*L, d]``)."""
        b, m, lq = ids.shape
        bert = self.text_encoder.bert
        layers = bert.encoder.layer
        emb = bert.embeddings(input_ids=ids.view(b * m, lq))
        local, first = run_stage(layers[:self.num_local], emb, mask.view(b * m, lq))
        segment = torch.arange(m, device=ids.device).repeat_interleave(lq)[None].expand(b, -1)
        local = self.sent_embedding(local.view(b, m * lq, -1), segment)
        cls = local.view(b, m, lq, -1)[:, :, 0].mean(1, keepdim=True)
        gmask = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=ids.device), mask.view(b, m * lq)], 1)
        glob, _ = run_stage(layers[self.num_local:self.num_stage1], torch.cat([cls, local], 1), gmask)
        return glob, gmask, first.view(b, m * lq, -1)

    def cross(self, glob: Tensor, gmask: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Stage 2 over [paragraph ; video tokens ``[B, T, X, d]``] -> (last, first-layer, pooler ``[B, d]``)."""
        vis = self.video_token_pos(tokens).flatten(1, 2)
        mask = torch.cat([gmask, torch.ones(vis.shape[:2], dtype=torch.bool, device=vis.device)], 1)
        last, first = run_stage(self.text_encoder.bert.encoder.layer[self.num_stage1:], torch.cat([glob, vis], 1), mask)
        return last, first, self.text_encoder.bert.pooler(last)

    def _joint(self, video: Tensor, texts: list[str]) -> Tensor:
        tokens = self.encode_frames(video)[0]
        ids, mask, _ = self.tokenize(texts)
        glob, gmask, _ = self.encode_paragraph(ids, mask)
        return self.cross(glob, gmask, tokens)[2]

    # -- capabilities ------------------------------------------------------------------------------
    def encode_text(self, texts: list[str]) -> Tensor:
        """Official ``text_global_feat``: ``normalize(text_global_proj(stage-1 [:, 0]))``."""
        ids, mask, _ = self.tokenize(texts)
        return l2norm(self.text_global_proj(self.encode_paragraph(ids, mask)[0][:, 0]))

    def encode_video(self, video: Tensor, frame_times: Tensor | None = None) -> Tensor:
        """Official ``video_global_feat``: ``normalize(video_global_proj(mean over frames and tokens))``."""
        return l2norm(self.video_global_proj(self.encode_frames(video)[0].mean((1, 2))))

    def encode_joint(self, video: Tensor, texts: list[str], frame_times: Tensor | None = None) -> Tensor:
        """Stage-2 pooler output ``[B, d]`` (the input of the official QA classifier)."""
        return self._joint(video, texts)

    def task_head(self, num_outputs: int) -> nn.Module:
        head = self.text_encoder.classifier
        if head.out_features == num_outputs:
            return head
        return nn.Linear(self.width, num_outputs).to(head.weight.device)

    def score_options(self, video: Tensor, questions: list[str], options: list[list[str]],
                      frame_times: Tensor | None = None) -> Tensor:
        """Official multiple choice: ``text_encoder.classifier`` (1 output) on the stage-2 pooler of every (video,
        "question option") pair; ragged option lists padded with ``-inf``."""
        head = self.text_encoder.classifier
        if head.out_features != 1:
            raise CapabilityError(f"this LF-VILA checkpoint's classifier has {head.out_features} outputs (an "
                                  "open-ended QA head); multiple choice needs a 1-output classifier")
        rows, texts = option_texts(questions, options)
        s = head(self._joint(video[rows], texts)).squeeze(-1)
        return pad_option_scores(s, options)

    # -- Finsta ------------------------------------------------------------------------------------
    def posttrain_outputs(self, batch: HostBatch, with_losses: bool = True) -> HostOutputs:
        b, t = batch.video.shape[:2]
        dev = batch.video.device
        tokens, vfirst = self.encode_frames(batch.video)
        x = tokens.shape[2]
        ids, mask, spans = self.tokenize(batch.texts)
        glob, gmask, tfirst = self.encode_paragraph(ids, mask)
        last, cfirst, _ = self.cross(glob, gmask, tokens)
        _, _, h1, w1, c1 = vfirst.shape
        frame = torch.arange(t, device=dev)
        vfi = frame.repeat_interleave(h1 * w1)[None].expand(b, -1)
        rc = torch.stack([torch.arange(h1 * w1, device=dev) // w1, torch.arange(h1 * w1, device=dev) % w1], -1)
        vrc = rc.repeat(t, 1)[None].expand(b, -1, -1)
        tmask, tspans = mask.view(b, -1), spans.view(b, -1, 2)
        lg = glob.shape[1]
        cfi = torch.cat([torch.full((b, lg), -1, dtype=torch.long, device=dev),
                         frame.repeat_interleave(x)[None].expand(b, -1)], 1)
        cspans = torch.cat([torch.full((b, 1, 2), -1, dtype=torch.long, device=dev), tspans,
                            torch.full((b, t * x, 2), -1, dtype=torch.long, device=dev)], 1)
        cmask = torch.cat([gmask, torch.ones(b, t * x, dtype=torch.bool, device=dev)], 1)
        out = HostOutputs(
            text=EncoderOutput(TokenStates(tfirst, tmask, char_spans=tspans), glob[:, 0]),
            video=EncoderOutput(TokenStates(vfirst.reshape(b, t * h1 * w1, c1),
                                            torch.ones(b, t * h1 * w1, dtype=torch.bool, device=dev),
                                            frame_index=vfi.contiguous(), patch_rc=vrc.contiguous(), grid=(h1, w1)),
                                tokens.mean(2), frame_times=batch.frame_times),
            cross=EncoderOutput(TokenStates(cfirst, cmask, char_spans=cspans, frame_index=cfi.contiguous()),
                                last[:, lg:].view(b, t, x, -1).mean(2), frame_times=batch.frame_times))
        if with_losses:
            tv = l2norm(self.text_global_proj(glob[:, 0]))
            vv = l2norm(self.video_global_proj(tokens.mean((1, 2))))
            logits = vv @ tv.t() / TEMPERATURE
            target = torch.arange(b, device=dev)
            out.losses["ct_global"] = F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)
        return out


# ---------------------------------------------------------------------------------------------------------
# checkpoint layout


def to_host_state(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Official (or own) state -> host names: ``module.`` and buffers removed, Video Swin MLP renamed, pre-training
    heads dropped and returned."""
    out, dropped = split_official_state(state, PRETRAIN_ONLY, (*BUFFERS_NOT_LOADED, "relative_position_index"))
    return swin_from_official(out), dropped


def infer_config(state: dict[str, Tensor], named: dict[str, Any]) -> dict[str, Any]:
    """Sizes read off a host-named LF-VILA state dict (stage count, depths, widths, heads, windows, BERT)."""
    try:
        words = state["text_encoder.bert.embeddings.word_embeddings.weight"]
        inter = state["text_encoder.bert.encoder.layer.0.intermediate.dense.weight"]
        patch = state["video_encoder.patch_embed.proj.weight"]
    except KeyError as err:
        raise CheckpointError(f"not an LF-VILA checkpoint: no {err.args[0]}") from err
    d = words.shape[1]
    n = count_indexed(state, "video_encoder.layers.")
    depths = tuple(count_indexed(state, f"video_encoder.layers.{i}.blocks.") for i in range(n))
    tables = [state[f"video_encoder.layers.{i}.blocks.0.attn.relative_position_bias_table"] for i in range(n)]
    widths = [int(state[f"video_encoder.layers.{i}.blocks.0.norm1.weight"].shape[0]) for i in range(n)]
    embed = int(patch.shape[0])
    windows = tuple(named["swin"]["windows"])  # not recoverable from the bias tables alone; a misfit fails to load
    merged = tuple(i for i in range(n) if f"video_encoder.layers.{i}.downsample.reduction.weight" in state)
    swin = dict(patch=tuple(patch.shape[2:]), embed_dim=embed, depths=depths,
                heads=tuple(int(tb.shape[1]) for tb in tables),
                stages=tuple((w // embed).bit_length() - 1 for w in widths), downsample=merged,
                windows=windows, local_window=named["swin"]["local_window"])
    heads = heads_for_width(d)
    cfg = bert_config(dict(hidden_size=d, num_hidden_layers=count_indexed(state, "text_encoder.bert.encoder.layer."),
                           num_attention_heads=heads, intermediate_size=inter.shape[0],
                           max_position_embeddings=state["text_encoder.bert.embeddings.position_embeddings.weight"]
                           .shape[0]), vocab_size=words.shape[0])
    out = dict(config=cfg, swin=swin)
    if "text_encoder.classifier.weight" in state:
        out["num_labels"] = int(state["text_encoder.classifier.weight"].shape[0])
    if "video_token_pos.s_pos_embed" in state:
        out["patches"] = int(state["video_token_pos.s_pos_embed"].shape[2])
        out["frames"] = int(state["video_token_pos.t_pos_embed"].shape[1])
    return out


def build_lfvila(spec: HostSpec, tag: WeightTag | None, checkpoint: Path | None, *, tokenizer: Any = None,
                 size: str = "large", num_frames: int | None = None, num_labels: int | None = None,
                 bert_heads: int | None = None, strict: bool = True) -> LFVILAHost:
    """Factory for ``create_host("lfvila", checkpoint, **options)``.

    Args:
        tokenizer: fast BERT uncased tokenizer (object, directory or ``tokenizer.json``); defaults to the
            checkpoint's directory when it holds one.
        size: ``large`` (official) or ``tiny`` (CPU smoke runs); sets the stage split and input size; the layer
            sizes come from the checkpoint when one is given.
        num_frames: host frames (default: the 32 temporal positions).
        num_labels: classifier outputs when the checkpoint has none (default 1: multiple choice).
        bert_heads: attention heads when the width is not a multiple of 64.
        strict: refuse unexpected, misshapen or missing keys (a stage-1 / pre-trained file may lack the classifier,
            ``video_token_pos`` or the global projections).
    """
    if size not in LFVILA_SIZES:
        raise ValueError(f"lfvila size must be one of {sorted(LFVILA_SIZES)}, got {size!r}")
    named = LFVILA_SIZES[size]
    if tokenizer is None and checkpoint is not None:
        folder = checkpoint if checkpoint.is_dir() else checkpoint.parent
        tokenizer = folder if any((folder / f).exists() for f in ("tokenizer.json", "vocab.txt")) else None
    tok = load_tokenizer(tokenizer, "BERT uncased tokenizer for lfvila", "HF hub google-bert/bert-large-uncased "
                         "(tokenizer.json, vocab.txt); pass host.options.tokenizer=DIR")
    keep = dict(num_local=named["num_local"], num_stage1=named["num_stage1"], frames=named["frames"],
                patches=named["patches"], height=named["height"], width=named["width"])
    state, dropped = None, []
    if checkpoint is not None:
        path = weight_file_in(checkpoint, ("*.bin", "*.pt", "*.safetensors"),
                              "no *.bin / *.pt / *.safetensors LF-VILA checkpoint in the directory")
        state, dropped = to_host_state(load_state_dict(path, what="LF-VILA checkpoint", source=SPEC.tags[""].source))
        cfg = {**keep, **infer_config(state, named)}
        if bert_heads:
            cfg["config"].num_attention_heads = bert_heads
    else:
        cfg = {**keep, "config": bert_config(named["bert"], vocab_size=len(tok)), "swin": dict(named["swin"])}
    if num_labels is not None and "num_labels" not in cfg:
        cfg["num_labels"] = num_labels
    cfg["config"]._attn_implementation = cfg["config"]._attn_implementation or "eager"
    host = LFVILAHost(spec, cfg.pop("config"), tok, num_frames=num_frames, **cfg)
    if state is not None:
        own = host.state_dict()
        bad = [k for k in state if k in own and state[k].shape != own[k].shape]
        missing, unexpected = host.load_state_dict({k: v for k, v in state.items() if k not in bad}, strict=False)
        missing = [k for k in missing if not k.endswith(("relative_position_index", "position_ids"))]
        hard = [k for k in missing if not k.startswith(OPTIONAL)]
        if strict and (bad or hard or unexpected):
            raise CheckpointError(f"{checkpoint}: does not match lfvila: missing {hard[:5]}, unexpected "
                                  f"{list(unexpected)[:5]}, shape mismatch {bad[:5]}")
        host.load_report = {"missing": missing, "unexpected": list(unexpected), "dropped": dropped}
    return host
