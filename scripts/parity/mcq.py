"""Regenerate the MCQ parity fixtures (tests/fixtures/hosts/mcq/) from the official code.

Method (issue 12): build the official BridgeFormer video model (TencentARC/MCQ @3555a9b,
``model/video_bridge_former.py: Video_Bridge_Former``) and a DistilBERT at a tiny size, assemble them under the
attribute names of the official ``MCQ`` pre-training model (``model/model_dist_MCQ.py``: ``text_model``,
``video_model``, ``text_proj``, ``vid_proj``, ``bridge_proj``), randomise every weight with a fixed seed, save
``{"state_dict": ...}`` as the official trainer does, and run the official ``compute_text`` / ``compute_video``
methods (bound to that object) and the official ``sim_matrix`` to record the references. The checkpoint is saved
as the official trainer saves it from a DistributedDataParallel model: ``{"arch", "epoch", "state_dict" (keys with
the ``module.`` prefix), "config": <a ConfigParser object>}`` (the object makes ``torch.load(weights_only=True)``
refuse the plain file, as with the real ``MCQ.pth``).

Stubs (no numerics replaced): ``timm.models.layers`` (``DropPath`` inactive at drop rate 0, ``to_2tuple``,
``trunc_normal_``), ``base.BaseModel`` (an ``nn.Module``), ``utils.util``; ``einops`` must be importable (pass
``--deps DIR`` with ``pip install --target DIR einops``). The official ``MCQ.__init__`` is skipped (it downloads
DistilBERT and timm's ViT weights); its projections are rebuilt exactly as it defines them.

First version by H7; extended by H9 (similarity logits, official checkpoint envelope).

Usage: python scripts/parity/mcq.py --repo <git checkout of TencentARC/MCQ> --deps <DIR>
"""

from __future__ import annotations

import types
from functools import partial
from pathlib import Path

import torch
from _common import make_tokenizer, parser, prepare, randomise, read_official, save_reference, stub_module
from torch import nn

_package = partial(stub_module, package=True)  # every stub here is a package (relative imports)
COMMIT = "3555a9b"
D, DEPTH, HEADS, FRAMES, RES, PATCH, PROJ = 32, 4, 2, 4, 32, 16, 16
WORDS = ("a the man woman dog cat ball car red blue runs jumps plays with on in of and is what who video "
         "street park green throws kicks , . ?").split()
TEXTS = ["a man throws a red ball in the park", "what is the dog doing ?"]
QUESTIONS = ["a man [MASK] a red ball", "the dog [MASK] in the park"]


class ConfigParser:
    """Stand-in for the official ``parse_config.ConfigParser`` pickled into every checkpoint."""

    def __init__(self, config: dict) -> None:
        self.config = config


def load_official(repo: Path) -> tuple[types.ModuleType, types.ModuleType]:
    class DropPath(nn.Module):
        def __init__(self, p: float = 0.0) -> None:
            super().__init__()

        def forward(self, x):
            return x

    _package("timm")
    _package("timm.models")
    _package("timm.models.layers", DropPath=DropPath, StdConv2dSame=None, to_2tuple=lambda x: (x, x),
             trunc_normal_=lambda t, mean=0.0, std=1.0: nn.init.normal_(t, mean, std))
    _package("base", BaseModel=nn.Module)
    _package("utils")
    _package("utils.util", state_dict_data_parallel_fix=None)
    _package("model")
    bridge = _package("model.video_bridge_former", read_official(repo, "model/video_bridge_former.py"))
    mcq = _package("model.model_dist_MCQ", read_official(repo, "model/model_dist_MCQ.py"))
    return bridge, mcq


def main(argv: list[str] | None = None) -> None:
    ap = parser(__doc__, "TencentARC/MCQ", "tests/fixtures/hosts/mcq",
                deps_help="directory with einops (pip install --target DIR einops)")
    args = ap.parse_args(argv)
    prepare(args)
    tok = make_tokenizer(args.out, WORDS)
    bridge, mcq = load_official(args.repo)
    from transformers import DistilBertConfig, DistilBertModel

    model = mcq.MCQ.__new__(mcq.MCQ)
    nn.Module.__init__(model)
    model.text_model = DistilBertModel(DistilBertConfig(vocab_size=len(tok), dim=D, n_layers=2, n_heads=HEADS,
                                                        hidden_dim=64, max_position_embeddings=64,
                                                        output_hidden_states=True))
    video = bridge.Video_Bridge_Former(img_size=RES, patch_size=PATCH, embed_dim=D, depth=DEPTH, num_heads=HEADS,
                                       num_frames=FRAMES)
    video.head = nn.Identity()  # as MCQ.__init__ does
    video.pre_logits = nn.Identity()
    video.fc = nn.Identity()
    model.video_model = video
    model.text_proj = nn.Sequential(nn.ReLU(), nn.Linear(D, PROJ))  # MCQ.__init__, projection='minimal'
    model.vid_proj = nn.Sequential(nn.Linear(D, PROJ))
    model.bridge_proj = nn.Sequential(nn.Linear(D, PROJ))
    randomise(model, args.seed)
    model.eval()

    def encode(texts):
        e = tok(texts, padding=True, max_length=32, truncation=True, return_tensors="pt")
        return {"input_ids": e["input_ids"], "attention_mask": e["attention_mask"]}

    text, question = encode(TEXTS), encode(QUESTIONS)
    g = torch.Generator().manual_seed(args.seed + 1)
    frames = torch.randn(len(TEXTS), FRAMES, 3, RES, RES, generator=g)
    caught: dict[str, list] = {"text_first": [], "block0": []}

    def keep(key):
        def hook(_m, _i, out) -> None:  # returns None: the module output is left as it is
            caught[key].append(out[0] if key == "text_first" and isinstance(out, tuple) else out)
        return hook

    hooks = [model.text_model.transformer.layer[0].register_forward_hook(keep("text_first")),
             video.blocks[0].register_forward_hook(keep("block0"))]
    with torch.no_grad():
        text_cls, _, q_hidden, q_mask = model.compute_text(text, text, question)
        bridge_emb, video_emb = model.compute_video(frames, q_hidden, q_mask)
        sims = mcq.sim_matrix(text_cls, video_emb)
    for h in hooks:
        h.remove()
    first_text, (bridge_first, video_first) = caught["text_first"][0], caught["block0"][0]  # the caption's pass
    ref = {"text_first": first_text, "bridge_first": bridge_first, "video_first": video_first,
           "text_emb": text_cls, "video_emb": video_emb, "bridge_emb": bridge_emb, "sims": sims}
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    config = ConfigParser({"arch": {"type": "MCQ", "args": {"projection_dim": PROJ}}})
    torch.save({"arch": "MCQ", "epoch": 0, "state_dict": state, "config": config}, args.out / "MCQ.pth")
    save_reference(args.out, ref, {"video": frames, "input_ids": text["input_ids"],
                                   "question_ids": question["input_ids"], "question_mask": question["attention_mask"]},
                   {"texts": "\n".join(TEXTS), "questions": "\n".join(QUESTIONS), "commit": COMMIT})


if __name__ == "__main__":
    main()
