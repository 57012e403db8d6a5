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


# ------------------------------------------------------------------------------------------------ holes of issue 15
def test_youcook2_record_without_id_is_one_line_error(tmp_path):
    """Used to be a KeyError traceback out of the loader."""
    db = {"database": {"abc": {"duration": 100.0, "subset": "training", "recipe_type": "113",
                               "annotations": [{"segment": [1, 4], "sentence": "cut the onion"}]}}}
    (tmp_path / "youcookii_annotations_trainval.json").write_text(json.dumps(db))
    with pytest.raises(HarnessError) as err:
        run_check("youcook2_cap", str(tmp_path), ["train"])
    msg = str(err.value)
    assert "\n" not in msg and "youcookii_annotations_trainval.json" in msg and "field 'id'" in msg
    rep = run_check("youcook2_cap", str(tmp_path), ["train"], lenient=True)
    assert rep["splits"]["train"]["skipped"] == 1 and rep["status"] == 1


@pytest.mark.parametrize("option,match", [
    ("qa_format=[x", "not valid YAML"), ("files=3", "'files' must be a mapping"), ("noequals", "KEY=VALUE"),
    ("video_root=3", "'video_root' must be a string"), ("qa_format=bogus", "qa_format must be"),
])
def test_bad_option_is_one_line_error(annotations, option, match):
    args = _parser().parse_args(["data", "check", "--task", "msrvtt_qa", "--root", str(annotations / "msrvtt"),
                                 "--split", "val", "--option", option])
    with pytest.raises(HarnessError, match=match) as err:
        args.func(args)
    assert "\n" not in str(err.value) and str(err.value).count("task 'msrvtt_qa'") <= 1


@pytest.mark.parametrize("content", ["", "label,youtube_id,time_start,time_end,split\n"])
def test_empty_or_header_only_split_is_not_ok(tmp_path, capsys, content):
    (tmp_path / "label_map_k400.txt").write_text("\n".join(f"class {i:03d}" for i in range(400)) + "\n")
    (tmp_path / "kinetics-400_val.csv").write_text(content)
    if not content:  # a file without even a header is malformed
        with pytest.raises(HarnessError, match="kinetics-400_val.csv: empty file"):
            run_check("k400", str(tmp_path), ["val"])
        return
    rep = run_check("k400", str(tmp_path), ["val"])
    r = rep["splits"]["val"]
    assert r["status"] == "empty" and rep["status"] == 1 and not rep["ok"]
    args = _parser().parse_args(["data", "check", "--task", "k400", "--root", str(tmp_path), "--split", "val"])
    assert args.func(args) == 1
    out = capsys.readouterr().out
    assert "[empty]" in out and "[ok]" not in out and "header" in out


def test_out_of_vocabulary_answers_reported(tmp_path, capsys):
    header = "gif_name\tquestion\tanswer\ttype\tvid_id\tkey\tdescription"
    rows = ["g1\twhat is it ?\tcat\t0\tFRAMEQA1\t1\ta cat .", "g2\twhat is it ?\tzebra\t0\tFRAMEQA2\t2\ta zebra ."]
    (tmp_path / "Test_frameqa_question.csv").write_text("\r\n".join([header, *rows]) + "\r\n")
    (tmp_path / "frameqa_trainval_ans2label.json").write_text('{"cat": 0}')
    args = _parser().parse_args(["data", "check", "--task", "tgif_frameqa", "--root", str(tmp_path), "--split",
                                 "test"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "answers_outside_vocab: 1" in out and "1 of 2 reference answers are outside" in out


def test_truncated_video_is_reported(tmp_path, video_writer):
    """A partly downloaded web video (index at the front, data cut) opens and declares its full duration; it used
    to pass `data check` and decode with its last frame repeated."""
    (tmp_path / "LSMDC16_challenge_1000_publictect.csv").write_text(
        "clip_A\t1\t2\t1\t2\tA sentence.\nclip_B\t1\t2\t1\t2\tOther.\n")
    vids = tmp_path / "videos" / "clip"
    vids.mkdir(parents=True)
    video_writer(vids / "clip_A.avi", n_frames=5)
    full = video_writer(tmp_path / "full.mp4", n_frames=100, fps=10, gop=10, faststart=True).read_bytes()
    (vids / "clip_B.mp4").write_bytes(full[: len(full) // 2])
    rep = run_check("lsmdc_ret", str(tmp_path), ["test"], options={"video_template": "videos/clip/{video_id}.mp4"})
    v = rep["splits"]["test"]["videos_check"]
    assert v["present"] == 2 and len(v["unreadable"]) == 1 and "clip_B" in v["unreadable"][0]
    assert "truncated" in v["unreadable"][0] and rep["status"] == 1
