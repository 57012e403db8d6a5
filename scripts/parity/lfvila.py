"""Regenerate the LF-VILA parity fixtures (tests/fixtures/hosts/lfvila/) from the official code.

Method (issue 12): build the official ``LFVILA_QA_Classification`` (stage 2: HTWA Video Swin, the 3-stage BERT,
``sent_embedding``, ``video_token_pos``, ``text_encoder.classifier`` with 1 output) and ``LFVILA_Retrieval`` (stage 1,
for ``video_global_proj`` / ``text_global_proj``) of microsoft/XPretrain @c37c904 (``LF-VILA/src/models/``) at a
tiny size, randomise every weight with a fixed seed, share the common weights, save one plain state dict in the
official layout (``lfvila_stage2.bin``), run both official forwards and store the references.

Edits to the official source, all for building it tiny and offline (no numerics change):
* ``bert.py``: the transformers-4.6 imports (``file_utils`` docstring decorators, ``modeling_utils``) are served by a
  stub whose ``PreTrainedModel`` is an ``nn.Module`` with transformers-4's ``get_extended_attention_mask``
  (``(1 - mask) * -10000``) and ``get_head_mask``; ``apply_chunking_to_forward`` calls the function (chunk size 0).
* ``video_encoder.py``: timm's ``DropPath`` (drop rate unused in eval) / ``trunc_normal_`` and mmcv's
  ``load_checkpoint`` are stubs; ``src.utils`` helpers (logger, dist, misc) are stubs; deepspeed is never imported
  (``deepspeed_sparse_attention`` False).

Usage: python scripts/parity/lfvila.py --repo <git checkout of microsoft/XPretrain> --deps <DIR>
(``--deps``: a folder with ``einops``).
"""

from __future__ import annotations

import json
import sys
import tempfile
import types
from pathlib import Path
from types import SimpleNamespace as NS

import torch
from _common import (
    exec_official,
    make_tokenizer,
    parser,
    prepare,
    randomise,
    read_official,
    save_reference,
    stub_module,
)
from torch import nn

COMMIT = "c37c904"
D, LAYERS, HEADS, LOCAL, STAGE1 = 32, 6, 2, 2, 4  # tiny BERT: 2 sentence + 2 paragraph + 2 cross layers
VIDEO = {"patch_size": [1, 4, 4], "embed_dim": 4, "depths": [1, 1, 1, 1, 1, 1], "downsample_stages": [0, 1, 4],
         "stages": [0, 1, 2, 2, 2, 3], "num_heads": [1, 1, 2, 2, 2, 2],
         "window_size": [[2, 3, 5], [2, 3, 5], [4, 3, 5], [4, 3, 5], [8, 3, 5], [8, 3, 5]], "patch_norm": True,
         "local_window": 2}
FRAMES, HEIGHT, WIDTH = 8, 96, 160
WORDS = ("a the man woman dog cat ball car red blue runs jumps plays with on in of and is what who video "
         "street park green throws kicks doing , . ?").split()
TEXTS = ["a man throws a red ball. the dog runs in the park. what is the cat doing?",
         "a woman plays with a blue car."]
SRC = "LF-VILA/src/models/"


class _PreTrainedModel(nn.Module):
    """transformers-4.6 ``PreTrainedModel`` surface the official modules use."""

    def __init__(self, config, *args, **kwargs) -> None:
        super().__init__()
        self.config = config

    def post_init(self) -> None:
        pass

    def get_extended_attention_mask(self, mask, input_shape, device=None):
        return (1.0 - mask[:, None, None, :].float()) * -10000.0

    def get_head_mask(self, head_mask, num_layers):
        return [None] * num_layers


def _stubs() -> None:
    def deco(*a, **k):
        return lambda f: f

    class DropPath(nn.Module):
        def __init__(self, p=0.0):
            super().__init__()

        def forward(self, x):
            return x

    from transformers.utils import ModelOutput

    stub_module("_lfvila_compat", PreTrainedModel=_PreTrainedModel, ModelOutput=ModelOutput,
                apply_chunking_to_forward=lambda fn, chunk, dim, *xs: fn(*xs), find_pruneable_heads_and_indices=None,
                prune_linear_layer=None, add_code_sample_docstrings=deco, add_start_docstrings=deco,
                add_start_docstrings_to_model_forward=deco, replace_return_docstrings=deco)
    stub_module("timm")
    stub_module("timm.models")
    stub_module("timm.models.layers", DropPath=DropPath, trunc_normal_=nn.init.trunc_normal_)
    stub_module("timm.models.vision_transformer", Block=None)
    stub_module("mmcv")
    stub_module("mmcv.runner", load_checkpoint=None)
    stub_module("src", __path__=[])
    stub_module("src.models", __path__=[])
    stub_module("src.utils", __path__=[])
    stub_module("src.utils.dist", master_process=lambda *a: True, SyncFunction=None)
    stub_module("src.utils.logger", LOGGER=__import__("logging").getLogger("lfvila"))
    stub_module("src.utils.misc", vector_gather=None)


def _exec(repo: Path, name: str, edits: dict[str, str] | None = None) -> types.ModuleType:
    return exec_official(repo, SRC + name + ".py", f"src.models.{name}", edits, __package__="src.models")


def load_official(repo: Path) -> dict[str, types.ModuleType]:
    _stubs()
    bert_src = read_official(repo, SRC + "bert.py")
    start = bert_src.index("from transformers.file_utils import (")
    end = bert_src.index("from transformers.utils import logging")
    modeling_outputs = bert_src[bert_src.index("from transformers.modeling_outputs import ("):
                                bert_src.index("from transformers.modeling_utils import (")]
    compat = ("from _lfvila_compat import (ModelOutput, add_code_sample_docstrings, add_start_docstrings, "
              "add_start_docstrings_to_model_forward, replace_return_docstrings, PreTrainedModel, "
              "apply_chunking_to_forward, find_pruneable_heads_and_indices, prune_linear_layer)\n")
    mods = {"bert": _exec(repo, "bert", {bert_src[start:end]: modeling_outputs + compat})}
    for name in ("video_encoder", "text_encoder", "lfvila_pretrain", "lfvila_retrieval", "lfvila_qa_classification"):
        mods[name] = _exec(repo, name)
    return mods


def make_configs(vocab: int, folder: Path, stage: int) -> NS:
    bert = dict(vocab_size=vocab, hidden_size=D, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                intermediate_size=2 * D, max_position_embeddings=512, layer_norm_eps=1e-12, hidden_act="gelu",
                hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, type_vocab_size=2, pad_token_id=0,
                position_embedding_type="absolute", model_type="bert", chunk_size_feed_forward=0)
    path = folder / "bert_config.json"
    path.write_text(json.dumps(bert))
    return NS(VideoEncoder=VIDEO, bert_config=str(path), stage=stage, type_vocab_size=8, num_local_layers=LOCAL,
              stage1_layers=STAGE1, bert_frozen_stage=-1, final_num_patches=6,
              DATA=NS(sample_clip=4, sample_frame=FRAMES, classification_labels=1),
              TRAINING=NS(temp=0.05, ct_global_loss_weight=1))


def make_video(seed: int) -> torch.Tensor:
    """The normalised input frames ``[B, C, N, H, W]`` (regenerated from the seed by the test; 2.9 MB not stored)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(len(TEXTS), 3, FRAMES, HEIGHT, WIDTH, generator=g)


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__, "microsoft/XPretrain", "tests/fixtures/hosts/lfvila",
                deps_help="extra folder on sys.path (einops)")
    args = ap.parse_args(argv)
    prepare(args, deps_first=False)
    tok = make_tokenizer(args.out, WORDS)
    mods = load_official(args.repo)
    run_args = NS(deepspeed_sparse_attention=False, distributed=False)
    with tempfile.TemporaryDirectory() as tmp:
        qa = mods["lfvila_qa_classification"].LFVILA_QA_Classification(run_args, make_configs(len(tok), Path(tmp), 2))
        ret = mods["lfvila_retrieval"].LFVILA_Retrieval(run_args, make_configs(len(tok), Path(tmp), 1))
    randomise(qa, args.seed)
    randomise(ret, args.seed + 7)
    missing, _ = ret.load_state_dict(qa.state_dict(), strict=False)
    state = {**qa.state_dict(), **{k: v for k, v in ret.state_dict().items() if k.startswith(("video_global_proj",
                                                                                            "text_global_proj"))}}
    qa.eval()
    ret.eval()
    # official tokenisation (RetrievalDataset.tokenize): 8 chunks of 50 tokens, padded chunks all zero
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from hosts.lfvila import CHUNK_LEN, CHUNKS, sentence_spans

    ids = torch.zeros(len(TEXTS), CHUNKS, CHUNK_LEN, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, text in enumerate(TEXTS):
        for j, (s, e) in enumerate(sentence_spans(text)):
            enc = tok(text[s:e], padding="max_length", truncation=True, max_length=CHUNK_LEN)
            ids[i, j], mask[i, j] = torch.tensor(enc.input_ids), torch.tensor(enc.attention_mask)
    video = make_video(args.seed + 1)
    caught: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(module, inputs, output):
            caught.setdefault(name, (output[0] if isinstance(output, tuple) else output).detach().clone())
        return hook  # returns None: the model's output is untouched

    layers = qa.text_encoder.bert.encoder.layer
    hooks = [qa.video_encoder.layers[0].blocks[0].register_forward_hook(keep("video_first")),
             layers[0].register_forward_hook(keep("text_first")),
             layers[LOCAL].register_forward_hook(keep("global_first")),
             layers[STAGE1].register_forward_hook(keep("cross_first")),
             qa.text_encoder.bert.pooler.register_forward_hook(keep("pooler"))]
    with torch.no_grad():
        logits = qa(video, ids, mask.float(), labels=torch.zeros(len(TEXTS), dtype=torch.long))["prediction"]
        for h in hooks:
            h.remove()
        out = ret(video, ids, mask.float())
    b = len(TEXTS)
    ref = {"video_first": caught["video_first"],
           "text_first": caught["text_first"].view(b, CHUNKS * CHUNK_LEN, D),
           "global_first": caught["global_first"], "cross_first": caught["cross_first"], "pooler": caught["pooler"],
           "logits": logits, "text_features": out["text_global_feat"], "vis_features": out["video_global_feat"],
           "similarity": out["text_global_feat"] @ out["video_global_feat"].t()}
    torch.save(state, args.out / "lfvila_stage2.bin")
    save_reference(args.out, ref, {"input_ids": ids, "attention_mask": mask, "video_sum": video.double().sum().view(1)},
                   {"texts": "\n".join(TEXTS), "commit": COMMIT, "video_seed": str(args.seed + 1)},
                   note=f"retrieval model: {len(missing)} keys not shared with the QA model (its projections and "
                        f"pre-training heads); ")


if __name__ == "__main__":
    main()
