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

import argparse
import subprocess
import sys
import types
from pathlib import Path

import torch
from torch import nn

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


def _read(repo: Path, rel: str) -> str:
    if (repo / rel).is_file():
        return (repo / rel).read_text()
    return subprocess.run(["git", "--git-dir", str(repo), "show", f"HEAD:{rel}"], check=True, capture_output=True,
                          text=True).stdout


def _module(name: str, source: str | None = None, **attrs) -> types.ModuleType:
    m = types.ModuleType(name)
    m.__path__ = []
    m.__dict__.update(attrs)
    sys.modules[name] = m
    if source is not None:
        exec(compile(source, name.replace(".", "/") + ".py", "exec"), m.__dict__)
    return m


def load_official(repo: Path) -> tuple[types.ModuleType, types.ModuleType]:
    class DropPath(nn.Module):
        def __init__(self, p: float = 0.0) -> None:
            super().__init__()

        def forward(self, x):
            return x

    _module("timm")
    _module("timm.models")
    _module("timm.models.layers", DropPath=DropPath, StdConv2dSame=None, to_2tuple=lambda x: (x, x),
            trunc_normal_=lambda t, mean=0.0, std=1.0: nn.init.normal_(t, mean, std))
    _module("base", BaseModel=nn.Module)
    _module("utils")
    _module("utils.util", state_dict_data_parallel_fix=None)
    _module("model")
    bridge = _module("model.video_bridge_former", _read(repo, "model/video_bridge_former.py"))
    mcq = _module("model.model_dist_MCQ", _read(repo, "model/model_dist_MCQ.py"))
    return bridge, mcq


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
    ap.add_argument("--repo", type=Path, required=True, help="checkout or bare git mirror of TencentARC/MCQ")
    ap.add_argument("--deps", type=Path, default=None, help="directory with einops (pip install --target DIR einops)")
    ap.add_argument("--out", type=Path, default=Path("tests/fixtures/hosts/mcq"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.deps is not None:
        sys.path.insert(0, str(args.deps))
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer(args.out)
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
    from safetensors.torch import save_file

    save_file({**{k: v.contiguous().clone() for k, v in ref.items()}, "video": frames,
               "input_ids": text["input_ids"], "question_ids": question["input_ids"],
               "question_mask": question["attention_mask"]},
              str(args.out / "reference.safetensors"),
              metadata={"texts": "\n".join(TEXTS), "questions": "\n".join(QUESTIONS), "commit": COMMIT})
    print(f"wrote {args.out}: {({p.name: p.stat().st_size for p in sorted(args.out.iterdir())})}")


if __name__ == "__main__":
    main()
