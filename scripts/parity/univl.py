"""Regenerate the UniVL parity fixtures (tests/fixtures/hosts/univl/) from the official code.

Method (issue 12): build the official ``UniVL`` (microsoft/UniVL @8db88f3, ``modules/modeling.py``) at a tiny size
in its captioning configuration (``stage_two``: text, visual and cross encoders plus the caption decoder), randomise
every weight with a fixed seed (the decoder's embeddings and output layer stay tied to BERT's, as officially), save
the state dict as the official trainer does (``torch.save(model.state_dict())``), and run the official passes over
S3D features: ``get_sequence_visual_output`` (with ``normalize_video``), ``_get_cross_output``, the decoder's
teacher-forced logits and ``_mean_pooling_for_similarity``. The S3D extractor is proven separately
(``scripts/parity/s3d.py``).

Stubs (no numerics replaced): ``modules.file_utils`` (its imports: boto3, requests) serves ``cached_path=None``.

Usage: python scripts/parity/univl.py --repo <git checkout of microsoft/UniVL>
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import torch
from _common import make_tokenizer, parser, prepare, randomise, read_official, save_reference, stub_module

COMMIT = "8db88f3"
D, HEADS, INTER, FRAMES, VIDEO_DIM = 32, 2, 64, 3, 1024
WORDS = ("a the man woman dog cat ball car red blue runs jumps plays with on in of and is what who video "
         "street park green throws kicks , . ?").split()
TEXTS = ["a man throws a red ball in the park", "the dog runs"]
CAPTIONS = ["a man throws a ball", "a dog runs in the park"]
MODULES = ("until_config", "until_module", "module_bert", "module_visual", "module_cross", "module_decoder", "modeling")


def load_official(repo: Path) -> types.ModuleType:
    stub_module("modules", package=True)
    stub_module("modules.file_utils", cached_path=None)
    for name in MODULES:
        stub_module(f"modules.{name}", read_official(repo, f"modules/{name}.py"), __package__="modules")
    return sys.modules["modules.modeling"]

def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__, "microsoft/UniVL", "tests/fixtures/hosts/univl")
    args = ap.parse_args(argv)
    prepare(args)
    tok = make_tokenizer(args.out, WORDS)
    m = load_official(args.repo)
    v = len(tok)
    size = dict(hidden_size=D, num_attention_heads=HEADS, intermediate_size=INTER)
    bert_cfg = sys.modules["modules.module_bert"].BertConfig(v, num_hidden_layers=2, max_position_embeddings=64, **size)
    visual_cfg = sys.modules["modules.module_visual"].VisualConfig(VIDEO_DIM, num_hidden_layers=1,
                                                                  max_position_embeddings=16, **size)
    cross_cfg = sys.modules["modules.module_cross"].CrossConfig(v, num_hidden_layers=1, max_position_embeddings=128,
                                                               **size)
    decoder_cfg = sys.modules["modules.module_decoder"].DecoderConfig(v, num_hidden_layers=1, max_target_embeddings=64,
                                                                     num_decoder_layers=1, **size)
    task = types.SimpleNamespace(max_words=16, max_frames=FRAMES, stage_two=True, do_pretrain=False,
                                 video_dim=VIDEO_DIM,
                                 batch_size=2, n_gpu=1, n_pair=1, margin=0.1, negative_weighting=1,
                                 hard_negative_rate=0.5, use_mil=False, local_rank=0, text_num_hidden_layers=2,
                                 visual_num_hidden_layers=1, cross_num_hidden_layers=1, decoder_num_hidden_layers=1)
    model = m.UniVL(bert_cfg, visual_cfg, cross_cfg, decoder_cfg, task)
    randomise(model, args.seed)
    model.eval()
    text = tok(TEXTS, padding=True, return_tensors="pt")
    caps = tok(CAPTIONS, padding=True, return_tensors="pt")
    g = torch.Generator().manual_seed(args.seed + 1)
    feats = torch.randn(len(TEXTS), FRAMES, VIDEO_DIM, generator=g)
    vmask = torch.ones(len(TEXTS), FRAMES, dtype=torch.long)
    caught: dict[str, torch.Tensor] = {}

    def keep(key):
        def hook(_m, _i, out) -> None:
            caught.setdefault(key, out[0] if isinstance(out, tuple) else out)
        return hook

    hooks = [model.bert.encoder.layer[0].register_forward_hook(keep("text_first")),
             model.visual.encoder.layer[0].register_forward_hook(keep("visual_first")),
             model.cross.encoder.layer[0].register_forward_hook(keep("cross_first"))]
    with torch.no_grad():
        seq, vis = model.get_sequence_visual_output(text["input_ids"], torch.zeros_like(text["input_ids"]),
                                                    text["attention_mask"], feats, vmask)
        cross, pooled, cmask = model._get_cross_output(seq, vis, text["attention_mask"], vmask)
        logits = model.decoder(caps["input_ids"], encoder_outs=cross, answer_mask=caps["attention_mask"],
                               encoder_mask=cmask)
        t_mean, v_mean = model._mean_pooling_for_similarity(seq, vis, text["attention_mask"], vmask)
    for h in hooks:
        h.remove()
    ref = {**caught, "text_last": seq, "visual_last": vis, "cross_last": cross, "decoder_logits": logits,
           "text_mean": t_mean, "video_mean": v_mean}
    torch.save(model.state_dict(), args.out / "univl.pretrained.bin")
    save_reference(args.out, ref, {"features": feats, "input_ids": text["input_ids"], "caption_ids": caps["input_ids"],
                                   "caption_mask": caps["attention_mask"]},
                   {"texts": "\n".join(TEXTS), "captions": "\n".join(CAPTIONS), "commit": COMMIT})


if __name__ == "__main__":
    main()
