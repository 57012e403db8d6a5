"""Tokenizers for host wrappers: loading without hub access and character spans per token.

Finsta pools a host's first-layer text states per scene-graph node over the node's word span (sec 5.2,
``docs/design/finsta-core.md`` B.5), so every host tokenization returns, next to the ids, the character
span ``[start, end)`` of each token in its source text (``-1`` for special / padding tokens), taken
from the fast tokenizer's offset mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from hosts.base import CheckpointError


@dataclass
class TokenizedText:
    """``B`` texts tokenised and padded to ``L``.

    Attributes:
        input_ids: ``[B, L]`` long.
        attention_mask: ``[B, L]`` bool, True for real tokens.
        char_spans: ``[B, L, 2]`` long ``[start, end)`` in the text, ``-1`` for special/pad tokens.
    """

    input_ids: Tensor
    attention_mask: Tensor
    char_spans: Tensor

    def to(self, device: torch.device | str) -> TokenizedText:
        return TokenizedText(self.input_ids.to(device), self.attention_mask.to(device), self.char_spans.to(device))


def load_tokenizer(tokenizer: Any, what: str = "tokenizer", source: str = "") -> Any:
    """A tokenizer object as is, or one loaded from a local directory / ``tokenizer.json`` file.

    Never reaches the network (``local_files_only=True``). Only fast tokenizers are accepted because
    the char spans come from ``return_offsets_mapping``.

    Raises:
        CheckpointError: the path does not exist (the message says what it is and where to get it).
        TypeError: a slow tokenizer (no offset mapping).
    """
    if tokenizer is None:
        raise CheckpointError(f"no {what} given: pass `tokenizer=` (object, local directory or tokenizer.json)"
                              + (f"; get it from {source}" if source else ""))
    if isinstance(tokenizer, (str, Path)):
        path = Path(tokenizer)
        if not path.exists():
            where = f" (get it from {source})" if source else ""
            raise CheckpointError(f"missing {what}: {path}{where}")
        if path.is_file():
            from transformers import PreTrainedTokenizerFast

            tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(path))
        else:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True, use_fast=True)
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(f"{what} must be a fast (Rust) tokenizer: character spans need the offset mapping")
    return tokenizer


def tokenize_with_spans(tokenizer: Any, texts: list[str], max_length: int | None = None,
                        add_special_tokens: bool = True, padding_side: str = "right") -> TokenizedText:
    """Tokenise ``texts`` (truncating to ``max_length``) with the char span of every token.

    Args:
        tokenizer: a fast tokenizer (see :func:`load_tokenizer`); needs a pad token when ``B > 1``.
        texts: ``B`` strings.
        max_length: truncate to this many tokens (special tokens included).
        add_special_tokens: let the tokenizer's post-processor add its BOS/EOS/CLS/SEP.
        padding_side: ``"right"`` (encoders) or ``"left"`` (decoder-only generation).

    Returns:
        :class:`TokenizedText` with ``[B, L]`` ids and mask and ``[B, L, 2]`` spans.
    """
    enc = tokenizer(list(texts), add_special_tokens=add_special_tokens, truncation=max_length is not None,
                    max_length=max_length, return_offsets_mapping=True, return_special_tokens_mask=True,
                    padding=False)
    rows = enc["input_ids"]
    length = max((len(r) for r in rows), default=0)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    b = len(rows)
    ids = torch.full((b, length), pad_id, dtype=torch.long)
    mask = torch.zeros(b, length, dtype=torch.bool)
    spans = torch.full((b, length, 2), -1, dtype=torch.long)
    for i, (r, offs, special) in enumerate(zip(rows, enc["offset_mapping"], enc["special_tokens_mask"])):
        n = len(r)
        sl = slice(0, n) if padding_side == "right" else slice(length - n, length)
        ids[i, sl] = torch.tensor(r, dtype=torch.long)
        mask[i, sl] = True
        sp = torch.tensor(offs, dtype=torch.long).view(n, 2)
        sp[torch.tensor(special, dtype=torch.bool)] = -1
        spans[i, sl] = sp
    return TokenizedText(ids, mask, spans)
