"""The small pieces the BERT-family hosts share (hosts/bert/heads.py multiple-choice helpers, hosts/bert/sizes.py,
hosts/bert/s3d.py ``s3d_per_clip``): ragged option lists, sizes read off state-dict keys, clip cutting."""

from __future__ import annotations

import pytest
import torch

from hosts.bert.heads import option_similarities, option_texts, pad_option_scores
from hosts.bert.s3d import s3d_per_clip
from hosts.bert.sizes import count_indexed, heads_for_width, swin_window
from hosts.errors import CheckpointError


def test_ragged_options_padded_with_minus_inf():
    options = [["a", "b", "c"], ["d"]]
    rows, texts = option_texts(["q1", ""], options)
    assert rows == [0, 0, 0, 1] and texts == ["q1 a", "q1 b", "q1 c", "d"]
    assert option_texts(["", "q"], [["x"], ["y"]], strip=False)[1] == [" x", "q y"]
    flat = torch.tensor([1.0, 2.0, 3.0, 4.0])
    want = torch.tensor([[1.0, 2.0, 3.0], [4.0, float("-inf"), float("-inf")]])
    assert torch.equal(pad_option_scores(flat, options), want)
    text, video = torch.randn(4, 5), torch.randn(2, 5)
    sims = option_similarities(text, video, options)
    assert torch.equal(sims[0], text[:3] @ video[0]) and sims[1, 0] == text[3] @ video[1]
    assert torch.isinf(sims[1, 1:]).all()


def test_sizes_from_state_keys():
    state = {f"enc.layer.{i}.w": None for i in (0, 1, 3)} | {"enc.layer.x": None, "other.layer.0.w": None}
    assert count_indexed(state, "enc.layer.") == 3 and count_indexed(state, "none.") == 0
    assert [heads_for_width(d) for d in (32, 48, 768, 1024, 8)] == [2, 3, 12, 16, 1]
    assert swin_window((2 * 8 - 1) * (2 * 7 - 1) ** 2, 8 * 7 * 7) == (8, 7, 7)
    with pytest.raises(CheckpointError, match="bias table of 7 rows"):
        swin_window(7, 3)


def test_s3d_clips_pad_with_the_last_frame():
    seen = []

    def fake_s3d(clips):  # [B * C, 3, clip_len, H, W]
        seen.append(clips)
        return {"out": clips.mean((1, 3, 4))}

    video = torch.rand(2, 5, 3, 4, 4)
    out = s3d_per_clip(fake_s3d, video, 2, "out")
    assert out.shape == (2, 3, 2) and seen[0].shape == (6, 3, 2, 4, 4)
    assert torch.equal(seen[0][2, :, 0], video[0, 4]) and torch.equal(seen[0][2, :, 1], video[0, 4])  # padded
    assert torch.equal(seen[0][3, :, 0], video[1, 0])


def test_split_official_state():
    from hosts.bert.core import BUFFERS_NOT_LOADED, split_official_state

    t = torch.zeros(1)
    state = {"module.a.weight": t, "b.embeddings.position_ids": t, "b.token_type_ids": t, "cls.head": t,
             "bn.num_batches_tracked": t}
    out, dropped = split_official_state(state, ("cls.",))
    assert set(out) == {"a.weight", "bn.num_batches_tracked"} and dropped == ["cls.head"]
    out, _ = split_official_state(state, "cls.", (*BUFFERS_NOT_LOADED, "num_batches_tracked"))
    assert set(out) == {"a.weight"}


def test_weight_file_in_prefers_the_first_pattern(tmp_path):
    from hosts.checkpoints import weight_file_in

    assert weight_file_in(tmp_path / "x.pt", ("*.bin",), "unused") == tmp_path / "x.pt"  # a file: itself
    with pytest.raises(CheckpointError, match=r"holds nothing$"):
        weight_file_in(tmp_path, ("*.pt",), "holds nothing")
    for name in ("b.safetensors", "a.safetensors", "z.pt"):
        (tmp_path / name).write_bytes(b"0")
    assert weight_file_in(tmp_path, ("*.pt", "*.safetensors"), "-").name == "z.pt"
    assert weight_file_in(tmp_path, ("*.bin", "*.safetensors"), "-").name == "a.safetensors"
