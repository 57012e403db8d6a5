"""``python -m harness data check`` on the shared excerpt folders and on broken / absent data."""

from __future__ import annotations

import argparse
import json

import pytest

from harness.commands.data import register, run_check
from harness.errors import HarnessError

EXCERPT_TASKS = [("k400", "k400"), ("ssv2", "ssv2"), ("youcook2_cap", "youcook2"), ("msrvtt_ret", "msrvtt"),
                 ("msrvtt_qa", "msrvtt"), ("msrvtt_mc", "msrvtt"), ("msvd_cap", "msvd"), ("msvd_qa", "msvd"),
                 ("didemo_ret", "didemo"), ("tgif_frameqa", "tgif"), ("activitynet_para", "activitynet"),
                 ("how2qa", "how2qa")]


def _parser():
    p = argparse.ArgumentParser()
    register(p.add_subparsers(dest="cmd"))
    return p


@pytest.mark.parametrize("task,folder", EXCERPT_TASKS)
def test_data_check_passes_on_excerpts(annotations, task, folder):
    rep = run_check(task, str(annotations / folder))
    assert rep["ok"] and rep["status"] == 0
    present = [r for r in rep["splits"].values() if r["status"] != "absent"]
    assert present and all(r["samples"] > 0 and r["skipped"] == 0 for r in present)


def test_cli_json_output(annotations, capsys):
    args = _parser().parse_args(["data", "check", "--task", "msrvtt_qa", "--root", str(annotations / "msrvtt"),
                                 "--json", "--split", "val"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["splits"]["val"]["samples"] == 60 and out["splits"]["val"]["classes_or_answers"] == 1500


def test_data_check_absent_data_is_one_line(tmp_path):
    with pytest.raises(HarnessError) as err:
        run_check("violin", str(tmp_path))
    msg = str(err.value)
    assert "\n" not in msg and "violin_annotation.json" in msg and "github.com/jimmy646/violin" in msg
    with pytest.raises(HarnessError, match="unknown task"):
        run_check("msrvt_qa", str(tmp_path))


def test_data_check_lenient_counts_bad_records_and_videos(tmp_path, video_writer):
    good = "clip_A\t1\t2\t1\t2\tA sentence.\n"
    (tmp_path / "LSMDC16_challenge_1000_publictect.csv").write_text(good + "clip_B\t1\t2\t1\t2\tOther.\nbad line\n")
    with pytest.raises(HarnessError, match="line 3"):
        run_check("lsmdc_ret", str(tmp_path), ["test"])
    (tmp_path / "videos" / "clip").mkdir(parents=True)
    video_writer(tmp_path / "videos" / "clip" / "clip_A.avi", n_frames=5)
    rep = run_check("lsmdc_ret", str(tmp_path), ["test"], lenient=True)
    r = rep["splits"]["test"]
    assert r["samples"] == 2 and r["skipped"] == 1 and rep["status"] == 1
    assert r["videos_check"]["present"] == 1 and len(r["videos_check"]["missing"]) == 1
