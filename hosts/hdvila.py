"""HD-VILA (Xue et al., CVPR 2022; github.com/microsoft/XPretrain ``hd-vila/`` @c37c904), native, official layout.

Architecture (``src/modeling/e2e_model.py``: ``HDVILA``; ``modeling_stage.py``; ``timesformer.py``):

* Hybrid video encoder, per clip of ``k`` consecutive frames (official ``num_frm`` 7): the middle frame at high
  resolution (the official loader upsamples it 4x, bicubic) through ``cnn`` (a ResNet-50, mmdetection layout =
  torchvision names), ``grid_encoder`` (1x1 conv 2048 -> d, max-pool 2, GELU) on its last stage and
  ``grid_encoder_low`` (1x1 conv 1024 -> d, GELU) on its third stage downsampled 4x; the ``k - 1`` neighbours at
  low resolution through ``cnn_low`` up to its third stage and ``grid_encoder_low``; ``timesformer``, a 4-layer
  divided space-time TimeSformer without ``[CLS]`` over the ``k`` grids, whose middle-frame output is fused with the
  high-resolution grid by ``grid_encoder_combine`` (1x1 conv 2d -> d, GELU).
* ``transformer.bert``: one BERT-large (24 layers): layers ``0 .. L/2 - 1`` are the text encoder (stage 1),
  layers ``L/2 .. L - 1`` the cross encoder (stage 2) over [text states ; visual embeddings of one clip's fused
  grid] (``visual_embeddings``: row / column positions, token type, LayerNorm); ``pooler1`` (text), ``pooler2``
  (cross, on the text ``[CLS]``).
* ``transformer.t_proj`` / ``v_proj``: retrieval projections of the text feature (masked mean of the stage-1
  output through ``pooler1``'s dense + tanh, ``bert_mean=1``) and of the video feature (mean of the fused grids
  over clips and space); NCE loss at temperature 0.08 (``NCEContrastiveLoss``, both directions summed).
* ``transformer.classifier`` (QA checkpoints): ``Linear(d, 2d), ReLU, Linear(2d, n)`` on ``pooler2``;
  per-clip logits aggregated by log-sum-exp (``score_agg_func: lse``).

Frames -> clips (a harness adaptation, documented in ``docs/hosts-vila.md``): the ``T`` host frames are cut into
``ceil(T / k)`` clips of ``k = min(7, T)`` consecutive frames (evenly spread, overlapping when ``k`` does not
divide ``T``); the official loader samples clips of 7 frames 4 apart at 6 fps instead.

Capabilities and rules: retrieval = the official dual encoder (stage 1); classification / open-ended QA =
``encode_joint`` (mean over clips of ``pooler2``) with the official classifier layout (the official code applies
the classifier per clip and log-sum-exps the logits; identical with one clip); multiple choice = the official
MSR-VTT MC rule (``run_msrvtt_mc.py``: retrieval similarity of the video with each "question option" text);
captioning = the harness caption decoder (:class:`hosts.bert.CaptionDecoder`, not official) over the cross
encoder's tokens of every clip.

Finsta reads (sec 5.2): text = ``encoder.layer[0]``; video = ``timesformer.blocks[0]`` (its tokens carry their
frame); cross = ``encoder.layer[L/2]``. Pooled: text = the stage-1 text feature (before ``t_proj``); video per clip
= the spatial mean of the fused grid; cross per clip = ``pooler2``. Per clip is the model's finest instance level;
the clip's time is its middle frame's.

Shapes: ``B`` batch, ``T`` frames, ``n`` clips, ``k`` frames per clip, ``h x w`` grid, ``L`` tokens, ``d`` width.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.resnet import Bottleneck
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertEmbeddings, BertEncoder, BertPooler

from hosts.base import EncoderOutput, Host, HostBatch, HostOutputs, Preprocess, TokenStates
from hosts.bert import CaptionDecoder, bert_config, run_layers
from hosts.bert.core import BUFFERS_NOT_LOADED, split_official_state
from hosts.bert.decoder import DECODER_LAYERS, DecoderCaptioning
from hosts.bert.heads import option_similarities, option_texts, symmetric_nce
from hosts.bert.sizes import count_indexed, heads_for_width
from hosts.checkpoints import weight_file_in
from hosts.errors import CheckpointError
from hosts.io import load_state_dict
from hosts.pooling import l2norm
from hosts.spec import HostSpec, WeightTag, register_host
from hosts.text import load_tokenizer, tokenize_with_spans

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # 123.675/255 ... 58.395/255 ...
CLIP_FRAMES = 7  # num_frm: frames per clip
MIDDLE_SCALE = 4  # the loader's middle frame is 4x the neighbours' size (cv2 INTER_CUBIC)
TIMESFORMER_GRID = (10, 16)  # TimeSformer(num_frames=7, H=10, W=16) in e2e_model.py; positions are interpolated
NCE_TEMPERATURE = 0.08  # loss_config.temp in the retrieval configs
MAX_GRID_POS = 100  # max_grid_{row,col}_position_embeddings in base_model_large.json
PRETRAIN_ONLY = ("transformer.cls.",)
OPTIONAL = ("transformer.classifier.", "caption_decoder.")  # absent from a pre-trained file

HDVILA_SIZES: dict[str, dict[str, Any]] = {
    "large": dict(bert="large", resnet_base=64, timesformer_depth=4, timesformer_heads=16, resolution=160,
                  num_frames=2 * CLIP_FRAMES, max_words=50),
    "tiny": dict(bert=dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64),
                 resnet_base=2, timesformer_depth=1, timesformer_heads=2, resolution=32, num_frames=CLIP_FRAMES,
                 max_words=16),
}

SPEC = register_host(HostSpec(
    name="hdvila", has_text=True, has_video=True, has_cross=True,
    capabilities=frozenset({"retrieval", "classification", "multiple_choice", "generation"}),
    factory="hosts.hdvila:build_hdvila",
    tags={"": WeightTag("", "hdvila_stage2.pt", "HD-VILA stage-2 pre-trained (plain state dict)",
                        "pretrained.zip via microsoft/XPretrain hd-vila/scripts/download_data.sh (the SAS link "
                        "expired 2024-12-31; the maintainers renew links on request, repo issue #46)")},
    params="310M", pretrain_data="136M",
    paper="Xue et al., Advancing High-Resolution Video-Language Representation with Large-Scale Video "
          "Transcriptions (HD-VILA), CVPR 2022",
    code="https://github.com/microsoft/XPretrain/tree/main/hd-vila",
    license="Microsoft Research License (non-commercial)", status="implemented", display="HDVILA", order=60,
    parity="tests/hosts/test_hosts_hdvila.py::test_parity_with_official_code",
    notes="Native (hosts/hdvila.py): BERT-large split 12 text + 12 cross layers (transformers), two ResNet-50 on "
          "torchvision Bottleneck blocks, divided space-time TimeSformer; official key layout; parity-tested "
          "against the official HDVILA at a tiny size. Captioning uses the harness caption decoder (not official). "
          "Size: the paper says 310M; the released large configuration computes to ~460M."))


# ---------------------------------------------------------------------------------------------------------
# video encoder


class ResNet(nn.Module):
    """mmdetection's ResNet (``style='pytorch'``: stride on the 3x3 conv; ``norm_eval``: BatchNorm always in eval
    mode) with torchvision ``Bottleneck`` blocks; keys ``conv1``, ``bn1``, ``layerK.M.{conv,bn}{1,2,3}``,
    ``layerK.0.downsample.{0,1}`` as in the official checkpoint. ``base_channels`` 64 and ``blocks`` (3, 4, 6, 3)
    are ResNet-50; stage ``i`` outputs ``4 * base * 2^i`` channels at stride ``4 * 2^i``."""

    def __init__(self, blocks: tuple[int, ...] = (3, 4, 6, 3), base_channels: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, base_channels, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = base_channels
        self.channels: list[int] = []
        for i, n in enumerate(blocks):
            planes = base_channels * 2 ** i
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or inplanes != planes * Bottleneck.expansion:
                down = nn.Sequential(nn.Conv2d(inplanes, planes * Bottleneck.expansion, 1, stride, bias=False),
                                     nn.BatchNorm2d(planes * Bottleneck.expansion))
            layer = [Bottleneck(inplanes, planes, stride, down)]
            inplanes = planes * Bottleneck.expansion
            layer += [Bottleneck(inplanes, planes) for _ in range(1, n)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))
            self.channels.append(inplanes)

    def forward(self, x: Tensor, stages: int = 4) -> list[Tensor]:
        """``[N, 3, H, W]`` -> the outputs of the first ``stages`` stages."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = []
        for i in range(stages):
            x = getattr(self, f"layer{i + 1}")(x)
            outs.append(x)
        return outs

    def train(self, mode: bool = True) -> ResNet:
        super().train(mode)
        for m in self.modules():  # norm_eval=True (mmdetection default, used by HD-VILA)
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self


class _Attention(nn.Module):
    """TimeSformer attention (``qkv`` with bias, ``proj``)."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x: Tensor) -> Tensor:
        n, L, d = x.shape
        q, k, v = self.qkv(x).view(n, L, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, L, d))


class _Mlp(nn.Module):
    def __init__(self, d: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DividedBlock(nn.Module):
    """TimeSformer divided space-time block (temporal attention + ``temporal_fc``, then spatial attention, MLP);
    pre-norm LayerNorms with eps 1e-6. Tokens ``[N, h*w*k, d]`` in (row, col, frame) order."""

    def __init__(self, d: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        ln = dict(eps=1e-6)
        self.norm1, self.attn = nn.LayerNorm(d, **ln), _Attention(d, heads)
        self.temporal_norm1, self.temporal_attn = nn.LayerNorm(d, **ln), _Attention(d, heads)
        self.temporal_fc = nn.Linear(d, d)
        self.norm2, self.mlp = nn.LayerNorm(d, **ln), _Mlp(d, int(d * mlp_ratio))

    def forward(self, x: Tensor, k: int, h: int, w: int) -> Tensor:
        n, _, d = x.shape
        xt = x.reshape(n * h * w, k, d)
        xt = x + self.temporal_fc(self.temporal_attn(self.temporal_norm1(xt)).reshape(n, h * w * k, d))
        xs = xt.reshape(n, h * w, k, d).transpose(1, 2).reshape(n * k, h * w, d)
        res = self.attn(self.norm1(xs)).reshape(n, k, h * w, d).transpose(1, 2).reshape(n, h * w * k, d)
        x = xt + res
        return x + self.mlp(self.norm2(x))


class TimeSformer(nn.Module):
    """HD-VILA's TimeSformer over grids (no patch embedding, no ``[CLS]``): spatial positions ``pos_embed``
    ``[1, H*W, d]`` (bilinearly resized to the input grid) and ``time_embed`` ``[1, F, d]`` (linearly resized to the
    clip length), divided space-time blocks. ``norm`` exists in the checkpoint but the official forward never
    applies it."""

    def __init__(self, d: int, depth: int, heads: int, grid: tuple[int, int] = TIMESFORMER_GRID,
                 num_frames: int = CLIP_FRAMES) -> None:
        super().__init__()
        self.grid = grid
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, grid[0] * grid[1], d))
        self.time_embed = nn.Parameter(torch.zeros(1, num_frames, d))
        self.blocks = nn.ModuleList([DividedBlock(d, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(d, eps=1e-6)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``[N, k, d, h, w]`` -> (``[N, k, d, h, w]``, first block output ``[N, h*w*k, d]``)."""
        n, k, d, h, w = x.shape
        x = x.reshape(n * k, d, h * w).transpose(1, 2)
        pos = self.pos_embed
        if (h, w) != self.grid:
            pos = F.interpolate(pos.transpose(1, 2).reshape(1, d, *self.grid), size=(h, w), mode="bilinear")
            pos = pos.flatten(2).transpose(1, 2)
        x = x + pos
        time = self.time_embed
        if k != time.shape[1]:
            time = F.interpolate(time.transpose(1, 2), size=k, mode="linear").transpose(1, 2)
        x = x.reshape(n, k, h * w, d).transpose(1, 2) + time[:, None]  # [N, h*w, k, d]
        x = x.reshape(n, h * w * k, d)
        first = None
        for blk in self.blocks:
            x = blk(x, k, h, w)
            first = x if first is None else first
        if first is None:
            raise ValueError("TimeSformer has no blocks")
        return x.reshape(n, h, w, k, d).permute(0, 3, 4, 1, 2), first


def clip_starts(t: int, k: int) -> list[int]:
    """Start frames of ``ceil(t / k)`` clips of ``k`` frames spread evenly over ``t`` frames."""
    n = math.ceil(t / k)
    return [0] if n == 1 else [round(i * (t - k) / (n - 1)) for i in range(n)]


# ---------------------------------------------------------------------------------------------------------
# transformer


class VisualInputEmbedding(nn.Module):
    """``transformer.bert.visual_embeddings``: mean over the frames of a clip's grid, row and column positions,
    token type 0, LayerNorm (``position_embeddings`` exists in the checkpoint and is unused, as officially). The
    official random sub-sampling of visual tokens (pre-training only) is not applied."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, d)
        self.row_position_embeddings = nn.Embedding(MAX_GRID_POS, d)
        self.col_position_embeddings = nn.Embedding(MAX_GRID_POS, d)
        self.token_type_embeddings = nn.Embedding(1, d)
        self.LayerNorm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, grid: Tensor) -> Tensor:
        """``[N, f, h, w, d]`` -> ``[N, h*w, d]``."""
        grid = grid.mean(1)
        h, w, d = grid.shape[-3:]
        dev = grid.device
        grid = grid + self.row_position_embeddings(torch.arange(h, device=dev)).view(h, 1, d)
        grid = grid + self.col_position_embeddings(torch.arange(w, device=dev)).view(1, w, d)
        tokens = grid.reshape(grid.shape[0], h * w, d) + self.token_type_embeddings.weight[0]
        return self.dropout(self.LayerNorm(tokens))


class HDVILABert(nn.Module):
    """``transformer.bert`` (``HDVILABaseModel`` at stage 2)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler1 = BertPooler(config)
        self.pooler2 = BertPooler(config)
        self.visual_embeddings = VisualInputEmbedding(config)


class HDVILATransformer(nn.Module):
    """``transformer``: ``bert``, ``t_proj``, ``v_proj`` and the task ``classifier``."""

    def __init__(self, config: BertConfig, num_labels: int) -> None:
        super().__init__()
        d = config.hidden_size
        self.bert = HDVILABert(config)
        self.t_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.classifier = classifier_head(d, num_labels)


def classifier_head(d: int, n: int) -> nn.Sequential:
    """``HDVILAForSequenceClassification.classifier``: ``Linear(d, 2d), ReLU, Linear(2d, n)``."""
    return nn.Sequential(nn.Linear(d, 2 * d), nn.ReLU(), nn.Linear(2 * d, n))


class _Layers:
    def __init__(self, layers: Any) -> None:
        self.layer = layers


# ---------------------------------------------------------------------------------------------------------
# host


class HDVILAHost(DecoderCaptioning, Host):
    """HD-VILA implementing the host contract (retrieval, classification, multiple choice, generation)."""

    def __init__(self, spec: HostSpec, config: BertConfig, tokenizer: Any, *, resnet_base: int = 64,
                 resnet_blocks: tuple[int, ...] = (3, 4, 6, 3), timesformer_depth: int = 4,
                 timesformer_heads: int = 16, resolution: int = 160, num_frames: int = 2 * CLIP_FRAMES,
                 max_words: int = 50, num_labels: int = 1, decoder_layers: int = DECODER_LAYERS,
                 bert_mean: bool = True) -> None:
        super().__init__(spec, Preprocess(num_frames=num_frames, resolution=resolution, mean=IMAGENET_MEAN,
                                          std=IMAGENET_STD))
        if config.num_hidden_layers % 2:
            raise ValueError(f"HD-VILA splits its BERT in two halves; got {config.num_hidden_layers} layers")
        self.tokenizer, self.max_words, self.bert_mean = tokenizer, max_words, bert_mean
        d = config.hidden_size
        self.cnn = ResNet(resnet_blocks, resnet_base)
        self.cnn_low = ResNet(resnet_blocks, resnet_base)
        c3, c4 = self.cnn.channels[2], self.cnn.channels[3]
        self.grid_encoder = nn.Sequential(nn.Conv2d(c4, d, 1, bias=False), nn.MaxPool2d(2, 2), nn.GELU())
        self.grid_encoder_low = nn.Sequential(nn.Conv2d(c3, d, 1, bias=False), nn.GELU())
        self.timesformer = TimeSformer(d, timesformer_depth, timesformer_heads)
        self.grid_encoder_combine = nn.Sequential(nn.Conv2d(2 * d, d, 1, bias=False), nn.GELU())
        self.transformer = HDVILATransformer(config, num_labels)
        self.caption_decoder = CaptionDecoder(config, tokenizer.cls_token_id, tokenizer.sep_token_id,
                                              tokenizer.pad_token_id, num_layers=decoder_layers)
        self.caption_decoder.init_embeddings(self.transformer.bert.embeddings)

    @property
    def width(self) -> int:
        return self.transformer.t_proj.in_features

    @property
    def embed_dim(self) -> int:
        return self.width

    @property
    def split(self) -> int:
        """Index of the first cross-encoder layer (``L / 2``)."""
        return len(self.transformer.bert.encoder.layer) // 2

    def encoder_widths(self) -> dict[str, int]:
        return {"text": self.width, "video": self.width, "cross": self.width}

    # -- passes ------------------------------------------------------------------------------------
    def tokenize(self, texts: list[str]):
        device = self.transformer.t_proj.weight.device
        return tokenize_with_spans(self.tokenizer, texts, max_length=self.max_words).to(device)

    def clips(self, t: int) -> tuple[list[list[int]], int]:
        """Frame indices of each clip and the clip length ``k``."""
        k = min(CLIP_FRAMES, t)
        return [list(range(s, s + k)) for s in clip_starts(t, k)], k

    def extract_features(self, img_middle: Tensor, img_other: Tensor | None) -> tuple[Tensor, Tensor]:
        """Official ``extract_features`` on normalised frames: ``[N, 3, 4R, 4R]`` middle frames and ``[N, k-1, 3, R,
        R]`` neighbours -> (fused grid ``[N, d, h, w]``, first TimeSformer block ``[N, h*w*k, d]``)."""
        s3, s4 = self.cnn(img_middle)[2:]
        grid = self.grid_encoder(s4)
        mid = self.grid_encoder_low(F.interpolate(s3, scale_factor=1 / 4, recompute_scale_factor=False))[:, None]
        if img_other is not None and img_other.shape[1] > 0:
            n, m = img_other.shape[:2]
            low = self.grid_encoder_low(self.cnn_low(img_other.flatten(0, 1), stages=3)[2])
            low = low.view(n, m, *low.shape[1:])
            half = (m + 1) // 2
            seq = torch.cat([low[:, :half], mid, low[:, half:]], 1)
        else:
            half, seq = 0, mid
        temporal, first = self.timesformer(seq)
        return self.grid_encoder_combine(torch.cat([grid, temporal[:, half]], 1)), first

    def encode_clips(self, video: Tensor) -> tuple[Tensor, Tensor, list[list[int]]]:
        """``[B, T, 3, R, R]`` -> (fused grids ``[B, n, h, w, d]``, first TimeSformer block ``[B, n, h*w*k, d]``,
        clip frame indices)."""
        b, t = video.shape[:2]
        clips, k = self.clips(t)
        frames = video[:, torch.tensor(clips, device=video.device)]  # [B, n, k, 3, R, R]
        n = frames.shape[1]
        mid = k // 2
        middle = frames[:, :, mid].flatten(0, 1)
        middle = F.interpolate(middle, scale_factor=MIDDLE_SCALE, mode="bicubic", align_corners=False)
        other = torch.cat([frames[:, :, :mid], frames[:, :, mid + 1:]], 2).flatten(0, 1)
        fused, first = self.extract_features(middle, other)
        fused = fused.permute(0, 2, 3, 1)
        return fused.reshape(b, n, *fused.shape[1:]), first.reshape(b, n, *first.shape[1:]), clips

    def encode_text_states(self, ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Stage 1: ``[B, L]`` -> (last ``[B, L, d]``, first-layer ``[B, L, d]``, text feature ``[B, d]``)."""
        bert = self.transformer.bert
        emb = bert.embeddings(input_ids=ids)
        last, first = run_layers(_Layers(bert.encoder.layer[:self.split]), emb, mask)
        if self.bert_mean:
            m = mask.to(last.dtype)[..., None]
            pooled = bert.pooler1.activation(bert.pooler1.dense((last * m).sum(1) / m.sum(1)))
        else:
            pooled = bert.pooler1(last)
        return last, first, pooled

    def cross(self, text: Tensor, mask: Tensor, fused: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Stage 2 for every clip: text states ``[B, L, d]`` + fused grids ``[B, n, h, w, d]`` -> (last
        ``[B, n, L + h*w, d]``, first-layer ``[B, n, L + h*w, d]``, ``pooler2`` ``[B, n, d]``)."""
        b, n = fused.shape[:2]
        bert = self.transformer.bert
        vis = bert.visual_embeddings(fused.flatten(0, 1)[:, None])  # [B*n, h*w, d]
        txt = text.repeat_interleave(n, 0)
        full = torch.cat([mask.bool().repeat_interleave(n, 0),
                          torch.ones(vis.shape[:2], dtype=torch.bool, device=vis.device)], 1)
        last, first = run_layers(_Layers(bert.encoder.layer[self.split:]), torch.cat([txt, vis], 1), full)
        pooled = bert.pooler2(last)
        return (last.view(b, n, *last.shape[1:]), first.view(b, n, *first.shape[1:]), pooled.view(b, n, -1))

    def _caption_memory(self, video: Tensor, prompts: list[str] | None) -> tuple[Tensor, Tensor]:
        """Cross-encoder tokens of every clip for the caption decoder (text = the prompt or empty)."""
        fused = self.encode_clips(video)[0]
        tok = self.tokenize(prompts if prompts is not None else [""] * video.shape[0])
        text = self.encode_text_states(tok.input_ids, tok.attention_mask)[0]
        last = self.cross(text, tok.attention_mask, fused)[0]
        b, n, lq, d = last.shape
        lt = tok.attention_mask.shape[1]
        mask = torch.cat([tok.attention_mask.bool(), torch.ones(b, lq - lt, dtype=torch.bool, device=last.device)], 1)
        return last.reshape(b, n * lq, d), mask.repeat(1, n)

    # -- capabilities ------------------------------------------------------------------------------
    def encode_text(self, texts: list[str]) -> Tensor:
        """Official text feature: ``normalize(t_proj(pooler1 of the masked mean)))``."""
        tok = self.tokenize(texts)
        return l2norm(self.transformer.t_proj(self.encode_text_states(tok.input_ids, tok.attention_mask)[2]))

    def encode_video(self, video: Tensor, frame_times: Tensor | None = None) -> Tensor:
        """Official video feature: ``normalize(v_proj(mean of the fused grids over clips and space)))``."""
        fused = self.encode_clips(video)[0]
        return l2norm(self.transformer.v_proj(fused.mean((1, 2, 3))))

    def encode_joint(self, video: Tensor, texts: list[str], frame_times: Tensor | None = None) -> Tensor:
        """Mean over clips of the cross ``pooler2`` output ``[B, d]``."""
        fused = self.encode_clips(video)[0]
        tok = self.tokenize(texts)
        text = self.encode_text_states(tok.input_ids, tok.attention_mask)[0]
        return self.cross(text, tok.attention_mask, fused)[2].mean(1)

    def task_head(self, num_outputs: int) -> nn.Module:
        head = self.transformer.classifier
        if head[2].out_features == num_outputs:
            return head
        return classifier_head(self.width, num_outputs).to(head[0].weight.device)

    def score_options(self, video: Tensor, questions: list[str], options: list[list[str]],
                      frame_times: Tensor | None = None) -> Tensor:
        """Official MSR-VTT MC rule: similarity of the video feature with each "question option" text feature
        (ragged option lists padded with ``-inf``)."""
        v = self.encode_video(video)
        _, texts = option_texts(questions, options)
        t = self.encode_text(texts)
        return option_similarities(t, v, options)

    # -- Finsta ------------------------------------------------------------------------------------
    def posttrain_outputs(self, batch: HostBatch, with_losses: bool = True) -> HostOutputs:
        b, t = batch.video.shape[:2]
        dev = batch.video.device
        fused, vfirst, clips = self.encode_clips(batch.video)
        n, h, w = fused.shape[1:4]
        k = len(clips[0])
        tok = self.tokenize(batch.texts)
        text, tfirst, tfeat = self.encode_text_states(tok.input_ids, tok.attention_mask)
        _, cfirst, cpooled = self.cross(text, tok.attention_mask, fused)
        # video first layer: TimeSformer tokens in (row, col, frame) order, per clip -> frame index / patch
        clip_frames = torch.tensor(clips, device=dev)  # [n, k]
        r = torch.arange(h, device=dev).view(h, 1, 1).expand(h, w, k).reshape(-1)
        c = torch.arange(w, device=dev).view(1, w, 1).expand(h, w, k).reshape(-1)
        f = torch.arange(k, device=dev).view(1, 1, k).expand(h, w, k).reshape(-1)
        vfi = clip_frames[:, f].reshape(1, -1).expand(b, -1)
        vrc = torch.stack([r, c], -1).repeat(n, 1)[None].expand(b, -1, -1)
        vstates = vfirst.reshape(b, n * h * w * k, -1)
        # cross first layer: per clip [text ; h*w visual tokens of the clip's middle frame]
        lt = tok.attention_mask.shape[1]
        mid_frames = clip_frames[:, k // 2]  # [n]
        cfi = torch.cat([torch.full((n, lt), -1, device=dev, dtype=torch.long),
                         mid_frames[:, None].expand(n, h * w)], 1).reshape(1, -1).expand(b, -1)
        rc_clip = torch.cat([torch.full((lt, 2), -1, device=dev, dtype=torch.long),
                             torch.stack([torch.arange(h * w, device=dev) // w, torch.arange(h * w, device=dev) % w],
                                         -1)], 0)
        crc = rc_clip.repeat(n, 1)[None].expand(b, -1, -1)
        cspans = torch.cat([tok.char_spans, torch.full((b, h * w, 2), -1, dtype=torch.long, device=dev)], 1)
        cmask = torch.cat([tok.attention_mask.bool(), torch.ones(b, h * w, dtype=torch.bool, device=dev)], 1)
        times = batch.frame_times[:, mid_frames]
        out = HostOutputs(
            text=EncoderOutput(TokenStates(tfirst, tok.attention_mask.bool(), char_spans=tok.char_spans), tfeat),
            video=EncoderOutput(TokenStates(vstates, torch.ones(vstates.shape[:2], dtype=torch.bool, device=dev),
                                            frame_index=vfi.contiguous(), patch_rc=vrc.contiguous(), grid=(h, w)),
                                fused.mean((2, 3)), frame_times=times),
            cross=EncoderOutput(TokenStates(cfirst.reshape(b, n * cmask.shape[1], -1), cmask.repeat(1, n),
                                            char_spans=cspans.repeat(1, n, 1), frame_index=cfi.contiguous(),
                                            patch_rc=crc.contiguous(), grid=(h, w)),
                                cpooled, frame_times=times))
        if with_losses:
            tv = l2norm(self.transformer.t_proj(tfeat))
            vv = l2norm(self.transformer.v_proj(fused.mean((1, 2, 3))))
            out.losses["itc"] = symmetric_nce(tv, vv, NCE_TEMPERATURE)
        return out


# ---------------------------------------------------------------------------------------------------------
# checkpoint layout


def to_host_state(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Official (or own) state -> host names: ``module.`` prefixes, ``position_ids`` buffers and BatchNorm
    ``num_batches_tracked`` removed; pre-training heads (``transformer.cls.*``) dropped and returned."""
    out, dropped = split_official_state(state, PRETRAIN_ONLY, (*BUFFERS_NOT_LOADED, "num_batches_tracked"))
    return out, dropped


def infer_config(state: dict[str, Tensor]) -> dict[str, Any]:
    """Sizes read off a host-named HD-VILA state dict."""
    try:
        words = state["transformer.bert.embeddings.word_embeddings.weight"]
        inter = state["transformer.bert.encoder.layer.0.intermediate.dense.weight"]
        base = state["cnn.conv1.weight"].shape[0]
    except KeyError as err:
        raise CheckpointError(f"not an HD-VILA checkpoint: no {err.args[0]}") from err
    d = words.shape[1]
    heads = heads_for_width(d)
    cfg = bert_config(dict(hidden_size=d, num_hidden_layers=count_indexed(state, "transformer.bert.encoder.layer."),
                           num_attention_heads=heads, intermediate_size=inter.shape[0],
                           max_position_embeddings=state["transformer.bert.embeddings.position_embeddings.weight"]
                           .shape[0]), vocab_size=words.shape[0])
    out = dict(config=cfg, resnet_base=int(base),
               resnet_blocks=tuple(count_indexed(state, f"cnn.layer{i}.") for i in range(1, 5)),
               timesformer_depth=count_indexed(state, "timesformer.blocks."), timesformer_heads=heads)
    if "transformer.classifier.2.weight" in state:
        out["num_labels"] = int(state["transformer.classifier.2.weight"].shape[0])
    if (n := count_indexed(state, "caption_decoder.lm.bert.encoder.layer.")) > 0:
        out["decoder_layers"] = n
    return out


def build_hdvila(spec: HostSpec, tag: WeightTag | None, checkpoint: Path | None, *, tokenizer: Any = None,
                 size: str = "large", num_frames: int | None = None, resolution: int | None = None,
                 max_words: int | None = None, num_labels: int | None = None, bert_heads: int | None = None,
                 timesformer_heads: int | None = None, strict: bool = True) -> HDVILAHost:
    """Factory for ``create_host("hdvila", checkpoint, **options)``.

    Args:
        tokenizer: fast BERT uncased tokenizer (object, directory or ``tokenizer.json``; official: bert-base-uncased);
            defaults to the checkpoint's directory when it holds one.
        size: ``large`` (official) or ``tiny`` (CPU smoke runs); only without a checkpoint.
        num_frames, resolution, max_words: override 14 frames (2 clips of 7), 160 px, 50 tokens.
        num_labels: classifier outputs when the checkpoint has no classifier (default 1).
        bert_heads, timesformer_heads: attention heads when the width is not a multiple of 64.
        strict: refuse a checkpoint with unexpected, misshapen or missing keys (the classifier and the caption
            decoder may be missing: pre-trained files have neither).
    """
    if size not in HDVILA_SIZES:
        raise ValueError(f"hdvila size must be one of {sorted(HDVILA_SIZES)}, got {size!r}")
    named = HDVILA_SIZES[size]
    if tokenizer is None and checkpoint is not None:
        folder = checkpoint if checkpoint.is_dir() else checkpoint.parent
        tokenizer = folder if any((folder / f).exists() for f in ("tokenizer.json", "vocab.txt")) else None
    tok = load_tokenizer(tokenizer, "BERT uncased tokenizer for hdvila", "HF hub google-bert/bert-base-uncased "
                         "(tokenizer.json, vocab.txt); pass host.options.tokenizer=DIR")
    state, dropped = None, []
    if checkpoint is not None:
        path = weight_file_in(checkpoint, ("*.pt", "*.safetensors", "*.bin"),
                              "no *.pt / *.safetensors / *.bin HD-VILA checkpoint in the directory")
        state, dropped = to_host_state(load_state_dict(path, what="HD-VILA checkpoint", source=SPEC.tags[""].source))
        cfg = infer_config(state)
        if bert_heads:
            cfg["config"].num_attention_heads = bert_heads
        cfg.update(resolution=named["resolution"], num_frames=named["num_frames"], max_words=named["max_words"])
    else:
        cfg = dict(config=bert_config(named["bert"], vocab_size=len(tok)), resnet_base=named["resnet_base"],
                   timesformer_depth=named["timesformer_depth"], timesformer_heads=named["timesformer_heads"],
                   resolution=named["resolution"], num_frames=named["num_frames"], max_words=named["max_words"])
    for key, value in (("num_frames", num_frames), ("resolution", resolution), ("max_words", max_words),
                       ("timesformer_heads", timesformer_heads)):
        if value is not None:
            cfg[key] = value
    if num_labels is not None and "num_labels" not in cfg:
        cfg["num_labels"] = num_labels
    cfg["config"]._attn_implementation = cfg["config"]._attn_implementation or "sdpa"  # standalone BertEncoder
    host = HDVILAHost(spec, cfg.pop("config"), tok, **cfg)
    if state is not None:
        own = host.state_dict()
        bad = [k for k in state if k in own and state[k].shape != own[k].shape]
        missing, unexpected = host.load_state_dict({k: v for k, v in state.items() if k not in bad}, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        hard = [k for k in missing if not k.startswith(OPTIONAL)]
        if strict and (bad or hard or unexpected):
            raise CheckpointError(f"{checkpoint}: does not match hdvila: missing {hard[:5]}, unexpected "
                                  f"{list(unexpected)[:5]}, shape mismatch {bad[:5]}")
        if any(k.startswith("caption_decoder.") for k in missing):  # official file: no decoder
            host.caption_decoder.init_embeddings(host.transformer.bert.embeddings)
        host.load_report = {"missing": missing, "unexpected": list(unexpected), "dropped": dropped}
    return host
