"""Regenerate the Video-LLaMA parity fixtures from the official code (DAMO-NLP-SG/Video-LLaMA @64888c0).

The official ``VideoLLAMA.__init__`` downloads EVA ViT-g, the BLIP-2 Q-Former, BERT configs and ImageBind, and
its LLM is an old copy of transformers' Llama; so the official *video branch* is rebuilt from the official modules
at a tiny size and run through the official method itself:

1. loads ``video_llama/models/eva_vit.py`` (``VisionTransformer``), ``Qformer.py`` (``BertLMHeadModel``) and
   ``video_llama.py`` (``VideoLLAMA.encode_videoQformer_visual``) from a checkout (``--official``) with the package
   ``__init__``, the registry, ImageBind, the old Llama copy and every download stubbed (nothing is fetched);
   ``timm`` and ``einops`` must be importable (``--extra-path`` adds a folder holding them, e.g. from
   ``pip install --no-deps --target DIR timm einops``); transformers 5 lacks three helpers ``Qformer.py`` imports
   (``apply_chunking_to_forward``, ``prune_linear_layer`` moved to ``pytorch_utils``; pruning is unused: stubbed);
2. builds, as ``VideoLLAMA.__init__`` does, the EVA ViT (width 48, 2 blocks, 28 px, patch 14, eps 1e-6),
   ``ln_vision`` (``nn.LayerNorm``, what ``blip2.LayerNorm`` is in float32), the BLIP-2 Q-Former (BERT width 32, 2
   layers, cross attention every 2nd layer, 4 queries; text parts removed), frame positions (32), the video
   Q-Former (2 layers, cross attention every layer, 4 queries) and ``llama_proj``; randomises all (seed 0);
3. saves the official files: ``eva_vit_g.pth`` (ViT keys), ``blip2_pretrained_flant5xxl.pth`` (``{"model":
   {Qformer.*, query_tokens, ln_vision.*}}``), ``finetune-vicuna7b-v2.pth`` (``{"model": {video_*, llama_proj}}``)
   and ``llama/`` (a tiny transformers ``LlamaForCausalLM`` + tokenizer: the LLM is transformers' class on both
   sides, nothing to compare);
4. runs ``encode_videoQformer_visual`` on a fixed video and stores the first ViT block's output, the per-frame
   image-query outputs and ``inputs_llama`` (the LLM video tokens).

Usage::

    python scripts/parity/video_llama.py --official /path/to/Video-LLaMA --extra-path /path/with/timm_einops
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import types
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

OFFICIAL_COMMIT = "64888c0"
W, DEPTH, IMAGE, PATCH, H, QUERIES, FRAMES, LLM = 48, 2, 28, 14, 32, 4, 3, 32
WORDS = "a the man dog ball red runs throws what who is doing ? . describe human assistant : ###".split()


def _module(name: str, path: str | None = None, **attrs) -> types.ModuleType:
    m = types.ModuleType(name)
    if path is not None:
        m.__path__ = [path]
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


def load_official(root: Path):
    """Official modules with their package __init__, registry, ImageBind and downloads stubbed."""
    def no_download(*a, **k):
        raise RuntimeError("download patched out")

    import transformers
    import transformers.modeling_utils as mu
    import transformers.pytorch_utils as pu

    mu.apply_chunking_to_forward = pu.apply_chunking_to_forward
    mu.prune_linear_layer = pu.prune_linear_layer
    mu.find_pruneable_heads_and_indices = no_download
    pkg = root / "video_llama"
    _module("video_llama", str(pkg))
    _module("video_llama.common", str(pkg / "common"))
    _module("video_llama.common.dist_utils", download_cached_file=no_download)
    _module("video_llama.common.registry", registry=SimpleNamespace(register_model=lambda name: (lambda c: c)))
    _module("video_llama.models", str(pkg / "models"))
    _module("video_llama.models.blip2", Blip2Base=nn.Module, disabled_train=lambda self, mode=True: self)
    _module("video_llama.models.modeling_llama", LlamaForCausalLM=transformers.LlamaForCausalLM)
    _module("video_llama.models.ImageBind", str(pkg / "models/ImageBind"))
    ib = _module("video_llama.models.ImageBind.models.imagebind_model", ImageBindModel=object,
                 ModalityType=SimpleNamespace(AUDIO="audio", VISION="vision"))
    _module("video_llama.models.ImageBind.models", str(pkg / "models/ImageBind/models"), imagebind_model=ib)
    import video_llama.models.eva_vit as eva
    import video_llama.models.Qformer as qformer
    import video_llama.models.video_llama as vl

    # transformers 5's post_init needs attributes this 2022 BertPreTrainedModel lacks; plain init instead
    qformer.BertPreTrainedModel.init_weights = lambda self: self.apply(self._init_weights)
    if not hasattr(qformer.BertModel, "invert_attention_mask"):  # a ModuleUtilsMixin helper transformers 5 dropped
        def invert_attention_mask(self, mask):
            ext = mask[:, None, :, :] if mask.dim() == 3 else mask[:, None, None, :]
            ext = ext.to(self.dtype)
            return (1.0 - ext) * torch.finfo(self.dtype).min

        qformer.BertModel.invert_attention_mask = invert_attention_mask
    if not hasattr(qformer.BertModel, "get_head_mask"):  # idem; no head mask is ever passed here
        qformer.BertModel.get_head_mask = lambda self, head_mask, layers: [None] * layers
    return eva, qformer, vl


def qformer_model(qformer, layers: int, freq: int, width: int, queries: int):
    """As ``Blip2Base.init_Qformer`` / ``VideoLLAMA.init_video_Qformer`` (tiny BertConfig instead of
    ``bert-base-uncased``), with the text parts removed as ``VideoLLAMA.__init__`` does."""
    cfg = qformer.BertConfig(vocab_size=30, hidden_size=H, num_hidden_layers=layers, num_attention_heads=4,
                             intermediate_size=64)
    cfg.encoder_width, cfg.add_cross_attention, cfg.cross_attention_freq, cfg.query_length = width, True, freq, queries
    model = qformer.BertLMHeadModel(config=cfg)
    model.cls = None
    model.bert.embeddings.word_embeddings = None
    model.bert.embeddings.position_embeddings = None
    for layer in model.bert.encoder.layer:
        layer.output = None
        layer.intermediate = None
    return model, nn.Parameter(torch.zeros(1, queries, H))


def make_tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<unk>", "<s>", "</s>", "<pad>"] + sorted(set(WORDS)))}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", required=True, type=Path, help="checkout of DAMO-NLP-SG/Video-LLaMA")
    ap.add_argument("--extra-path", type=Path, default=None, help="folder holding timm and einops")
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parents[2] / "tests/fixtures/hosts/video_llama")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.extra_path is not None:
        sys.path.insert(0, str(args.extra_path))
    eva, qformer, vl = load_official(args.official.resolve())
    torch.manual_seed(args.seed)
    model = SimpleNamespace()
    model.visual_encoder = eva.VisionTransformer(img_size=IMAGE, patch_size=PATCH, use_mean_pooling=False, embed_dim=W,
                                                 depth=DEPTH, num_heads=4, mlp_ratio=4.3637, qkv_bias=True,
                                                 drop_path_rate=0, norm_layer=partial(nn.LayerNorm, eps=1e-6))
    model.ln_vision = nn.LayerNorm(W)
    model.Qformer, model.query_tokens = qformer_model(qformer, 2, 2, W, QUERIES)
    model.video_frame_position_embedding = nn.Embedding(32, H)
    model.video_Qformer, model.video_query_tokens = qformer_model(qformer, 2, 1, H, QUERIES)
    model.llama_proj = nn.Linear(H, LLM)
    model.maybe_autocast = contextlib.nullcontext
    parts = {k: v for k, v in vars(model).items() if isinstance(v, (nn.Module, nn.Parameter))}
    g = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        for name, p in ([(k, v) for k, v in parts.items() if isinstance(v, nn.Parameter)]
                        + [(f"{k}.{n}", p) for k, m in parts.items() if isinstance(m, nn.Module)
                           for n, p in m.named_parameters()]):
            if "norm" in name.lower() and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * p.shape[-1] ** -0.5)
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    for m in parts.values():
        if isinstance(m, nn.Module):
            m.eval()
    video = torch.randn(2, 3, FRAMES, IMAGE, IMAGE, generator=g)  # official layout b c t h w
    captured = {}

    def keep(key: str, pick):
        def hook(module, inputs, output) -> None:  # returns None: the output is left unchanged
            captured.setdefault(key, pick(output).detach().clone())
        return hook

    model.visual_encoder.blocks[0].register_forward_hook(keep("first", lambda o: o))
    model.Qformer.bert.register_forward_hook(keep("queries", lambda o: o.last_hidden_state))
    with torch.no_grad():
        inputs_llama, _ = vl.VideoLLAMA.encode_videoQformer_visual(model, video)
    args.out.mkdir(parents=True, exist_ok=True)
    sd = lambda prefix, m: {f"{prefix}.{k}": v.clone() for k, v in m.state_dict().items()}  # noqa: E731
    torch.save(model.visual_encoder.state_dict(), args.out / "eva_vit_g.pth")
    torch.save({"model": {**sd("Qformer", model.Qformer), "query_tokens": model.query_tokens.data.clone(),
                          **sd("ln_vision", model.ln_vision)}}, args.out / "blip2_pretrained_flant5xxl.pth")
    torch.save({"model": {**sd("video_Qformer", model.video_Qformer),
                          "video_query_tokens": model.video_query_tokens.data.clone(),
                          **sd("video_frame_position_embedding", model.video_frame_position_embedding),
                          **sd("llama_proj", model.llama_proj)}}, args.out / "finetune-vicuna7b-v2.pth")
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = make_tokenizer()
    llm = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=LLM, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2, bos_token_id=1, eos_token_id=2,
                                       pad_token_id=3))
    llm.save_pretrained(args.out / "llama")
    tok.save_pretrained(args.out / "llama")
    b, t = video.shape[0], video.shape[2]
    torch.save({"video": video.permute(0, 2, 1, 3, 4).contiguous(), "first": captured["first"],
                "queries": captured["queries"].view(b, t, QUERIES, H), "inputs_llama": inputs_llama,
                "meta": {"official": f"DAMO-NLP-SG/Video-LLaMA@{OFFICIAL_COMMIT}", "seed": args.seed, "vit_width": W,
                         "depth": DEPTH, "image": IMAGE, "patch": PATCH, "qformer_width": H, "queries": QUERIES,
                         "llm_width": LLM}}, args.out / "refs.pt")
    for f in sorted(args.out.rglob("*")):
        if f.is_file():
            print(f"{f}: {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
