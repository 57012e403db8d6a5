"""Reusable host-contract check: ``check_host_contract(host, batch)`` asserts everything Finsta and the
harness rely on (``hosts/base.py``): the encoders present match the spec's Table 10 flags, first-layer
token states with their maps, pooled outputs (per frame for video and cross), the host's own losses,
gradient flow into the host, every declared capability, and a save/load round trip."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from hosts.base import CAPABILITIES, Host, HostBatch, HostOutputs


def expected_encoders(host: Host) -> set[str]:
    s = host.spec
    return {k for k, present in (("text", s.has_text), ("video", s.has_video), ("cross", s.has_cross)) if present}


def check_outputs(host: Host, batch: HostBatch, out: HostOutputs) -> None:
    b, t = batch.video.shape[:2]
    enc = out.encoders()
    assert set(enc) == expected_encoders(host), f"encoders {set(enc)} vs Table 10 flags {expected_encoders(host)}"
    widths = host.encoder_widths()
    first_widths = host.first_layer_widths() if hasattr(host, "first_layer_widths") else {}
    for name, e in enc.items():
        fl = e.first_layer
        assert fl.states.dim() == 3 and fl.states.shape[0] == b, (name, fl.states.shape)
        assert torch.isfinite(fl.states).all(), name
        lq = fl.states.shape[1]
        assert fl.mask.shape == (b, lq) and fl.mask.dtype == torch.bool, name
        assert fl.mask.any(1).all(), f"{name}: a row without real tokens"
        if name in first_widths:
            assert fl.states.shape[-1] == first_widths[name], (name, fl.states.shape, first_widths[name])
        if name == "text":
            assert fl.char_spans is not None, "text first layer needs char spans"
        if fl.char_spans is not None:
            sp = fl.char_spans
            assert sp.shape == (b, lq, 2) and sp.dtype == torch.long, name
            for i, text in enumerate(batch.texts):
                real = sp[i][(sp[i, :, 0] >= 0)]
                assert ((real[:, 0] <= real[:, 1]) & (real[:, 1] <= len(text))).all(), (name, text, real)
            assert (sp[~fl.mask] == -1).all(), f"{name}: padding tokens must have span -1"
        if name == "video":
            assert fl.frame_index is not None, "video first layer needs frame_index"
        if fl.frame_index is not None:
            fi = fl.frame_index
            assert fi.shape == (b, lq) and int(fi.min()) >= -1 and int(fi.max()) < t, (name, fi.min(), fi.max())
            if name == "video":
                assert set(fi[0][fl.mask[0]].unique().tolist()) == set(range(t)), "every frame has tokens"
        if fl.patch_rc is not None:
            assert fl.grid is not None and fl.patch_rc.shape == (b, lq, 2), name
            rc = fl.patch_rc
            assert int(rc[..., 0].max()) < fl.grid[0] and int(rc[..., 1].max()) < fl.grid[1], name
            assert ((rc[..., 0] >= 0) <= (fl.frame_index >= 0)).all(), f"{name}: patch tokens need a frame"
        d = widths[name]
        if name == "text":
            assert e.pooled.shape == (b, d), (name, e.pooled.shape, d)
        else:
            assert e.pooled.dim() == 3 and e.pooled.shape[0] == b and e.pooled.shape[2] == d, (name, e.pooled.shape)
            assert e.frame_times is not None and e.frame_times.shape == e.pooled.shape[:2], name
        assert torch.isfinite(e.pooled).all(), name


def check_host_contract(host: Host, batch: HostBatch, save_load: bool = True) -> HostOutputs:
    """Run every check; returns the training-mode outputs (with losses)."""
    assert host.spec.capabilities <= set(CAPABILITIES), host.spec.capabilities
    assert host.preprocess is not None and host.preprocess.num_frames > 0
    host.train()
    out = host.posttrain_outputs(batch, with_losses=True)
    check_outputs(host, batch, out)
    for k, v in out.losses.items():
        assert v.dim() == 0 and torch.isfinite(v), (k, v)
    # distillation (Eq 41) targets the pooled outputs: the gradient must reach host parameters
    host.zero_grad(set_to_none=True)
    total = sum(e.pooled.float().pow(2).mean() for e in out.encoders().values())
    total = total + sum(out.losses.values()) if out.losses else total
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in host.parameters()), "no gradient into host"
    host.zero_grad(set_to_none=True)
    host.eval()
    with torch.no_grad():
        plain = host.posttrain_outputs(batch, with_losses=False)
    assert plain.losses == {}, "with_losses=False must not compute losses"
    _check_capabilities(host, batch)
    if save_load:
        _check_save_load(host, batch, plain)
    return out


def _check_capabilities(host: Host, batch: HostBatch) -> None:
    b = batch.video.shape[0]
    caps = host.spec.capabilities
    with torch.no_grad():
        if "retrieval" in caps:
            tv, vv = host.encode_text(batch.texts), host.encode_video(batch.video, batch.frame_times)
            assert tv.shape == (b, host.embed_dim) and vv.shape == (b, host.embed_dim)
        if "classification" in caps:
            try:
                feats = host.encode_video(batch.video, batch.frame_times)
            except NotImplementedError:
                feats = host.encode_joint(batch.video, batch.texts, batch.frame_times)
            logits = host.task_head(5)(feats)
            assert logits.shape == (b, 5)
        if "multiple_choice" in caps:
            opts = [["a red ball", "a blue car", "the dog"]] * b
            s = host.score_options(batch.video, ["what is it ?"] * b, opts, batch.frame_times)
            assert s.shape == (b, 3) and torch.isfinite(s).all()
        if "generation" in caps:
            caps_ = host.generate(batch.video, None, max_new_tokens=3, frame_times=batch.frame_times)
            assert isinstance(caps_, list) and len(caps_) == b and all(isinstance(c, str) for c in caps_)
    if "generation" in caps:
        loss = host.caption_loss(batch.video, batch.texts, batch.frame_times)
        assert loss.dim() == 0 and torch.isfinite(loss)


def _check_save_load(host: Host, batch: HostBatch, ref: HostOutputs) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "host.safetensors"
        host.save(path)
        saved = {k: v.clone() for k, v in host.state_dict().items()}
        with torch.no_grad():
            for p in host.parameters():
                p.add_(0.5)
        host.load(path)
        for k, v in host.state_dict().items():
            assert torch.equal(v, saved[k]), f"save/load changed {k}"
    with torch.no_grad():
        again = host.posttrain_outputs(batch, with_losses=False)
    for name, e in ref.encoders().items():
        torch.testing.assert_close(again.encoders()[name].pooled, e.pooled)
