"""Data for the end-to-end tests, written the way a user has it: short mp4/avi videos in the official directory
layouts, annotation files in the official formats built from real records of ``../shared/annotations``, a
WebVid-format post-training CSV, host checkpoints in the official CLIP4Clip and HF layouts (tiny configs,
random weights, nothing downloaded).

The annotation records come from the shared excerpts when they are present (``FINSTA_ANNOTATIONS`` or
``../shared/annotations``); otherwise from the copies of the same records below (so the tests never skip).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import torch

from tests.sg.videos import write_video

ANNOTATIONS = Path(os.environ.get("FINSTA_ANNOTATIONS", Path(__file__).resolve().parents[2] / ".." / "shared"
                                  / "annotations"))

# The first records of MSRVTT_JSFUSION_test.csv (key, vid_key, video_id, sentence), MSRVTT_train.9k.csv (video_id),
# msvd_test_qa_encode.json (answer, id, question, video_id) and msvd_answer_set.txt, as fallbacks.
_JSFUSION = [("ret0", "msr9770", "video9770", "a person is connecting something to system"),
             ("ret1", "msr9771", "video9771", "a little girl does gymnastics"),
             ("ret2", "msr7020", "video7020", "a woman creating a fondant baby and flower"),
             ("ret3", "msr9731", "video9731", "a boy plays grand theft auto 5")]
_TRAIN_9K = ["video0", "video1", "video2", "video3"]
_MSVD_QA = [{"answer": "someone", "id": 37348, "question": "who opened the box that held an automatic weapon in a gun?",
             "video_id": 1451},
            {"answer": "man", "id": 37350, "question": "who opens a box containing an assault rifle?",
             "video_id": 1451}]
_MSVD_ANSWERS = ["man", "woman", "person", "someone", "rifle", "box", "dog", "cat"]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def msrvtt_records(n_test: int = 4, n_train: int = 4) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    """(JSFUSION test rows, 9k training video ids) from the shared excerpts, else the copies above."""
    d = ANNOTATIONS / "msrvtt"
    if (d / "MSRVTT_JSFUSION_test.csv").is_file() and (d / "MSRVTT_train.9k.csv").is_file():
        test = [(r["key"], r["vid_key"], r["video_id"], r["sentence"])
                for r in _read_csv(d / "MSRVTT_JSFUSION_test.csv")]
        train = [r["video_id"] for r in _read_csv(d / "MSRVTT_train.9k.csv")]
        return test[:n_test], train[:n_train]
    return _JSFUSION[:n_test], _TRAIN_9K[:n_train]


def write_msrvtt(root: Path, n_test: int = 4, n_train: int = 4, frames: int = 16, size: int = 64) -> Path:
    """MSR-VTT in CLIP4Clip's layout: ``MSRVTT_data.json``, ``MSRVTT_train.9k.csv``, ``MSRVTT_JSFUSION_test.csv``,
    ``videos/<video_id>.mp4``. Training captions reuse real 1k-A sentences (``MSRVTT_data.json`` is not in the
    excerpts); its structure follows FORMATS.md s.4 (``videos`` with the keys that contain spaces)."""
    test, train = msrvtt_records(n_test, n_train)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    sentences = [r[3] for r in test]
    videos, sents = [], []
    for i, v in enumerate(train):
        videos.append({"category": 0, "url": f"https://www.youtube.com/watch?v={v}", "video_id": v,
                       "start time": 0.0, "end time": 2.0, "split": "train", "id": i})
        for j in range(2):
            sents.append({"caption": sentences[(i + j) % len(sentences)], "video_id": v, "sen_id": 2 * i + j})
    for i, r in enumerate(test):
        videos.append({"category": 0, "url": "", "video_id": r[2], "start time": 0.0, "end time": 2.0,
                       "split": "test", "id": len(train) + i})
        sents.append({"caption": r[3], "video_id": r[2], "sen_id": 2 * len(train) + i})
    (root / "MSRVTT_data.json").write_text(json.dumps({"info": {"year": 2016}, "videos": videos, "sentences": sents}))
    (root / "MSRVTT_train.9k.csv").write_text("video_id\n" + "".join(f"{v}\n" for v in train))
    with open(root / "MSRVTT_JSFUSION_test.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "vid_key", "video_id", "sentence"])
        w.writerows(test)
    for k, v in enumerate(list(train) + [r[2] for r in test]):
        write_video(str(root / "videos" / f"{v}.mp4"), n_frames=frames, size=size, fps=8, seed=k)
    return root


def write_msvd(root: Path, frames: int = 12, size: int = 64) -> Path:
    """MSVD-QA: ``msvd_{train,test}_qa_encode.json``, ``youtube_mapping.txt``, ``msvd_answer_set.txt``,
    ``YouTubeClips/<clip_id>.avi`` (two videos per split; records from the shared excerpts)."""
    d = ANNOTATIONS / "msvd"
    if (d / "msvd_test_qa_encode.json").is_file():
        qa = json.loads((d / "msvd_test_qa_encode.json").read_text())
        mapping = (d / "youtube_mapping.txt").read_text().split("\n")
        answers = [a for a in (d / "msvd_answer_set.txt").read_text().split("\n") if a.strip()]
    else:
        qa, mapping, answers = list(_MSVD_QA), ["-4wsuPCjDBc_5_15 vid1"], list(_MSVD_ANSWERS)
    vids = list(dict.fromkeys(int(q["video_id"]) for q in qa))[:4]
    by_vid = {v: [q for q in qa if int(q["video_id"]) == v][:2] for v in vids}
    clip = {int(p[1][3:]): p[0] for p in (m.split() for m in mapping) if len(p) == 2}
    while len(vids) < 4:  # the fallback copy has one video: make more from its questions
        vids.append(vids[-1] + 1)
        by_vid[vids[-1]] = [dict(q, id=q["id"] + 100 * len(vids), video_id=vids[-1]) for q in by_vid[vids[0]]]
    names = {v: clip.get(v, f"clip{v}_0_5") for v in vids}
    root.mkdir(parents=True, exist_ok=True)
    (root / "youtube_mapping.txt").write_text("".join(f"{names[v]} vid{v}\n" for v in vids))
    (root / "msvd_answer_set.txt").write_text("\n".join(answers) + "\n")
    split = {"train": vids[:2], "test": vids[2:]}
    for s, vs in split.items():
        (root / f"msvd_{s}_qa_encode.json").write_text(json.dumps([q for v in vs for q in by_vid[v]]))
    (root / "YouTubeClips").mkdir(exist_ok=True)
    for k, v in enumerate(vids):
        write_video(str(root / "YouTubeClips" / f"{names[v]}.avi"), n_frames=frames, size=size, fps=8, seed=10 + k)
    return root


def write_webvid(root: Path, n: int = 4, frames: int = 16, size: int = 64, bad: bool = True) -> Path:
    """A WebVid-2.5M-format CSV (``results_2M_train.csv``: videoid, contentUrl, duration, page_dir, name) with
    videos at ``videos/<page_dir>/<videoid>.mp4`` (the download scripts' layout); captions are real MSR-VTT
    sentences. ``bad`` adds one row whose video is unreadable (recorded by ``sg parse``)."""
    test, _ = msrvtt_records(max(n, 4), 0)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        vid, page = str(1066000 + i), f"{i % 2:03d}001_{i % 2:03d}050"
        rows.append([vid, f"https://ak.picdn.net/shutterstock/videos/{vid}/preview/stock-footage.mp4", "PT00H00M02S",
                     page, test[i % len(test)][3]])
        (root / "videos" / page).mkdir(exist_ok=True)
        write_video(str(root / "videos" / page / f"{vid}.mp4"), n_frames=frames, size=size, fps=8, seed=20 + i)
    if bad:
        rows.append(["1066999", "https://x/1066999.mp4", "PT00H00M02S", "000001_000050", "a man is talking"])
        (root / "videos" / "000001_000050" / "1066999.mp4").write_bytes(b"\x00\x00 not a video")
    with open(root / "results_2M_train.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["videoid", "contentUrl", "duration", "page_dir", "name"])
        w.writerows(rows)
    return root / "results_2M_train.csv"


def write_detector(root: Path, classes: tuple[str, ...] = ("person", "dog", "ball", "chair", "car")
                   ) -> tuple[Path, Path]:
    """A Faster R-CNN built from its torchvision config with random weights, saved as a state dict, and its
    class-name file (what ``sg parse --classes --detector-checkpoint`` reads)."""
    from finsta_core.sg.detectors import FasterRCNNDetector

    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    torch.manual_seed(0)
    det = FasterRCNNDetector(list(classes), min_size=64, max_size=96)
    torch.save(det.model.state_dict(), root / "frcnn.pth")
    return root / "classes.txt", root / "frcnn.pth"


def write_clip4clip(root: Path, layout: str) -> Path:
    """Tiny random CLIP4Clip (seqTransf, 1 temporal layer) saved in the official CLIP4Clip layout (a directory
    with ``pytorch_model.bin.0``: ``module.clip.<openai names>``, ``module.transformerClip.*``) or the HF layout
    (``config.json`` + ``model.safetensors``), each with the tokenizer files beside the weights."""
    from hosts.clip4clip import hf_clip_to_openai
    from hosts.registry import create_host
    from tests.hosts.tiny_builders import make_tokenizer, tiny_clip_config

    torch.manual_seed(0)
    tok = make_tokenizer("clip")
    host = create_host("clip4clip", random_init=True, clip_config=tiny_clip_config(), tokenizer=tok,
                       sim_header="seqTransf", seq_layers=1)
    state = {k: v for k, v in host.state_dict().items() if "position_ids" not in k}
    root.mkdir(parents=True, exist_ok=True)
    if layout == "official":
        clip = {k[5:]: v for k, v in state.items() if k.startswith("clip.")}
        ck = {"clip." + k: v for k, v in hf_clip_to_openai(clip).items()}
        ck.update({k.replace("seq_transformer.", "transformerClip."): v for k, v in state.items()
                   if not k.startswith("clip.")})
        torch.save({"module." + k: v for k, v in ck.items()}, root / "pytorch_model.bin.0")
    elif layout == "hf":
        host.clip.save_pretrained(root)
    else:
        raise ValueError(layout)
    tok.save_pretrained(root)
    return root


def write_video_llava(root: Path) -> Path:
    """Tiny random Video-LLaVA saved in the HF hub layout (``Video-LLaVA-7B-hf``: config, safetensors, tokenizer)."""
    from transformers import VideoLlavaForConditionalGeneration

    from tests.hosts.tiny_builders import make_tokenizer, tiny_video_llava_config

    torch.manual_seed(1)
    model = VideoLlavaForConditionalGeneration(tiny_video_llava_config()).eval()
    model.save_pretrained(root)
    make_tokenizer("llama").save_pretrained(root)
    return root


def write_hf_detector(root: Path, classes: tuple[str, ...] = ("person", "dog", "ball", "chair", "car")) -> Path:
    """A transformers YOLOS detector built from a tiny config with random weights, saved with save_pretrained
    (what ``sg parse --detector hf --detector-checkpoint DIR`` reads; labels from its ``id2label``)."""
    from transformers import YolosConfig, YolosForObjectDetection

    cfg = YolosConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                      image_size=[64, 64], patch_size=16, num_detection_tokens=8, num_labels=len(classes),
                      id2label=dict(enumerate(classes)), label2id={c: i for i, c in enumerate(classes)})
    torch.manual_seed(0)
    YolosForObjectDetection(cfg).save_pretrained(root)
    return root
