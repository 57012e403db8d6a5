"""The lmms-eval integration: task export (official files -> lmms-eval task folder), the host server behind the
``finsta_host`` model class, and (slow, in the lmms-eval environment) a real ``lmms-eval`` run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import yaml

from harness.cli import main
from harness.lmms.adapter import HostServer, ServeError, ServeOptions, build_host, doc_protocol
from harness.lmms.export import ExportError, export_task
from harness.lmms.task_utils import process_caption, process_qa
from tasks.registry import create_task

REPO = Path(__file__).resolve().parents[2]


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: ("function", loader.construct_scalar(node)))


def test_export_writes_docs_yaml_and_utils(msvd_root: Path, tmp_path: Path) -> None:
    task = create_task("msvd_qa", root=msvd_root)
    folder = export_task(task, tmp_path)
    docs = [json.loads(line) for line in (folder / "finsta_msvd_qa.jsonl").read_text().splitlines()]
    samples = task.samples("test")
    assert [d["id"] for d in docs] == [s.id for s in samples]
    assert all(Path(d["video"]).is_absolute() and Path(d["video"]).is_file() for d in docs)
    assert [d["answer"] for d in docs] == [s.answer for s in samples]
    cfg = yaml.load((folder / "finsta_msvd_qa.yaml").read_text(), Loader=_Loader)
    assert cfg["task"] == "finsta_msvd_qa" and cfg["output_type"] == "generate_until"
    assert cfg["process_results"] == ("function", "utils.process_qa")
    assert cfg["dataset_kwargs"]["data_files"]["test"] == str((folder / "finsta_msvd_qa.jsonl").resolve())
    assert cfg["metadata"]["finsta_fingerprint"] == task.fingerprint()
    assert "harness.lmms.task_utils" in (folder / "utils.py").read_text()
    assert all(doc_protocol(d) == task.protocol for d in docs)  # the frames `harness run` evaluates


def test_export_refuses_retrieval_before_loading(tmp_path: Path) -> None:
    task = create_task("msrvtt_ret", root=tmp_path / "absent")
    with pytest.raises(ExportError, match="no lmms-eval output type"):
        export_task(task, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_scoring_matches_our_evaluators() -> None:
    assert process_qa({"answer": "man"}, [" Man."]) == {"accuracy": 100.0}
    assert process_qa({"answer": "man"}, ["woman"]) == {"accuracy": 0.0}
    out = process_caption({"id": "v1", "references": ["a man runs"]}, ["a man"])
    assert set(out) == {"CIDEr", "BLEU@4", "ROUGE-L"} and out["CIDEr"] == ("v1", ["a man runs"], "a man")


def test_cli_export_and_user_errors(msvd_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["lmms", "export", "--task", "msvd_qa", "--root", str(msvd_root), "--out", str(tmp_path)]) == 0
    assert "--tasks finsta_msvd_qa" in capsys.readouterr().out
    assert main(["lmms", "export", "--task", "msrvtt_ret", "--root", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "no lmms-eval output type" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    ({"host": "video_llava", "colour": "red"}, "unknown --model_args"),
    ({}, "host=<name>"),
    ({"host": "video_llava", "batch_size": "x"}, "expected an integer"),
    ({"host": "video_llava", "batch_size": "0"}, ">= 1"),
])
def test_serve_options_errors(args: dict, message: str) -> None:
    with pytest.raises(ServeError, match=message):
        ServeOptions.parse(args)


def test_serve_options_host_options_are_typed() -> None:
    opts = ServeOptions.parse({"host": "video_llava", "host.num_frames": "2", "host.mc_length_norm": "false"})
    assert opts.host_options == {"num_frames": 2, "mc_length_norm": False}


def test_server_generates_as_the_host_does(tiny_video_llava_dir: Path, msvd_root: Path) -> None:
    opts = ServeOptions.parse({"host": "video_llava", "checkpoint": str(tiny_video_llava_dir), "device": "cpu",
                               "batch_size": "2", "host.num_frames": "2", "max_new_tokens": "4"})
    server = HostServer.from_options(opts)
    samples = create_task("msvd_qa", root=msvd_root).samples("test")
    videos, prompts = [s.video for s in samples], [s.texts[0] for s in samples]
    answers = server.generate(videos, prompts)
    assert len(answers) == len(samples) and all(isinstance(a, str) for a in answers)
    clip = server.video(videos[0])
    assert clip.shape == (2, 3, server.host.preprocess.resolution, server.host.preprocess.resolution)
    direct = server.host.generate(torch.stack([server.video(v) for v in videos[:2]]), prompts[:2], max_new_tokens=4)
    assert answers[:2] == direct  # batching changes nothing
    with pytest.raises(ServeError, match="does not exist"):
        server.video(msvd_root / "absent.avi")


def test_server_loglikelihood_ranks_like_score_options(tiny_video_llava_dir: Path, msvd_root: Path) -> None:
    opts = ServeOptions.parse({"host": "video_llava", "checkpoint": str(tiny_video_llava_dir), "device": "cpu",
                               "host.num_frames": "2", "host.mc_length_norm": "false"})
    server = HostServer.from_options(opts)
    video = create_task("msvd_qa", root=msvd_root).samples("test")[0].video
    options = ["a man", "a dog runs", "the cat"]
    got = server.loglikelihood([video] * 3, ["what is it?"] * 3, options)
    ref = server.host.score_options(server.video(video)[None], ["what is it?"], [options])[0]
    assert torch.allclose(torch.tensor([g[0] for g in got]), ref, atol=1e-4)
    assert all(isinstance(g[1], bool) for g in got)


def test_serve_from_a_posttrain_run_folder(tiny_video_llava_dir: Path, tmp_path: Path) -> None:
    base = ServeOptions.parse({"host": "video_llava", "checkpoint": str(tiny_video_llava_dir), "device": "cpu",
                               "host.num_frames": "2"})
    trained = build_host(base)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.01)
    run = tmp_path / "run"
    run.mkdir()
    trained.save(run / "host.safetensors")
    (run / "config.yaml").write_text(yaml.safe_dump({"host": {"name": "video_llava",
                                                              "checkpoint": str(tiny_video_llava_dir),
                                                              "options": {"num_frames": 2}}}))
    served = build_host(ServeOptions.parse({"run": str(run), "device": "cpu"}))
    for (name, a), b in zip(trained.state_dict().items(), served.state_dict().values()):
        assert torch.equal(a, b), name
    (run / "host.safetensors").unlink()
    with pytest.raises(ServeError, match="no host.safetensors"):
        build_host(ServeOptions.parse({"run": str(run)}))


def _lmms_python() -> Path | None:
    env = os.environ.get("FINSTA_LMMS_PYTHON")
    for cand in ([Path(env)] if env else []) + [REPO / ".venv-lmms" / "bin" / "python"]:
        if cand.is_file():
            return cand
    return None


@pytest.mark.slow
def test_lmms_eval_runs_the_tiny_host_on_a_local_task(tiny_video_llava_dir: Path, msvd_root: Path,
                                                       tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``harness lmms eval`` exports the task, runs ``python -m lmms_eval --model finsta_host ...`` in the lmms-eval
    environment and reads its standard results JSON; lmms-eval also writes its per-sample log."""
    python = _lmms_python()
    if python is None:
        pytest.skip("SKIPPED LOUDLY: no lmms-eval environment (run `bash scripts/setup_lmms.sh` or set "
                    "FINSTA_LMMS_PYTHON=<python of an env with lmms-eval and finsta[lmms]>)")
    out = tmp_path / "lmms_out"
    rc = main(["lmms", "eval", "--host", "video_llava", "--checkpoint", str(tiny_video_llava_dir), "--device", "cpu",
               "--model-arg", "host.num_frames=2", "--task", "msvd_qa", "--root", str(msvd_root), "--out", str(out),
               "--lmms-python", str(python)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "accuracy,none:" in printed
    res = json.loads(next(out.rglob("*_results.json")).read_text())["results"]["finsta_msvd_qa"]
    assert 0.0 <= res["accuracy,none"] <= 100.0
    samples = [p for p in out.rglob("*.jsonl") if "finsta_msvd_qa" in p.name and p.parent.name != "finsta_msvd_qa"]
    assert samples and len(samples[0].read_text().splitlines()) == 4
