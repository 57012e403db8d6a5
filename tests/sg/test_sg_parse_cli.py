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
    with pytest.raises(HarnessError, match="record 1 needs"):
        args.func(args)
    args = _parser().parse_args(["sg", "parse", "--out", "o", "--corpus", str(corpus / "corpus.jsonl")])
    with pytest.raises(HarnessError, match="detector-checkpoint"):
        args.func(args)
