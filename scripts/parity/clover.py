"""Regenerate the Clover parity fixtures (tests/fixtures/hosts/clover/) from the official code.

Method (issue 12): build the official Clover modules (LeeYN-43/Clover @fa05f2e: ``SwinTransformer3D``,
``BertFromPretrained``, ``CrossModalTransformerFromPretrained``, ``NCEHeadForMM``, ``QA_OE_Head``) at a tiny
configuration with their downloads patched out, randomise every weight with a fixed seed, save them as the
official code saves a ``CloverFinetune`` model (mmcv checkpoint ``{"meta", "state_dict"}`` with the recognizer's
attribute names ``backbone``, ``text_backbone``, ``multimodal_backbone``, ``ssl_head``, ``qa_head``), run the
official forward passes (``forward_test`` with ``separate_test=True`` for retrieval; the ``video_qa`` branch with
``answer_cls=True`` for QA) and store the reference tensors. ``tests/hosts/test_hosts_clover.py`` loads the
checkpoint into ``hosts.clover`` and compares.

Stubs (nothing of the official numerics is replaced): mmcv / mmaction registries and fp16 decorators, timm's
``DropPath`` / ``trunc_normal_``, a minimal ``einops.rearrange``; ``BertConfig/BertModel/BertForPreTraining
.from_pretrained`` build the tiny config instead of downloading; transformers 5 dropped
``get_extended_attention_mask``, so the transformers-4 function is put back on the official cross module's BERT.

Usage (needs a checkout or a bare mirror of the official repository; no network):
    python scripts/parity/clover.py --repo <git checkout of LeeYN-43/Clover> [--out tests/fixtures/hosts/clover]
"""

from __future__ import annotations

import importlib.util
import re
import sys
import tempfile
import types
from pathlib import Path

import torch
from _common import make_tokenizer, parser, prepare, randomise, read_official, save_reference
from torch import nn

COMMIT = "fa05f2e"
FILES = {
    "mmaction.models.backbones.swin_transformer_3d": "mmaction/models/backbones/swin_transformer_3d.py",
    "mmaction.models.backbones.bert_from_hugface": "mmaction/models/backbones/bert_from_hugface.py",
    "mmaction.models.backbones.cross_transformer": "mmaction/models/backbones/cross_transformer.py",
    "mmaction.models.heads.ssl_head": "mmaction/models/heads/ssl_head.py",
    "mmaction.models.heads.qa_head": "mmaction/models/heads/qa_head.py",
}
WORDS = ("a the man woman dog cat ball car red blue runs jumps plays with on in of and is what who video "
         "street park green throws kicks , . ?").split()
TINY_BERT = dict(hidden_size=32, num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
TEXTS = ["a man throws a red ball in the park", "what is the dog doing ?"]
FRAMES, RES, QA_LABELS = 4, 32, 7


def _rearrange(x: torch.Tensor, pattern: str) -> torch.Tensor:
    """The einops patterns the official files use: permutations, plus merging axes on the right side."""
    lhs, rhs = (s.strip() for s in pattern.split("->"))
    src = lhs.split()
    groups = re.findall(r"\(([^)]*)\)|(\w+)", rhs)
    order = [n for g, n in groups for n in (g.split() if g else [n])]
    x = x.permute(*[src.index(n) for n in order])
    shape, i = [], 0
    for g, _name in groups:
        k = len(g.split()) if g else 1
        size = 1
        for s in x.shape[i:i + k]:
            size *= s
        shape.append(size)
        i += k
    return x.reshape(shape)


def _install_stubs() -> None:
    def module(name: str, **attrs) -> types.ModuleType:
        m = sys.modules.get(name) or types.ModuleType(name)
        m.__path__ = []  # a package, so relative imports resolve
        for k, v in attrs.items():
            setattr(m, k, v)
        sys.modules[name] = m
        return m

    class _Registry:
        def register_module(self, *args, **kwargs):
            return (lambda cls: cls) if not args else args[0]

    def passthrough(*args, **kwargs):
        return (lambda f: f) if not (args and callable(args[0])) else args[0]

    class DropPath(nn.Module):  # inactive: the parity run uses drop_path_rate 0 and eval()
        def __init__(self, p: float = 0.0) -> None:
            super().__init__()

        def forward(self, x):
            return x

    for name in ("mmaction", "mmaction.models", "mmaction.models.backbones", "mmaction.models.heads",
                 "mmaction.core", "mmaction.core.hooks", "mmcv", "timm", "timm.models"):
        module(name)
    reg = _Registry()
    module("mmaction.models.builder", BACKBONES=reg, HEADS=reg, LOSSES=reg)
    module("mmaction.core.hooks.fp16_utils", auto_fp16=passthrough, force_fp32=passthrough)
    module("mmaction.utils", get_root_logger=lambda *a, **k: None)
    module("mmcv.runner", load_checkpoint=None, load_state_dict=None, get_dist_info=lambda: (0, 1))
    module("timm.models.layers", DropPath=DropPath,
           trunc_normal_=lambda t, mean=0.0, std=1.0: nn.init.normal_(t, mean, std))
    module("einops", rearrange=_rearrange)


def _patch_transformers(vocab: int) -> None:
    import transformers

    def config_from_pretrained(name, **kwargs):
        return transformers.BertConfig(vocab_size=vocab, **{**TINY_BERT, **kwargs})

    def extended_mask(mask, shape, device=None, dtype=torch.float32):  # transformers 4's BERT function
        m = mask[:, None, None, :].to(dtype)
        return (1.0 - m) * torch.finfo(dtype).min

    def model_from_pretrained(cls):
        def build(name, config=None, **kwargs):
            model = cls(config)
            model.get_extended_attention_mask = extended_mask
            return model
        return build

    transformers.BertConfig.from_pretrained = staticmethod(config_from_pretrained)
    transformers.BertModel.from_pretrained = staticmethod(model_from_pretrained(transformers.BertModel))
    pretraining = transformers.BertForPreTraining
    pretraining.from_pretrained = staticmethod(model_from_pretrained(pretraining))


def _load_official(repo: Path, tmp: Path) -> dict[str, types.ModuleType]:
    mods = {}
    for name, rel in FILES.items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(read_official(repo, rel))
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        mods[name.rsplit(".", 1)[1]] = mod
    return mods


class OfficialClover(nn.Module):
    """The parts of ``CloverFinetune`` under their official attribute names (its ``state_dict`` layout)."""

    def __init__(self, m: dict[str, types.ModuleType]) -> None:
        super().__init__()
        self.backbone = m["swin_transformer_3d"].SwinTransformer3D(
            pretrained=None, pretrained2d=False, patch_size=(2, 4, 4), stride=(2, 4, 4), embed_dim=24, depths=[2, 1],
            num_heads=[2, 2], window_size=(2, 4, 4), drop_path_rate=0.0)
        self.text_backbone = m["bert_from_hugface"].BertFromPretrained(num_hidden_layers=2)
        self.multimodal_backbone = m["cross_transformer"].CrossModalTransformerFromPretrained(
            use_text_cls=True, num_hidden_layers=1, img_in_size=48, hidden_size=32, num_frames=FRAMES // 2,
            spacial_tokens=16, token_types=2, layer_norm_eps=1e-12, word_pos_start=False)
        self.ssl_head = m["ssl_head"].NCEHeadForMM(visual_in_channels=48, text_in_channels=32, img_hidden_dim=64,
                                                   vts_embed_dim=32, ln=True, spatial_type="avg",
                                                   text_agg_type="cls", dropout_ratio=0)
        self.qa_head = m["qa_head"].QA_OE_Head(hidden_dim=32, dropout_ratio=0.1, num_labels=QA_LABELS)


def run_official(model: OfficialClover, video: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> dict:
    """The official forwards: ``forward_test`` (retrieval, ``separate_test``) and the ``video_qa`` branch."""
    caught = {}

    def grab(key):
        def hook(_m, _i, out):
            caught[key] = out[0] if isinstance(out, tuple) else out
        return hook

    hooks = [model.backbone.layers[0].blocks[0].register_forward_hook(grab("video_first")),
             model.text_backbone.bert.encoder.layer[0].register_forward_hook(grab("text_first")),
             model.multimodal_backbone.bert_encoder.layer[0].register_forward_hook(grab("cross_first"))]
    with torch.no_grad():
        fmap = model.backbone(video)  # [B, C, T', H', W']
        text_last = model.text_backbone(ids, mask)["last_hidden_state"]
        video_emb, text_emb = model.ssl_head(fmap, text_last, mask, ids)
        b, c, t = fmap.shape[:3]
        tokens = fmap.view(b, c, t, -1).permute(0, 2, 3, 1)
        out = model.multimodal_backbone(visual_token=tokens, text_input_mask=mask, text_input_embeds=text_last)
        cls = out["t_last_hidden_state"][:, 0]
        qa = model.qa_head(cls)
    for h in hooks:
        h.remove()
    return {"video_first": caught["video_first"], "text_first": caught["text_first"],
            "cross_first": caught["cross_first"], "video_map": fmap, "text_last": text_last,
            "video_emb": video_emb, "text_emb": text_emb, "cross_last": out["last_hidden_state"],
            "cross_cls": cls, "qa_logits": qa}


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__, "LeeYN-43/Clover", "tests/fixtures/hosts/clover")
    args = ap.parse_args(argv)
    prepare(args)
    tok = make_tokenizer(args.out, WORDS)
    _install_stubs()
    _patch_transformers(len(tok))
    with tempfile.TemporaryDirectory() as tmp:
        model = OfficialClover(_load_official(args.repo, Path(tmp))).eval()
    randomise(model, args.seed)
    enc = tok(TEXTS, padding=True, max_length=30, truncation=True, return_tensors="pt")
    g = torch.Generator().manual_seed(args.seed + 1)
    video = torch.randn(len(TEXTS), 3, FRAMES, RES, RES, generator=g)  # official NCTHW
    ref = run_official(model, video, enc["input_ids"], enc["attention_mask"])
    torch.save({"meta": {"source": f"LeeYN-43/Clover@{COMMIT} CloverFinetune parts, tiny, random (seed {args.seed})"},
                "state_dict": model.state_dict()}, args.out / "latest.pth")
    save_reference(args.out, ref,
                   {"video": video, "input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]},
                   {"texts": "\n".join(TEXTS), "commit": COMMIT})


if __name__ == "__main__":
    main()
