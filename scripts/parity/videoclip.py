"""Regenerate the VideoCLIP parity fixtures (tests/fixtures/hosts/videoclip/) from the official code.

Method (issue 12): build the official ``MMFusionSeparate`` (facebookresearch/fairseq @3d262bb, ``examples/MMPT``:
``mmpt/models/mmfusion.py``, ``transformermodel.py``, ``mmpt/modules/mm.py``) at a tiny size, randomise every
weight with a fixed seed, save the state dict in the fairseq layout (``{"model": {"mmmodel.<key>": ...}}``), run
the official ``forward_text`` / ``forward_video`` over S3D ``video_embedding`` features, and store the pooled
outputs and first-layer states. The S3D extractor is proven separately (``scripts/parity/s3d.py``).

Shims, all for running transformers-3.4 code under transformers 5 (no numerics replaced):
``transformers.modeling_bert`` aliases the current module; ``AutoConfig/BertModel/MMBertForEncoder
.from_pretrained`` build the tiny config instead of downloading; ``init_weights()`` first sets up transformers 5's
tied-key bookkeeping; transformers 3's ``get_extended_attention_mask`` (``(1 - mask) * -10000``) and
``get_head_mask`` (no head mask) are put back; the video encoder's BERT layers are called with transformers 3's
positional signature by ``MultiLayerAttentionMaskBertEncoder``, so they get a wrapper that takes it and returns a
tuple. The fairseq package itself is not imported.

Usage: python scripts/parity/videoclip.py --repo <git checkout of facebookresearch/fairseq>
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import torch
from _common import make_tokenizer, parser, prepare, randomise, read_official, save_reference, stub_module
from torch import nn

COMMIT = "3d262bb"
ROOT = "examples/MMPT/mmpt"
D, HEADS, INTER, CLIPS, MAX_VIDEO_LEN = 32, 2, 64, 3, 32  # max_video_len: the official 32
WORDS = ("a the man woman dog cat ball car red blue runs jumps plays with on in of and is what who video "
         "street park green throws kicks , . ?").split()
TEXTS = ["a man throws a red ball in the park", "the dog runs"]


def load_official(repo: Path, vocab: int) -> types.ModuleType:
    import transformers
    from transformers.models.bert import modeling_bert

    tiny = dict(hidden_size=D, num_attention_heads=HEADS, intermediate_size=INTER, num_hidden_layers=2,
                max_position_embeddings=64, vocab_size=vocab)
    sys.modules["transformers.modeling_bert"] = modeling_bert
    transformers.AutoConfig.from_pretrained = staticmethod(lambda name, **kw: transformers.BertConfig(**tiny))

    def extended_mask(self, mask, shape, device=None):  # transformers 3.4
        return (1.0 - mask[:, None, None, :].to(self.dtype)) * -10000.0

    modeling_bert.BertModel.get_extended_attention_mask = extended_mask
    modeling_bert.BertModel.get_head_mask = lambda self, head_mask, n: [None] * n
    # transformers 3 models call init_weights() in __init__; transformers 5 sets up the tied-key bookkeeping it
    # needs in post_init(), so do that part first
    original_init = modeling_bert.BertPreTrainedModel.init_weights

    def init_weights(self):
        if "all_tied_weights_keys" not in self.__dict__:
            self.all_tied_weights_keys = self.get_expanded_tied_weights_keys(all_submodels=False)
        return original_init(self)

    modeling_bert.BertPreTrainedModel.init_weights = init_weights
    stub_module("mmpt", package=True)
    mm = stub_module("mmpt.modules.mm", read_official(repo, f"{ROOT}/modules/mm.py"), __package__="mmpt.modules")
    stub_module("mmpt.modules", package=True, VideoTokenMLP=mm.VideoTokenMLP, MMBertEmbeddings=mm.MMBertEmbeddings)
    stub_module("mmpt.models", package=True)
    tm = stub_module("mmpt.models.transformermodel", read_official(repo, f"{ROOT}/models/transformermodel.py"),
                     __package__="mmpt.models")
    sys.modules["mmpt.models"].transformermodel = tm
    fusion = stub_module("mmpt.models.mmfusion", read_official(repo, f"{ROOT}/models/mmfusion.py"),
                         __package__="mmpt.models")

    def build(cls):
        return classmethod(lambda c, name, config=None, **kw: c(config or transformers.BertConfig(**tiny)))

    tm.MMBertForEncoder.from_pretrained = build(tm.MMBertForEncoder)
    tm.BertModel.from_pretrained = build(tm.BertModel)
    return fusion


def v3_layer_call(layer: nn.Module) -> None:
    """transformers 3 calls ``layer(h, mask, head_mask, enc, enc_mask, output_attentions)`` and reads ``[0]``."""
    forward = layer.forward

    def call(hidden, attention_mask=None, head_mask=None, encoder_hidden_states=None, encoder_attention_mask=None,
             output_attentions=False):
        return (forward(hidden, attention_mask),)

    layer.forward = call


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__, "facebookresearch/fairseq", "tests/fixtures/hosts/videoclip")
    args = ap.parse_args(argv)
    prepare(args)
    tok = make_tokenizer(args.out, WORDS)
    fusion = load_official(args.repo, len(tok))
    config = types.SimpleNamespace(
        dataset=types.SimpleNamespace(bert_name="bert-base-uncased", train_path=None, num_iso_layer=None,
                                      max_video_len=MAX_VIDEO_LEN),
        model=types.SimpleNamespace(mm_encoder_cls=None, video_encoder_cls="MMBertForEncoder",
                                    text_encoder_cls="BertModel", num_hidden_video_layers=1, use_seg_emb=False))
    model = fusion.MMFusionSeparate(config)
    for layer in model.video_encoder.bert.encoder.layer:
        v3_layer_call(layer)
    randomise(model, args.seed)
    model.eval()
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    sep = torch.full_like(ids[:, :1], tok.sep_token_id)
    caps = torch.cat([ids[:, :1], sep, ids[:, 1:]], 1)  # VideoCLIP's "[CLS] [SEP] caption [SEP] pad"
    cmasks = torch.cat([mask[:, :1], torch.ones_like(sep), mask[:, 1:]], 1).bool()
    g = torch.Generator().manual_seed(args.seed + 1)
    vfeats = torch.randn(len(TEXTS), CLIPS, 512, generator=g)
    vmasks = torch.ones(len(TEXTS), CLIPS, dtype=torch.bool)
    caught: dict[str, torch.Tensor] = {}

    def keep(key):
        def hook(_m, _i, out) -> None:
            caught.setdefault(key, out[0] if isinstance(out, tuple) else out)
        return hook

    hooks = [model.text_encoder.encoder.layer[0].register_forward_hook(keep("text_first")),
             model.video_encoder.bert.encoder.layer[0].register_forward_hook(keep("video_first"))]
    with torch.no_grad():
        text = model.forward_text(caps, cmasks)
        video = model.forward_video(vfeats, vmasks, caps, cmasks)
        video_last = model.forward_video(vfeats, vmasks, caps, cmasks, output_hidden_states=True)
    for h in hooks:
        h.remove()
    ref = {**caught, "text_pooled": text, "video_pooled": video, "video_last": video_last}
    torch.save({"model": {f"mmmodel.{k}": v for k, v in model.state_dict().items()}},
               args.out / "checkpoint_best.pt")
    save_reference(args.out, ref, {"features": vfeats, "input_ids": ids}, {"texts": "\n".join(TEXTS), "commit": COMMIT})


if __name__ == "__main__":
    main()
