"""Small real torch modules of different shapes for the bring-your-own-model adapter tests."""

from __future__ import annotations

import torch
from torch import nn


def _encoder(d: int, layers: int) -> nn.Module:
    m = nn.Module()
    m.layers = nn.ModuleList([nn.TransformerEncoderLayer(d, 2, 2 * d, dropout=0.0, batch_first=True)
                              for _ in range(layers)])
    m.norm = nn.LayerNorm(d)
    return m


def _run(enc: nn.Module, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
    for layer in enc.layers:
        x = layer(x, src_key_padding_mask=pad)
    return enc.norm(x)


class DualEncoder(nn.Module):
    """Text transformer + per-frame ViT with a [CLS] (a CLIP-like dual encoder; no cross-modal encoder)."""

    def __init__(self, vocab: int = 64, d: int = 32, dv: int = 40, patch: int = 16, res: int = 32, embed: int = 16):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.zeros(64, d))
        self.text = _encoder(d, 2)
        self.patch = nn.Conv2d(3, dv, patch, patch)
        self.cls = nn.Parameter(torch.zeros(dv))
        self.vpos = nn.Parameter(torch.zeros(1 + (res // patch) ** 2, dv))
        self.video = _encoder(dv, 2)
        self.text_proj, self.video_proj = nn.Linear(d, embed), nn.Linear(dv, embed)

    def encode_text(self, input_ids, attention_mask):
        x = self.tok(input_ids) + self.pos[: input_ids.shape[1]]
        return _run(self.text, x, attention_mask == 0)

    def encode_video(self, video):
        b, t = video.shape[:2]
        x = self.patch(video.flatten(0, 1)).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], 1) + self.vpos
        return _run(self.video, x).view(b, t, *x.shape[1:])

    def forward(self, input_ids, attention_mask, video):
        return self.encode_text(input_ids, attention_mask), self.encode_video(video)


class SingleStream(nn.Module):
    """One shared encoder over [text tokens; all frames' patches] (an All-in-one-like host: cross only)."""

    def __init__(self, vocab: int = 64, d: int = 32, patch: int = 16, res: int = 32):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.patch = nn.Conv2d(3, d, patch, patch)
        self.types = nn.Embedding(2, d)
        self.frame_pos = nn.Embedding(16, d)
        self.enc = _encoder(d, 2)
        self.itm = nn.Linear(d, 2)

    def forward(self, input_ids, attention_mask, video):
        b, t = video.shape[:2]
        txt = self.tok(input_ids) + self.types.weight[0]
        v = self.patch(video.flatten(0, 1)).flatten(2).transpose(1, 2).reshape(b, t, -1, txt.shape[-1])
        v = (v + self.frame_pos.weight[:t, None] + self.types.weight[1]).flatten(1, 2)
        pad = torch.cat([attention_mask == 0, torch.zeros(b, v.shape[1], dtype=torch.bool, device=v.device)], 1)
        return _run(self.enc, torch.cat([txt, v], 1), pad)


def itm_loss(model, captured, inputs):
    """A host's own loss read from the hooks (here: matched-pair ITM on the first token)."""
    h = captured["enc.norm"][:, 0]
    return {"vla": nn.functional.cross_entropy(model.itm(h), torch.ones(h.shape[0], dtype=torch.long))}
