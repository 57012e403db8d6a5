"""All-in-one (Wang et al., CVPR 2023; github.com/showlab/all-in-one @ae0e288), native, official layout.

Architecture (``AllInOne/modules/allinone_module.py``: ``AllinoneTransformerSS.infer``; Table 10: only C):

* ``text_embeddings``: a ``transformers`` ``BertEmbeddings`` (vocabulary 30522, ``max_text_len`` 40 positions)
  plus ``token_type_embeddings`` (row 0 text, row 1 video).
* ``transformer``: one ViLT-style ViT-B/16 (``base_vision_transformer.VisionTransformer``, timm names:
  ``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``temporal_embed``, ``blocks.N.{norm1,attn.qkv,attn.proj,
  norm2,mlp.fc1,mlp.fc2}``, ``norm``; LayerNorm eps 1e-6) shared by text and video. Each frame is a sequence
  [text tokens ; frame ``[CLS]`` ; patches] (the text is repeated per frame). ``visual_embed`` adds the spatial
  positions and a temporal embedding per frame (not on the ``[CLS]``; for another frame count than the
  checkpoint's, the official ``_inflate_positional_embeds`` rule: first rows, or zeros after them) and, as ViLT,
  takes the patches in a random order drawn with ``torch.multinomial`` (``max_image_len=-1``): the official code
  does so in training and test.
  This host reproduces it draw for draw (same calls on the same generator) in training; in evaluation it keeps
  raster order by default (``patch_shuffle="train"``): training saw every order equally often, so raster order is
  one draw of the same distribution, and evaluation stays deterministic. ``patch_shuffle="always"`` is the official
  behaviour (the parity test uses it), ``"never"`` raster order throughout.
* Temporal token rolling (``temporal_roll.py``, ``v=0``) before every block: of each frame's visual tokens, the
  ``[CLS]`` stays, tokens ``1..l/8`` take the previous frame's, the last ``l/8`` the next frame's (cyclic).
* After ``transformer.norm`` the outputs are averaged over frames; ``pooler`` (dense + tanh) on the text ``[CLS]``
  gives ``cls_feats``.
* Heads: ``itm_score.fc`` (2-way ITM), ``rank_output`` (retrieval / multiple choice, initialised from ITM's
  "match" row as the official downstream code does), ``vqa_classifier`` (open-ended QA, ``Dropout(0.5), Linear(d,
  d/2), LayerNorm, GELU, Linear``), ``txt_proj`` / ``vid_proj`` (``ind_itc`` single-modality embeddings).

Capabilities and scoring rules:

* multiple choice (official ``compute_multiple_choice``): ``rank_output(cls_feats)`` of each (video, option) pair;
* classification / open-ended QA (official ``compute_openend_vqa``): ``encode_joint`` = ``cls_feats`` of (video,
  question), head ``vqa_classifier``;
* retrieval: the official test ranks every (video, text) pair with ``rank_output`` (:meth:`score_pairs`); the
  harness's retrieval evaluation needs embeddings, so :meth:`encode_text` / :meth:`encode_video` are the official
  ``ind_itc`` single-modality passes (``input_text_only`` / ``input_image_only``: no rolling, ``txt_proj`` /
  ``vid_proj`` of position 0 when the checkpoint has them, else the raw state: a **non-official** fallback);
* captioning (Table 2; not official, the code has no decoder): :class:`hosts.bert.CaptionDecoder` over the fused
  output of (video, empty text ``[CLS] [SEP]``), trained in fine-tuning (``docs/hosts-mcq-allinone.md``).

Finsta reads (sec 5.2) only the cross encoder (Table 10): first layer = ``transformer.blocks[0]`` output on the
joint sequences, the text positions averaged over frames, the visual tokens per frame (patch positions follow the
drawn order); pooled per frame = ``pooler`` of each frame's text ``[CLS]`` after ``transformer.norm`` (before the
frame average). Own loss ``vla``: the official ``compute_irtr`` ranking loss with in-batch false texts
(``rank_output`` scores of all B x B pairs, cross-entropy on the matched text).

Weights: ``all-in-one-base.ckpt`` (Google Drive, README), a PyTorch Lightning checkpoint (``state_dict`` +
pickled hyper-parameters), read without executing pickled code, or converted once:
``python -m hosts.allinone convert all-in-one-base.ckpt all-in-one-base.safetensors``. Pre-training heads
(``mlm_score``, ``mpp_score``, ``vcop_classifier``, ...) are dropped on load.

Shapes: ``B`` batch, ``T`` frames, ``n`` patches per frame, ``L`` text tokens, ``d`` width.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertEmbeddings

from hosts.base import EncoderOutput, Host, HostBatch, HostOutputs, Preprocess, TokenStates
from hosts.bert import CaptionDecoder, QAClassifier
from hosts.bert.core import split_official_state
from hosts.bert.decoder import DecoderCaptioning
from hosts.bert.heads import option_texts, pad_option_scores
from hosts.bert.sizes import count_indexed, heads_for_width
from hosts.checkpoints import weight_file_in
from hosts.errors import CheckpointError
from hosts.io import convert_main, save_state_dict
from hosts.mcq import Mlp, PatchEmbed, merge_heads, read_pickled_checkpoint, split_heads, state_from_checkpoint
from hosts.pooling import l2norm
from hosts.spec import HostSpec, WeightTag, register_host
from hosts.text import load_tokenizer, tokenize_with_spans

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # transforms/videoaug.py (a100)
VIT_EPS = 1e-6
ROLL_DIV = 8  # TemporalRoll(n_div=8)
SHUFFLE_MODES = ("train", "always", "never")
PRETRAIN_ONLY = ("mlm_score.", "mpp_score.", "vcop_classifier.", "nlvr2_classifier.", "mc_vqa_classifier.",
                 "rank_output_2.", "transformer.mask_token", "transformer.head.")
OPTIONAL = ("itm_score.", "rank_output.", "caption_decoder.")  # may be absent from an official file

ALLINONE_SIZES: dict[str, dict[str, Any]] = {
    "base": dict(hidden=768, depth=12, heads=12, mlp_hidden=3072, patch_size=16, resolution=224, num_frames=3,
                 max_text_len=40, shared_dim=512),
    "tiny": dict(hidden=32, depth=2, heads=2, mlp_hidden=128, patch_size=16, resolution=64, num_frames=3,
                 max_text_len=40, shared_dim=16),
}

SPEC = register_host(HostSpec(
    name="allinone", has_text=False, has_video=False, has_cross=True,
    capabilities=frozenset({"retrieval", "classification", "multiple_choice", "generation"}),
    factory="hosts.allinone:build_allinone",
    tags={"": WeightTag("", "all-in-one-base.ckpt", "All-in-one-B pre-trained (PyTorch Lightning checkpoint)",
                        "Google Drive link in the showlab/all-in-one README; BERT tokenizer: HF hub "
                        "google-bert/bert-base-uncased (pass host.options.tokenizer=DIR)")},
    params="110M", pretrain_data="3.72M", paper="Wang et al., All in One, CVPR 2023",
    code="https://github.com/showlab/all-in-one", license="none stated (no LICENSE file)", status="implemented",
    display="All-in-one", order=90, aliases=("all-in-one",),
    parity="tests/hosts/test_hosts_allinone.py::test_parity_with_official_code",
    notes="Native (hosts/allinone.py): BertEmbeddings + one shared ViT (timm names) over [text; frame] with temporal "
          "token rolling, in the official layout; parity-tested against the official AllinoneTransformerSS. "
          "Captioning uses a non-official decoder head; retrieval embeddings are the ind_itc single-modality passes "
          "(official retrieval is rank_output pair scoring: score_pairs)."))


# ---------------------------------------------------------------------------------------------------------
# the shared ViT


class Attention(nn.Module):
    """timm ``Attention`` with a key mask (``attn.qkv``, ``attn.proj``)."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``[N, L, d]`` and a ``[N, L]`` key mask (True = attend) -> ``[N, L, d]``."""
        q, k, v = (split_heads(t, self.heads) for t in self.qkv(x).chunk(3, -1))
        bias = None if mask is None else mask.bool()[:, None, None, :]
        return self.proj(merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=bias)))


class Block(nn.Module):
    """timm ViT ``Block``: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, heads: int, mlp_hidden: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=VIT_EPS)
        self.attn = Attention(dim, heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=VIT_EPS)
        self.mlp = Mlp(dim, mlp_hidden)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """``transformer``: patch embedding with spatial + temporal positions (``visual_embed``), blocks, ``norm``."""

    def __init__(self, dim: int, depth: int, heads: int, mlp_hidden: int, patch_size: int, resolution: int,
                 num_frames: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.side = resolution // patch_size
        self.patch_embed = PatchEmbed(dim, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.side ** 2, dim))
        self.temporal_embed = nn.Parameter(torch.zeros(1, num_frames, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_hidden, qkv_bias) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=VIT_EPS)

    @property
    def num_frames(self) -> int:
        return self.temporal_embed.shape[1]

    def frame_embed(self, frames: int) -> Tensor:
        """``[T, d]`` temporal embeddings for ``T`` frames. Another count than the checkpoint's follows the official
        ``_inflate_positional_embeds`` (``load_temporal_fix='zeros'``): the first ``T`` rows, or the rows then zeros."""
        emb = self.temporal_embed[0]
        if frames <= emb.shape[0]:
            return emb[:frames]
        return torch.cat([emb, emb.new_zeros(frames - emb.shape[0], emb.shape[1])])

    def visual_embed(self, video: Tensor, shuffle: bool = True) -> tuple[Tensor, Tensor, tuple[int, int]]:
        """Official ``visual_embed`` for full frames: ``[B, T, 3, H, W]`` -> (``[B*T, 1 + n, d]`` tokens,
        ``[B*T, n]`` raster index of each token's patch, grid).

        ``shuffle``: draw each frame's patch order with ``torch.multinomial`` as the official code does
        (ViLT's sampling with ``max_image_len=-1``); False keeps raster order."""
        b, t = video.shape[:2]
        x, grid = self.patch_embed(video)  # [B, T*n, d]
        n = grid[0] * grid[1]
        if grid != (self.side, self.side):
            raise ValueError(f"All-in-one frames give a {grid[0]}x{grid[1]} patch grid, its positions are "
                             f"{self.side}x{self.side}: feed frames at the host's resolution (host.preprocess)")
        x = x.reshape(b * t, n, -1)
        if shuffle:
            order = torch.stack([torch.multinomial(torch.ones(n), n) for _ in range(b * t)]).to(x.device)
        else:
            order = torch.arange(n, device=x.device).expand(b * t, n)
        pos = self.pos_embed[:, 1:].expand(b * t, -1, -1)
        gather = order[..., None].expand(-1, -1, x.shape[-1])
        x, pos = x.gather(1, gather), pos.gather(1, gather)
        pos = pos + self.frame_embed(t)[:, None].repeat(b, 1, 1)  # frame t of every clip: temporal_embed[t]
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(b * t, -1, -1)
        return torch.cat([cls, x + pos], 1), order, grid


def temporal_roll(x: Tensor, frames: int) -> Tensor:
    """Official ``TemporalRoll`` (``v=0``, ``n_div=8``) on the visual tokens ``[B*T, l, d]`` (``[CLS]`` first): tokens
    ``1..l//8`` take the previous frame's state, the last ``l//8`` the next frame's (cyclic over ``T``). As
    officially, ``l < 8`` (fold 0) rolls every token, ``[CLS]`` included, by one frame back."""
    nt, length, d = x.shape
    v = x.view(nt // frames, frames, length, d)
    fold = length // ROLL_DIV
    if fold == 0:
        return torch.roll(v, -1, 1).view(nt, length, d)
    out = torch.cat([v[:, :, :1], torch.roll(v[:, :, 1:fold + 1], 1, 1), v[:, :, fold + 1:length - fold],
                     torch.roll(v[:, :, length - fold:], -1, 1)], 2)
    return out.view(nt, length, d)


class Pooler(nn.Module):
    """``pooler``: dense + tanh on position 0."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dense = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.dense(x[..., 0, :]))


class ITMHead(nn.Module):
    """``itm_score``: ``fc`` Linear(d, 2) (no-match, match)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, 2)


class ClassifierHead(nn.Module):
    """A classifier on ``cls_feats`` ``[B, d]`` that also accepts ``[B, P]`` projected video embeddings (``P != d``)
    through ``from_embedding`` (Linear ``P -> d``; not official: All-in-one has no video classification head)."""

    def __init__(self, head: nn.Module, embed_dim: int, width: int) -> None:
        super().__init__()
        self.head = head
        self.from_embedding = nn.Linear(embed_dim, width)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] == self.from_embedding.in_features:
            x = self.from_embedding(x)
        return self.head(x)


# ---------------------------------------------------------------------------------------------------------
# the host


class AllInOneHost(DecoderCaptioning, Host):
    """All-in-one implementing the host contract (retrieval, classification, multiple choice, generation)."""

    def __init__(self, spec: HostSpec, text_config: BertConfig, tokenizer: Any, *, depth: int, heads: int,
                 mlp_hidden: int, patch_size: int, resolution: int, num_frames: int, shared_dim: int | None = None,
                 qa_labels: int | None = None, qkv_bias: bool = True, decoder_layers: int = 3,
                 patch_shuffle: str = "train") -> None:
        super().__init__(spec, Preprocess(num_frames=num_frames, resolution=resolution, mean=IMAGENET_MEAN,
                                          std=IMAGENET_STD))
        d = text_config.hidden_size
        if patch_shuffle not in SHUFFLE_MODES:
            raise ValueError(f"patch_shuffle must be one of {SHUFFLE_MODES}, got {patch_shuffle!r}")
        self.tokenizer, self.patch_shuffle = tokenizer, patch_shuffle
        self.max_words = text_config.max_position_embeddings
        self.text_embeddings = BertEmbeddings(text_config)
        self.token_type_embeddings = nn.Embedding(2, d)
        self.transformer = VisionTransformer(d, depth, heads, mlp_hidden, patch_size, resolution, num_frames, qkv_bias)
        self.pooler = Pooler(d)
        self.itm_score = ITMHead(d)
        self.rank_output = nn.Linear(d, 1)
        self.init_rank_output()
        self.vqa_classifier = QAClassifier(d, qa_labels, inner=d // 2, dropout=0.5) if qa_labels else None
        self.txt_proj = nn.Linear(d, shared_dim) if shared_dim else None
        self.vid_proj = nn.Linear(d, shared_dim) if shared_dim else None
        self.caption_decoder = CaptionDecoder(text_config, tokenizer.cls_token_id, tokenizer.sep_token_id,
                                              tokenizer.pad_token_id, num_layers=decoder_layers)
        self.caption_decoder.init_embeddings(self.text_embeddings)

    def init_rank_output(self) -> None:
        """Official downstream init: ``rank_output`` = the "match" row of ``itm_score.fc``."""
        with torch.no_grad():
            self.rank_output.weight.copy_(self.itm_score.fc.weight[1:])
            self.rank_output.bias.copy_(self.itm_score.fc.bias[1:])

    @property
    def width(self) -> int:
        return self.token_type_embeddings.embedding_dim

    @property
    def embed_dim(self) -> int:
        return self.txt_proj.out_features if self.txt_proj is not None else self.width

    def encoder_widths(self) -> dict[str, int]:
        return {"cross": self.width}

    # -- passes ------------------------------------------------------------------------------------
    def tokenize(self, texts: list[str]):
        return tokenize_with_spans(self.tokenizer, texts, max_length=self.max_words).to(self.rank_output.weight.device)

    def embed_text(self, ids: Tensor) -> Tensor:
        """``text_embeddings`` + text token type: ``[B, L]`` -> ``[B, L, d]``."""
        return self.text_embeddings(input_ids=ids) + self.token_type_embeddings(torch.zeros_like(ids))

    def embed_video(self, video: Tensor) -> tuple[Tensor, Tensor, tuple[int, int]]:
        """``visual_embed`` + video token type: -> (``[B*T, 1 + n, d]``, patch order ``[B*T, n]``, grid)."""
        shuffle = self.patch_shuffle == "always" or (self.patch_shuffle == "train" and self.training)
        img, order, grid = self.transformer.visual_embed(video, shuffle=shuffle)
        return img + self.token_type_embeddings(torch.ones(img.shape[:2], dtype=torch.long, device=img.device)), \
            order, grid

    def fuse(self, img: Tensor, frames: int, txt: Tensor, txt_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Official ``infer`` on (video, text): ``[B*T, 1+n, d]`` visual and ``[B, L, d]`` text embeddings -> (per
        frame ``[B*T, L + 1 + n, d]`` after ``transformer.norm``, output of block 0 ``[B*T, L + 1 + n, d]``)."""
        lt = txt.shape[1]
        x = torch.cat([txt.repeat_interleave(frames, 0), img], 1)
        mask = torch.cat([txt_mask.bool().repeat_interleave(frames, 0),
                          torch.ones(img.shape[:2], dtype=torch.bool, device=img.device)], 1)
        first = None
        for blk in self.transformer.blocks:
            x = torch.cat([x[:, :lt], temporal_roll(x[:, lt:], frames)], 1)
            x = blk(x, mask)
            first = x if first is None else first
        return self.transformer.norm(x), first

    def single(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``input_text_only`` / ``input_image_only`` pass (no rolling): blocks and ``norm``."""
        for blk in self.transformer.blocks:
            x = blk(x, mask)
        return self.transformer.norm(x)

    def cls_feats(self, fused: Tensor, frames: int) -> Tensor:
        """``pooler`` of the frame average: ``[B*T, L', d]`` -> ``[B, d]``."""
        return self.pooler(fused.view(-1, frames, *fused.shape[1:]).mean(1))

    def joint(self, video: Tensor, texts: list[str]) -> Tensor:
        img, _, _ = self.embed_video(video)
        tok = self.tokenize(texts)
        return self.cls_feats(self.fuse(img, video.shape[1], self.embed_text(tok.input_ids), tok.attention_mask)[0],
                              video.shape[1])

    # -- capabilities ------------------------------------------------------------------------------
    def score_pairs(self, video: Tensor, texts: list[str]) -> Tensor:
        """Official retrieval scores ``[B_video, B_text]``: ``rank_output(cls_feats)`` of every pair (the visual
        embedding is drawn once per video, as ``compute_irtr_recall``)."""
        img, _, _ = self.embed_video(video)
        t = video.shape[1]
        tok = self.tokenize(texts)
        txt = self.embed_text(tok.input_ids)
        bv, bt = video.shape[0], len(texts)
        img = img.view(bv, t, *img.shape[1:]).repeat_interleave(bt, 0).flatten(0, 1)
        fused = self.fuse(img, t, txt.repeat(bv, 1, 1), tok.attention_mask.repeat(bv, 1))[0]
        return self.rank_output(self.cls_feats(fused, t)).view(bv, bt)

    def text_embedding(self, texts: list[str]) -> Tensor:
        """Official ``ind_itc`` text side: ``txt_proj`` of position 0 of the text-only pass (raw without it)."""
        tok = self.tokenize(texts)
        x = self.single(self.embed_text(tok.input_ids), tok.attention_mask)[:, 0]
        return self.txt_proj(x) if self.txt_proj is not None else x

    def video_embedding(self, video: Tensor) -> Tensor:
        """Official ``ind_itc`` video side: ``vid_proj`` of the frame average of the frame ``[CLS]`` of the
        video-only pass (raw without it)."""
        img, _, _ = self.embed_video(video)
        x = self.single(img).view(video.shape[0], video.shape[1], *img.shape[1:]).mean(1)[:, 0]
        return self.vid_proj(x) if self.vid_proj is not None else x

    def encode_text(self, texts: list[str]) -> Tensor:
        return l2norm(self.text_embedding(texts))

    def encode_video(self, video: Tensor, frame_times: Tensor | None = None) -> Tensor:
        return l2norm(self.video_embedding(video))

    def encode_joint(self, video: Tensor, texts: list[str], frame_times: Tensor | None = None) -> Tensor:
        """``cls_feats`` of (video, question) ``[B, d]`` (official open-ended QA input)."""
        return self.joint(video, texts)

    def task_head(self, num_outputs: int) -> nn.Module:
        """``vqa_classifier`` when its answer count matches, else a fresh one of the official shape, on ``cls_feats``
        (``encode_joint``). When ``txt_proj`` / ``vid_proj`` exist, ``encode_video`` (action recognition) is narrower:
        the head then maps such inputs to the width first (:class:`ClassifierHead`)."""
        dev = self.rank_output.weight.device
        if self.vqa_classifier is not None and self.vqa_classifier.num_outputs == num_outputs:
            head = self.vqa_classifier
        else:
            head = QAClassifier(self.width, num_outputs, inner=self.width // 2, dropout=0.5).to(dev)
        if self.embed_dim == self.width:
            return head
        return ClassifierHead(head, self.embed_dim, self.width).to(dev)

    def score_options(self, video: Tensor, questions: list[str], options: list[list[str]],
                      frame_times: Tensor | None = None) -> Tensor:
        """Official ``compute_multiple_choice``: ``rank_output(cls_feats)`` of (video, "question option") (ragged:
        ``-inf``)."""
        rows, texts = option_texts(questions, options)
        s = self.rank_output(self.joint(video[rows], texts)).squeeze(-1)
        return pad_option_scores(s, options)

    def _caption_memory(self, video: Tensor, prompts: list[str] | None) -> tuple[Tensor, Tensor]:
        """Frame-averaged fused states of (video, prompt or empty text) and their mask (decoder memory)."""
        texts = prompts if prompts is not None else [""] * video.shape[0]
        img, _, _ = self.embed_video(video)
        tok = self.tokenize(texts)
        t = video.shape[1]
        fused = self.fuse(img, t, self.embed_text(tok.input_ids), tok.attention_mask)[0]
        memory = fused.view(-1, t, *fused.shape[1:]).mean(1)
        mask = torch.cat([tok.attention_mask, torch.ones(memory.shape[0], img.shape[1], dtype=torch.bool,
                                                         device=memory.device)], 1)
        return memory, mask

    # -- Finsta ------------------------------------------------------------------------------------
    def posttrain_outputs(self, batch: HostBatch, with_losses: bool = True) -> HostOutputs:
        b, t = batch.video.shape[:2]
        dev = batch.video.device
        img, order, (gh, gw) = self.embed_video(batch.video)
        tok = self.tokenize(batch.texts)
        txt = self.embed_text(tok.input_ids)
        last, first = self.fuse(img, t, txt, tok.attention_mask)
        lt, lv = txt.shape[1], img.shape[1]
        first = first.view(b, t, lt + lv, -1)
        states = torch.cat([first[:, :, :lt].mean(1), first[:, :, lt:].reshape(b, t * lv, -1)], 1)
        mask = torch.cat([tok.attention_mask, torch.ones(b, t * lv, dtype=torch.bool, device=dev)], 1)
        spans = torch.cat([tok.char_spans, torch.full((b, t * lv, 2), -1, dtype=torch.long, device=dev)], 1)
        frame_index = torch.cat([torch.full((b, lt), -1, dtype=torch.long, device=dev),
                                 torch.arange(t, device=dev).repeat_interleave(lv).expand(b, -1)], 1)
        rc = torch.full((b * t, lv, 2), -1, dtype=torch.long, device=dev)
        rc[:, 1:, 0], rc[:, 1:, 1] = order // gw, order % gw
        patch_rc = torch.cat([torch.full((b, lt, 2), -1, dtype=torch.long, device=dev), rc.view(b, t * lv, 2)], 1)
        pooled = self.pooler(last.view(b, t, lt + lv, -1)[:, :, :1])  # per frame: pooler of the text [CLS]
        out = HostOutputs(cross=EncoderOutput(TokenStates(states, mask, char_spans=spans, frame_index=frame_index,
                                                          patch_rc=patch_rc, grid=(gh, gw)),
                                              pooled, frame_times=batch.frame_times))
        if with_losses:
            out.losses["vla"] = F.cross_entropy(self.score_pairs(batch.video, batch.texts),
                                                torch.arange(b, device=dev))
        return out


# ---------------------------------------------------------------------------------------------------------
# checkpoint layout


def to_host_state(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Official Lightning ``state_dict`` (or own) -> host names (the same names; ``position_ids`` /
    ``token_type_ids`` buffers removed; pre-training heads dropped and returned)."""
    return split_official_state(state, PRETRAIN_ONLY)


def infer_config(state: dict[str, Tensor]) -> dict[str, Any]:
    """Sizes read off a host-named All-in-one state dict (heads: width / 64, or width / 16 below 64)."""
    try:
        words = state["text_embeddings.word_embeddings.weight"]
        positions = state["text_embeddings.position_embeddings.weight"]
        patch = state["transformer.patch_embed.proj.weight"]
        pos = state["transformer.pos_embed"]
        temporal = state["transformer.temporal_embed"]
        fc1 = state["transformer.blocks.0.mlp.fc1.weight"]
    except KeyError as err:
        raise CheckpointError(f"not an All-in-one checkpoint: no {err.args[0]}") from err
    d = int(words.shape[1])
    text = BertConfig(vocab_size=int(words.shape[0]), hidden_size=d,
                      num_hidden_layers=count_indexed(state, "transformer.blocks."),
                      num_attention_heads=heads_for_width(d), intermediate_size=int(fc1.shape[0]),
                      max_position_embeddings=int(positions.shape[0]))
    p = int(patch.shape[-1])
    cfg: dict[str, Any] = dict(text_config=text, depth=count_indexed(state, "transformer.blocks."),
                               heads=heads_for_width(d),
                               mlp_hidden=int(fc1.shape[0]), patch_size=p,
                               resolution=int(round(math.sqrt(pos.shape[1] - 1))) * p,
                               num_frames=int(temporal.shape[1]),
                               qkv_bias="transformer.blocks.0.attn.qkv.bias" in state)
    if "txt_proj.weight" in state:
        cfg["shared_dim"] = int(state["txt_proj.weight"].shape[0])
    if "vqa_classifier.4.weight" in state:
        cfg["qa_labels"] = int(state["vqa_classifier.4.weight"].shape[0])
    if (n := count_indexed(state, "caption_decoder.lm.bert.encoder.layer.")) > 0:
        cfg["decoder_layers"] = n
    return cfg


def _checkpoint_file(path: Path) -> Path:
    return weight_file_in(path, ("*.safetensors", "*.ckpt"),
                          "no all-in-one-base.ckpt / *.ckpt / *.safetensors in the All-in-one checkpoint directory")


def read_allinone_state(path: Path) -> tuple[dict[str, Tensor], list[str]]:
    """Host-named tensors of an All-in-one checkpoint (Lightning ``.ckpt`` or converted) and the dropped keys."""
    path = _checkpoint_file(path)
    obj = read_pickled_checkpoint(path, "All-in-one checkpoint", SPEC.tags[""].source)
    return to_host_state(state_from_checkpoint(obj, path))


def convert_checkpoint(src: Path, dst: Path) -> dict[str, Tensor]:
    """One-off conversion of an official Lightning checkpoint to a safetensors file in host names (offline): the
    ``state_dict`` without pre-training heads, optimizer states or pickled hyper-parameters."""
    state, _ = read_allinone_state(src)
    infer_config(state)  # refuses a non-All-in-one file before writing
    save_state_dict(state, dst)
    return state


def load_allinone_state(host: AllInOneHost, state: dict[str, Tensor], path: Path | None, strict: bool = True
                        ) -> dict[str, list[str]]:
    """Load host-named tensors. Missing keys are allowed only for parts an official file may lack
    (``itm_score``, ``rank_output``: initialised from ``itm_score`` as officially; ``caption_decoder``: ours)."""
    own = host.state_dict()
    bad = [k for k in state if k in own and state[k].shape != own[k].shape]
    if bad and strict:
        raise CheckpointError(f"{path}: does not match allinone: shape mismatch {bad[:5]} "
                              f"({tuple(state[bad[0]].shape)} vs {tuple(own[bad[0]].shape)})")
    missing, unexpected = host.load_state_dict({k: v for k, v in state.items() if k not in bad}, strict=False)
    hard = [k for k in missing if not k.startswith(OPTIONAL)]
    if strict and (hard or unexpected):
        raise CheckpointError(f"{path}: does not match allinone: missing {hard[:5]}, unexpected {list(unexpected)[:5]}")
    if any(k.startswith("rank_output.") for k in missing):
        host.init_rank_output()
    if any(k.startswith("caption_decoder.") for k in missing):
        host.caption_decoder.init_embeddings(host.text_embeddings)
    return {"missing": list(missing), "unexpected": list(unexpected)}


def build_allinone(spec: HostSpec, tag: WeightTag | None, checkpoint: Path | None, *, tokenizer: Any = None,
                   size: str = "base", qa_labels: int | None = None, decoder_layers: int | None = None,
                   heads: int | None = None, patch_shuffle: str = "train", strict: bool = True) -> AllInOneHost:
    """Factory for ``create_host("allinone", checkpoint, **options)``.

    Args:
        tokenizer: fast BERT uncased tokenizer (object, directory or ``tokenizer.json``); defaults to the
            checkpoint's directory when it holds one.
        size: ``base`` (All-in-one-B) or ``tiny`` (CPU smoke runs); only without a checkpoint (else read off it).
        qa_labels: answers of a fresh ``vqa_classifier`` (read from open-ended QA checkpoints).
        decoder_layers: caption decoder depth (default 3, UniVL's).
        heads: attention heads when the width is not a multiple of 64.
        patch_shuffle: ``"train"`` (random patch order in training, raster in evaluation), ``"always"`` (official:
            random in both) or ``"never"``.
    """
    if size not in ALLINONE_SIZES:
        raise ValueError(f"allinone size must be one of {sorted(ALLINONE_SIZES)}, got {size!r}")
    if tokenizer is None and checkpoint is not None:
        folder = checkpoint if checkpoint.is_dir() else checkpoint.parent
        tokenizer = folder if any((folder / f).exists() for f in ("tokenizer.json", "vocab.txt")) else None
    tok = load_tokenizer(tokenizer, "BERT uncased tokenizer for allinone", "HF hub google-bert/bert-base-uncased "
                         "(tokenizer.json, vocab.txt); pass host.options.tokenizer=DIR")
    dropped: list[str] = []
    state = None
    if checkpoint is not None:
        state, dropped = read_allinone_state(checkpoint)
        cfg = infer_config(state)
    else:
        named = dict(ALLINONE_SIZES[size])
        d = named.pop("hidden")
        cfg = dict(named, text_config=BertConfig(vocab_size=len(tok), hidden_size=d, num_hidden_layers=named["depth"],
                                                 num_attention_heads=named["heads"],
                                                 intermediate_size=named["mlp_hidden"],
                                                 max_position_embeddings=named.pop("max_text_len")))
    if heads:
        cfg["heads"] = heads
        cfg["text_config"].num_attention_heads = heads
    for key, value in (("qa_labels", qa_labels), ("decoder_layers", decoder_layers)):
        if value is not None:
            cfg[key] = value
    host = AllInOneHost(spec, cfg.pop("text_config"), tok, patch_shuffle=patch_shuffle, **cfg)
    if state is not None:
        host.load_report = {**load_allinone_state(host, state, checkpoint, strict), "dropped": dropped}
    return host


def main(argv: list[str] | None = None) -> None:
    """``python -m hosts.allinone convert all-in-one-base.ckpt all-in-one-base.safetensors``."""
    convert_main("allinone", "All-in-one checkpoint tools",
                 "official Lightning .ckpt -> safetensors in host names (one-off, offline)", convert_checkpoint, argv)


if __name__ == "__main__":
    main()
