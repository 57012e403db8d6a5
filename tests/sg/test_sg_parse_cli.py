"""`sg parse` end to end on videos and captions written here (debug submitit executor, random weights)."""

import argparse
import json

import pytest
import torch

pytest.importorskip("av")
pytest.importorskip("submitit")

from finsta_core.sg.tsg import spacy_model_available  # noqa: E402
from tests.sg.videos import write_corrupt, write_video  # noqa: E402

pytestmark = [pytest.mark.model, pytest.mark.skipif(not spacy_model_available(), reason="no spaCy English model")]


def _parser():
    from harness.commands.sg import register

    ap = argparse.ArgumentParser()
    register(ap.add_subparsers(dest="cmd"))
    return ap


@pytest.fixture
def corpus(tmp_path):
    from finsta_core.sg.detectors import FasterRCNNDetector

    vids = tmp_path / "videos"
    vids.mkdir()
    rows = [
        {"id": "v0", "video": "videos/v0.mp4", "caption": "a man quickly sits down on a red chair"},
        {"id": "v1", "video": "videos/v1.mp4", "caption": "two dogs are running across the field"},
        {"id": "v2", "video": "videos/v2.mp4", "caption": ""},
        {"id": "v3", "video": "videos/bad.mp4", "caption": "a woman slowly cuts an apple"},
        {"id": "v4", "video": "videos/v4.mp4", "caption": "the chair is in front of the desk"},
    ]
    for i in (0, 1, 2, 4):
        write_video(str(vids / f"v{i}.mp4"), n_frames=24, fps=8, seed=i)
    write_corrupt(str(vids / "bad.mp4"))
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "classes.txt").write_text("person\nchair\ndog\n")
    torch.manual_seed(0)
    det = FasterRCNNDetector(["person", "chair", "dog"], min_size=64, max_size=96)
    torch.save(det.model.state_dict(), tmp_path / "frcnn.pth")
    return tmp_path


@pytest.mark.slow
def test_sg_parse_end_to_end_and_resume(corpus, capsys):
    from finsta_core.graphs.types import HolisticSceneGraph
    from finsta_core.sg.store import GraphStore

    out = corpus / "sg"
    argv = ["sg", "parse", "--corpus", str(corpus / "corpus.jsonl"), "--out", str(out), "--classes",
            str(corpus / "classes.txt"), "--detector-checkpoint", str(corpus / "frcnn.pth"), "--score-threshold",
            "0.0", "--min-size", "64", "--min-keyframes", "3", "--max-keyframes", "4", "--sample-fps", "4",
            "--shard-size", "3", "--cluster", "debug"]
    args = _parser().parse_args(argv)
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "5 records, 3 graphs, 2 skipped" in text and "tsg/object" in text
    index = json.loads((out / "index.json").read_text())
    assert {f["id"]: f["reason"].split(":")[0] for f in index["failures"]} == {
        "v2": "empty caption", "v3": "unreadable video"}
    store = GraphStore(out)
    assert sorted(store.ids()) == ["v0", "v1", "v4"]
    g = store["v0"]
    assert isinstance(g, HolisticSceneGraph)
    g.validate()
    assert "sit down on" in g.tsg.labels and 3 <= g.dsg.num_frames <= 4
    assert len(list(GraphStore(out, vocabulary_filter=True))) == 3
    # resume: every shard is complete, nothing runs again
    assert args.func(args) == 0
    assert "ran 0" in capsys.readouterr().out


def test_sg_parse_user_errors(corpus):
    from harness.errors import HarnessError

    base = ["sg", "parse", "--out", str(corpus / "o"), "--classes", str(corpus / "classes.txt"), "--random-weights"]
    args = _parser().parse_args(base + ["--corpus", str(corpus / "missing.csv")])
    with pytest.raises(HarnessError, match="missing.csv"):
        args.func(args)
    (corpus / "bad.csv").write_text("id,caption\n1,a dog\n")
    args = _parser().parse_args(base + ["--corpus", str(corpus / "bad.csv")])
    with pytest.raises(HarnessError, match=r"bad.csv, row 2: field 'video' is missing"):
        args.func(args)
    args = _parser().parse_args(["sg", "parse", "--out", "o", "--corpus", str(corpus / "corpus.jsonl")])
    with pytest.raises(HarnessError, match="detector-checkpoint"):
        args.func(args)


@pytest.mark.parametrize("extra, msg", [
    (["--shard-size", "0"], "--shard-size must be >= 1"),
    (["--sample-fps", "0"], "--sample-fps must be > 0"),
    (["--min-keyframes", "5", "--max-keyframes", "3"], "1 <= --min-keyframes <= --max-keyframes"),
    (["--min-keyframes", "0"], "1 <= --min-keyframes"),
    (["--score-threshold", "1.5"], "score_threshold must be in"),
])
def test_sg_parse_refuses_bad_numbers(corpus, extra, msg):
    from harness.errors import HarnessError

    args = _parser().parse_args(["sg", "parse", "--corpus", str(corpus / "corpus.jsonl"), "--out",
                                 str(corpus / "o"), "--classes", str(corpus / "classes.txt"), "--random-weights",
                                 *extra])
    with pytest.raises(HarnessError, match=msg):
        args.func(args)


def test_sg_parse_bad_checkpoints_are_one_line(corpus):
    from harness.errors import HarnessError

    base = ["sg", "parse", "--corpus", str(corpus / "corpus.jsonl"), "--out", str(corpus / "o"), "--classes",
            str(corpus / "classes.txt")]
    (corpus / "garbage.pth").write_bytes(b"not a checkpoint at all")
    (corpus / "empty.pth").write_bytes(b"")
    torch.save({"w": torch.zeros(2)}, corpus / "other.pth")
    (corpus / "clip").mkdir()
    for extra, msg in ((["--detector-checkpoint", str(corpus / "garbage.pth")], "garbage.pth cannot be read"),
                       (["--detector-checkpoint", str(corpus / "empty.pth")], "empty.pth is empty"),
                       (["--detector-checkpoint", str(corpus / "other.pth")], "other.pth does not match"),
                       (["--random-weights", "--clip-checkpoint", str(corpus / "clip")], "empty directory"),
                       (["--detector", "hf", "--detector-checkpoint", str(corpus / "clip")], "has no config.json")):
        args = _parser().parse_args(base + extra)
        with pytest.raises(HarnessError, match=msg) as err:
            args.func(args)
        assert "\n" not in str(err.value)


def test_sg_parse_resume_refuses_store_of_another_corpus(corpus, capsys):
    """A store built from another corpus is refused; --rebuild clears it (records fail fast: no detection)."""
    from finsta_core.sg.store import read_manifest, write_manifest
    from harness.errors import HarnessError

    pairs = corpus / "pairs.csv"
    pairs.write_bytes("\ufeffid,video,caption\nb1,videos/bad.mp4,a dog runs\nb2,videos/v0.mp4,\n".encode())
    out = corpus / "st"
    write_manifest(out, {"fingerprint": "0" * 16, "corpus_fingerprint": "1" * 16})
    (out / "shards").mkdir()
    (out / "shards" / "shard-00000.json").write_text('{"ids": ["old"], "failures": [], "stats": {}}')
    argv = ["sg", "parse", "--corpus", str(pairs), "--out", str(out), "--classes", str(corpus / "classes.txt"),
            "--random-weights", "--cluster", "debug", "--min-size", "64"]
    args = _parser().parse_args(argv)
    with pytest.raises(HarnessError, match="built from another corpus; pass --rebuild"):
        args.func(args)
    args = _parser().parse_args(argv + ["--rebuild"])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "2 records, 0 graphs, 2 skipped" in text and "[sg parse] shard 0 (1/1)" in text
    index = json.loads((out / "index.json").read_text())
    assert {f["id"]: f["reason"].split(":")[0] for f in index["failures"]} == {
        "b1": "unreadable video", "b2": "empty caption"}
    assert read_manifest(out)["corpus"]["name"] == "plain"
    # same corpus and configuration again: resumed, nothing runs
    args = _parser().parse_args(argv)
    assert args.func(args) == 0
    assert "ran 0" in capsys.readouterr().out
    # another parser configuration on the same store: refused
    args = _parser().parse_args(argv + ["--gamma-c", "0.5"])
    with pytest.raises(HarnessError, match="another parser / detector configuration"):
        args.func(args)
