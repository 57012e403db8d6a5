"""Caption decoder head for encoder-only BERT-family hosts (Clover, HD-VILA, All-in-one, ...).

The official code of these hosts has no text decoder, yet the paper reports their captioning (Table 2). This
head is the harness's documented, non-official addition: a small BERT decoder (``transformers.BertLMHeadModel``
with ``is_decoder`` and cross-attention in every layer, as UniVL's 3-layer caption decoder) that reads the host's
cross-modal tokens as memory and is trained by teacher forcing during fine-tuning (it starts from random weights
except for the word / position embeddings, copied from the host's text encoder, as UniVL ties them).

Decoding is greedy from ``[CLS]`` until ``[SEP]`` (BERT's tokens as begin / end of caption).

Shapes: ``B`` batch, ``M`` memory tokens, ``L`` caption tokens, ``d`` width, ``V`` vocabulary.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import BertConfig, BertLMHeadModel

DECODER_LAYERS = 3  # UniVL's caption decoder depth (``--decoder_num_hidden_layers 3``)


class CaptionDecoder(nn.Module):
    """BERT decoder with cross-attention over a memory of host tokens.

    Args:
        config: the host text encoder's ``BertConfig`` (vocabulary, width, heads); ``num_layers`` overrides its
            depth; the memory width must equal ``config.hidden_size``.
        bos_id, eos_id, pad_id: ``[CLS]``, ``[SEP]``, ``[PAD]`` ids of the host tokenizer.
    """

    def __init__(self, config: BertConfig, bos_id: int, eos_id: int, pad_id: int,
                 num_layers: int = DECODER_LAYERS) -> None:
        super().__init__()
        cfg = BertConfig(**{**config.to_dict(), "num_hidden_layers": num_layers, "is_decoder": True,
                            "add_cross_attention": True})
        self.lm = BertLMHeadModel(cfg)
        self.bos_id, self.eos_id, self.pad_id = int(bos_id), int(eos_id), int(pad_id)

    def init_embeddings(self, embeddings: nn.Module) -> None:
        """Copy word and position embeddings from a ``BertEmbeddings`` of the same width (UniVL ties them)."""
        own = self.lm.bert.embeddings
        with torch.no_grad():
            for name in ("word_embeddings", "position_embeddings"):
                src, dst = getattr(embeddings, name).weight, getattr(own, name).weight
                if src.shape == dst.shape:
                    dst.copy_(src)

    def logits(self, ids: Tensor, mask: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        """``[B, L]`` ids -> next-token logits ``[B, L, V]`` (causal self-attention, cross-attention to memory)."""
        out = self.lm(input_ids=ids, attention_mask=mask.long(), encoder_hidden_states=memory,
                      encoder_attention_mask=memory_mask.long(), use_cache=False)
        return out.logits

    def loss(self, ids: Tensor, mask: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        """Teacher-forced cross-entropy of tokens 2..L given their prefixes (``ids`` start with ``[CLS]`` and end
        with ``[SEP]``, padding excluded)."""
        logits = self.logits(ids, mask, memory, memory_mask)[:, :-1]
        target = ids[:, 1:].masked_fill(~mask[:, 1:].bool(), -100)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100)

    @torch.no_grad()
    def generate(self, memory: Tensor, memory_mask: Tensor, max_new_tokens: int = 20) -> Tensor:
        """Greedy decoding -> ``[B, <= max_new_tokens]`` generated ids (without ``[CLS]``; ``[PAD]`` after
        ``[SEP]``)."""
        b = memory.shape[0]
        ids = torch.full((b, 1), self.bos_id, dtype=torch.long, device=memory.device)
        done = torch.zeros(b, dtype=torch.bool, device=memory.device)
        for _ in range(max_new_tokens):
            mask = torch.ones_like(ids, dtype=torch.bool)
            nxt = self.logits(ids, mask, memory, memory_mask)[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, self.pad_id), nxt)
            ids = torch.cat([ids, nxt[:, None]], 1)
            done |= nxt == self.eos_id
            if bool(done.all()):
                break
        return ids[:, 1:]


def decode_captions(decoder: CaptionDecoder, tokenizer: Any, memory: Tensor, memory_mask: Tensor,
                    max_new_tokens: int = 20) -> list[str]:
    """Greedy captions of ``decoder`` over a host's cross-modal ``memory`` ``[B, L, d]`` (``memory_mask``
    ``[B, L]``), decoded by ``tokenizer`` without special tokens and stripped: ``B`` strings."""
    ids = decoder.generate(memory, memory_mask, max_new_tokens)
    return [s.strip() for s in tokenizer.batch_decode(ids.tolist(), skip_special_tokens=True)]


class DecoderCaptioning:
    """Captioning for an encoder-only host through its :class:`CaptionDecoder` (``self.caption_decoder``): the host
    defines ``_caption_memory(video, prompts) -> (memory [B, L, d], mask [B, L])`` (its cross-modal tokens),
    ``tokenize`` and ``tokenizer``. List it before ``Host`` in the bases so these override the base's refusals."""

    def caption_loss(self, video: Tensor, texts: list[str], frame_times: Tensor | None = None) -> Tensor:
        """Teacher-forced decoder loss of ``texts`` over the caption memory (scalar)."""
        memory, mmask = self._caption_memory(video, None)
        tok = self.tokenize(texts)
        return self.caption_decoder.loss(tok.input_ids, tok.attention_mask, memory, mmask)

    def generate(self, video: Tensor, prompts: list[str] | None = None, max_new_tokens: int = 20,
                 frame_times: Tensor | None = None) -> list[str]:
        """Greedy captions (``prompts`` condition the memory where the host reads text)."""
        memory, mmask = self._caption_memory(video, prompts)
        return decode_captions(self.caption_decoder, self.tokenizer, memory, mmask, max_new_tokens)
