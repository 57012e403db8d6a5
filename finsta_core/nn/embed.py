"""Input embeddings: hashed open-vocabulary label words, raw-timestamp sinusoids (sec 4.1, 4.2)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from finsta_core.graphs.scatter import scatter_mean


class HashedLabelEmbedding(nn.Module):
    """Label embedding = mean of the embeddings of its words; word ids are crc32 hashes mod ``vocab``
    (no external vocabulary; collisions are shared rows, as in the hashing trick).

    ``std``: init std of the rows; None = ``d ** -0.5`` (unit-norm rows, the literal setting). ``std=1.0`` puts
    labels on the scale of ``nn.Embedding``'s N(0, 1) node-type rows (``FinstaConfig.input_scale="unit"``):
    with ``d ** -0.5`` a label row has norm 1 against a type row's ``d ** 0.5`` and the label is drowned.
    """

    def __init__(self, vocab: int, d: int, std: float | None = None) -> None:
        super().__init__()
        self.vocab = vocab
        self.emb = nn.Embedding(vocab, d)
        nn.init.normal_(self.emb.weight, std=d ** -0.5 if std is None else std)

    def forward(self, words: Tensor, word_node: Tensor, n: int) -> Tensor:
        """``words [W]`` hashed ids, ``word_node [W]`` -> ``[n, d]``."""
        return scatter_mean(self.emb(torch.remainder(words, self.vocab)), word_node, n)


def time_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding ``[N, dim]`` of raw timestamps in seconds (``dim`` even)."""
    half = dim // 2
    freq = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    ang = t.float().unsqueeze(1) * freq.unsqueeze(0)
    return torch.cat([ang.sin(), ang.cos()], 1)
