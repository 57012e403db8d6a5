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

import argparse
import subprocess
import sys
import types
from pathlib import Path

import torch
from torch import nn

COMMIT = "3d262bb"
ROOT = "examples/MMPT/mmpt"
D, HEADS, INTER, CLIPS, MAX_VIDEO_LEN = 32, 2, 64, 3, 32  # max_video_len: the official 32
WORDS = ("a the man woman dog cat ball car red blue runs jumps plays with on in of and is what who video "
         "street park green throws kicks , . ?").split()
TEXTS = ["a man throws a red ball in the park", "the dog runs"]


def _read(repo: Path, rel: str) -> str:
    if (repo / rel).is_file():
        return (repo / rel).read_text()
    return subprocess.run(["git", "--git-dir", str(repo), "show", f"HEAD:{rel}"], check=True, capture_output=True,
                          text=True).stdout


def _package(name: str, **attrs) -> types.ModuleType:
    m = types.ModuleType(name)
    m.__path__ = []
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


def _exec(name: str, source: str) -> types.ModuleType:
    m = types.ModuleType(name)
    m.__package__ = name.rsplit(".", 1)[0]
    sys.modules[name] = m
    exec(compile(source, name.replace(".", "/") + ".py", "exec"), m.__dict__)
    return m


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
    _package("mmpt")
    mm = _exec("mmpt.modules.mm", _read(repo, f"{ROOT}/modules/mm.py"))
    _package("mmpt.modules", VideoTokenMLP=mm.VideoTokenMLP, MMBertEmbeddings=mm.MMBertEmbeddings)
    _package("mmpt.models")
    tm = _exec("mmpt.models.transformermodel", _read(repo, f"{ROOT}/models/transformermodel.py"))
    sys.modules["mmpt.models"].transformermodel = tm
    fusion = _exec("mmpt.models.mmfusion", _read(repo, f"{ROOT}/models/mmfusion.py"))

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


def make_tokenizer(out: Path):
    from transformers import BertTokenizerFast

    vocab = out / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    tok = BertTokenizerFast(str(vocab), do_lower_case=True)
    tok.save_pretrained(str(out))
    return tok


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
    ap.add_argument("--repo", type=Path, required=True, help="checkout or bare git mirror of facebookresearch/fairseq")
    ap.add_argument("--out", type=Path, default=Path("tests/fixtures/hosts/videoclip"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer(args.out)
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
    from safetensors.torch import save_file

    save_file({**{k: t.contiguous().clone() for k, t in ref.items()}, "features": vfeats, "input_ids": ids},
              str(args.out / "reference.safetensors"), metadata={"texts": "\n".join(TEXTS), "commit": COMMIT})
    print(f"wrote {args.out}: {({p.name: p.stat().st_size for p in sorted(args.out.iterdir())})}")


if __name__ == "__main__":
    main()
