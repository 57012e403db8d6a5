"""Each official loader's counts on the shared excerpts, and the formats without real records (LSMDC, VIOLIN,
QuerYD captions, MSRVTT_data.json, MSVD caption files) on records written here in the documented format."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from tasks.base import TaskType
from tasks.datasets.common import AnnotationError, MissingDataError
from tasks.registry import create_task, task_names

# (task, dataset folder, split) -> (samples, distinct videos, texts, classes/answers); counted on the excerpts
EXCERPT_COUNTS = {
    ("k400", "k400", "val"): (63, 63, 63, 61),
    ("k400", "k400", "test"): (40, 40, 0, None),
    ("ssv2", "ssv2", "val"): (60, 60, 60, 43),
    ("ssv2", "ssv2", "test"): (30, 30, 0, None),
    ("youcook2_cap", "youcook2", "train"): (252, 34, 252, None),
    ("youcook2_cap", "youcook2", "val"): (48, 6, 48, None),
    ("msrvtt_ret", "msrvtt", "test"): (60, 60, 60, None),
    ("msrvtt_qa", "msrvtt", "val"): (60, 3, 60, 1500),
    ("msrvtt_mc", "msrvtt", "test"): (40, 40, 200, None),
    ("msvd_cap", "msvd", "test"): (15, 15, 669, None),
    ("msvd_qa", "msvd", "test"): (60, 2, 60, 1000),
    ("didemo_ret", "didemo", "val"): (49, 49, 49, None),
    ("didemo_ret", "didemo", "test"): (47, 47, 47, None),
    ("tgif_frameqa", "tgif", "val"): (30, 30, 30, 1540),
    ("tgif_frameqa", "tgif", "test"): (60, 60, 60, 1540),
    ("activitynet_para", "activitynet", "val"): (40, 40, 40, None),
    ("how2qa", "how2qa", "val"): (50, 22, 50, None),
    ("how2qa", "how2qa", "test"): (30, 26, 30, None),
}
ALL_TASKS = ["activitynet_para", "didemo_ret", "how2qa", "k400", "lsmdc_fib", "lsmdc_mc", "lsmdc_ret", "msrvtt_cap",
             "msrvtt_mc", "msrvtt_qa", "msrvtt_ret", "msvd_cap", "msvd_qa", "queryd_para", "ssv2", "tgif_frameqa",
             "violin", "youcook2_cap"]


def test_all_official_tasks_registered():
    assert set(ALL_TASKS) <= set(task_names())


@pytest.mark.parametrize("name", ALL_TASKS)
def test_task_declares_type_metrics_protocol_version(name, tmp_path):
    t = create_task(name, root=tmp_path)
    assert isinstance(t.task_type, TaskType) and t.metrics and t.version and t.eval_split in t.splits
    assert t.describe()["protocol"] == t.protocol.describe()
    assert len(t.fingerprint()) == 12
    # absent data: planning gets one line naming the file and where it comes from
    missing = t.missing_files(t.eval_split)
    assert missing and "\n" not in missing[0].message() and "get it from" in missing[0].message()
    with pytest.raises(MissingDataError, match="missing"):
        t.samples(t.eval_split)


def test_protocol_override_changes_identity(tmp_path):
    a, b = create_task("k400", root=tmp_path), create_task("k400", root=tmp_path, protocol={"num_frames": 16})
    assert b.protocol.num_frames == 16 and a.fingerprint() != b.fingerprint()
    moved = create_task("k400", root=tmp_path / "elsewhere", files={"val": "/x/val.csv"}, video_root="/v")
    assert moved.fingerprint() == a.fingerprint()  # data location is not identity
    assert create_task("k400", tie_rule="mean").fingerprint() != a.fingerprint()
    with pytest.raises(ValueError, match="has no option"):
        create_task("k400", root=tmp_path, frames=3)


@pytest.mark.parametrize("key", sorted(EXCERPT_COUNTS), ids=lambda k: f"{k[0]}-{k[2]}")
def test_counts_on_shared_excerpts(annotations, key):
    name, folder, split = key
    t = create_task(name, root=annotations / folder)
    samples = t.samples(split)
    rep = t.report(split)
    assert (rep.n_samples, rep.n_videos, rep.n_texts, rep.n_classes) == EXCERPT_COUNTS[key]
    assert rep.n_skipped == 0 and len({s.id for s in samples}) == len(samples)


def test_k400_labels_and_dash_ids(annotations):
    t = create_task("k400", root=annotations / "k400")
    s = {x.id: x for x in t.samples("val")}
    air = s["--nQbRBEz2s_000104_000114"]
    assert air.extra["label_name"] == "air drumming" and t.class_names[air.label] == "air drumming"
    assert air.video.endswith("videos/val/--nQbRBEz2s_000104_000114.mp4")


def test_ssv2_template_to_class(annotations):
    t = create_task("ssv2", root=annotations / "ssv2")
    s = t.samples("val")[0]
    assert s.id == "74225" and t.class_names[s.label] == "Spinning something that quickly stops spinning"


def test_tgif_crlf_tab_file_matches_clipbert_jsonl(annotations):
    orig = create_task("tgif_frameqa", root=annotations / "tgif").samples("test")
    clip = create_task("tgif_frameqa", root=annotations / "tgif", qa_format="clipbert").samples("test")
    assert [(s.texts, s.answer, s.extra["answer_type"]) for s in orig] == [
        (s.texts, s.answer, s.extra["answer_type"]) for s in clip]
    assert not any("\r" in s.texts[0] or "\r" in s.answer for s in orig)


def test_how2qa_no_header_and_deterministic_shuffle(annotations):
    a = create_task("how2qa", root=annotations / "how2qa").samples("val")
    b = create_task("how2qa", root=annotations / "how2qa").samples("val")
    first = a[0]  # first line of the file is a record, not a header
    assert first.texts == ["how many knife is there?"] and first.options[first.answer_index] == "1"
    assert [s.options for s in a] == [s.options for s in b]
    assert len({s.answer_index for s in a}) > 1  # the correct answer is not always in the same slot
    assert first.extra["clip_span"] == (7.2, 18.0)
    test = create_task("how2qa", root=annotations / "how2qa").samples("test")
    quoted = test[1]  # CRLF file, quoted field with a comma
    assert quoted.options[quoted.answer_index] == "Sheet are best for most stamping projects,"


def test_activitynet_paragraph_strips_sentences(annotations):
    s = create_task("activitynet_para", root=annotations / "activitynet").samples("val")[0]
    assert s.texts == ["A weight lifting tutorial is given. The coach helps the guy in red with the proper body "
                       "placement and lifting technique."]


def test_msrvtt_mc_answer_string_to_index(annotations):
    s = create_task("msrvtt_mc", root=annotations / "msrvtt").samples("test")[1]
    assert s.id == "mc1" and s.answer_index == 2 and len(s.options) == 5


def test_msrvtt_qa_vocabulary(annotations):
    s = create_task("msrvtt_qa", root=annotations / "msrvtt").samples("val")
    t = create_task("msrvtt_qa", root=annotations / "msrvtt")
    assert len(t.answer_vocab) == 1500 and t.answer_vocab[s[0].label] == "couch"
    assert s[0].answer == "couch" and s[0].extra["answer_type"] == "what"
    assert any(x.label is None and x.extra["in_vocab"] is False for x in s) or all(x.label is not None for x in s)


# ---------------------------------------------------------------------------------------------- written records
LSMDC_ANNOS = ("1010_TITANIC_00.41.32.072-00.41.40.196\t00.41.32.072\t00.41.40.196\t00.41.32.072\t00.41.40.196\t"
               'SOMEONE says "hello.\n'
               "1010_TITANIC_00.41.32.072-00.41.40.196\t00.41.32.072\t00.41.40.196\t00.41.32.072\t00.41.40.196\t"
               "SOMEONE turns away.\n"
               "1012_Unbreakable_00.05.10.000-00.05.12.000\t00.05.10.000\t00.05.12.000\t00.05.09.500\t00.05.12.500\t"
               "A train passes.\n")


def test_lsmdc_retrieval_from_written_records(tmp_path):
    (tmp_path / "LSMDC16_annos_training.csv").write_text(LSMDC_ANNOS)
    t = create_task("lsmdc_ret", root=tmp_path)
    s = t.samples("train")
    assert [len(x.texts) for x in s] == [2, 1] and s[0].texts[0] == 'SOMEONE says "hello.'
    assert s[0].video.endswith("videos/1010_TITANIC/1010_TITANIC_00.41.32.072-00.41.40.196.avi")
    (tmp_path / "LSMDC16_annos_val.csv").write_text(LSMDC_ANNOS + "broken\tline\n")
    with pytest.raises(AnnotationError, match=r"LSMDC16_annos_val.csv, line 4: 2 TAB fields"):
        create_task("lsmdc_ret", root=tmp_path).samples("val")
    lenient = create_task("lsmdc_ret", root=tmp_path, strict=False)
    assert len(lenient.samples("val")) == 2 and lenient.report("val").n_skipped == 1


def test_lsmdc_multiple_choice_formats(tmp_path):
    clip = "1010_TITANIC_00.41.32.072-00.41.40.196\t1\t2\t1\t2"
    (tmp_path / "LSMDC16_multiple_choice_valid.csv").write_text(f"{clip}\tright\tw1\tw2\tw3\tw4\t\n")
    (tmp_path / "LSMDC16_multiple_choice_test_randomized.csv").write_text(f"{clip}\tc1\tc2\tc3\tc4\tc5\t3\n")
    val = create_task("lsmdc_mc", root=tmp_path).samples("val")[0]
    assert val.options[val.answer_index] == "right" and sorted(val.options) == ["right", "w1", "w2", "w3", "w4"]
    test = create_task("lsmdc_mc", root=tmp_path).samples("test")[0]
    assert test.options == ["c1", "c2", "c3", "c4", "c5"] and test.answer_index == 2


def test_lsmdc_fib_pandas_tab_file(tmp_path):
    (tmp_path / "LSMDC16_FIB_test.csv").write_text(
        "\tvid_key\tblank_sentence\tanswer\n7\t1010_TITANIC_00.41.32.072-00.41.40.196\tSOMEONE _____ away.\tturns\n")
    s = create_task("lsmdc_fib", root=tmp_path).samples("test")[0]
    assert s.id == "7" and s.answer == "turns" and s.texts == ["SOMEONE _____ away."]


def test_violin_statements(tmp_path):
    ann = {"c1": {"file": "friends_s01e01_seg01_clip_00", "split": "test", "source": "tv",
                  "sub": [["Hi.", 0.0, 1.0], ["How are you?", 1.0, 2.0]],
                  "statement": [["p1", "n1"], ["p2", "n2"], ["p3", "n3"]]},
           "c2": {"file": "x", "split": "train", "sub": [], "statement": [["p", "n"]]}}
    (tmp_path / "violin_annotation.json").write_text(json.dumps(ann))
    s = create_task("violin", root=tmp_path).samples("test")
    assert len(s) == 6 and [x.answer_index for x in s] == [0, 1] * 3
    assert s[1].texts == ["n1"] and s[0].extra["subtitles"] == ["Hi.", "How are you?"]


def test_queryd_fused_paragraph(tmp_path):
    (tmp_path / "structured-symlinks").mkdir()
    caps = {"video-abc": [["a", "man", "walks"], ["he", "sits"]], "video-def": [["a", "cat"]]}
    with open(tmp_path / "structured-symlinks" / "raw_captions_combined_filtered.pkl", "wb") as fh:
        pickle.dump(caps, fh)
    (tmp_path / "test_list.txt").write_text("video-abc\nvideo-def")  # no final newline
    s = create_task("queryd_para", root=tmp_path).samples("test")
    assert [x.texts for x in s] == [["a man walks he sits"], ["a cat"]]


def test_unsafe_pickle_refused(tmp_path):
    (tmp_path / "structured-symlinks").mkdir()
    with open(tmp_path / "structured-symlinks" / "raw_captions_combined_filtered.pkl", "wb") as fh:
        pickle.dump({"video-abc": [Path("x")]}, fh)
    (tmp_path / "test_list.txt").write_text("video-abc\n")
    with pytest.raises(AnnotationError, match="refusing to unpickle"):
        create_task("queryd_para", root=tmp_path).samples("test")


def test_msrvtt_captioning_from_data_json(tmp_path, annotations):
    for f in ("MSRVTT_train.9k.csv", "MSRVTT_JSFUSION_test.csv"):
        (tmp_path / f).write_bytes((annotations / "msrvtt" / f).read_bytes())
    vids = ["video0", "video9770"]
    data = {"info": {}, "videos": [{"video_id": v, "split": "train" if v == "video0" else "test"} for v in vids],
            "sentences": [{"sen_id": i, "video_id": v, "caption": f"caption {i} of {v}"}
                          for i, v in enumerate(vids * 2)]}
    (tmp_path / "MSRVTT_data.json").write_text(json.dumps(data))
    t = create_task("msrvtt_cap", root=tmp_path, strict=False)
    test = t.samples("test")
    assert [s.id for s in test] == ["video9770"] and len(test[0].references) == 2
    assert t.report("test").n_skipped == 59  # the other 1k-A videos of the excerpt have no caption here
    full = create_task("msrvtt_cap", root=tmp_path, split_scheme="full").samples("train")
    assert [s.id for s in full] == ["video0"]
    train = create_task("msrvtt_ret", root=tmp_path, strict=False).samples("train")
    assert train[0].id == "video0" and train[0].texts == ["caption 0 of video0", "caption 2 of video0"]


def test_msvd_caption_sources(tmp_path):
    (tmp_path / "test_list.txt").write_text("-4wsuPCjDBc_5_15\n")
    (tmp_path / "AllVideoDescriptions.txt").write_text("# comment\n-4wsuPCjDBc_5_15 a man plays\n"
                                                       "-4wsuPCjDBc_5_15 someone is playing\n")
    s = create_task("msvd_cap", root=tmp_path, captions="descriptions").samples("test")
    assert s[0].references == ["a man plays", "someone is playing"]
    with open(tmp_path / "raw-captions.pkl", "wb") as fh:
        pickle.dump({"-4wsuPCjDBc_5_15": [["a", "man", "plays"]]}, fh)
    s = create_task("msvd_cap", root=tmp_path).samples("test")  # auto: raw-captions.pkl first
    assert s[0].references == ["a man plays"]
