"""Decoding real short videos written here, sampling rules, resize/crop, and the DataLoader's failure handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tasks.base import Sample, VideoProtocol
from tasks.loader import VideoBatch, make_loader
from tasks.video import VideoDecodeError, decode, probe, resample_frames, resize_crop, sample_times

av = pytest.importorskip("av")


@pytest.fixture(scope="module")
def video(tmp_path_factory, video_writer):
    return video_writer(tmp_path_factory.mktemp("vid") / "clip.mp4", n_frames=20, fps=10)


def test_sample_times_rules():
    p = VideoProtocol(num_frames=4, sampling="uniform")
    assert sample_times(2.0, p).tolist() == [0.25, 0.75, 1.25, 1.75]
    assert sample_times(2.0, p, start=10.0).tolist() == [10.25, 10.75, 11.25, 11.75]
    seg = VideoProtocol(num_frames=4, sampling="segment")
    assert sample_times(2.0, seg).tolist() == [0.25, 0.75, 1.25, 1.75]  # evaluation: centres
    rnd = sample_times(2.0, seg, train=True, rng=np.random.default_rng(0))
    assert all(0.5 * i <= t < 0.5 * (i + 1) for i, t in enumerate(rnd)) and rnd.tolist() != [0.25, 0.75, 1.25, 1.75]
    fps = VideoProtocol(num_frames=None, fps=2.0, sampling="fps")
    assert sample_times(2.0, fps).tolist() == [0.0, 0.5, 1.0, 1.5]
    capped = VideoProtocol(num_frames=3, fps=10.0, sampling="fps")
    assert len(sample_times(2.0, capped)) == 3


def test_probe_and_decode_frame_identity(video):
    info = probe(video)
    assert info.fps == 10.0 and info.duration == pytest.approx(2.0) and (info.height, info.width) == (48, 64)
    frames, times = decode(video, VideoProtocol(num_frames=4, resolution=32))
    assert frames.shape == (4, 3, 48, 64) and frames.dtype == torch.uint8
    # targets 0.25/0.75/1.25/1.75 s -> frames 2, 7, 12, 17 (grey level 10 * i, lossy codec)
    assert times.tolist() == pytest.approx([0.2, 0.7, 1.2, 1.7])
    assert frames[:, 0].float().mean((1, 2)).tolist() == pytest.approx([20, 70, 120, 170], abs=6)


def test_decode_span_and_fps(video):
    frames, times = decode(video, VideoProtocol(num_frames=2), span=(1.0, 2.0))
    assert times.tolist() == pytest.approx([1.2, 1.7])
    _, t = decode(video, VideoProtocol(num_frames=None, fps=4.0, sampling="fps"))
    assert t.tolist() == pytest.approx([0.0, 0.2, 0.5, 0.7, 1.0, 1.2, 1.5, 1.7])


def test_decode_errors_name_the_file(tmp_path):
    with pytest.raises(VideoDecodeError, match="not found"):
        decode(tmp_path / "nope.mp4", VideoProtocol())
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 20)
    with pytest.raises(VideoDecodeError, match="bad.mp4"):
        decode(bad, VideoProtocol())
    with pytest.raises(VideoDecodeError, match="decord"):
        decode(bad, VideoProtocol(backend="decord")) if not _has_decord() else pytest.skip("decord installed")


def _has_decord() -> bool:
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


def test_resize_crop():
    x = torch.arange(2 * 3 * 40 * 80, dtype=torch.float32).reshape(2, 3, 40, 80) / 1e4
    assert resize_crop(x, 20).shape == (2, 3, 20, 20)
    assert resize_crop(x, 20, "none").shape == (2, 3, 20, 20)
    u8 = torch.randint(0, 255, (2, 3, 40, 80), dtype=torch.uint8)
    a = resize_crop(u8, 20, "random", np.random.default_rng(0))
    assert a.dtype == torch.uint8 and a.shape == (2, 3, 20, 20)
    same = resize_crop(u8, 40, "center")  # no resize needed: the exact centre crop
    assert torch.equal(same, u8[..., 20:60])


def test_resample_pre_decoded_frames():
    frames = torch.arange(10).view(10, 1, 1, 1).expand(10, 3, 4, 4).clone()
    out, t = resample_frames(frames, torch.arange(10) * 0.5, VideoProtocol(num_frames=5))
    assert out[:, 0, 0, 0].tolist() == [1, 3, 5, 7, 9] and t.tolist() == [0.5, 1.5, 2.5, 3.5, 4.5]


def test_loader_skips_missing_and_unreadable(video, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"garbage" * 10)
    synth = Sample(id="s", frames=torch.rand(6, 3, 16, 16), timestamps=torch.arange(6).float())
    samples = [Sample(id="ok", video=str(video)), Sample(id="bad", video=str(bad)),
               Sample(id="gone", video=str(tmp_path / "gone.mp4")), synth, Sample(id="none")]
    batches = list(make_loader(samples, VideoProtocol(num_frames=4, resolution=16), batch_size=5))
    assert len(batches) == 1
    b: VideoBatch = batches[0]
    assert [s.id for s in b.samples] == ["ok", "s"] and b.video.shape == (2, 4, 3, 16, 16)
    assert {i for i, _ in b.failed} == {"bad", "gone", "none"}
    assert b.video.min() >= 0 and b.video.max() <= 1 and b.frame_mask.all()


def test_loader_preprocess_padding_and_workers(video):
    class Norm:
        def __call__(self, x):
            return (x.float() / 255.0 - 0.5) / 0.25

    p = VideoProtocol(num_frames=None, fps=5.0, sampling="fps", resolution=16)
    samples = [Sample(id="long", video=str(video)), Sample(id="short", video=str(video), extra={"clip_span": (0, 1)})]
    b = next(iter(make_loader(samples, p, preprocess=Norm(), batch_size=2, num_workers=1)))
    assert b.video.shape == (2, 10, 3, 16, 16) and b.frame_mask.sum(1).tolist() == [10, 5]
    assert b.video.min() < 0  # normalised by the preprocess


def test_loader_training_randomness_is_seeded(video):
    p = VideoProtocol(num_frames=4, sampling="segment", resolution=16, crop="random")
    s = [Sample(id="a", video=str(video))]
    t1 = next(iter(make_loader(s, p, train=True, seed=1))).frame_times
    t2 = next(iter(make_loader(s, p, train=True, seed=1))).frame_times
    t3 = next(iter(make_loader(s, p, train=True, seed=2))).frame_times
    assert torch.equal(t1, t2) and not torch.equal(t1, t3)


# ------------------------------------------------------------------------------------------ truncation and seeking
@pytest.fixture(scope="module")
def long_video(tmp_path_factory, video_writer):
    """10 s at 10 fps, a keyframe every second, index at the front (the layout of web videos)."""
    return video_writer(tmp_path_factory.mktemp("long") / "long.mp4", n_frames=100, fps=10, gop=10, faststart=True)


@pytest.fixture(scope="module")
def truncated(tmp_path_factory, long_video):
    """The first half of the bytes of ``long_video``: it opens and still declares 10 s; frames stop at 3.5 s."""
    data = long_video.read_bytes()
    path = tmp_path_factory.mktemp("trunc") / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    return path


def test_truncated_video_raises_instead_of_repeating_the_last_frame(truncated):
    from tasks.video import check_video

    assert probe(truncated).duration == pytest.approx(10.0)  # the container still says 10 s
    with pytest.raises(VideoDecodeError, match=r"truncated.*cut\.mp4"):
        decode(truncated, VideoProtocol(num_frames=4, resolution=32))
    with pytest.raises(VideoDecodeError, match=r"truncated.*cut\.mp4"):
        check_video(truncated)
    frames, times = decode(truncated, VideoProtocol(num_frames=2, resolution=32), span=(0.0, 3.0))  # covered part
    assert times.tolist() == pytest.approx([0.7, 2.2])


def test_truncated_video_is_a_counted_failure_in_the_loader(truncated, long_video):
    samples = [Sample(id="ok", video=str(long_video)), Sample(id="cut", video=str(truncated))]
    batch = next(iter(make_loader(samples, VideoProtocol(num_frames=4, resolution=32), batch_size=2)))
    assert [s.id for s in batch.samples] == ["ok"] and batch.failed[0][0] == "cut"
    assert "truncated" in batch.failed[0][1]


def test_healthy_video_passes_check(long_video, video):
    from tasks.video import check_video

    assert check_video(long_video).duration == pytest.approx(10.0)
    assert check_video(video).num_frames == 20


def test_long_video_seeks_instead_of_decoding_every_frame(long_video):
    from tasks.video import decode_pyav

    p = VideoProtocol(num_frames=4, resolution=32)  # targets 1.25, 3.75, 6.25, 8.75 s -> frames 12, 37, 62, 87
    straight, seeking = {}, {}
    f_all, t_all = decode_pyav(long_video, p, seek_ahead_s=1000.0, stats=straight)
    f_seek, t_seek = decode_pyav(long_video, p, seek_ahead_s=1.0, stats=seeking)
    assert t_all.tolist() == t_seek.tolist() == pytest.approx([1.2, 3.7, 6.2, 8.7])
    assert torch.equal(f_all, f_seek)
    assert f_seek[:, 0].float().mean((1, 2)).tolist() == pytest.approx([120, (370 % 256), (620 % 256), (870 % 256)],
                                                                       abs=6)
    assert straight["seeks"] == 0 and straight["decoded"] >= 88
    assert seeking["seeks"] == 4 and seeking["decoded"] <= 4 * 10  # at most one keyframe interval per target


def test_span_past_the_end_of_the_file_is_refused(video):
    """A segment annotated past the end of the downloaded file (2 s here) used to repeat the last frame."""
    with pytest.raises(VideoDecodeError, match="truncated"):
        decode(video, VideoProtocol(num_frames=4), span=(1.0, 5.0))
    _, t = decode(video, VideoProtocol(num_frames=2), span=(1.0, 2.1))  # within slack of the end: accepted
    assert t.tolist() == pytest.approx([1.2, 1.8])


def test_gif_with_a_long_final_delay_is_not_truncated(tmp_path):
    """A GIF whose last frame stays on screen 2.7 s (TGIF GIFs pause at the end) covers its declared 3 s: the
    truncation check uses the frame's own duration, not only the average frame rate (4 frames / 3 s)."""
    import fractions

    from tasks.video import check_video

    path = tmp_path / "pause.gif"
    with av.open(str(path), "w") as c:
        st = c.add_stream("gif", rate=10)
        st.width, st.height, st.pix_fmt = 32, 32, "rgb8"
        packets = []
        for i in range(4):
            f = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 60 * i, np.uint8), format="rgb24")
            f.pts, f.time_base = i, fractions.Fraction(1, 10)
            packets += list(st.encode(f))
        packets += list(st.encode())
        packets[-1].duration = 27  # 2.7 s in the stream's 1/10 s time base
        for pkt in packets:
            c.mux(pkt)
    assert probe(path).duration == pytest.approx(3.0)
    _, t = decode(path, VideoProtocol(num_frames=8, resolution=32, crop="none"))
    assert t.tolist() == pytest.approx([0.1, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3])
    assert check_video(path).num_frames == 4
