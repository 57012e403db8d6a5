"""Regenerate the InternVideo parity fixtures from the official code (OpenGVLab/InternVideo @3965eef,
``InternVideo1/Pretrain/Multi-Modalities-Pretraining/InternVideo/clip_utils``).

1. imports the official ``clip_utils.model.VideoIntern`` and ``clip_utils.utils.clip_vit_only_global``
   ``VisionTransformer`` from a checkout (``--official``; the package ``__init__``s, which import decord and the
   CLIP downloader, are bypassed; ``timm`` must be importable for ``DropPath``: ``--extra-path``);
2. builds ``VideoIntern`` at a tiny size through its own ``backbone`` hook (a tiny ``VisionTransformer``: width 64,
   2 blocks, 2 heads, 28 px, patch 14, 3 frames, global module over both blocks; text width 64, 2 blocks, 2 heads,
   16 positions; embedding 32), randomises every weight (seed 0, float16 values; the official init zeroes the
   Extractor outputs);
3. saves the official checkpoint format read by the official ``load_model``: ``{"state_dict": {"clip." + k: v}}``
   as ``InternVideo-MM-L-14.ckpt``, with a tiny WordLevel tokenizer (end of text has the highest id, as the
   official ``argmax`` pooling assumes);
4. runs ``encode_video`` (``[N, C, T, H, W]``) with ``return_all_feats`` and ``encode_text`` and stores the first
   block's token states (vision, via a hook; text), the video and text embeddings, the per-frame final ``[CLS]``
   tokens and the retrieval logits.

Usage::

    python scripts/parity/internvideo.py --official /path/to/InternVideo --extra-path /path/with/timm
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import types
from pathlib import Path

import torch
from _common import make_clip_tokenizer

OFFICIAL_COMMIT = "3965eef"
SUB = "InternVideo1/Pretrain/Multi-Modalities-Pretraining/InternVideo/clip_utils"
W, LAYERS, HEADS, IMAGE, PATCH, FRAMES, CONTEXT, EMBED = 64, 2, 2, 28, 14, 3, 16, 32
TEXTS = ["a man throws a red ball .", "the dog runs in the park"]
WORDS = "a the man woman dog cat ball red blue runs throws in park . ,".split()


def load_official(root: Path):
    base = root / SUB
    pkg = types.ModuleType("clip_utils")
    pkg.__path__ = [str(base)]
    sys.modules["clip_utils"] = pkg
    utils_pkg = types.ModuleType("clip_utils.utils")
    utils_pkg.__path__ = [str(base / "utils")]
    sys.modules["clip_utils.utils"] = utils_pkg

    def load(name: str, path: Path):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    vit = load("clip_utils.utils.clip_vit_only_global", base / "utils/clip_vit_only_global.py")
    utils_pkg.clip_vit_only_global = vit
    pkg.utils = utils_pkg
    model = load("clip_utils.model", base / "model.py")
    return vit, model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", required=True, type=Path, help="checkout of OpenGVLab/InternVideo")
    ap.add_argument("--extra-path", type=Path, default=None, help="folder holding timm")
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parents[2] / "tests/fixtures/hosts/internvideo")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.extra_path is not None:
        sys.path.insert(0, str(args.extra_path))
    vit, official = load_official(args.official.resolve())

    def tiny_backbone(pretrained=False, **kw):
        return vit.VisionTransformer(input_resolution=IMAGE, patch_size=PATCH, width=W, layers=LAYERS, heads=HEADS,
                                     output_dim=EMBED, n_layers=LAYERS, **kw)

    official.utils.__dict__["tiny_backbone"] = tiny_backbone
    tok = make_clip_tokenizer(WORDS)
    torch.manual_seed(args.seed)
    model = official.VideoIntern(EMBED, W, CONTEXT, len(tok), W, HEADS, LAYERS, n_layers=LAYERS, n_dim=W, n_head=HEADS,
                                 mlp_dropout=[0.0] * LAYERS, cls_dropout=0.0, t_size=FRAMES, backbone="tiny_backbone",
                                 return_list=list(range(LAYERS)))
    g = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("logit_scale"):
                p.fill_(2.0)
            elif ("ln" in name or "norm" in name) and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * p[0].numel() ** -0.5)
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            p.copy_(p.half().float())  # float16 values: the fixture is stored in float16
    model.eval()
    enc = tok(TEXTS, padding="max_length", max_length=CONTEXT)
    ids = torch.tensor(enc["input_ids"])
    video = torch.randn(len(TEXTS), 3, FRAMES, IMAGE, IMAGE, generator=g)
    captured = {}

    def keep(key):
        def hook(module, inputs, output) -> None:
            captured.setdefault(key, output.detach().clone())
        return hook

    model.visual.transformer.resblocks[0].register_forward_hook(keep("video_first"))
    model.transformer.resblocks[0].register_forward_hook(keep("text_first"))
    with torch.no_grad():
        video_emb, all_feats = model.encode_video(video, return_all_feats=True)
        text_emb = model.encode_text(ids)
        v = video_emb / video_emb.norm(dim=-1, keepdim=True)
        t = text_emb / text_emb.norm(dim=-1, keepdim=True)
        logits = model.logit_scale.exp() * t @ v.t()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {f"clip.{k}": v.half() if v.is_floating_point() else v
                               for k, v in model.state_dict().items()}},
               args.out / "InternVideo-MM-L-14.ckpt")
    tok.backend_tokenizer.save(str(args.out / "tokenizer.json"))
    n = video.shape[0]
    torch.save({"texts": TEXTS, "input_ids": ids, "attention_mask": torch.tensor(enc["attention_mask"]),
                "video": video.permute(0, 2, 1, 3, 4).contiguous(),
                "video_first": captured["video_first"].permute(1, 0, 2).reshape(n, -1, W),  # LND -> [N, T*L, W]
                "text_first": captured["text_first"].permute(1, 0, 2),
                "video_emb": video_emb, "text_emb": text_emb, "frame_cls": all_feats[0],  # [N, T, W]
                "logits": logits,
                "meta": {"official": f"OpenGVLab/InternVideo@{OFFICIAL_COMMIT}", "seed": args.seed, "width": W,
                         "layers": LAYERS, "heads": HEADS, "image": IMAGE, "patch": PATCH, "frames": FRAMES,
                         "context": CONTEXT, "embed": EMBED, "vocab": len(tok)}}, args.out / "refs.pt")
    for f in sorted(args.out.iterdir()):
        print(f"{f}: {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
