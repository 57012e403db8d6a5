import pytest
import torch

pytest.importorskip("av")

from finsta_core.sg.keyframes import (  # noqa: E402
    KeyframeConfig,
    VideoDecodeError,
    decode_frames,
    extract_keyframes,
    kmeans,
    select_keyframes,
)
from tests.sg.videos import write_corrupt, write_video  # noqa: E402


def test_decode_and_keyframes(tmp_path):
    p = write_video(str(tmp_path / "a.mp4"), n_frames=32, fps=8)
    frames, times = decode_frames(p, sample_fps=8)
    assert frames.shape == (32, 3, 64, 64) and 0 <= float(frames.min()) and float(frames.max()) <= 1
    assert torch.allclose(times, torch.arange(32) / 8.0, atol=1e-3)
    cfg = KeyframeConfig(sample_fps=8, min_k=10, max_k=12)
    kf, ts = extract_keyframes(p, cfg)
    assert 10 <= kf.shape[0] <= 12
    assert bool((ts.diff() > 0).all())  # original order, raw timestamps
    assert bool(torch.isin(ts, times).all())


def test_dark_frames_are_dropped():
    frames = torch.rand(40, 3, 16, 16)
    frames[:5] = 0.0  # black lead-in
    idx = select_keyframes(frames, KeyframeConfig(min_k=10, max_k=20))
    assert not bool((idx < 5).any())


def test_kmeans_separates_clusters():
    x = torch.cat([torch.zeros(10, 2), torch.ones(10, 2) * 5]) + 0.01 * torch.randn(20, 2)
    a = kmeans(x, 2, seed=0)
    assert a[:10].unique().numel() == 1 and a[10:].unique().numel() == 1 and a[0] != a[10]


def test_corrupt_and_missing_video(tmp_path):
    with pytest.raises(VideoDecodeError, match="bad.mp4"):
        decode_frames(write_corrupt(str(tmp_path / "bad.mp4")))
    with pytest.raises(VideoDecodeError, match="does not exist"):
        decode_frames(str(tmp_path / "nope.mp4"))


def test_decode_a_clip_span_keeps_absolute_times(tmp_path):
    """HD-VILA-style records point into a longer video: only the span is decoded, times stay absolute."""
    p = write_video(str(tmp_path / "long.mp4"), n_frames=32, fps=8)
    frames, times = decode_frames(p, sample_fps=4, span=(1.0, 2.5))
    assert frames.shape[0] == len(times) >= 5 and float(times.min()) >= 1.0 - 1e-6 and float(times.max()) < 2.5
    kf, ts = extract_keyframes(p, KeyframeConfig(sample_fps=4, min_k=2, max_k=3), span=(1.0, 2.5))
    assert 2 <= kf.shape[0] <= 3 and float(ts.min()) >= 1.0 - 1e-6
    with pytest.raises(VideoDecodeError, match="bad clip span"):
        decode_frames(p, span=(2.0, 1.0))
