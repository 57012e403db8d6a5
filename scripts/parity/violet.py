"""Regenerate the VIOLET parity fixtures (tests/fixtures/hosts/violet/) from the official code.

Method (issue 12): build the official ``VIOLET_Base`` (tsujuifu/pytorch_violet @4f64751: ``model.py`` and
``video_swin.py``) at a tiny size, randomise every weight with a fixed seed, add the retrieval head ``fc`` exactly
as ``main_retrieval.py`` defines it, save the plain state dict the official ``load_ckpt`` reads, run the official
passes (``go_feat``, ``go_cross``, the retrieval scoring of every (video, text) pair) and store the references.

Edits to the official source, all for building it tiny and offline (no numerics change): the hard-coded width 768
becomes the tiny width; ``EncImg`` builds the tiny Swin and does not load ``./_snapshot/ckpt_video-swin.pt``;
``.cuda()`` calls are removed; ``go_cross`` returns no attention maps (transformers 5's
``BertEncoder`` has none; they are unused); ``from lib import *`` is served by a stub (torch, torchvision,
transformers);
``BertModel/BertForMaskedLM.from_pretrained`` build the tiny config; transformers 5 dropped
``get_extended_attention_mask``, so the transformers-4 function is put back.

Usage: python scripts/parity/violet.py --repo <git checkout of tsujuifu/pytorch_violet>
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import torch
from _common import make_tokenizer, parser, patched, prepare, randomise, read_official, save_reference
from torch import nn

COMMIT = "4f64751"
D = 32  # tiny width (official 768)
SWIN = "embed_dim=4, depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 2], window_size=(2, 4, 4), drop_path_rate=0.0"
TINY_BERT = dict(hidden_size=D, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                 max_position_embeddings=64)
WORDS = ("a the man woman dog cat ball car red blue runs jumps plays with on in of and is what who video "
         "street park green throws kicks , . ?").split()
TEXTS = ["a man throws a red ball in the park", "what is the dog doing ?"]
FRAMES, RES = 3, 64


def _patch_transformers(vocab: int) -> None:
    import transformers

    def extended_mask(mask, shape, device=None, dtype=torch.float32):  # transformers 4's BERT function
        return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min

    def builder(cls):
        def build(name, **kwargs):
            model = cls(transformers.BertConfig(vocab_size=vocab, **TINY_BERT))
            model.get_extended_attention_mask = extended_mask
            return model
        return build

    transformers.BertModel.from_pretrained = staticmethod(builder(transformers.BertModel))
    transformers.BertForMaskedLM.from_pretrained = staticmethod(builder(transformers.BertForMaskedLM))


def load_official(repo: Path) -> types.ModuleType:
    import torchvision
    import transformers

    lib = types.ModuleType("lib")
    lib.T, lib.TV, lib.transformers, lib.np = torch, torchvision, transformers, __import__("numpy")
    sys.modules["lib"] = lib
    swin = types.ModuleType("video_swin")
    swin.__dict__["warnings"] = __import__("warnings")
    exec(compile(read_official(repo, "video_swin.py"), "video_swin.py", "exec"), swin.__dict__)
    sys.modules["video_swin"] = swin
    src = read_official(repo, "model.py")
    edits = {"self.swin = SwinTransformer3D()": f"self.swin = SwinTransformer3D({SWIN})",
             "self.swin.load_state_dict(T.load('./_snapshot/ckpt_video-swin.pt', map_location='cpu'))": "pass",
             ".cuda()": "", "768": str(D),
             # transformers 5's BertEncoder returns no attention maps (unused here)
             "return out['last_hidden_state'], out['attentions']": "return out['last_hidden_state'], None"}
    src = patched(src, edits, "model.py")
    model = types.ModuleType("violet_model")
    exec(compile(src, "model.py", "exec"), model.__dict__)
    return model


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__, "tsujuifu/pytorch_violet", "tests/fixtures/hosts/violet")
    args = ap.parse_args(argv)
    prepare(args)
    tok = make_tokenizer(args.out, WORDS)
    _patch_transformers(len(tok))
    official = load_official(args.repo)
    model = official.VIOLET_Base()
    model.fc = nn.Sequential(*[nn.Dropout(0.1), nn.Linear(D, D * 2), nn.ReLU(inplace=True), nn.Linear(D * 2, 1)])
    randomise(model, args.seed)
    model.eval()
    enc = tok(TEXTS, padding=True, max_length=25, truncation=True, return_tensors="pt")
    g = torch.Generator().manual_seed(args.seed + 1)
    img = torch.rand(len(TEXTS), FRAMES, 3, RES, RES, generator=g)  # [0, 1]: EncImg normalises
    caught = {}
    hooks = [model.enc_img.swin.layers[0].blocks[0].register_forward_hook(
                 lambda m, i, o: caught.__setitem__("video_first", o)),
             model.trsfr.layer[0].register_forward_hook(
                 lambda m, i, o: caught.__setitem__("cross_first", o[0] if isinstance(o, tuple) else o))]
    with torch.no_grad():
        feat_img, mask_img, feat_txt, mask_txt = model.go_feat(img, enc["input_ids"], enc["attention_mask"])
        out, _ = model.go_cross(feat_img, mask_img, feat_txt, mask_txt)
        cross_first = caught["cross_first"].clone()
        for h in hooks:
            h.remove()
        n = feat_img.shape[1]
        b = len(TEXTS)
        pairs = [(i, j) for i in range(b) for j in range(b)]  # main_retrieval.py: image i with text j
        pick = [(feat_img, 0), (mask_img, 0), (feat_txt, 1), (mask_txt, 1)]
        pout, _ = model.go_cross(*[torch.stack([x[p[k]] for p in pairs]) for x, k in pick])
        scores = model.fc(pout[:, n]).squeeze().view(b, b) / 0.05
    # the swin block works channels-last on [B, D, H, W, C]; the official code keeps it that way
    ref = {"video_first": caught["video_first"], "feat_img": feat_img, "feat_txt": feat_txt,
           "cross_first": cross_first, "cross_last": out, "pair_scores": scores}
    torch.save(model.state_dict(), args.out / "ckpt_violet_pretrain.pt")
    save_reference(args.out, ref,
                   {"video": img, "input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]},
                   {"texts": "\n".join(TEXTS), "commit": COMMIT})


if __name__ == "__main__":
    main()
