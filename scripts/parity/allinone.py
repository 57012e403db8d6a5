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

import inspect
import sys
import types
from functools import partial
from pathlib import Path

import torch
from _common import make_tokenizer, parser, prepare, randomise, read_official, save_reference, stub_module
from torch import nn

_package = partial(stub_module, package=True)  # every stub here is a package (relative imports)
COMMIT = "ae0e288"
D, DEPTH, HEADS, FRAMES, RES, PATCH, SHARED, ANSWERS, MAX_TEXT = 32, 2, 2, 3, 64, 16, 16, 5, 40
WORDS = ("a the man woman dog cat ball car red blue runs jumps plays with on in of and is what who video "
         "street park green throws kicks , . ?").split()
TEXTS = ["a man throws a red ball in the park", "what is the dog doing ?"]
SEED_JOINT, SEED_VIDEO, SEED_PAIRS = 11, 12, 13


class AttributeDict(dict):
    """Stand-in for Lightning's ``AttributeDict`` pickled into ``hyper_parameters``."""


def load_official(repo: Path) -> types.ModuleType:
    class DropPath(nn.Module):
        def __init__(self, p: float = 0.0) -> None:
            super().__init__()

        def forward(self, x):
            return x

    class LightningModule(nn.Module):
        def save_hyperparameters(self) -> None:
            self.hparams = types.SimpleNamespace(config=inspect.currentframe().f_back.f_locals["config"])

    _package("timm")
    _package("timm.data", IMAGENET_DEFAULT_MEAN=(0.485, 0.456, 0.406), IMAGENET_DEFAULT_STD=(0.229, 0.224, 0.225))
    _package("timm.models")
    _package("timm.models.helpers", load_pretrained=None)
    _package("timm.models.layers", DropPath=DropPath, StdConv2dSame=None, to_2tuple=lambda x: (x, x),
             trunc_normal_=lambda t, mean=0.0, std=1.0: nn.init.normal_(t, mean, std))
    _package("timm.models.resnet", resnet26d=None, resnet50d=None)
    _package("timm.models.resnetv2", ResNetV2=None)
    _package("timm.models.registry", register_model=lambda f: f)
    _package("pytorch_lightning", LightningModule=LightningModule)
    _package("AllInOne")
    _package("AllInOne.modules")
    _package("AllInOne.modules.dist_utils", all_gather=None)
    _package("AllInOne.modules.retrieval_metrics", t2v_metrics=None, v2t_metrics=None)
    _package("AllInOne.modules.allinone_utils", set_metrics=lambda module: None)
    _package("AllInOne.transforms")
    _package("AllInOne.transforms.mix", SpatialMixup=lambda: None)
    for name in ("heads", "objectives", "base_vision_transformer", "temporal_roll"):
        _package(f"AllInOne.modules.{name}", read_official(repo, f"AllInOne/modules/{name}.py"))
    vit = sys.modules["AllInOne.modules.base_vision_transformer"]
    vit.vit_tiny_test = lambda pretrained=False, config=None: vit.VisionTransformer(
        img_size=RES, patch_size=PATCH, embed_dim=D, depth=DEPTH, num_heads=HEADS, config=config)
    return _package("AllInOne.modules.allinone_module", read_official(repo, "AllInOne/modules/allinone_module.py"))


def config(vocab: int) -> dict:
    losses = {k: 0 for k in ("itm", "itc", "mlm", "mpp", "ind_itc", "vcop", "vqa", "openend_vqa", "mc_vqa", "nlvr2",
                             "irtr", "multiple_choice", "vcr_q2a", "zs_classify")}
    losses.update(itm=1, mlm=1, ind_itc=1, irtr=1, openend_vqa=1)
    return dict(vocab_size=vocab, hidden_size=D, num_layers=DEPTH, num_heads=HEADS, mlp_ratio=4, max_text_len=MAX_TEXT,
                drop_rate=0.1, load_path="", vit="vit_tiny_test", num_frames=FRAMES, loss_names=losses,
                shared_embedding_dim=SHARED, test_only=False, linear_evaluation=False, max_image_len=-1,
                msrvttqa_label_size=ANSWERS, draw_false_text=0)


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__, "showlab/all-in-one", "tests/fixtures/hosts/allinone",
                deps_help="directory with einops (pip install --target DIR einops)")
    args = ap.parse_args(argv)
    prepare(args)
    tok = make_tokenizer(args.out, WORDS)
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
    save_reference(args.out, ref,
                   {"video": video, "input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]},
                   {"texts": "\n".join(TEXTS), "commit": COMMIT, "seeds": f"{SEED_JOINT},{SEED_VIDEO},{SEED_PAIRS}"})


if __name__ == "__main__":
    main()
