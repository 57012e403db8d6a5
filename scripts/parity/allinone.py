"""Regenerate the All-in-one parity fixtures (tests/fixtures/hosts/allinone/) from the official code.

Method (issue 12): build the official ``AllinoneTransformerSS`` (showlab/all-in-one @ae0e288:
``AllInOne/modules/allinone_module.py``, ``base_vision_transformer.py``, ``temporal_roll.py``, ``heads.py``,
``objectives.py``) at a tiny size with the heads of ITM, retrieval (``irtr``: ``rank_output``), open-ended QA
(``openend_vqa``: ``vqa_classifier``) and ``ind_itc`` (``txt_proj`` / ``vid_proj``), randomise every weight with a
fixed seed, save a PyTorch Lightning style checkpoint (``state_dict`` + pickled ``hyper_parameters`` holding a
config object, as Lightning writes), run the official ``infer`` passes (joint, text-only, video-only) and the
official heads, and store the references. The global RNG is seeded right before every pass: ``visual_embed`` draws
each frame's patch order with ``torch.multinomial`` (the test seeds the same way before the host's pass).

Stubs (no numerics replaced): ``timm`` (``DropPath`` inactive in eval, ``to_2tuple``, ``trunc_normal_``,
``register_model``, ``load_pretrained`` and the ResNet imports unused), ``pytorch_lightning.LightningModule`` (an
``nn.Module`` whose ``save_hyperparameters`` stores ``config``), ``AllInOne.modules.allinone_utils`` (metrics
setup), ``dist_utils`` / ``retrieval_metrics`` (unused here), ``AllInOne.transforms.mix.SpatialMixup`` (unused at
inference). ``einops`` must be importable (``--deps DIR`` with ``pip install --target DIR einops``). The tiny ViT is
registered as ``vit`` config entry ``vit_tiny_test`` (the official ``vit_base_patch16_224`` hard-codes 768 wide).

Usage: python scripts/parity/allinone.py --repo <git checkout of showlab/all-in-one> --deps <DIR>
"""

from __future__ import annotations

import argparse
import inspect
import subprocess
import sys
import types
from pathlib import Path

import torch
from torch import nn

COMMIT = "ae0e288"
D, DEPTH, HEADS, FRAMES, RES, PATCH, SHARED, ANSWERS, MAX_TEXT = 32, 2, 2, 3, 64, 16, 16, 5, 40
WORDS = ("a the man woman dog cat ball car red blue runs jumps plays with on in of and is what who video "
         "street park green throws kicks , . ?").split()
TEXTS = ["a man throws a red ball in the park", "what is the dog doing ?"]
SEED_JOINT, SEED_VIDEO, SEED_PAIRS = 11, 12, 13


class AttributeDict(dict):
    """Stand-in for Lightning's ``AttributeDict`` pickled into ``hyper_parameters``."""


def _read(repo: Path, rel: str) -> str:
    if (repo / rel).is_file():
        return (repo / rel).read_text()
    return subprocess.run(["git", "--git-dir", str(repo), "show", f"HEAD:{rel}"], check=True, capture_output=True,
                          text=True).stdout


def _module(name: str, source: str | None = None, **attrs) -> types.ModuleType:
    m = types.ModuleType(name)
    m.__path__ = []
    m.__dict__.update(attrs)
    sys.modules[name] = m
    if source is not None:
        exec(compile(source, name.replace(".", "/") + ".py", "exec"), m.__dict__)
    return m


def load_official(repo: Path) -> types.ModuleType:
    class DropPath(nn.Module):
        def __init__(self, p: float = 0.0) -> None:
            super().__init__()

        def forward(self, x):
            return x

    class LightningModule(nn.Module):
        def save_hyperparameters(self) -> None:
            self.hparams = types.SimpleNamespace(config=inspect.currentframe().f_back.f_locals["config"])

    _module("timm")
    _module("timm.data", IMAGENET_DEFAULT_MEAN=(0.485, 0.456, 0.406), IMAGENET_DEFAULT_STD=(0.229, 0.224, 0.225))
    _module("timm.models")
    _module("timm.models.helpers", load_pretrained=None)
    _module("timm.models.layers", DropPath=DropPath, StdConv2dSame=None, to_2tuple=lambda x: (x, x),
            trunc_normal_=lambda t, mean=0.0, std=1.0: nn.init.normal_(t, mean, std))
    _module("timm.models.resnet", resnet26d=None, resnet50d=None)
    _module("timm.models.resnetv2", ResNetV2=None)
    _module("timm.models.registry", register_model=lambda f: f)
    _module("pytorch_lightning", LightningModule=LightningModule)
    _module("AllInOne")
    _module("AllInOne.modules")
    _module("AllInOne.modules.dist_utils", all_gather=None)
    _module("AllInOne.modules.retrieval_metrics", t2v_metrics=None, v2t_metrics=None)
    _module("AllInOne.modules.allinone_utils", set_metrics=lambda module: None)
    _module("AllInOne.transforms")
    _module("AllInOne.transforms.mix", SpatialMixup=lambda: None)
    for name in ("heads", "objectives", "base_vision_transformer", "temporal_roll"):
        _module(f"AllInOne.modules.{name}", _read(repo, f"AllInOne/modules/{name}.py"))
    vit = sys.modules["AllInOne.modules.base_vision_transformer"]
    vit.vit_tiny_test = lambda pretrained=False, config=None: vit.VisionTransformer(
        img_size=RES, patch_size=PATCH, embed_dim=D, depth=DEPTH, num_heads=HEADS, config=config)
    return _module("AllInOne.modules.allinone_module", _read(repo, "AllInOne/modules/allinone_module.py"))


def make_tokenizer(out: Path):
    from transformers import BertTokenizerFast

    vocab = out / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    tok = BertTokenizerFast(str(vocab), do_lower_case=True)
    tok.save_pretrained(str(out))
    return tok


def config(vocab: int) -> dict:
    losses = {k: 0 for k in ("itm", "itc", "mlm", "mpp", "ind_itc", "vcop", "vqa", "openend_vqa", "mc_vqa", "nlvr2",
                             "irtr", "multiple_choice", "vcr_q2a", "zs_classify")}
    losses.update(itm=1, mlm=1, ind_itc=1, irtr=1, openend_vqa=1)
    return dict(vocab_size=vocab, hidden_size=D, num_layers=DEPTH, num_heads=HEADS, mlp_ratio=4, max_text_len=MAX_TEXT,
                drop_rate=0.1, load_path="", vit="vit_tiny_test", num_frames=FRAMES, loss_names=losses,
                shared_embedding_dim=SHARED, test_only=False, linear_evaluation=False, max_image_len=-1,
                msrvttqa_label_size=ANSWERS, draw_false_text=0)


def randomise(model: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.dim() == 1:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, required=True, help="checkout or bare git mirror of showlab/all-in-one")
    ap.add_argument("--deps", type=Path, default=None, help="directory with einops (pip install --target DIR einops)")
    ap.add_argument("--out", type=Path, default=Path("tests/fixtures/hosts/allinone"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.deps is not None:
        sys.path.insert(0, str(args.deps))
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer(args.out)
    official = load_official(args.repo)
    cfg = config(len(tok))
    model = official.AllinoneTransformerSS(cfg)
    randomise(model, args.seed)
    model.eval()
    enc = tok(TEXTS, padding="max_length", max_length=MAX_TEXT, truncation=True, return_tensors="pt")
    batch = {"text_ids": enc["input_ids"], "text_masks": enc["attention_mask"],
             "text_labels": torch.full_like(enc["input_ids"], -100)}
    g = torch.Generator().manual_seed(args.seed + 1)
    video = torch.randn(len(TEXTS), FRAMES, 3, RES, RES, generator=g)
    caught: list[torch.Tensor] = []

    def keep(_m, _i, out) -> None:  # returns None: the block output is left as it is
        caught.append(out[0])

    hook = model.transformer.blocks[0].register_forward_hook(keep)
    with torch.no_grad():
        torch.manual_seed(SEED_JOINT)
        joint = model.infer({**batch, "image": [video]})
        hook.remove()
        model.current_tasks = ["ind_itc"]
        text_only = model.infer(batch, input_text_only=True)
        torch.manual_seed(SEED_VIDEO)
        video_only = model.infer({**batch, "image": [video]}, input_image_only=True)
        model.current_tasks = []
        # retrieval as compute_irtr_recall: one visual embedding per video, every text (video i, text j)
        torch.manual_seed(SEED_PAIRS)
        b = len(TEXTS)
        rows = []
        for i in range(b):
            ie, im, _, _ = model.transformer.visual_embed(video[i:i + 1], max_image_len=-1, mask_it=False)
            n, length, c = ie.shape
            ie = ie.expand(b, n, length, c).contiguous().view(-1, length, c)
            im = im.expand(b, n, length).contiguous().view(-1, length)
            rows.append(model.rank_output(model.infer(batch, image_embeds=ie, image_masks=im)["cls_feats"])[:, 0])
        pair_scores = torch.stack(rows)
    ref = {"block0": caught[0], "cls_feats": joint["cls_feats"], "text_feats": joint["text_feats"],
           "image_feats": joint["image_feats"], "rank_scores": model.rank_output(joint["cls_feats"])[:, 0],
           "vqa_logits": model.vqa_classifier(joint["cls_feats"]), "itc_text": text_only["text_feats"][:, 0],
           "itc_video": video_only["image_feats"][:, 0], "pair_scores": pair_scores}
    hyper = AttributeDict(config=cfg)
    torch.save({"epoch": 0, "global_step": 0, "pytorch-lightning_version": "1.1.4", "state_dict": model.state_dict(),
                "hyper_parameters": hyper}, args.out / "all-in-one-base.ckpt")
    from safetensors.torch import save_file

    save_file({**{k: v.contiguous().clone() for k, v in ref.items()}, "video": video, "input_ids": enc["input_ids"],
               "attention_mask": enc["attention_mask"]}, str(args.out / "reference.safetensors"),
              metadata={"texts": "\n".join(TEXTS), "commit": COMMIT,
                        "seeds": f"{SEED_JOINT},{SEED_VIDEO},{SEED_PAIRS}"})
    print(f"wrote {args.out}: {({p.name: p.stat().st_size for p in sorted(args.out.iterdir())})}")


if __name__ == "__main__":
    main()
