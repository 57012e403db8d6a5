"""Regenerate the CLIP4Clip parity fixtures from the official code (ArrowLuo/CLIP4Clip @508ffa3).

What it does (issue 12, "Parity, without downloading weights"):

1. imports the official ``modules.modeling.CLIP4Clip`` from a local checkout (``--official``); its
   ``file_utils`` imports ``boto3`` at module level, which is stubbed here (nothing is downloaded: the model
   is built directly from a tiny OpenAI-named CLIP state dict, never through ``from_pretrained``);
2. builds it at a tiny size (CLIP widths 64, 2 + 2 layers, 32 px, patch 16, 16 text positions, seqTransf with
   2 temporal layers, ``loose_type``), randomises every weight with a fixed seed and rounds it to float16;
3. saves the full state dict in the official checkpoint format (``torch.save(model.state_dict())``, the file
   ``main_task_retrieval.py`` writes as ``pytorch_model.bin.N``), in float16 to keep the fixture small;
4. runs the official model in float32 on a fixed video batch and the token ids of a tiny WordLevel tokenizer
   (saved as ``tokenizer.json``; end-of-text has the highest id, as the official ``argmax`` pooling assumes)
   and stores: first-layer token states of both towers, pooled text / per-frame outputs, and the retrieval
   logits of ``seqTransf`` and ``meanP`` (the same weights without the temporal transformer).

``tests/hosts/test_hosts_clip4clip.py::test_parity_with_official_code`` loads the checkpoint into our host and
compares (CI needs neither the official code nor the network).

Usage::

    python scripts/parity/clip4clip.py --official /path/to/CLIP4Clip [--out tests/fixtures/hosts/clip4clip]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import torch
from _common import make_clip_tokenizer

OFFICIAL_COMMIT = "508ffa3"
WIDTH, LAYERS, IMAGE, PATCH, CONTEXT, FRAMES, SEQ_LAYERS = 64, 2, 32, 16, 16, 3, 2
TEXTS = ["a man throws a red ball .", "the dog runs in the park"]
WORDS = "a the man woman dog cat ball car red blue runs jumps plays throws in of park street . ,".split()


def stub_boto3() -> None:
    """``modules/file_utils.py`` imports boto3/botocore for S3 downloads we never make."""
    if "boto3" in sys.modules:
        return
    boto3 = types.ModuleType("boto3")
    botocore = types.ModuleType("botocore")
    exceptions = types.ModuleType("botocore.exceptions")
    exceptions.ClientError = type("ClientError", (Exception,), {})
    botocore.exceptions = exceptions
    sys.modules.update({"boto3": boto3, "botocore": botocore, "botocore.exceptions": exceptions})


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Every parameter random (fixed seed), rounded to float16 values: matrices ~ N(0, 1/fan_in), LayerNorm
    weights 1 + N(0, 0.1), other vectors N(0, 0.1), ``logit_scale`` log(1/0.07) + U(0, 0.1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("logit_scale"):
                v = torch.full_like(p, math.log(1 / 0.07)) + 0.1 * torch.rand(p.shape, generator=g)
            elif p.dim() >= 2:
                v = torch.randn(p.shape, generator=g) * p[0].numel() ** -0.5
            elif "ln" in name.split(".")[-2] or "norm" in name.lower():
                v = 1 + 0.1 * torch.randn(p.shape, generator=g) if name.endswith("weight") else \
                    0.1 * torch.randn(p.shape, generator=g)
            else:
                v = 0.1 * torch.randn(p.shape, generator=g)
            p.copy_(v.half().float())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", required=True, type=Path, help="checkout of ArrowLuo/CLIP4Clip (holds modules/)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "tests/fixtures/hosts/clip4clip")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    stub_boto3()
    sys.path.insert(0, str(args.official.resolve()))
    from modules.modeling import CLIP4Clip
    from modules.module_clip import CLIP  # official code
    from modules.module_cross import CrossConfig

    tok = make_clip_tokenizer(WORDS)
    vocab = len(tok)
    clip = CLIP(WIDTH, IMAGE, LAYERS, WIDTH, PATCH, CONTEXT, vocab, WIDTH, WIDTH // 64, LAYERS)
    cfg = json.loads((args.official / "modules/cross-base/cross_config.json").read_text())
    cross_config = CrossConfig.from_dict({**cfg, "hidden_size": WIDTH})
    task = SimpleNamespace(max_words=CONTEXT, max_frames=FRAMES, loose_type=True, sim_header="seqTransf",
                           cross_num_hidden_layers=SEQ_LAYERS, linear_patch="2d", local_rank=0)
    model = CLIP4Clip(cross_config, clip.state_dict(), task).float()
    randomise(model, args.seed)
    model.eval()

    enc = tok(TEXTS, padding="max_length", max_length=CONTEXT)
    ids, mask = torch.tensor(enc["input_ids"]), torch.tensor(enc["attention_mask"])
    g = torch.Generator().manual_seed(args.seed + 1)
    video = torch.randn(len(TEXTS), FRAMES, 3, IMAGE, IMAGE, generator=g)
    video_mask = torch.ones(len(TEXTS), FRAMES, dtype=torch.long)
    captured: dict[str, torch.Tensor] = {}

    def hook(key: str):
        def fn(module, inputs, output):
            captured[key] = output[0].permute(1, 0, 2).detach().clone()  # official blocks are LND
        return fn

    model.clip.transformer.resblocks[0].register_forward_hook(hook("text_first"))
    model.clip.visual.transformer.resblocks[0].register_forward_hook(hook("video_first"))
    with torch.no_grad():
        seq = model.get_sequence_output(ids, torch.zeros_like(ids), mask, shaped=True)
        vis = model.get_visual_output(video.flatten(0, 1), video_mask, shaped=True, video_frame=FRAMES)
        logits_seq = model.get_similarity_logits(seq, vis, mask, video_mask, shaped=True, loose_type=True)[0]
        model.sim_header = "meanP"
        logits_mean = model.get_similarity_logits(seq, vis, mask, video_mask, shaped=True, loose_type=True)[0]
        model.sim_header = "seqTransf"
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half() for k, v in model.state_dict().items()}, args.out / "pytorch_model.bin.4")
    tok.backend_tokenizer.save(str(args.out / "tokenizer.json"))
    refs = {"texts": TEXTS, "input_ids": ids, "attention_mask": mask, "video": video,
            "text_first": captured["text_first"], "video_first": captured["video_first"],
            "text_pooled": seq.squeeze(1), "frames_pooled": vis, "logits_seqTransf": logits_seq,
            "logits_meanP": logits_mean,
            "meta": {"official": f"ArrowLuo/CLIP4Clip@{OFFICIAL_COMMIT}", "seed": args.seed, "width": WIDTH,
                     "layers": LAYERS, "seq_layers": SEQ_LAYERS, "image": IMAGE, "patch": PATCH, "context": CONTEXT,
                     "frames": FRAMES, "vocab": vocab}}
    torch.save(refs, args.out / "refs.pt")
    for f in sorted(args.out.iterdir()):
        print(f"{f}: {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
