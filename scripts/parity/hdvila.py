"""Regenerate the HD-VILA parity fixtures (tests/fixtures/hosts/hdvila/) from the official code.

Method (issue 12): build the official ``HDVILA(config, HDVILAForPreTraining, stage=2)`` (microsoft/XPretrain
@c37c904, ``hd-vila/src/modeling/{e2e_model,modeling_stage,Transformers,timesformer,resnet_mmdetection}.py``) at a
tiny size, randomise every weight and BatchNorm statistic with a fixed seed, save the plain state dict the official
``load_state_dict_with_mismatch`` reads (``hdvila_stage2.pt``), run the official forward on two clips and store the
references (first ResNet / TimeSformer / BERT layers, fused grids, text and video features, ``pooler2``).

Edits to the official source, all for building it tiny and offline (no numerics change):
* ``e2e_model.py``: both ResNets get ``base_channels=2`` (official 64); ``mmcv.runner.load_checkpoint`` is unused.
* mmcv is not installed: ``BaseModule``/``Sequential`` are ``nn.Module``/``nn.Sequential``, ``build_conv_layer`` is
  ``nn.Conv2d``, ``build_norm_layer`` is mmcv's ``("bn<postfix>", nn.BatchNorm2d)``.
* ``timesformer.py``: ``torch._six.container_abcs`` is ``collections.abc`` (removed from torch).
* ``Transformers.py``: the transformers-2.x imports (``configuration_bert``, ``file_utils``, ``modeling_utils``,
  ``activations.swish``) are served by a stub whose ``PreTrainedModel`` is an ``nn.Module`` with the transformers-2
  ``get_extended_attention_mask`` (``(1 - mask) * -10000``) and ``get_head_mask`` (``[None] * layers``).
* ``src.utils`` / ``src.datasets`` helpers the model imports but these passes do not use are stubs.

The middle frame is upsampled 4x with ``torch`` bicubic here (the official loader uses cv2 on uint8 frames); the
host does the same upsampling, so this tests the model, not the loader.

Usage: python scripts/parity/hdvila.py --repo <git checkout of microsoft/XPretrain> --deps <DIR>
(``--deps``: a folder with ``einops``, e.g. from ``pip install --target DIR einops``).
"""

from __future__ import annotations

import collections.abc
import sys
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import (
    exec_official,
    make_tokenizer,
    parser,
    prepare,
    randomise,
    save_reference,
    stub_module,
)
from torch import nn

COMMIT = "c37c904"
D, LAYERS, HEADS = 32, 4, 2  # tiny BERT (official 1024 / 24 / 16)
BASE = 2  # tiny ResNet-50 width (official 64): stages 8, 16, 32, 64 channels
WORDS = ("a the man woman dog cat ball car red blue runs jumps plays with on in of and is what who video "
         "street park green throws kicks , . ?").split()
TEXTS = ["a man throws a red ball in the park", "what is the dog doing ?"]
CLIPS, FRAMES, RES = 2, 7, 32  # clips per video, frames per clip, low resolution (middle frame 4x)
SRC = "hd-vila/src/modeling/"


class _PreTrainedModel(nn.Module):
    """transformers-2.x ``PreTrainedModel`` surface the official modules use."""

    def __init__(self, config, *args, **kwargs) -> None:
        super().__init__()
        self.config = config

    def init_weights(self) -> None:
        self.apply(self._init_weights)

    def get_extended_attention_mask(self, mask, input_shape, device):
        return (1.0 - mask[:, None, None, :].float()) * -10000.0

    def get_head_mask(self, head_mask, num_layers):
        return [None] * num_layers


def _stubs() -> None:
    import transformers

    def build_norm_layer(cfg, num, postfix=""):
        return f"bn{postfix}", nn.BatchNorm2d(num)

    def build_conv_layer(cfg, *args, **kwargs):
        return nn.Conv2d(*args, **kwargs)

    class BaseModule(nn.Module):
        def __init__(self, init_cfg=None):
            super().__init__()

    class Sequential(nn.Sequential):
        def __init__(self, *args, init_cfg=None):
            super().__init__(*args)

    stub_module("mmcv")
    stub_module("mmcv.runner", BaseModule=BaseModule, Sequential=Sequential, load_checkpoint=None)
    stub_module("mmcv.cnn", build_conv_layer=build_conv_layer, build_norm_layer=build_norm_layer,
                build_plugin_layer=None)
    stub_module("torch._six", container_abcs=collections.abc)
    stub_module("_hdvila_compat", gelu=F.gelu, gelu_new=transformers.activations.gelu_new, swish=F.silu,
                BertConfig=transformers.BertConfig, add_start_docstrings=lambda *a: (lambda f: f),
                add_start_docstrings_to_callable=lambda *a: (lambda f: f), PreTrainedModel=_PreTrainedModel,
                prune_linear_layer=None)
    stub_module("src", __path__=[])
    stub_module("src.modeling", __path__=[])
    stub_module("src.utils", __path__=[])
    stub_module("src.datasets", __path__=[])
    stub_module("src.utils.basic_utils", flat_list_of_lists=lambda ls: [x for s in ls for x in s])
    stub_module("src.utils.load_save", load_state_dict_with_mismatch=None)
    stub_module("src.datasets.data_utils", repeat_tensor_rows=None)


def _exec(repo: Path, name: str, edits: dict[str, str] | None = None) -> types.ModuleType:
    return exec_official(repo, SRC + name + ".py", f"src.modeling.{name}", edits, __package__="src.modeling")


def load_official(repo: Path) -> types.ModuleType:
    _stubs()
    compat = "from _hdvila_compat import gelu, gelu_new, swish, BertConfig, PreTrainedModel, prune_linear_layer"
    _exec(repo, "Transformers", {
        "from transformers.activations import gelu, gelu_new, swish\n": compat + "\n",
        "from transformers.configuration_bert import BertConfig\n": "",
        "from transformers.file_utils import (\n    add_start_docstrings, add_start_docstrings_to_callable)\n": "",
        "from transformers.modeling_utils import PreTrainedModel, prune_linear_layer\n": ""})
    _exec(repo, "modeling_stage")
    _exec(repo, "resnet_mmdetection")
    _exec(repo, "timesformer")
    resnet = "ResNet(depth=config.resnet_depth, frozen_stages=config.resnet_frozen_stage)"
    return _exec(repo, "e2e_model", {resnet: resnet[:-1] + f", base_channels={BASE})"})


def make_config(vocab: int):
    from transformers import BertConfig

    cfg = BertConfig(vocab_size=vocab, hidden_size=D, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                     intermediate_size=2 * D, max_position_embeddings=64, layer_norm_eps=1e-12)
    extra = dict(max_temporal_position_embeddings=100, max_grid_row_position_embeddings=100,
                 max_grid_col_position_embeddings=100, backbone_channel_in_size=32 * BASE,
                 backbone_channels=[4 * BASE, 8 * BASE, 16 * BASE, 32 * BASE], resnet_depth=50,
                 resnet_frozen_stage=-1, timesformer_depth=1, timesformer_heads=HEADS, timesformer_type="new",
                 score_agg_func="lse", bert_mean=1, pixel_random_sampling_size=0, output_attentions=False,
                 output_hidden_states=False, is_decoder=False)
    for k, v in extra.items():
        setattr(cfg, k, v)
    return cfg


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__, "microsoft/XPretrain", "tests/fixtures/hosts/hdvila",
                deps_help="extra folder on sys.path (einops)")
    args = ap.parse_args(argv)
    prepare(args, deps_first=False)
    tok = make_tokenizer(args.out, WORDS)
    official = load_official(args.repo)
    stage = sys.modules["src.modeling.modeling_stage"]
    model = official.HDVILA(make_config(len(tok)), transformer_cls=stage.HDVILAForPreTraining, stage=2)
    randomise(model, args.seed, fan_in_convs=True, batchnorm_stats=True)
    model.eval()
    enc = tok(TEXTS, padding=True, max_length=50, truncation=True, return_tensors="pt")
    g = torch.Generator().manual_seed(args.seed + 1)
    b = len(TEXTS)
    frames = 255.0 * torch.rand(b, CLIPS, FRAMES, 3, RES, RES, generator=g)  # official pixel scale 0-255
    mid = FRAMES // 2
    img_middle = F.interpolate(frames[:, :, mid].flatten(0, 1), scale_factor=4, mode="bicubic",
                               align_corners=False).view(b, CLIPS, 3, 4 * RES, 4 * RES)
    img_other = torch.cat([frames[:, :, :mid], frames[:, :, mid + 1:]], 2)
    caught: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(module, inputs, output):
            caught[name] = (output[0] if isinstance(output, tuple) else output).detach().clone()
        return hook  # returns None: the model's output is untouched

    bert = model.transformer.bert
    hooks = [model.timesformer.blocks[0].register_forward_hook(keep("video_first")),
             model.grid_encoder_combine.register_forward_hook(keep("fused")),
             bert.encoder.layer[0].register_forward_hook(keep("text_first")),
             bert.encoder.layer[LAYERS // 2].register_forward_hook(keep("cross_first")),
             bert.pooler2.register_forward_hook(keep("pooler2"))]
    with torch.no_grad():
        out = model(img_middle, img_other, enc["input_ids"], enc["attention_mask"])
    for h in hooks:
        h.remove()
    # official orders: grids [b*clips, ...]; stage-2 rows clip-major [clips*b, ...] -> ours [b, clips, ...]
    lq = caught["cross_first"].shape[1]
    ref = {"video_first": caught["video_first"].view(b, CLIPS, *caught["video_first"].shape[1:]),
           "fused": caught["fused"].view(b, CLIPS, *caught["fused"].shape[1:]).permute(0, 1, 3, 4, 2),
           "text_first": caught["text_first"],
           "cross_first": caught["cross_first"].view(CLIPS, b, lq, D).transpose(0, 1),
           "pooler2": caught["pooler2"].view(CLIPS, b, D).transpose(0, 1),
           "text_features": out["text_features"], "vis_features": out["vis_features"],
           "similarity": out["text_features"] @ out["vis_features"].t()}
    torch.save(model.state_dict(), args.out / "hdvila_stage2.pt")
    save_reference(args.out, ref, {"frames": frames.contiguous(), "input_ids": enc["input_ids"],
                                   "attention_mask": enc["attention_mask"]},
                   {"texts": "\n".join(TEXTS), "commit": COMMIT})


if __name__ == "__main__":
    main()
