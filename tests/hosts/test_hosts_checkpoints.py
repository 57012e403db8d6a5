"""Contract C1: the one checkpoint check (files and directories; missing / empty / unreadable refused with
the path named), the checkpoint fingerprint, resizing to the host's input size, and the import rule of
``hosts`` (no base <-> io cycle). Each test failed before the fix (see the commit message)."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
import torch
from tiny_builders import make_tokenizer, make_video, tiny_clip_config

from hosts.base import HostBatch, Preprocess
from hosts.checkpoints import checkpoint_fingerprint as fp_light
from hosts.errors import CheckpointError
from hosts.io import load_state_dict, save_state_dict
from hosts.registry import checkpoint_fingerprint, create_host, resolve_checkpoint

HOSTS_DIR = Path(__file__).resolve().parents[2] / "hosts"


def _clip_host():
    torch.manual_seed(0)
    return create_host("clip4clip", random_init=True, clip_config=tiny_clip_config(), tokenizer=make_tokenizer("clip"))


def _save_clip(host, path: Path) -> None:
    save_state_dict({k[5:]: v for k, v in host.state_dict().items() if k.startswith("clip.")}, path)


def test_hf_directory_checkpoint_accepted(tmp_path):
    """An HF directory (any name, config + safetensors) passed directly, as for openai/clip-vit-base-patch32."""
    src = _clip_host()
    d = tmp_path / "my-clip"
    d.mkdir()
    _save_clip(src, d / "model.safetensors")
    src.clip.config.save_pretrained(d)
    assert resolve_checkpoint("clip4clip", d) == d
    host = create_host("clip4clip", checkpoint=d, tokenizer=make_tokenizer("clip"))
    video, _ = make_video(2, 2)
    with torch.no_grad():
        torch.testing.assert_close(host.eval().encode_video(video), src.eval().encode_video(video))


def test_directory_holding_the_tag_file_or_dir(tmp_path):
    (tmp_path / "pytorch_model.bin.4").write_bytes(b"x")
    assert resolve_checkpoint("clip4clip.msrvtt_ft", tmp_path) == tmp_path / "pytorch_model.bin.4"
    hf = tmp_path / "clip-vit-base-patch32"
    hf.mkdir()
    (hf / "model.safetensors").write_bytes(b"x")
    assert resolve_checkpoint("clip4clip", tmp_path) == hf


@pytest.mark.parametrize("case", ["missing", "empty_file", "empty_dir", "empty_weight_in_dir", "unreadable"])
def test_bad_checkpoints_refused_naming_path_and_source(tmp_path, case):
    if case == "missing":
        path = tmp_path / "nope.safetensors"
    elif case == "empty_file":
        path = tmp_path / "model.safetensors"
        path.touch()
    elif case == "empty_dir":
        path = tmp_path / "ckpt"
        path.mkdir()
    elif case == "empty_weight_in_dir":
        path = tmp_path / "ckpt"
        path.mkdir()
        (path / "config.json").write_text("{}")
        (path / "model-00001-of-00002.safetensors").write_bytes(b"x")
        (path / "model-00002-of-00002.safetensors").touch()
    else:
        if os.geteuid() == 0:
            pytest.skip("running as root: file permissions cannot make a file unreadable")
        path = tmp_path / "model.safetensors"
        path.write_bytes(b"x")
        path.chmod(0)
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint("clip4clip", path)
    msg = str(err.value)
    assert str(path.name) in msg and "openai/clip-vit-base-patch32" in msg, msg
    assert "\n" not in msg


def test_corrupt_file_error_keeps_the_file_name(tmp_path):
    bad = tmp_path / "weights.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="weights.safetensors"):
        load_state_dict(bad)
    pt = tmp_path / "weights.bin"
    pt.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="weights.bin"):
        load_state_dict(pt)


def test_no_checkpoint_needed_for_untagged_hosts():
    assert resolve_checkpoint("tiny", None) is None


def test_fingerprint_changes_with_files(tmp_path):
    d = tmp_path / "ckpt"
    d.mkdir()
    f = d / "model.safetensors"
    f.write_bytes(b"abc")
    a = checkpoint_fingerprint(d)
    assert a == checkpoint_fingerprint(d) == fp_light(d) and len(a) == 16
    os.utime(f, ns=(1, 1))
    b = checkpoint_fingerprint(d)
    assert b != a
    (d / "sub").mkdir()
    (d / "sub" / "extra.json").write_text("{}")
    c = checkpoint_fingerprint(d)
    assert c not in (a, b)
    assert checkpoint_fingerprint(f) != c
    with pytest.raises(CheckpointError, match="nope"):
        checkpoint_fingerprint(tmp_path / "nope")


def test_preprocess_resizes_to_host_input():
    """A task protocol decodes at 256 px; the host (224 px, here 32 px) resizes in its own preprocessing.
    Before: transformers raised "Input image size (40*40) doesn't match model (32*32)"."""
    host = _clip_host()
    frames = torch.randint(0, 256, (2, 3, 3, 40, 48), dtype=torch.uint8)
    video = host.preprocess(frames)
    assert video.shape == (2, 3, 3, 32, 32)
    out = host.posttrain_outputs(HostBatch(video, torch.zeros(2, 3), ["a dog", "a cat"]), with_losses=False)
    assert out.video.pooled.shape[:2] == (2, 3)
    same = Preprocess(resolution=4)(torch.rand(1, 3, 4, 4))
    assert same.shape == (1, 3, 4, 4)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_io_does_not_import_base_and_spec_is_torch_free():
    assert "hosts.base" not in _imports(HOSTS_DIR / "io.py")
    for light in ("spec.py", "checkpoints.py", "errors.py", "__init__.py"):
        assert not any(m == "torch" or m.startswith(("torch.", "hosts.base", "hosts.io"))
                       for m in _imports(HOSTS_DIR / light)), light


def test_missing_path_refused_for_hosts_without_a_weight_file(tmp_path):
    """The planner relies on it: a given-but-missing checkpoint is an error even when the tag names no file."""
    with pytest.raises(CheckpointError, match="nope.safetensors"):
        resolve_checkpoint("tiny", tmp_path / "nope.safetensors")
    f = tmp_path / "w.safetensors"
    f.write_bytes(b"x")
    assert resolve_checkpoint("tiny", f) == f


@pytest.mark.parametrize("name,fixture,expected", [
    ("clip4clip.msrvtt_ft", "clip4clip", "pytorch_model.bin.4"),
    ("video_chatgpt", "video_chatgpt", "video_chatgpt-7B.bin"),
    ("video_llama", "video_llama", "finetune-vicuna7b-v2.pth"),
    ("internvideo", "internvideo", "InternVideo-MM-L-14.ckpt"),
])
def test_official_layout_directories_resolve(name, fixture, expected):
    """The planner's check accepts each host's official layout (the tiny official-format fixtures stand in)."""
    d = HOSTS_DIR.parent / "tests" / "fixtures" / "hosts" / fixture
    path = resolve_checkpoint(name, d)
    assert path == d / expected and len(checkpoint_fingerprint(d)) == 16


def test_discovery_error_names_the_host_file(monkeypatch):
    """A host file whose import fails is named in one line (not a traceback from deep inside discovery)."""
    import importlib

    from finsta_core.registry import RegistryError
    from hosts import registry

    real = importlib.import_module

    def fake(name, *a, **k):
        if name == "hosts.video_llama":
            raise ModuleNotFoundError("No module named 'some_dependency'")
        return real(name, *a, **k)

    monkeypatch.setattr(registry, "_DISCOVERED", False)
    monkeypatch.setattr(registry.importlib, "import_module", fake)
    with pytest.raises(RegistryError, match=r"video_llama\.py cannot be imported: No module named 'some_dependency'"):
        registry.discover()
    monkeypatch.setattr(registry.importlib, "import_module", real)
    registry.discover()
