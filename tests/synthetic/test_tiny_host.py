"""The tiny host family meets the host contract (``tests/hosts/contract.py``), round-trips save/load, and can
be pre-trained by a generic loop on its own losses (``posttrain_outputs(..., with_losses=True)``)."""

from __future__ import annotations

import pytest
import torch

from hosts.base import HostBatch
from hosts.registry import create_host, get_spec
from tasks.synthetic import SynthConfig, build_split
from tests.hosts.contract import check_host_contract

TINY = ["tiny", "tiny_dual", "tiny_cross"]


@pytest.fixture(scope="module")
def batch():
    samples = build_split("pairs", "train", SynthConfig.quick(), n=6, with_graphs=False)
    host = create_host("tiny")
    idx = torch.linspace(0, samples[0].frames.shape[0] - 1, 8).round().long()
    video = host.preprocess(torch.stack([s.frames[idx] for s in samples]))
    times = torch.stack([s.timestamps[idx] for s in samples])
    return HostBatch(video, times, [s.texts[0] for s in samples])


@pytest.mark.parametrize("name", TINY)
def test_contract(name, batch):
    torch.manual_seed(0)
    host = create_host(name)
    out = check_host_contract(host, batch)
    assert set(out.losses) == {"vla", "mlm", "cap"}
    n = sum(p.numel() for p in host.parameters())
    assert 0.15e6 < n < 1.0e6, n


@pytest.mark.parametrize("name", TINY)
def test_caption_pretraining_is_a_switch(name, batch):
    """``caption_pretrain=False`` leaves exactly the paper's host losses (Eq 42: ``vla``, ``mlm``)."""
    out = create_host(name, caption_pretrain=False).posttrain_outputs(batch, with_losses=True)
    assert set(out.losses) == {"vla", "mlm"}


def test_embeddings_are_not_collapsed_at_init(batch):
    """Random-init embeddings must differ across clips/captions, or InfoNCE starts on a plateau at ln(B)
    (small position embeddings; max-pooled video tokens)."""
    torch.manual_seed(0)
    host = create_host("tiny_dual")
    host.eval()
    with torch.no_grad():
        t, v = host.encode_text(batch.texts), host.encode_video(batch.video)
    off = ~torch.eye(len(batch.texts), dtype=torch.bool)
    assert float((t @ t.t())[off].mean()) < 0.8
    assert float((v @ v.t())[off].mean()) < 0.98


def test_architecture_flags():
    assert get_spec("tiny").arch == "TVC"
    assert get_spec("tiny_dual").arch == "TV-"
    assert get_spec("tiny_cross").arch == "--C"


def test_text_spans_point_at_words(batch):
    host = create_host("tiny")
    out = host.posttrain_outputs(batch, with_losses=False)
    sp, ids = out.text.first_layer.char_spans[0], host.tokenizer(batch.texts[:1]).input_ids[0]
    text = batch.texts[0]
    for (a, b), i in zip(sp.tolist(), ids.tolist()):
        if a >= 0:
            assert host.tokenizer.itos[i] == text[a:b].lower()


def test_checkpoint_round_trip_through_create_host(tmp_path, batch):
    host = create_host("tiny_dual")
    host.eval()
    path = tmp_path / "tiny_dual.safetensors"
    host.save(path)
    again = create_host("tiny_dual.synth", checkpoint=tmp_path)
    again.eval()
    with torch.no_grad():
        a = host.encode_video(batch.video)
        b = again.encode_video(batch.video)
    torch.testing.assert_close(a, b)
    with pytest.raises(Exception, match="tiny_dual"):
        create_host("tiny_dual.synth", checkpoint=tmp_path / "missing.safetensors")


@pytest.mark.parametrize("name", TINY)
def test_generic_pretraining_loop_lowers_own_losses(name, batch):
    torch.manual_seed(0)
    host = create_host(name)
    opt = torch.optim.AdamW(host.parameters(), lr=3e-3)
    host.train()
    first = None
    for _ in range(8):
        losses = host.posttrain_outputs(batch, with_losses=True).losses
        total = sum(losses.values())
        first = float(total) if first is None else first
        opt.zero_grad()
        total.backward()
        opt.step()
    assert float(total) < first


@pytest.mark.parametrize("name", TINY)
def test_generation_and_option_scoring(name, batch):
    host = create_host(name)
    host.eval()
    caps = host.generate(batch.video, max_new_tokens=5)
    answers = host.generate(batch.video, prompts=["what colour is the object that jumps ?"] * len(batch.texts),
                            max_new_tokens=2)
    assert len(caps) == len(answers) == len(batch.texts)
    s = host.score_options(batch.video, ["what happens first ?"] * 6, [["red", "blue", "green"]] * 6)
    assert s.shape == (6, 3) and torch.isfinite(s).all()
    loss = host.caption_loss(batch.video, batch.texts)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("name", TINY)
def test_option_scoring_is_ragged_and_per_pair(name, batch):
    """Questions with fewer options are padded with -inf; each real score equals scoring that question alone."""
    torch.manual_seed(0)
    host = create_host(name)
    host.eval()
    opts = [["red", "blue"], ["left", "right", "up", "down"], ["one", "two", "three"]]
    qs = ["what colour ?", "which direction ?", "how many ?"]
    with torch.no_grad():
        s = host.score_options(batch.video[:3], qs, opts)
        alone = [host.score_options(batch.video[i:i + 1], [qs[i]], [opts[i]])[0] for i in range(3)]
    assert s.shape == (3, 4)
    assert torch.isinf(s[0, 2:]).all() and torch.isinf(s[2, 3:]).all() and torch.isfinite(s[1]).all()
    for i, a in enumerate(alone):
        torch.testing.assert_close(s[i, : len(opts[i])], a, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("stem", ["patch", "tubelet", "conv", "motion", "motion_conv"])
@pytest.mark.parametrize("temporal", ["cls", "tokens"])
def test_video_stems_and_temporal_attention(stem, temporal, batch):
    """Every stem / temporal-attention option encodes video; the motion stems see the frame order (reversing
    time changes the embedding) and ``temporal="tokens"`` mixes patch tokens across frames."""
    torch.manual_seed(0)
    host = create_host("tiny_dual", stem=stem, temporal=temporal)
    host.eval()
    with torch.no_grad():
        v = host.encode_video(batch.video)
        assert v.shape == (batch.video.shape[0], host.embed_dim) and torch.isfinite(v).all()
        if stem.startswith("motion") or stem in ("tubelet", "conv"):
            assert not torch.allclose(v, host.encode_video(batch.video.flip(1)), atol=1e-4)
        if temporal == "tokens":
            a = batch.video[:1].clone()
            b = a.clone()
            b[:, 0] += 1.0  # change only the first frame
            ta, tb = host.video(a)[1], host.video(b)[1]
            assert not torch.allclose(ta[:, -1, 1:], tb[:, -1, 1:], atol=1e-5), "patch tokens must mix across time"
