"""Shared parts of the BERT-family hosts (UniVL, VideoCLIP, VIOLET, MCQ, All-in-one, Clover, HD-VILA, LF-VILA).

Each part is built from maintained classes (``transformers`` BERT, ``torchvision`` Video Swin blocks) and keeps
the parameter names the official checkpoints use, so a host file only says what is its own (see
``docs/hosts-bert-family.md``):

* :mod:`hosts.bert.core`: BERT configs, the additive attention mask, running a ``BertEncoder`` layer by layer
  (first-layer states for Finsta, sec 5.2), and the BERT-style text encoder.
* :mod:`hosts.bert.video`: frame / video token embeddings (spatial + temporal positions, token type, LayerNorm)
  and the Video Swin backbone on torchvision's ``swin3d`` blocks in the official ``layers.N.blocks.M`` layout.
* :mod:`hosts.bert.heads`: retrieval projections, the QA classifier and the multiple-choice scorer.
* :mod:`hosts.bert.decoder`: the caption decoder head for encoder-only hosts (a small BERT decoder with
  cross-attention to the host's cross-modal tokens, trained in fine-tuning).
* :mod:`hosts.bert.s3d`: the HowTo100M S3D-G feature extractor (UniVL's 1024-d, VideoCLIP's 512-d features).
* :mod:`hosts.bert.sizes`: sizes read off a state dict for ``infer_config`` (numbered blocks, heads of a width,
  Video Swin windows).
"""

from __future__ import annotations

from hosts.bert.core import BertTextEncoder, additive_mask, bert_config, run_layers, strip_position_ids
from hosts.bert.decoder import CaptionDecoder
from hosts.bert.heads import MultipleChoiceHead, ProjectionMLP, QAClassifier, nce_logits
from hosts.bert.video import (
    SWIN_SIZES,
    VideoSwin3D,
    embed_video_tokens,
    expand_tubes,
    swin_from_official,
    swin_to_official,
)

__all__ = ["SWIN_SIZES", "BertTextEncoder", "CaptionDecoder", "MultipleChoiceHead", "ProjectionMLP", "QAClassifier",
           "VideoSwin3D", "additive_mask", "bert_config", "embed_video_tokens", "expand_tubes", "nce_logits",
           "run_layers", "strip_position_ids", "swin_from_official", "swin_to_official"]
