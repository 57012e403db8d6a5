"""Video parts of the BERT-family hosts: the Video Swin backbone on torchvision's ``swin3d`` blocks, in the
official Video Swin parameter layout, and the frame / video token embeddings of the cross encoders.

Video Swin (Liu et al., 2022; ``SwinTransformer3D`` of github.com/SwinTransformer/Video-Swin-Transformer, copied
by Clover and VIOLET): ``patch_embed.{proj,norm}``, ``layers.N.blocks.M.{norm1,attn.qkv,attn.proj,
attn.relative_position_bias_table,norm2,mlp.fc1,mlp.fc2}``, ``layers.N.downsample.{reduction,norm}``, ``norm``.
torchvision's ``swin3d`` blocks compute the same function (its ``SwinTransformerBlock`` with
``ShiftedWindowAttention3d`` and ``PatchMerging`` are a port of that code); only the MLP is named ``mlp.0`` /
``mlp.3`` there, which :func:`swin_from_official` / :func:`swin_to_official` map.

Shapes: ``B`` batch, ``C`` channels, ``T`` frames, ``T'`` temporal tokens, ``H'``/``W'`` token grid, ``d`` width.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.swin_transformer import PatchMerging, SwinTransformerBlock
from torchvision.models.video.swin_transformer import PatchEmbed3d, ShiftedWindowAttention3d

# Official Video Swin sizes (embed dim, depths, heads); ``tiny_test`` is CPU-sized for smoke runs and tests.
SWIN_SIZES: dict[str, dict[str, object]] = {
    "T": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    "S": dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    "B": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
    "tiny_test": dict(embed_dim=16, depths=(1, 1), num_heads=(2, 2)),
}


class SwinStage(nn.Module):
    """One Video Swin stage (official ``BasicLayer``): ``blocks`` then an optional ``downsample``."""

    def __init__(self, dim: int, depth: int, heads: int, window: Sequence[int], mlp_ratio: float,
                 drop_path: Sequence[float], downsample: bool) -> None:
        super().__init__()
        norm = partial(nn.LayerNorm, eps=1e-5)
        self.blocks = nn.ModuleList([
            SwinTransformerBlock(dim, heads, window_size=list(window),
                                 shift_size=[0 if i % 2 == 0 else w // 2 for w in window], mlp_ratio=mlp_ratio,
                                 stochastic_depth_prob=drop_path[i], norm_layer=norm,
                                 attn_layer=ShiftedWindowAttention3d)
            for i in range(depth)])
        self.downsample = PatchMerging(dim, norm) if downsample else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, T', H', W', C]`` -> (stage output, possibly merged; output of its first block)."""
        first = None
        for blk in self.blocks:
            x = blk(x)
            if first is None:
                first = x
        if self.downsample is not None:
            x = self.downsample(x)
        return x, first if first is not None else x


class PatchEmbedStride1(nn.Module):
    """VIOLET's ``PatchEmbed3D``: a ``(2, 4, 4)`` tubelet with temporal stride 1 after padding one frame at the end,
    so there are as many temporal tokens as input frames (torchvision's ``PatchEmbed3d`` has stride = tubelet).
    Same parameter names (``proj``, ``norm``); output channels-last ``[B, T, H', W', C]``."""

    def __init__(self, patch_size: Sequence[int], embed_dim: int) -> None:
        super().__init__()
        self.patch_size = tuple(patch_size)
        self.proj = nn.Conv3d(3, embed_dim, kernel_size=self.patch_size, stride=(1, *self.patch_size[1:]))
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        _, _, _, h, w = x.shape
        ph, pw = self.patch_size[1:]
        x = F.pad(x, (0, (pw - w % pw) % pw, 0, (ph - h % ph) % ph, 0, self.patch_size[0] - 1))
        return self.norm(self.proj(x).permute(0, 2, 3, 4, 1))


class VideoSwin3D(nn.Module):
    """Video Swin backbone (official layout) on torchvision ``swin3d`` blocks.

    Args:
        embed_dim, depths, num_heads: stage sizes (``SWIN_SIZES``: Swin-B is Clover's backbone).
        patch_size: tubelet ``(t, h, w)``; the official stride equals it for Clover (``(2, 4, 4)``).
        window_size: ``(8, 7, 7)`` in Clover / VIOLET; shrunk to the input where the input is smaller (as
            officially).
        drop_path_rate: stochastic depth, linearly increasing over blocks (official 0.3 for Swin-B; inactive in
            ``eval()``).
        temporal_stride: 2 (= tubelet, Video Swin / Clover) or 1 (VIOLET: one temporal token per frame).
    """

    def __init__(self, embed_dim: int = 128, depths: Sequence[int] = (2, 2, 18, 2),
                 num_heads: Sequence[int] = (4, 8, 16, 32), patch_size: Sequence[int] = (2, 4, 4),
                 window_size: Sequence[int] = (8, 7, 7), mlp_ratio: float = 4.0, drop_path_rate: float = 0.0,
                 temporal_stride: int | None = None) -> None:
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f"depths {tuple(depths)} and num_heads {tuple(num_heads)} differ in length")
        self.patch_size = tuple(patch_size)
        self.embed_dim = embed_dim
        if temporal_stride in (None, patch_size[0]):
            self.patch_embed = PatchEmbed3d(list(patch_size), 3, embed_dim, norm_layer=partial(nn.LayerNorm, eps=1e-5))
        elif temporal_stride == 1:
            self.patch_embed = PatchEmbedStride1(patch_size, embed_dim)
        else:
            raise ValueError(f"temporal_stride must be 1 or the tubelet length {patch_size[0]}, got {temporal_stride}")
        self.temporal_stride = temporal_stride or patch_size[0]
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.layers = nn.ModuleList()
        start = 0
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            self.layers.append(SwinStage(embed_dim * 2 ** i, depth, heads, window_size, mlp_ratio,
                                         dpr[start:start + depth], downsample=i < len(depths) - 1))
            start += depth
        self.num_features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(self.num_features)

    def forward(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, 3, T, H, W]`` (official NCTHW) -> (``[B, C, T', H', W']`` after the final norm, as the official
        backbone returns; first-block states ``[B, T', H1, W1, embed_dim]`` for Finsta)."""
        x = self.patch_embed(video)
        first = None
        for layer in self.layers:
            x, f = layer(x)
            if first is None:
                first = f
        x = self.norm(x)
        return x.permute(0, 4, 1, 2, 3).contiguous(), first


_MLP = ((".mlp.fc1.", ".mlp.0."), (".mlp.fc2.", ".mlp.3."))


def swin_from_official(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Official Video Swin names -> this module's (only the block MLP differs)."""
    out = {}
    for k, v in state.items():
        for a, b in _MLP:
            k = k.replace(a, b)
        out[k] = v
    return out


def swin_to_official(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Inverse of :func:`swin_from_official` (export to the official layout)."""
    out = {}
    for k, v in state.items():
        for a, b in _MLP:
            k = k.replace(b, a)
        out[k] = v
    return out


def embed_video_tokens(tokens: Tensor, space_pos: Tensor, time_pos: Tensor, type_embedding: nn.Embedding | None,
                       norm: nn.Module, type_id: int = 0) -> Tensor:
    """Frame / video token embedding of the cross encoders (Clover's ``CrossModalTransformer``, VIOLET's
    ``EncImg``): add learned spatial and temporal positions and the video token type, then LayerNorm.

    Args:
        tokens: ``[B, T', S, d]`` video tokens (``S`` spatial tokens per temporal position).
        space_pos: ``[1, 1, S, d]``; time_pos: ``[1, T_max, 1, d]`` (the first ``T'`` rows are used).
        type_embedding: token-type table (row ``type_id`` is added) or None.

    Returns:
        ``[B, T' * S, d]`` in time-major order.
    """
    b, t, s, d = tokens.shape
    if t > time_pos.shape[1]:
        raise ValueError(f"{t} temporal tokens but the host has only {time_pos.shape[1]} temporal positions: feed "
                         "fewer frames (task.options.protocol.num_frames) or build the host for more "
                         "(host.options.num_frames)")
    x = (tokens + space_pos + time_pos[:, :t]).reshape(b, t * s, d)
    if type_embedding is not None:
        x = x + type_embedding(torch.full((b, t * s), type_id, dtype=torch.long, device=x.device))
    return norm(x)


def expand_tubes(x: Tensor, tubelet: int, frames: int) -> Tensor:
    """Repeat each temporal token for every frame it covers: ``[B, T', ...]`` -> ``[B, T, ...]``.

    Video Swin tokens are tubelets of ``tubelet`` frames; Finsta reads states and pooled outputs per host frame
    (sec 5.2, Eq 41), so each frame gets the state of the tube that contains it (the last tube may be padded)."""
    return x.repeat_interleave(tubelet, dim=1)[:, :frames]
