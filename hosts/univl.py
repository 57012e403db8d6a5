"""UniVL (Luo et al., arXiv:2002.06353; github.com/microsoft/UniVL @8db88f3), native, official layout.

Architecture (``modules/modeling.py``, ``UniVL`` with ``stage_two`` for captioning):

* ``bert``: BERT-base text encoder (``transformers.BertModel``; same keys as UniVL's ``module_bert``).
* ``normalize_video.visual_norm2d``: LayerNorm over the 1024-d S3D features.
* ``visual``: BERT-style video encoder (6 layers in every README command) whose "word embedding" is a Linear from
  the 1024-d feature, plus positions and LayerNorm (``VisualEmbeddings``); ``transformers`` ``BertEncoder`` layers.
* ``cross``: 2-layer BERT-style encoder over [text states ; video states] with positions and token types (text 0,
  video 1) (``CrossEmbeddings``), pooler on the text ``[CLS]``.
* ``decoder``: the 3-layer caption decoder (self-attention, attention to the cross output, FFN; post-LN). It is
  ``transformers.BertLMHeadModel`` with cross-attention (:class:`hosts.bert.CaptionDecoder`) under a key map
  (``slf_attn.att`` -> ``attention.self``, ``enc_attn`` -> ``crossattention`` ...); as officially its word and
  position embeddings and the output projection are tied to ``bert``'s, and it has no token types (the type
  table is zero and frozen).
* ``similarity_dense``: FT-Align retrieval head (kept for the layout).
* ``s3d`` (not in UniVL's checkpoint): the HowTo100M S3D-G that extracts the features from pixels
  (:class:`hosts.bert.s3d.S3D`, ``s3d_howto100m.pth``); frames are cut into clips of ``clip_len`` (the official
  extractor: 16 frames per second of video) and each clip gives one 1024-d feature.

Capabilities: generation (official: the decoder over the cross output of the video and an empty text; greedy here,
beam 5 officially) and retrieval (stage one: normalised masked means, text without ``[CLS]``).

Finsta reads (sec 5.2): text ``bert.encoder.layer[0]``; video ``visual.encoder.layer[0]`` (one token per clip,
listed under each frame of the clip); cross ``cross.encoder.layer[0]``. Pooled: text = masked mean without
``[CLS]``; video per frame = the clip's visual output; cross per frame = the clip's token in the cross output.
Own loss ``vla``: symmetric cross-entropy of the stage-one similarities.

Shapes: ``B`` batch, ``T`` frames, ``C`` clips, ``L`` text tokens, ``d`` width.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import BertConfig, BertModel
from transformers.models.bert.modeling_bert import BertEncoder, BertPooler

from hosts.base import EncoderOutput, Host, HostBatch, HostOutputs, Preprocess, TokenStates
from hosts.bert import CaptionDecoder, bert_config, expand_tubes, run_layers
from hosts.bert.decoder import decode_captions
from hosts.bert.s3d import S3D, s3d_from_official, s3d_per_clip
from hosts.bert.sizes import count_indexed, heads_for_width
from hosts.checkpoints import weight_file_in
from hosts.errors import CheckpointError
from hosts.io import load_state_dict
from hosts.pooling import l2norm
from hosts.spec import HostSpec, WeightTag, register_host
from hosts.text import load_tokenizer, tokenize_with_spans

VIDEO_DIM = 1024  # S3D mixed_5c
PRETRAIN_ONLY = ("cls.", "cls_visual.")

UNIVL_SIZES: dict[str, dict[str, Any]] = {
    "base": dict(bert="base", visual_layers=6, cross_layers=2, decoder_layers=3, max_words=48, clip_len=16,
                 resolution=224, num_frames=64),
    "tiny": dict(bert="tiny", visual_layers=1, cross_layers=1, decoder_layers=1, max_words=16, clip_len=2,
                 resolution=32, num_frames=4),
}

SPEC = register_host(HostSpec(
    name="univl", has_text=True, has_video=True, has_cross=True, capabilities=frozenset({"retrieval", "generation"}),
    factory="hosts.univl:build_univl",  # a string: the spec is made before the factory
    tags={"": WeightTag("", "univl.pretrained.bin", "UniVL pre-trained on HowTo100M (plus s3d_howto100m.pth for "
                        "pixels: host.options.s3d_checkpoint=PATH)",
                        "GitHub release v0 of microsoft/UniVL (README 'Pretrained Weight'); S3D: "
                        "https://www.rocq.inria.fr/cluster-willow/amiech/howto100m/s3d_howto100m.pth")},
    params="183M", pretrain_data="1.2M", paper="Luo et al., UniVL, arXiv:2002.06353 (2020)",
    code="https://github.com/microsoft/UniVL", license="MIT", status="implemented", display="UniVL", order=10,
    parity="tests/hosts/test_hosts_univl.py::test_parity_with_official_code",
    notes="Native (hosts/univl.py): BERT text + 6-layer visual + 2-layer cross encoders and the 3-layer caption "
          "decoder in the official layout (parity-tested over features), S3D-G HowTo100M extractor for pixels "
          "(parity-tested separately). Greedy decoding (official: beam 5)."))


class FeatureEmbeddings(nn.Module):
    """UniVL's ``VisualEmbeddings`` (Linear "word" embedding of features) or ``CrossEmbeddings`` (no words; token
    types), + positions, LayerNorm (eps 1e-12)."""

    def __init__(self, d: int, max_positions: int, feature_dim: int | None = None, types: int = 0) -> None:
        super().__init__()
        if feature_dim is not None:
            self.word_embeddings = nn.Linear(feature_dim, d)
        self.position_embeddings = nn.Embedding(max_positions, d)
        if types:
            self.token_type_embeddings = nn.Embedding(types, d)
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)

    def forward(self, x: Tensor, types: Tensor | None = None) -> Tensor:
        if hasattr(self, "word_embeddings"):
            x = self.word_embeddings(x)
        x = x + self.position_embeddings(torch.arange(x.shape[1], device=x.device))[None]
        if types is not None:
            x = x + self.token_type_embeddings(types)
        return self.LayerNorm(x)


class FeatureEncoder(nn.Module):
    """``visual`` / ``cross``: embeddings, ``BertEncoder``, pooler (``[CLS]`` / position 0)."""

    def __init__(self, config: BertConfig, feature_dim: int | None = None, types: int = 0) -> None:
        super().__init__()
        self.embeddings = FeatureEmbeddings(config.hidden_size, config.max_position_embeddings, feature_dim, types)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config)

    def forward(self, x: Tensor, mask: Tensor, types: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return run_layers(self.encoder, self.embeddings(x, types), mask)


class NormalizeVideo(nn.Module):
    def __init__(self, dim: int = VIDEO_DIM) -> None:
        super().__init__()
        self.visual_norm2d = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, x: Tensor) -> Tensor:
        return self.visual_norm2d(x)


class UniVLHost(Host):
    """UniVL implementing the host contract (retrieval, generation)."""

    def __init__(self, spec: HostSpec, config: BertConfig, tokenizer: Any, *, visual_layers: int, cross_layers: int,
                 decoder_layers: int, max_words: int, clip_len: int, resolution: int, num_frames: int,
                 visual_positions: int = 512, cross_positions: int = 1024, with_s3d: bool = True) -> None:
        super().__init__(spec, Preprocess(num_frames=num_frames, resolution=resolution, mean=(0.0, 0.0, 0.0),
                                          std=(1.0, 1.0, 1.0)))  # S3D reads RGB in [0, 1]
        self.tokenizer, self.max_words, self.clip_len = tokenizer, max_words, clip_len
        self.bert = BertModel(config)
        self.visual = FeatureEncoder(_sub(config, visual_layers, max_position_embeddings=visual_positions),
                                     feature_dim=VIDEO_DIM)
        self.cross = FeatureEncoder(_sub(config, cross_layers, max_position_embeddings=cross_positions), types=2)
        self.decoder = CaptionDecoder(config, tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id,
                                      num_layers=decoder_layers)
        emb = self.decoder.lm.bert.embeddings  # tied to the text encoder's, no token types (official decoder)
        emb.word_embeddings = self.bert.embeddings.word_embeddings
        emb.position_embeddings = self.bert.embeddings.position_embeddings
        self.decoder.lm.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight
        nn.init.zeros_(emb.token_type_embeddings.weight)
        emb.token_type_embeddings.weight.requires_grad_(False)
        self.similarity_dense = nn.Linear(config.hidden_size, 1)
        self.normalize_video = NormalizeVideo()
        self.s3d = S3D() if with_s3d else None

    @property
    def width(self) -> int:
        return self.bert.config.hidden_size

    @property
    def embed_dim(self) -> int:
        return self.width

    def encoder_widths(self) -> dict[str, int]:
        return {"text": self.width, "video": self.width, "cross": self.width}

    # -- passes ------------------------------------------------------------------------------------
    def tokenize(self, texts: list[str]):
        return tokenize_with_spans(self.tokenizer, texts, max_length=self.max_words).to(
            self.similarity_dense.weight.device)

    def text_states(self, tok: Any) -> tuple[Tensor, Tensor]:
        return run_layers(self.bert.encoder, self.bert.embeddings(input_ids=tok.input_ids), tok.attention_mask)

    def features(self, video: Tensor) -> Tensor:
        """``[B, T, 3, H, W]`` RGB in [0, 1] -> S3D ``mixed_5c`` per clip ``[B, C, 1024]`` (``C = ceil(T /
        clip_len)``, the last clip padded by repeating its final frame)."""
        if self.s3d is None:
            raise CheckpointError("univl was built without S3D: pass host.options.s3d_checkpoint=PATH "
                                  "(s3d_howto100m.pth) to run on pixels")
        return s3d_per_clip(self.s3d, video, self.clip_len, "mixed_5c")

    def visual_states(self, feats: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """S3D features ``[B, C, 1024]`` -> (visual last, first-layer, mask)."""
        mask = torch.ones(feats.shape[:2], dtype=torch.bool, device=feats.device)
        last, first = self.visual(self.normalize_video(feats), mask)
        return last, first, mask

    def cross_states(self, text: Tensor, tmask: Tensor, video: Tensor, vmask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``_get_cross_output``: [text ; video] with types 0 / 1 -> (last, first-layer, mask)."""
        mask = torch.cat([tmask.bool(), vmask.bool()], 1)
        types = torch.cat([torch.zeros_like(tmask, dtype=torch.long), torch.ones_like(vmask, dtype=torch.long)], 1)
        last, first = self.cross(torch.cat([text, video], 1), mask, types)
        return last, first, mask

    @staticmethod
    def mean_pool(text: Tensor, tmask: Tensor, video: Tensor, vmask: Tensor) -> tuple[Tensor, Tensor]:
        """``_mean_pooling_for_similarity``: text without position 0, video over its mask."""
        tm = tmask.to(text.dtype).clone()
        tm[:, 0] = 0
        t = (text * tm[..., None]).sum(1) / tm.sum(1, keepdim=True)
        vm = vmask.to(video.dtype)
        v = (video * vm[..., None]).sum(1) / vm.sum(1, keepdim=True).clamp_min(1.0)
        return t, v

    # -- capabilities ------------------------------------------------------------------------------
    def encode_text(self, texts: list[str]) -> Tensor:
        tok = self.tokenize(texts)
        t, _ = self.mean_pool(self.text_states(tok)[0], tok.attention_mask, *_dummy_video(tok, self.width))
        return l2norm(t)

    def encode_video(self, video: Tensor, frame_times: Tensor | None = None) -> Tensor:
        last, _, mask = self.visual_states(self.features(video))
        return l2norm((last * mask[..., None]).sum(1) / mask.sum(1, keepdim=True))

    def decoder_memory(self, feats: Tensor, prompts: list[str] | None) -> tuple[Tensor, Tensor]:
        tok = self.tokenize(prompts if prompts is not None else [""] * feats.shape[0])
        vlast, _, vmask = self.visual_states(feats)
        out, _, mask = self.cross_states(self.text_states(tok)[0], tok.attention_mask, vlast, vmask)
        return out, mask

    def caption_loss(self, video: Tensor, texts: list[str], frame_times: Tensor | None = None) -> Tensor:
        memory, mmask = self.decoder_memory(self.features(video), None)
        tok = self.tokenize(texts)
        return self.decoder.loss(tok.input_ids, tok.attention_mask, memory, mmask)

    def generate(self, video: Tensor, prompts: list[str] | None = None, max_new_tokens: int = 20,
                 frame_times: Tensor | None = None) -> list[str]:
        memory, mmask = self.decoder_memory(self.features(video), prompts)
        return decode_captions(self.decoder, self.tokenizer, memory, mmask, max_new_tokens)

    # -- Finsta ------------------------------------------------------------------------------------
    def posttrain_outputs(self, batch: HostBatch, with_losses: bool = True) -> HostOutputs:
        b, t = batch.video.shape[:2]
        dev = batch.video.device
        tok = self.tokenize(batch.texts)
        tlast, tfirst = self.text_states(tok)
        vlast, vfirst, vmask = self.visual_states(self.features(batch.video))
        clast, cfirst, cmask = self.cross_states(tlast, tok.attention_mask, vlast, vmask)
        lt = tlast.shape[1]
        frames = torch.arange(t, device=dev)
        tpool, vpool = self.mean_pool(tlast, tok.attention_mask, vlast, vmask)
        cvid = expand_tubes(cfirst[:, lt:], self.clip_len, t)
        out = HostOutputs(
            text=EncoderOutput(TokenStates(tfirst, tok.attention_mask, char_spans=tok.char_spans), tpool),
            video=EncoderOutput(TokenStates(expand_tubes(vfirst, self.clip_len, t),
                                            torch.ones(b, t, dtype=torch.bool, device=dev),
                                            frame_index=frames.expand(b, -1).contiguous()),
                                expand_tubes(vlast, self.clip_len, t), frame_times=batch.frame_times),
            cross=EncoderOutput(TokenStates(
                torch.cat([cfirst[:, :lt], cvid], 1),
                torch.cat([cmask[:, :lt], torch.ones(b, t, dtype=torch.bool, device=dev)], 1),
                char_spans=torch.cat([tok.char_spans, torch.full((b, t, 2), -1, dtype=torch.long, device=dev)], 1),
                frame_index=torch.cat([torch.full((b, lt), -1, dtype=torch.long, device=dev), frames.expand(b, -1)],
                                      1)),
                expand_tubes(clast[:, lt:], self.clip_len, t), frame_times=batch.frame_times))
        if with_losses:
            sim = l2norm(tpool) @ l2norm(vpool).t()
            target = torch.arange(b, device=dev)
            out.losses["vla"] = 0.5 * (F.cross_entropy(sim, target) + F.cross_entropy(sim.t(), target))
        return out


def _sub(config: BertConfig, layers: int, **overrides: Any) -> BertConfig:
    cfg = BertConfig(**{**config.to_dict(), "num_hidden_layers": layers, **overrides})
    cfg._attn_implementation = config._attn_implementation or "sdpa"  # standalone BertEncoder
    return cfg


def _dummy_video(tok: Any, d: int) -> tuple[Tensor, Tensor]:
    b = tok.input_ids.shape[0]
    return torch.zeros(b, 1, d, device=tok.input_ids.device), torch.ones(b, 1, device=tok.input_ids.device)


# ---------------------------------------------------------------------------------------------------------
# checkpoint layout

_L = "decoder.lm.bert.encoder.layer."
_DECODER = ((r"^decoder\.embeddings\.", "decoder.lm.bert.embeddings."),
            (r"^decoder\.decoder\.layer\.(\d+)\.slf_attn\.att\.", _L + r"\1.attention.self."),
            (r"^decoder\.decoder\.layer\.(\d+)\.slf_attn\.output\.", _L + r"\1.attention.output."),
            (r"^decoder\.decoder\.layer\.(\d+)\.enc_attn\.att\.", _L + r"\1.crossattention.self."),
            (r"^decoder\.decoder\.layer\.(\d+)\.enc_attn\.output\.", _L + r"\1.crossattention.output."),
            (r"^decoder\.decoder\.layer\.(\d+)\.", _L + r"\1."),
            (r"^decoder\.classifier\.cls\.", "decoder.lm.cls."))


def to_host_state(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Official UniVL (``univl.pretrained.bin`` / ``pytorch_model.bin.N``) or own state -> host names.

    Renames old ``gamma`` / ``beta`` LayerNorm names (as ``until_module.init_preweight``), maps the decoder onto
    ``BertLMHeadModel`` names, and drops the pre-training heads (``cls.*``, ``cls_visual.*``, returned)."""
    out, dropped = {}, []
    for k, v in state.items():
        k = k[len("module."):] if k.startswith("module.") else k
        k = k.replace(".gamma", ".weight").replace(".beta", ".bias")
        if k.endswith(("position_ids", "token_type_ids")):
            continue
        if k.startswith(PRETRAIN_ONLY):
            dropped.append(k)
            continue
        for pattern, repl in _DECODER:
            if re.match(pattern, k):
                k = re.sub(pattern, repl, k)
                break
        out[k] = v
    if "decoder.lm.cls.predictions.bias" in out:
        out["decoder.lm.cls.predictions.decoder.bias"] = out["decoder.lm.cls.predictions.bias"]
    return out, dropped


def build_univl(spec: HostSpec, tag: WeightTag | None, checkpoint: Path | None, *, tokenizer: Any = None,
                s3d_checkpoint: str | Path | None = None, size: str = "base", clip_len: int | None = None,
                num_frames: int | None = None, max_words: int | None = None, bert_heads: int | None = None,
                strict: bool = True) -> UniVLHost:
    """Factory for ``create_host("univl", checkpoint, **options)``.

    Args:
        tokenizer: fast BERT uncased tokenizer (object, directory or ``tokenizer.json``).
        s3d_checkpoint: ``s3d_howto100m.pth`` for pixel input; without it (and without ``random_init``) the host
            still loads but refuses pixels with a one-line error.
        size: ``base`` (official: 6 visual, 2 cross, 3 decoder layers) or ``tiny``; only without a checkpoint.
        clip_len: frames per S3D clip (official extractor: 16 per second).
    """
    if size not in UNIVL_SIZES:
        raise ValueError(f"univl size must be one of {sorted(UNIVL_SIZES)}, got {size!r}")
    named = dict(UNIVL_SIZES[size])
    if tokenizer is None and checkpoint is not None:
        folder = checkpoint if checkpoint.is_dir() else checkpoint.parent
        tokenizer = folder if any((folder / f).exists() for f in ("tokenizer.json", "vocab.txt")) else None
    tok = load_tokenizer(tokenizer, "BERT uncased tokenizer for univl", "HF hub google-bert/bert-base-uncased "
                         "(tokenizer.json, vocab.txt); pass host.options.tokenizer=DIR")
    state, dropped = None, []
    if checkpoint is not None:
        path = weight_file_in(checkpoint, ("*.bin*", "*.safetensors"),
                              "no univl.pretrained.bin / *.safetensors in the directory")
        state, dropped = to_host_state(load_state_dict(path, what="UniVL checkpoint", source=SPEC.tags[""].source))
        try:
            words = state["bert.embeddings.word_embeddings.weight"]
            inter = state["bert.encoder.layer.0.intermediate.dense.weight"]
        except KeyError as err:
            raise CheckpointError(f"{checkpoint}: not a UniVL checkpoint: no {err.args[0]}") from None
        d = words.shape[1]
        config = bert_config(dict(hidden_size=d, num_hidden_layers=count_indexed(state, "bert.encoder.layer."),
                                  num_attention_heads=bert_heads or heads_for_width(d),
                                  intermediate_size=inter.shape[0],
                                  max_position_embeddings=state["bert.embeddings.position_embeddings.weight"].shape[0]),
                             vocab_size=words.shape[0])
        named.update(visual_layers=count_indexed(state, "visual.encoder.layer."),
                     cross_layers=count_indexed(state, "cross.encoder.layer."),
                     visual_positions=state["visual.embeddings.position_embeddings.weight"].shape[0],
                     cross_positions=state.get("cross.embeddings.position_embeddings.weight",
                                               torch.zeros(1024)).shape[0],
                     decoder_layers=count_indexed(state, "decoder.lm.bert.encoder.layer.") or named["decoder_layers"])
    else:
        config = bert_config(named["bert"], vocab_size=len(tok))
    config._attn_implementation = config._attn_implementation or "sdpa"
    for key, value in (("clip_len", clip_len), ("num_frames", num_frames), ("max_words", max_words)):
        if value is not None:
            named[key] = value
    named.pop("bert")
    with_s3d = s3d_checkpoint is not None or checkpoint is None
    host = UniVLHost(spec, config, tok, with_s3d=with_s3d, **named)
    if s3d_checkpoint is not None:
        s3d = s3d_from_official(load_state_dict(Path(s3d_checkpoint), what="S3D HowTo100M weights",
                                                source="s3d_howto100m.pth (antoine77340/S3D_HowTo100M README)"))
        host.s3d.load_state_dict(s3d)
    if state is not None:
        own = host.state_dict()
        bad = [k for k in state if k in own and state[k].shape != own[k].shape]
        missing, unexpected = host.load_state_dict({k: v for k, v in state.items() if k not in bad}, strict=False)
        allowed = ("s3d.", "decoder.", "cross.", "similarity_dense.")  # stage-one checkpoints have no cross/decoder
        hard = [k for k in missing if not k.startswith(allowed) and "token_type_embeddings" not in k]
        if strict and (bad or hard or unexpected):
            raise CheckpointError(f"{checkpoint}: does not match univl: missing {hard[:5]}, unexpected "
                                  f"{list(unexpected)[:5]}, shape mismatch {bad[:5]}")
        host.load_report = {"missing": list(missing), "unexpected": list(unexpected), "dropped": dropped}
    return host
