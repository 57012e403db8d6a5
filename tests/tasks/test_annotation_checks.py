"""Loader reliability: sample ids (one per question / caption / clip), the shared span check, duplicate JSON keys,
option checks and out-of-vocabulary counts. Every bad input gives one line naming file, record and field."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tasks.datasets.common import AnnotationError
from tasks.datasets.spans import SpanError, check_span
from tasks.registry import create_task

TGIF_HEADER = "gif_name\tquestion\tanswer\ttype\tvid_id\tkey\tdescription"
# Two real rows of YunseokJANG/tgif-qa:dataset/Test_frameqa_question.csv (lines 58 and 88): two questions on one GIF,
# so they share the ``key`` column (the GIF's TGIF index) and differ in ``vid_id``.
TGIF_SAME_GIF = [
    "tumblr_naa11tbBvx1tebyg2o1_400\thow many people are sitting next to each other and dancing ?\ttwo\t1\t"
    "FRAMEQA24076\t62578\ttwo people are sitting next to each other and dancing .",
    "tumblr_naa11tbBvx1tebyg2o1_400\thow many man are dancing in bed together ?\ttwo\t1\tFRAMEQA48373\t62578\t"
    "two man are dancing in bed together .",
]


def _tgif(root: Path, rows: list[str], vocab: dict[str, int] | None = None) -> None:
    (root / "Test_frameqa_question.csv").write_bytes(("\r\n".join([TGIF_HEADER, *rows]) + "\r\n").encode())
    (root / "frameqa_trainval_ans2label.json").write_text(json.dumps(vocab or {"two": 0}))


# ------------------------------------------------------------------------------------------------ ids
def test_tgif_questions_on_one_gif_are_two_samples(tmp_path):
    """The real test file repeats ``key`` (7,132 keys for 13,691 questions): strict loading used to stop on
    'duplicate sample id'. Ids are now the per-question ``vid_id``."""
    _tgif(tmp_path, TGIF_SAME_GIF)
    samples = create_task("tgif_frameqa", root=tmp_path).samples("test")
    assert [s.id for s in samples] == ["FRAMEQA24076", "FRAMEQA48373"]
    assert {s.extra["gif_key"] for s in samples} == {"62578"} and samples[0].video == samples[1].video


def test_true_duplicate_ids_strict_error_and_lenient_count(tmp_path):
    _tgif(tmp_path, [TGIF_SAME_GIF[0], TGIF_SAME_GIF[0]])
    with pytest.raises(AnnotationError) as err:
        create_task("tgif_frameqa", root=tmp_path).samples("test")
    msg = str(err.value)
    assert "\n" not in msg and "Test_frameqa_question.csv" in msg and "FRAMEQA24076" in msg
    assert "line 2" in msg and "line 3" in msg
    task = create_task("tgif_frameqa", root=tmp_path, strict=False)
    assert len(task.samples("test")) == 1 and task.report("test").n_skipped == 1


def _count_csv_rows(path: Path, header: bool, delimiter: str = ",") -> int:
    text = path.read_text(encoding="utf-8")
    if delimiter == "\t":
        rows = [ln for ln in text.splitlines() if ln.strip()]
    else:
        rows = [r for r in csv.reader(io.StringIO(text)) if r]
    return len(rows) - (1 if header else 0)


def _count(annotations: Path, what: str) -> int:
    """The number of questions / captions / clips of an excerpt, counted from the raw file (not the loader)."""
    a = annotations
    if what == "tgif":
        return _count_csv_rows(a / "tgif/Test_frameqa_question.csv", True, "\t")
    if what == "msrvtt_qa":
        return sum(1 for ln in (a / "msrvtt/msrvtt_qa_val.jsonl").read_text().splitlines() if ln.strip())
    if what == "msrvtt_mc":
        return sum(1 for ln in (a / "msrvtt/msrvtt_mc_test.jsonl").read_text().splitlines() if ln.strip())
    if what == "msrvtt_ret":
        return _count_csv_rows(a / "msrvtt/MSRVTT_JSFUSION_test.csv", True)
    if what == "msvd_qa":
        return len(json.loads((a / "msvd/msvd_test_qa_encode.json").read_text()))
    if what == "k400":
        return _count_csv_rows(a / "k400/kinetics-400_val.csv", True)
    if what == "ssv2":
        return len(json.loads((a / "ssv2/something-something-v2-validation.json").read_text()))
    if what == "how2qa":
        return _count_csv_rows(a / "how2qa/how2QA_val_release.csv", False)
    if what == "youcook2":
        db = json.loads((a / "youcook2/youcookii_annotations_trainval.json").read_text())["database"]
        return sum(len(v["annotations"]) for v in db.values() if v["subset"] == "training")
    if what == "activitynet":
        return len(json.loads((a / "activitynet/val_1.json").read_text()))
    if what == "msvd_cap":
        return _count_csv_rows(a / "msvd/MSVD_test.tsv", False, "\t")
    if what == "didemo":
        return len({r["video"] for r in json.loads((a / "didemo/test_data.json").read_text())})
    raise AssertionError(what)


@pytest.mark.parametrize("task,folder,split,unit", [
    ("tgif_frameqa", "tgif", "test", "tgif"),            # one per question (vid_id)
    ("msrvtt_qa", "msrvtt", "val", "msrvtt_qa"),         # one per question (line)
    ("msrvtt_mc", "msrvtt", "test", "msrvtt_mc"),        # one per question (qid)
    ("msrvtt_ret", "msrvtt", "test", "msrvtt_ret"),      # one per 1k-A clip (one caption each)
    ("msvd_qa", "msvd", "test", "msvd_qa"),              # one per question (global id)
    ("k400", "k400", "val", "k400"),                     # one per clip (youtube id + window)
    ("ssv2", "ssv2", "val", "ssv2"),                     # one per clip (id)
    ("how2qa", "how2qa", "val", "how2qa"),               # one per question (row)
    ("youcook2_cap", "youcook2", "train", "youcook2"),   # one per segment caption (video + annotation id)
    ("activitynet_para", "activitynet", "val", "activitynet"),  # one per video paragraph
    ("didemo_ret", "didemo", "test", "didemo"),          # one per video paragraph
    ("msvd_cap", "msvd", "test", "msvd_cap"),            # one per clip (its captions are the references)
])
def test_ids_are_unique_per_unit_on_the_official_excerpts(annotations, task, folder, split, unit):
    samples = create_task(task, root=annotations / folder).samples(split)
    ids = [s.id for s in samples]
    assert len(set(ids)) == len(ids) == _count(annotations, unit)


# ------------------------------------------------------------------------------------------------ spans
@pytest.mark.parametrize("start,end,match", [
    ("nan", 5, "NaN"), (float("nan"), 5, "NaN"), (-1, 5, "negative"), (5, 1, "reversed"), ("inf", 5, "infinite"),
    (1, float("inf"), "infinite"), ("abc", 5, "not a number"), (None, 5, "not a number"), (True, 5, "not a number"),
    (3, 3, "empty"),
])
def test_check_span_refuses(start, end, match):
    with pytest.raises(SpanError, match=match):
        check_span(start, end)


def test_check_span_accepts_and_duration():
    assert check_span("1.5", 3) == (1.5, 3.0)
    assert check_span(3, 3, allow_empty=True) == (3.0, 3.0)
    assert check_span(0, 10.01, duration=10.0) == (0.0, 10.01)  # ActivityNet ends a little past the duration
    with pytest.raises(SpanError, match="after the video's duration"):
        check_span(12, 14, duration=10.0)


BAD_SPANS = {"nan": ("nan", 5), "negative": (-1, 5), "reversed": (5, 1), "infinite": ("inf", 5)}


def _write(kind: str, root: Path, start, end) -> tuple[str, str, str, str]:
    """Write one bad record in the dataset's official format; returns (task, split, file name, field)."""
    def num(x):
        return float(x) if isinstance(x, str) else x

    if kind == "youcook2":
        db = {"database": {"abc": {"duration": 100.0, "subset": "training", "recipe_type": "113", "video_url": "",
                                   "annotations": [{"segment": [num(start), num(end)], "id": 0, "sentence": "cut"}]}}}
        (root / "youcookii_annotations_trainval.json").write_text(json.dumps(db))
        return "youcook2_cap", "train", "youcookii_annotations_trainval.json", "segment"
    if kind == "k400":
        (root / "label_map_k400.txt").write_text("\n".join(f"class {i:03d}" for i in range(400)) + "\n")
        (root / "kinetics-400_val.csv").write_text(
            "label,youtube_id,time_start,time_end,split\n" f"class 000,--nQbRBEz2s,{start},{end},val\n")
        return "k400", "val", "kinetics-400_val.csv", "time_start/time_end"
    if kind == "activitynet":
        data = {"v_abc": {"duration": 100.0, "timestamps": [[0, 4], [num(start), num(end)]], "sentences": ["a", "b"]}}
        (root / "val_1.json").write_text(json.dumps(data))
        return "activitynet_para", "val", "val_1.json", "timestamps[1]"
    if kind == "how2qa":
        (root / "how2QA_val_release.csv").write_text(f"yid00000001,[{start}:{end}],w1,w2,w3,what?,right\n")
        return "how2qa", "val", "how2QA_val_release.csv", "2 (time span)"
    if kind == "didemo":
        rec = {"video": "x.mov", "description": "a man", "times": [[1, 1], [num(start), num(end)]],
               "num_segments": 6, "annotation_id": 7, "dl_link": ""}
        (root / "test_data.json").write_text(json.dumps([rec]))
        return "didemo_ret", "test", "test_data.json", "times[1]"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["youcook2", "k400", "activitynet", "how2qa", "didemo"])
@pytest.mark.parametrize("bad", list(BAD_SPANS))
def test_loaders_share_the_span_check(tmp_path, kind, bad):
    """NaN, negative, reversed and infinite times: one line naming file, record and field (strict), a counted
    skip (lenient). K400 used to crash on 'inf' with OverflowError; the others accepted the spans."""
    if kind == "didemo" and bad == "reversed":
        start, end = 4, 1  # segment indices
    else:
        start, end = BAD_SPANS[bad]
    task_name, split, fname, field = _write(kind, tmp_path, start, end)
    with pytest.raises(AnnotationError) as err:
        create_task(task_name, root=tmp_path).samples(split)
    msg = str(err.value)
    assert "\n" not in msg and fname in msg and f"field {field!r}" in msg and bad.rstrip("e")[:6] in msg.lower()
    task = create_task(task_name, root=tmp_path, strict=False)
    samples = task.samples(split)
    assert task.report(split).n_skipped == 1 and len(samples) == 0


def test_didemo_segment_past_num_segments(tmp_path):
    rec = {"video": "x.mov", "description": "a man", "times": [[2, 6]], "num_segments": 6, "annotation_id": 7}
    (tmp_path / "test_data.json").write_text(json.dumps([rec]))
    with pytest.raises(AnnotationError, match=r"times\[0\]'.*num_segments 6"):
        create_task("didemo_ret", root=tmp_path).samples("test")


def test_youcook2_annotation_without_id_is_a_bad_record(tmp_path):
    db = {"database": {"abc": {"duration": 100.0, "subset": "training", "recipe_type": "113",
                               "annotations": [{"segment": [1, 4], "sentence": "cut the onion"},
                                               {"segment": [5, 9], "id": 1, "sentence": "fry it"}]}}}
    (tmp_path / "youcookii_annotations_trainval.json").write_text(json.dumps(db))
    with pytest.raises(AnnotationError, match=r"video abc annotation #0: field 'id'"):
        create_task("youcook2_cap", root=tmp_path).samples("train")
    task = create_task("youcook2_cap", root=tmp_path, strict=False)
    assert [s.id for s in task.samples("train")] == ["abc_1"] and task.report("train").n_skipped == 1


# ------------------------------------------------------------------------------------------------ JSON keys
def test_duplicate_json_object_keys_are_refused(tmp_path):
    text = '{"v_a": {"duration": 9, "timestamps": [[0, 1]], "sentences": ["x"]},\n' \
           ' "v_a": {"duration": 9, "timestamps": [[1, 2]], "sentences": ["y"]}}'
    (tmp_path / "val_1.json").write_text(text)
    with pytest.raises(AnnotationError) as err:
        create_task("activitynet_para", root=tmp_path).samples("val")
    assert "val_1.json" in str(err.value) and "duplicate key 'v_a'" in str(err.value)


def test_duplicate_key_inside_a_jsonl_record(tmp_path):
    (tmp_path / "msrvtt_qa_val.jsonl").write_text(
        '{"video_id": "video1", "question": "what?", "answer": "dog", "answer": "cat"}\n')
    (tmp_path / "msrvtt_train_ans2label.json").write_text('{"dog": 0, "cat": 1}')
    with pytest.raises(AnnotationError, match=r"msrvtt_qa_val.jsonl, line 1: duplicate key 'answer'"):
        create_task("msrvtt_qa", root=tmp_path).samples("val")


# ------------------------------------------------------------------------------------------------ options, OOV
@pytest.mark.parametrize("options,match", [
    ({"files": 3}, "'files' must be a mapping"),
    ({"files": {"answers": 3}}, "values must be paths"),
    ({"files": {"bogus": "a.json"}}, "unknown key"),
    ({"video_root": 3}, "'video_root' must be a string"),
    ({"qa_format": "bogus"}, "qa_format must be"),
    ({"protocol": {"bogus": 1}}, "option 'protocol'"),
])
def test_bad_options_are_refused_at_construction(options, match):
    with pytest.raises(ValueError, match=match):
        create_task("msrvtt_qa", **options)


def test_option_types_of_other_loaders():
    with pytest.raises(ValueError, match="'option_seed' must be an integer"):
        create_task("how2qa", option_seed="x")
    with pytest.raises(ValueError, match="'sort_by_time' must be true or false"):
        create_task("activitynet_para", sort_by_time="yes")


def test_negative_limit_is_refused(tmp_path):
    """``samples(split, limit=-1)`` used to drop the last sample silently."""
    _tgif(tmp_path, TGIF_SAME_GIF)
    with pytest.raises(ValueError, match="limit must be >= 0"):
        create_task("tgif_frameqa", root=tmp_path).samples("test", limit=-1)


def test_out_of_vocabulary_answers_are_counted(tmp_path):
    _tgif(tmp_path, TGIF_SAME_GIF, vocab={"three": 0})
    task = create_task("tgif_frameqa", root=tmp_path)
    samples = task.samples("test")
    assert len(samples) == 2 and all(s.label is None for s in samples)
    assert task.report("test").counts["answers_outside_vocab"] == 2


# ------------------------------------------------------------------------------------------------ input files
def test_input_files_lists_every_file_the_split_reads(annotations):
    """For the run identity (H1): required files plus optional ones that exist and are read."""
    def names(task, folder, split, **opts):
        return [p.name for p in create_task(task, root=annotations / folder, **opts).input_files(split)]

    assert names("youcook2_cap", "youcook2", "train") == ["youcookii_annotations_trainval.json", "train_list.txt"]
    assert names("msvd_qa", "msvd", "test") == ["msvd_test_qa_encode.json", "msvd_answer_set.txt",
                                                "youtube_mapping.txt"]
    assert names("msvd_cap", "msvd", "test") == ["MSVD_test.tsv", "test_list.txt"]
    assert names("didemo_ret", "didemo", "test") == ["test_data.json"]
    assert names("didemo_ret", "didemo", "test", restrict_to_list=True) == ["test_data.json", "test_list.txt"]
    assert names("tgif_frameqa", "tgif", "test") == ["Test_frameqa_question.csv", "frameqa_trainval_ans2label.json"]


def test_yaml_summary_key_and_lm_eval_description_refused(tmp_path, monkeypatch):
    """Issue 14 item 4: ``description`` is lm-eval's few-shot preamble, our one-line text is ``summary``."""
    import tasks.catalog as catalog

    assert create_task("msrvtt_qa").summary.startswith("MSRVTT-QA")
    for path in catalog.CONFIG_DIR.glob("*.yaml"):
        assert "\ndescription:" not in "\n" + path.read_text(), path
    (tmp_path / "mine.yaml").write_text("class: tasks.datasets.how2qa:How2QA\ntask_type: longform_qa\ndataset: x\n"
                                        "splits: [val]\ndescription: Answer the question.\n")
    monkeypatch.setattr(catalog, "CONFIG_DIR", tmp_path)
    with pytest.raises(ValueError, match="'description' is lm-eval's few-shot preamble"):
        catalog.build_task_class("mine")


def test_strict_hint_names_flags_that_exist(tmp_path):
    _tgif(tmp_path, [TGIF_SAME_GIF[0], TGIF_SAME_GIF[0]])
    with pytest.raises(AnnotationError, match=r"task\.strict=false in run / validate, or --lenient in data check"):
        create_task("tgif_frameqa", root=tmp_path).samples("test")
