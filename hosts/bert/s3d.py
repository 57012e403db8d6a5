"""S3D-G video feature extractor of HowTo100M (Miech et al., CVPR 2020; github.com/antoine77340/S3D_HowTo100M,
``s3dg.py``), native, in the official parameter layout.

UniVL reads its ``mixed_5c`` features (1024-d, one vector per second of video) and VideoCLIP its 512-d
``video_embedding`` (``fc`` on ``mixed_5c``); both official pipelines extract them offline with this network from
``s3d_howto100m.pth``. torchvision's ``s3d`` is a different (Kinetics) model without self-gating, so the network is
written here: separable spatio-temporal convolutions with BatchNorm + ReLU (``STConv3D``), self-gating
(``SelfGating``: a sigmoid gate from the spatio-temporal mean), Inception blocks, TensorFlow-style "SAME" max
pooling, and the space-to-depth input trick of the released model. The word-embedding text branch of the release
(``text_module.*``) is not needed by the hosts and is dropped on load.

Input: ``[B, 3, T, H, W]`` RGB in [0, 1] (the official extractor feeds 16 frames at 224 px per second of video;
``T``, ``H``, ``W`` even). Output: ``mixed_5c`` ``[B, 1024]`` and ``video_embedding`` ``[B, 512]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# (input, b0, b1a, b1b, b2a, b2b, b3b) of mixed_3b ... mixed_5c (s3dg.py, S3D.__init__)
INCEPTION = {
    "mixed_3b": (192, 64, 96, 128, 16, 32, 32), "mixed_3c": (256, 128, 128, 192, 32, 96, 64),
    "mixed_4b": (480, 192, 96, 208, 16, 48, 64), "mixed_4c": (512, 160, 112, 224, 24, 64, 64),
    "mixed_4d": (512, 128, 128, 256, 24, 64, 64), "mixed_4e": (512, 112, 144, 288, 32, 64, 64),
    "mixed_4f": (528, 256, 160, 320, 32, 128, 128), "mixed_5b": (832, 256, 160, 320, 32, 128, 128),
    "mixed_5c": (832, 384, 192, 384, 48, 128, 128),
}


class STConv3D(nn.Module):
    """Conv3d (+ a temporal Conv3d when ``separable`` with a temporal kernel > 1), each with BatchNorm + ReLU."""

    def __init__(self, d_in: int, d_out: int, kernel: Sequence[int], stride: int = 1,
                 padding: int | Sequence[int] = 0, separable: bool = False) -> None:
        super().__init__()
        self.separable = separable
        if separable and kernel[0] != 1:
            p = padding if isinstance(padding, int) else padding[0]
            self.conv1 = nn.Conv3d(d_in, d_out, (1, kernel[1], kernel[2]), (1, stride, stride), (0, p, p), bias=False)
            self.bn1 = nn.BatchNorm3d(d_out)
            self.conv2 = nn.Conv3d(d_out, d_out, (kernel[0], 1, 1), (stride, 1, 1), (p, 0, 0), bias=False)
            self.bn2 = nn.BatchNorm3d(d_out)
        else:
            self.separable = False
            self.conv1 = nn.Conv3d(d_in, d_out, tuple(kernel), stride, padding, bias=False)
            self.bn1 = nn.BatchNorm3d(d_out)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(x))) if self.separable else x


class SelfGating(nn.Module):
    """``x * sigmoid(fc(mean over T, H, W))`` per channel."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d, d)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))[:, :, None, None, None] * x


class InceptionBlock(nn.Module):
    """Four branches (1x1; 1x1 -> separable 3x3x3; 1x1 -> separable 3x3x3; max-pool -> 1x1), each self-gated."""

    def __init__(self, d_in: int, b0: int, b1a: int, b1b: int, b2a: int, b2b: int, b3b: int) -> None:
        super().__init__()
        self.conv_b0 = STConv3D(d_in, b0, (1, 1, 1))
        self.conv_b1_a = STConv3D(d_in, b1a, (1, 1, 1))
        self.conv_b1_b = STConv3D(b1a, b1b, (3, 3, 3), padding=1, separable=True)
        self.conv_b2_a = STConv3D(d_in, b2a, (1, 1, 1))
        self.conv_b2_b = STConv3D(b2a, b2b, (3, 3, 3), padding=1, separable=True)
        self.conv_b3_b = STConv3D(d_in, b3b, (1, 1, 1))
        self.gating_b0, self.gating_b1 = SelfGating(b0), SelfGating(b1b)
        self.gating_b2, self.gating_b3 = SelfGating(b2b), SelfGating(b3b)
        self.output_dim = b0 + b1b + b2b + b3b

    def forward(self, x: Tensor) -> Tensor:
        b0 = self.gating_b0(self.conv_b0(x))
        b1 = self.gating_b1(self.conv_b1_b(self.conv_b1_a(x)))
        b2 = self.gating_b2(self.conv_b2_b(self.conv_b2_a(x)))
        b3 = self.gating_b3(self.conv_b3_b(F.max_pool3d(x, 3, stride=1, padding=1)))
        return torch.cat([b0, b1, b2, b3], 1)


def max_pool_same(x: Tensor, kernel: Sequence[int], stride: Sequence[int]) -> Tensor:
    """TensorFlow "SAME" max pooling as the release replicates it: zero padding of ``max(k - s, 0)`` split
    top / bottom per axis, then ``ceil_mode`` pooling."""
    pads = []
    for k, s in zip(reversed(kernel), reversed(stride)):  # F.pad order: W, H, T
        along = max(k - s, 0)
        pads += [along // 2, along - along // 2]
    return F.max_pool3d(F.pad(x, pads), tuple(kernel), tuple(stride), ceil_mode=True)


class S3D(nn.Module):
    """S3D-G with space-to-depth (the released HowTo100M model); ``fc`` gives the 512-d video embedding."""

    def __init__(self, num_classes: int = 512) -> None:
        super().__init__()
        self.conv1 = STConv3D(24, 64, (2, 4, 4), stride=1, padding=(1, 2, 2))
        self.conv_2b = STConv3D(64, 64, (1, 1, 1))
        self.conv_2c = STConv3D(64, 192, (3, 3, 3), padding=1, separable=True)
        self.gating = SelfGating(192)
        for name, dims in INCEPTION.items():
            setattr(self, name, InceptionBlock(*dims))
        self.fc = nn.Linear(self.mixed_5c.output_dim, num_classes)

    @staticmethod
    def space_to_depth(x: Tensor) -> Tensor:
        """``[B, C, T, H, W]`` -> ``[B, 8C, T/2, H/2, W/2]`` (the release's order of the 2x2x2 offsets)."""
        b, c, t, h, w = x.shape
        if t % 2 or h % 2 or w % 2:
            raise ValueError(f"S3D needs an even number of frames, height and width, got {t}x{h}x{w}")
        x = x.view(b, c, t // 2, 2, h // 2, 2, w // 2, 2).permute(0, 3, 5, 7, 1, 2, 4, 6)
        return x.reshape(b, 8 * c, t // 2, h // 2, w // 2)

    def forward(self, video: Tensor) -> dict[str, Tensor]:
        """``[B, 3, T, H, W]`` in [0, 1] -> ``{"mixed_5c": [B, 1024], "video_embedding": [B, 512]}``."""
        x = self.conv1(self.space_to_depth(video))[:, :, 1:, 1:, 1:]  # replicates TF 'SAME' padding
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))
        x = self.gating(self.conv_2c(self.conv_2b(x)))
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))
        x = self.mixed_3c(self.mixed_3b(x))
        x = max_pool_same(x, (3, 3, 3), (2, 2, 2))
        for name in ("mixed_4b", "mixed_4c", "mixed_4d", "mixed_4e", "mixed_4f"):
            x = getattr(self, name)(x)
        x = max_pool_same(x, (2, 2, 2), (2, 2, 2))
        x = self.mixed_5c(self.mixed_5b(x)).mean(dim=(2, 3, 4))
        return {"mixed_5c": x, "video_embedding": self.fc(x)}


def s3d_from_official(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``s3d_howto100m.pth`` -> :class:`S3D` names: the word-embedding text branch (``text_module.*``) is dropped;
    every other key is the same."""
    return {k: v for k, v in state.items() if not k.startswith("text_module.")}


def s3d_per_clip(s3d: S3D, video: Tensor, clip_len: int, output: str) -> Tensor:
    """``[B, T, 3, H, W]`` frames -> the S3D ``output`` (``mixed_5c`` or ``video_embedding``) of each clip of
    ``clip_len`` frames ``[B, C, D]`` (``C = ceil(T / clip_len)``, the last clip padded by repeating its final
    frame)."""
    b, t = video.shape[:2]
    c = math.ceil(t / clip_len)
    pad = c * clip_len - t
    if pad:
        video = torch.cat([video, video[:, -1:].expand(-1, pad, -1, -1, -1)], 1)
    clips = video.reshape(b * c, clip_len, *video.shape[2:]).transpose(1, 2)
    return s3d(clips)[output].view(b, c, -1)
