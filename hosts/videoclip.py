"""VideoCLIP (Xu et al., EMNLP 2021; facebookresearch/fairseq ``examples/MMPT`` @3d262bb), native, official layout.

Architecture (``mmpt/models/mmfusion.py``: ``MMFusionSeparate``; ``transformermodel.py``: ``MMBertForEncoder``;
``modules/mm.py``: ``VideoTokenMLP``, ``MMBertEmbeddings``):

* ``text_encoder``: BERT-base (``transformers.BertModel``) over ``[CLS] caption [SEP]``; pooled = masked mean over
  every token but ``[CLS]`` (the ``[SEP]`` included).
* ``video_encoder``: ``videomlp`` (Linear 512 -> d, GELU, LayerNorm, Linear d -> d) turns each per-second S3D
  ``video_embedding`` into a token; ``bert`` (a 6-layer BERT) runs over ``[CLS] v_1 .. v_F [SEP]`` where
  ``[CLS]`` / ``[SEP]`` are BERT word embeddings and the ``[SEP]`` takes position ``max_video_len + 1``; pooled =
  masked mean over the video tokens and ``[SEP]`` (not ``[CLS]``).
* No cross encoder (Table 10: T, V).
* ``s3d`` (not in the VideoCLIP checkpoint): the HowTo100M S3D-G (:class:`hosts.bert.s3d.S3D`,
  ``s3d_howto100m.pth``) whose 512-d ``video_embedding`` of each clip of ``clip_len`` frames (one second at 30 fps
  in the official extractor) is a video token.

Capabilities: retrieval (dot product of the pooled vectors, ``RetrievalPredictor``), multiple choice (the same
similarity picks the option, ``QAPredictor``), classification / open-ended QA through :meth:`encode_joint` = the
elementwise product of the pooled video and pooled question, with a fresh MLP head (**not official**: VideoCLIP
has no answer classifier; the paper's Table 4 open-ended cells need one, ``docs/hosts-bert-family.md``).

Finsta reads (sec 5.2): text ``text_encoder.encoder.layer[0]``; video ``video_encoder.bert.encoder.layer[0]`` on the
video tokens (each clip token listed under the frames of its clip; ``[CLS]`` / ``[SEP]`` belong to no frame and are
left out). Pooled: text = the official mean; video per frame = the clip token's output. Own loss ``vla``:
symmetric cross-entropy of the pooled dot products (VideoCLIP's contrastive objective on in-batch pairs).

Weights: the fairseq ``checkpoint_best.pt`` pickles fairseq / omegaconf objects, so it is converted once, offline,
by the user: ``python -m hosts.videoclip convert checkpoint_best.pt videoclip.safetensors`` (this runs the pickle:
only do it for the file from dl.fbaipublicfiles.com); the ``mmmodel.`` prefix is removed.

Shapes: ``B`` batch, ``T`` frames, ``F`` clips / video tokens, ``L`` text tokens, ``d`` width.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import BertConfig, BertModel

from hosts.base import EncoderOutput, Host, HostBatch, HostOutputs, Preprocess, TokenStates
from hosts.bert import bert_config, expand_tubes, run_layers
from hosts.bert.heads import option_similarities, option_texts
from hosts.bert.s3d import S3D, s3d_from_official, s3d_per_clip
from hosts.bert.sizes import count_indexed, heads_for_width
from hosts.checkpoints import weight_file_in
from hosts.errors import CheckpointError
from hosts.io import load_state_dict, save_state_dict
from hosts.spec import HostSpec, WeightTag, register_host
from hosts.text import load_tokenizer, tokenize_with_spans

FEATURE_DIM = 512  # S3D video_embedding

VIDEOCLIP_SIZES: dict[str, dict[str, Any]] = {
    "base": dict(bert="base", video_layers=6, max_video_len=32, max_words=96, clip_len=30, resolution=224,
                 num_frames=8 * 30),
    "tiny": dict(bert="tiny", video_layers=1, max_video_len=8, max_words=16, clip_len=2, resolution=32, num_frames=4),
}

SPEC = register_host(HostSpec(
    name="videoclip", has_text=True, has_video=True, has_cross=False,
    capabilities=frozenset({"retrieval", "multiple_choice", "classification"}),
    factory="hosts.videoclip:build_videoclip",  # a string: the spec is made before the factory
    tags={"": WeightTag("", "videoclip.safetensors", "VideoCLIP retrieval pre-training (fairseq MMPT "
                        "checkpoint_best.pt, converted once with `python -m hosts.videoclip convert`; plus "
                        "s3d_howto100m.pth for pixels: host.options.s3d_checkpoint=PATH)",
                        "https://dl.fbaipublicfiles.com/MMPT/retri/videoclip/checkpoint_best.pt")},
    params="203M", pretrain_data="1.1M", paper="Xu et al., VideoCLIP, EMNLP 2021",
    code="https://github.com/facebookresearch/fairseq/tree/main/examples/MMPT", license="MIT", status="implemented",
    display="VideoCLIP", order=30, parity="tests/hosts/test_hosts_videoclip.py::test_parity_with_official_code",
    notes="Native (hosts/videoclip.py): BERT text encoder + video-token MLP + 6-layer video BERT in the official "
          "layout (parity-tested against MMFusionSeparate), S3D-G HowTo100M extractor for pixels. The open-ended QA "
          "head (encode_joint + MLP) is not official."))


class VideoTokenMLP(nn.Module):
    """``videomlp``: Linear -> GELU -> LayerNorm (eps 1e-5, ``nn.LayerNorm``) -> Linear."""

    def __init__(self, d_in: int, d: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_in, d)
        self.LayerNorm = nn.LayerNorm(d)
        self.linear2 = nn.Linear(d, d)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear2(self.LayerNorm(F.gelu(self.linear1(x))))


class VideoEncoder(nn.Module):
    """``video_encoder`` (``MMBertForEncoder``): ``videomlp`` + ``bert``."""

    def __init__(self, config: BertConfig, max_video_len: int) -> None:
        super().__init__()
        self.videomlp = VideoTokenMLP(FEATURE_DIM, config.hidden_size)
        self.bert = BertModel(config)
        self.max_video_len = max_video_len

    def forward(self, feats: Tensor, vmask: Tensor, cls_id: int, sep_id: int) -> tuple[Tensor, Tensor, Tensor]:
        """S3D features ``[B, F, 512]`` -> (last ``[B, F+2, d]``, first-layer, mask) over ``[CLS] v [SEP]``."""
        b, f = feats.shape[:2]
        if f > self.max_video_len:
            raise ValueError(f"VideoCLIP takes at most {self.max_video_len} video tokens (clips), got {f}")
        emb = self.bert.embeddings
        ids = torch.tensor([cls_id, sep_id], device=feats.device)
        words = emb.word_embeddings(ids)
        x = torch.cat([words[:1].expand(b, 1, -1), self.videomlp(feats), words[1:].expand(b, 1, -1)], 1)
        pos = torch.cat([torch.arange(f + 1, device=feats.device),
                         torch.tensor([self.max_video_len + 1], device=feats.device)])
        x = x + emb.position_embeddings(pos)[None] + emb.token_type_embeddings.weight[0]
        mask = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=feats.device), vmask.bool(),
                          torch.ones(b, 1, dtype=torch.bool, device=feats.device)], 1)
        last, first = run_layers(self.bert.encoder, emb.LayerNorm(x), mask)
        return last, first, mask


class VideoCLIPHost(Host):
    """VideoCLIP implementing the host contract (retrieval, multiple choice, classification)."""

    def __init__(self, spec: HostSpec, config: BertConfig, tokenizer: Any, *, video_layers: int, max_video_len: int,
                 max_words: int, clip_len: int, resolution: int, num_frames: int, with_s3d: bool = True) -> None:
        super().__init__(spec, Preprocess(num_frames=num_frames, resolution=resolution, mean=(0.0, 0.0, 0.0),
                                          std=(1.0, 1.0, 1.0)))  # S3D reads RGB in [0, 1]
        self.tokenizer, self.max_words, self.clip_len = tokenizer, max_words, clip_len
        self.text_encoder = BertModel(config)
        video_cfg = BertConfig(**{**config.to_dict(), "num_hidden_layers": video_layers})
        video_cfg._attn_implementation = config._attn_implementation or "sdpa"
        self.video_encoder = VideoEncoder(video_cfg, max_video_len)
        self.s3d = S3D() if with_s3d else None

    @property
    def width(self) -> int:
        return self.text_encoder.config.hidden_size

    @property
    def embed_dim(self) -> int:
        return self.width

    def encoder_widths(self) -> dict[str, int]:
        return {"text": self.width, "video": self.width}

    # -- passes ------------------------------------------------------------------------------------
    def tokenize(self, texts: list[str]):
        return tokenize_with_spans(self.tokenizer, texts, max_length=self.max_words).to(
            self.video_encoder.videomlp.linear1.weight.device)

    def text_states(self, tok: Any) -> tuple[Tensor, Tensor]:
        emb = self.text_encoder.embeddings(input_ids=tok.input_ids)
        return run_layers(self.text_encoder.encoder, emb, tok.attention_mask)

    @staticmethod
    def pool_text(last: Tensor, mask: Tensor) -> Tensor:
        """Masked mean over every token but ``[CLS]`` (``forward_text``)."""
        m = mask.to(last.dtype).clone()
        m[:, 0] = 0
        return (last * m[..., None]).sum(1) / m.sum(1, keepdim=True)

    @staticmethod
    def pool_video(last: Tensor, mask: Tensor) -> Tensor:
        """Masked mean over the video tokens and ``[SEP]``, not ``[CLS]`` (``forward_video``)."""
        m = mask.to(last.dtype).clone()
        m[:, 0] = 0
        return (last * m[..., None]).sum(1) / m.sum(1, keepdim=True)

    def features(self, video: Tensor) -> Tensor:
        """``[B, T, 3, H, W]`` RGB in [0, 1] -> S3D ``video_embedding`` per clip ``[B, F, 512]``."""
        if self.s3d is None:
            raise CheckpointError("videoclip was built without S3D: pass host.options.s3d_checkpoint=PATH "
                                  "(s3d_howto100m.pth) to run on pixels")
        return s3d_per_clip(self.s3d, video, self.clip_len, "video_embedding")

    def video_states(self, feats: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        vmask = torch.ones(feats.shape[:2], dtype=torch.bool, device=feats.device)
        return self.video_encoder(feats, vmask, self.tokenizer.cls_token_id, self.tokenizer.sep_token_id)

    # -- capabilities ------------------------------------------------------------------------------
    def encode_text(self, texts: list[str]) -> Tensor:
        tok = self.tokenize(texts)
        return self.pool_text(self.text_states(tok)[0], tok.attention_mask)

    def encode_video(self, video: Tensor, frame_times: Tensor | None = None) -> Tensor:
        last, _, mask = self.video_states(self.features(video))
        return self.pool_video(last, mask)

    def score_options(self, video: Tensor, questions: list[str], options: list[list[str]],
                      frame_times: Tensor | None = None) -> Tensor:
        """``QAPredictor``: similarity of the video with "question option" (ragged rows padded with ``-inf``)."""
        t = self.encode_text(option_texts(questions, options)[1])
        v = self.encode_video(video, frame_times)
        return option_similarities(t, v, options)

    def encode_joint(self, video: Tensor, texts: list[str], frame_times: Tensor | None = None) -> Tensor:
        """Non-official open-ended QA input: pooled video times pooled question, elementwise ``[B, d]``."""
        return self.encode_video(video, frame_times) * self.encode_text(texts)

    def task_head(self, num_outputs: int) -> nn.Module:
        """A fresh MLP on ``encode_video`` (action recognition) or ``encode_joint`` (QA), both ``[B, d]``."""
        d = self.width
        return nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d), nn.Linear(d, num_outputs)).to(
            self.video_encoder.videomlp.linear1.weight.device)

    # -- Finsta ------------------------------------------------------------------------------------
    def posttrain_outputs(self, batch: HostBatch, with_losses: bool = True) -> HostOutputs:
        b, t = batch.video.shape[:2]
        dev = batch.video.device
        tok = self.tokenize(batch.texts)
        tlast, tfirst = self.text_states(tok)
        vlast, vfirst, vmask = self.video_states(self.features(batch.video))
        tpool, vpool = self.pool_text(tlast, tok.attention_mask), self.pool_video(vlast, vmask)
        out = HostOutputs(
            text=EncoderOutput(TokenStates(tfirst, tok.attention_mask, char_spans=tok.char_spans), tpool),
            video=EncoderOutput(TokenStates(expand_tubes(vfirst[:, 1:-1], self.clip_len, t),
                                            torch.ones(b, t, dtype=torch.bool, device=dev),
                                            frame_index=torch.arange(t, device=dev).expand(b, -1).contiguous()),
                                expand_tubes(vlast[:, 1:-1], self.clip_len, t), frame_times=batch.frame_times))
        if with_losses:
            sim = tpool @ vpool.t()
            target = torch.arange(b, device=dev)
            out.losses["vla"] = 0.5 * (F.cross_entropy(sim, target) + F.cross_entropy(sim.t(), target))
        return out


# ---------------------------------------------------------------------------------------------------------
# checkpoint layout


def to_host_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """fairseq MMPT (``mmmodel.`` prefix) or own state -> host names (``position_ids`` buffers dropped)."""
    out = {}
    for k, v in state.items():
        k = k[len("mmmodel."):] if k.startswith("mmmodel.") else k
        if k.endswith(("position_ids", "token_type_ids")):
            continue
        out[k] = v
    return out


def build_videoclip(spec: HostSpec, tag: WeightTag | None, checkpoint: Path | None, *, tokenizer: Any = None,
                    s3d_checkpoint: str | Path | None = None, size: str = "base", clip_len: int | None = None,
                    num_frames: int | None = None, max_words: int | None = None, max_video_len: int | None = None,
                    bert_heads: int | None = None, strict: bool = True) -> VideoCLIPHost:
    """Factory for ``create_host("videoclip", checkpoint, **options)``.

    Args:
        tokenizer: fast BERT uncased tokenizer (object, directory or ``tokenizer.json``).
        s3d_checkpoint: ``s3d_howto100m.pth`` for pixel input (refused in one line without it).
        size: ``base`` (official) or ``tiny``; only without a checkpoint.
        clip_len: frames per S3D clip (official: one second at 30 fps); max_video_len: 32 officially.
    """
    if size not in VIDEOCLIP_SIZES:
        raise ValueError(f"videoclip size must be one of {sorted(VIDEOCLIP_SIZES)}, got {size!r}")
    named = dict(VIDEOCLIP_SIZES[size])
    if tokenizer is None and checkpoint is not None:
        folder = checkpoint if checkpoint.is_dir() else checkpoint.parent
        tokenizer = folder if any((folder / f).exists() for f in ("tokenizer.json", "vocab.txt")) else None
    tok = load_tokenizer(tokenizer, "BERT uncased tokenizer for videoclip", "HF hub google-bert/bert-base-uncased "
                         "(tokenizer.json, vocab.txt); pass host.options.tokenizer=DIR")
    state = None
    if checkpoint is not None:
        path = weight_file_in(checkpoint, ("*.safetensors", "*.pt"), "no videoclip.safetensors in the directory "
                              "(convert checkpoint_best.pt with `python -m hosts.videoclip convert`)")
        state = to_host_state(load_state_dict(path, what="VideoCLIP checkpoint", source=SPEC.tags[""].source))
        try:
            words = state["text_encoder.embeddings.word_embeddings.weight"]
            inter = state["text_encoder.encoder.layer.0.intermediate.dense.weight"]
            state["video_encoder.videomlp.linear1.weight"]  # noqa: B018 - presence check
        except KeyError as err:
            raise CheckpointError(f"{checkpoint}: not a VideoCLIP checkpoint: no {err.args[0]}") from None
        d = words.shape[1]
        config = bert_config(dict(hidden_size=d, num_hidden_layers=count_indexed(state, "text_encoder.encoder.layer."),
                                  num_attention_heads=bert_heads or heads_for_width(d),
                                  intermediate_size=inter.shape[0],
                                  max_position_embeddings=state[
                                      "text_encoder.embeddings.position_embeddings.weight"].shape[0]),
                             vocab_size=words.shape[0])
        named["video_layers"] = count_indexed(state, "video_encoder.bert.encoder.layer.")
    else:
        config = bert_config(named["bert"], vocab_size=len(tok))
    config._attn_implementation = config._attn_implementation or "sdpa"
    for key, value in (("clip_len", clip_len), ("num_frames", num_frames), ("max_words", max_words),
                       ("max_video_len", max_video_len)):
        if value is not None:
            named[key] = value
    named.pop("bert")
    host = VideoCLIPHost(spec, config, tok, with_s3d=s3d_checkpoint is not None or checkpoint is None, **named)
    if s3d_checkpoint is not None:
        host.s3d.load_state_dict(s3d_from_official(load_state_dict(
            Path(s3d_checkpoint), what="S3D HowTo100M weights", source="s3d_howto100m.pth (S3D_HowTo100M README)")))
    if state is not None:
        own = host.state_dict()
        bad = [k for k in state if k in own and state[k].shape != own[k].shape]
        missing, unexpected = host.load_state_dict({k: v for k, v in state.items() if k not in bad}, strict=False)
        hard = [k for k in missing if not k.startswith("s3d.")]
        if strict and (bad or hard or unexpected):
            raise CheckpointError(f"{checkpoint}: does not match videoclip: missing {hard[:5]}, unexpected "
                                  f"{list(unexpected)[:5]}, shape mismatch {bad[:5]}")
        host.load_report = {"missing": list(missing), "unexpected": list(unexpected)}
    return host


def convert(src: Path, dst: Path) -> int:
    """One-off, user-run conversion of the fairseq ``checkpoint_best.pt`` (pickled fairseq / omegaconf objects,
    so ``weights_only=False``: run it only on the file from dl.fbaipublicfiles.com) to safetensors."""
    obj = torch.load(src, map_location="cpu", weights_only=False)
    model = obj.get("model", obj) if isinstance(obj, dict) else obj
    state = {k: v for k, v in to_host_state(model).items() if isinstance(v, Tensor)}
    save_state_dict(state, dst)
    print(f"{dst}: {len(state)} tensors")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hosts.videoclip", description="VideoCLIP checkpoint tools")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="fairseq checkpoint_best.pt -> videoclip.safetensors (runs the pickle)")
    c.add_argument("src", type=Path)
    c.add_argument("dst", type=Path)
    args = ap.parse_args(argv)
    return convert(args.src, args.dst)


if __name__ == "__main__":
    sys.exit(main())
