"""BERT building blocks shared by the BERT-family hosts (``transformers`` classes, official parameter names).

Shapes: ``B`` batch, ``L`` tokens, ``d`` width.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from transformers import BertConfig, BertModel

# Official sizes (bert-base-uncased / bert-large-uncased) and a CPU-sized variant for smoke runs and tests.
BERT_SIZES: dict[str, dict[str, int]] = {
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
}


def bert_config(size: str | dict[str, Any] = "base", vocab_size: int = 30522, layer_norm_eps: float = 1e-12,
                **overrides: Any) -> BertConfig:
    """A ``BertConfig`` of a named size (``base``, ``large``, ``tiny``) or from a dict of fields.

    ``max_position_embeddings`` 512 and ``type_vocab_size`` 2 as in bert-base-uncased unless overridden.
    Dropouts are those of the released configs (0.1); the hosts call ``eval()`` for inference."""
    if isinstance(size, dict):
        fields = dict(size)
    else:
        if size not in BERT_SIZES:
            raise ValueError(f"unknown BERT size {size!r} (sizes: {', '.join(BERT_SIZES)})")
        fields = dict(BERT_SIZES[size])
    fields.setdefault("vocab_size", vocab_size)
    fields.setdefault("layer_norm_eps", layer_norm_eps)
    fields.update(overrides)
    return BertConfig(**fields)


def additive_mask(mask: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """``[B, L]`` bool/0-1 key mask -> ``[B, 1, 1, L]`` additive mask (0 for real keys, dtype min for padding),
    the form BERT's ``get_extended_attention_mask`` produced in transformers 4 and that both the eager and the
    SDPA attention of transformers 5 accept."""
    m = mask.to(dtype)[:, None, None, :]
    return (1.0 - m) * torch.finfo(dtype).min


def run_layers(encoder: nn.Module, states: Tensor, mask: Tensor | None = None,
               encoder_states: Tensor | None = None, encoder_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Run a ``transformers`` ``BertEncoder`` layer by layer.

    Args:
        encoder: a ``BertEncoder`` (its ``layer`` list is used).
        states: ``[B, L, d]`` input embeddings.
        mask: ``[B, L]`` key mask (True = real token) or None.
        encoder_states, encoder_mask: ``[B, M, d]`` / ``[B, M]`` memory for decoder layers with cross-attention.

    Returns:
        (last ``[B, L, d]``, first-layer output ``[B, L, d]``): the first-layer states are what Finsta injects
        into and pools per scene-graph node (sec 5.2).
    """
    add = additive_mask(mask, states.dtype) if mask is not None else None
    enc_add = additive_mask(encoder_mask, states.dtype) if encoder_mask is not None else None
    first = None
    for layer in encoder.layer:
        states = layer(states, add, encoder_states, encoder_attention_mask=enc_add)
        if isinstance(states, tuple):  # older transformers return a tuple
            states = states[0]
        if first is None:
            first = states
    if first is None:
        raise ValueError("encoder has no layers")
    return states, first


def strip_position_ids(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Drop the ``embeddings.position_ids`` buffers that transformers < 4.31 saved in BERT state dicts."""
    return {k: v for k, v in state.items() if not k.endswith("position_ids")}


BUFFERS_NOT_LOADED = ("position_ids", "token_type_ids")


def split_official_state(state: dict[str, Tensor], pretrain_only: str | tuple[str, ...],
                         skip: tuple[str, ...] = BUFFERS_NOT_LOADED) -> tuple[dict[str, Tensor], list[str]]:
    """An official (or own) state dict -> (the keys a host loads, the pre-training-only keys it drops): the
    ``module.`` prefix of DataParallel removed, keys ending in ``skip`` (buffers the host rebuilds, e.g. the
    ``position_ids`` older transformers saved) left out, keys starting with ``pretrain_only`` returned apart."""
    out, dropped = {}, []
    for k, v in state.items():
        k = k[len("module."):] if k.startswith("module.") else k
        if k.endswith(skip):
            continue
        if k.startswith(pretrain_only):
            dropped.append(k)
            continue
        out[k] = v
    return out, dropped


class BertTextEncoder(nn.Module):
    """A BERT text encoder: ``bert`` is a ``transformers.BertModel`` (keys ``bert.embeddings.*``,
    ``bert.encoder.layer.N.*``, ``bert.pooler.dense``), as in Clover's ``text_backbone``, UniVL's ``bert``,
    HD-VILA's and LF-VILA's ``transformer.bert`` / ``text_encoder.bert``.

    ``num_layers`` runs only the first layers (HD-VILA and LF-VILA use layers 0-11 of a BERT-large as the text
    encoder and the rest as the cross encoder)."""

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__()
        self.bert = BertModel(config, add_pooling_layer=add_pooling_layer)

    @property
    def width(self) -> int:
        return self.bert.config.hidden_size

    def forward(self, input_ids: Tensor, mask: Tensor, token_type_ids: Tensor | None = None,
                num_layers: int | None = None) -> tuple[Tensor, Tensor]:
        """``[B, L]`` ids and mask -> (last states ``[B, L, d]``, first-layer states ``[B, L, d]``)."""
        emb = self.bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        layers = self.bert.encoder.layer if num_layers is None else self.bert.encoder.layer[:num_layers]
        return run_layers(_Layers(layers), emb, mask)

    def pool(self, last: Tensor) -> Tensor:
        """BERT's pooler (dense + tanh on ``[CLS]``): ``[B, L, d]`` -> ``[B, d]``."""
        if self.bert.pooler is None:
            return last[:, 0]
        return self.bert.pooler(last)


class _Layers:
    """A view with a ``layer`` attribute over a slice of layers (for :func:`run_layers`)."""

    def __init__(self, layers: Any) -> None:
        self.layer = layers
