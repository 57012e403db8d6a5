"""Fixtures for the lmms-eval integration: a tiny Video-LLaVA in the HF directory layout and a small MSVD-QA in
the official layout (records from ../shared/annotations/msvd, videos written by the test)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for sub in ("hosts", "sg"):  # builder modules of other test folders (not packages)
    if str(TESTS / sub) not in sys.path:
        sys.path.insert(0, str(TESTS / sub))

ANNOTATIONS = TESTS.parents[1] / "shared" / "annotations" / "msvd"


@pytest.fixture(scope="session")
def tiny_video_llava_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-initialised tiny Video-LLaVA saved as an HF directory (config, safetensors, tokenizer)."""
    import torch
    from tiny_builders import make_tokenizer, tiny_video_llava_config
    from transformers import VideoLlavaForConditionalGeneration

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("video_llava_hf")
    VideoLlavaForConditionalGeneration(tiny_video_llava_config()).save_pretrained(d)
    make_tokenizer("llama").save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def msvd_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MSVD-QA test split of 4 questions (official files, first records of the shipped excerpt) + their videos."""
    from videos import write_video

    if not ANNOTATIONS.is_dir():
        pytest.fail(f"the MSVD annotation excerpt is missing: {ANNOTATIONS} (CI has ../shared beside the repo)")
    root = tmp_path_factory.mktemp("msvd")
    records = json.loads((ANNOTATIONS / "msvd_test_qa_encode.json").read_text())[:4]
    (root / "msvd_test_qa_encode.json").write_text(json.dumps(records))
    shutil.copy(ANNOTATIONS / "msvd_answer_set.txt", root / "msvd_answer_set.txt")
    clips = {r["video_id"]: f"clip{r['video_id']}_0_10" for r in records}  # official mapping: '<clip id> vid<k>'
    (root / "youtube_mapping.txt").write_text("".join(f"{c} vid{k}\n" for k, c in clips.items()))
    (root / "YouTubeClips").mkdir()
    for k, clip in enumerate(sorted(set(clips.values()))):
        write_video(str(root / "YouTubeClips" / f"{clip}.avi"), n_frames=12, size=48, seed=k, cut_at=None)
    return root
