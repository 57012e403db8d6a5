"""Pieces every parity-fixture script shares (scripts/parity/*.py): reading the official checkout, stub modules,
the tiny word-level tokenizer, seeded weight randomisation, the command line and saving the references.

The scripts run as ``python scripts/parity/<host>.py``, so this folder is on ``sys.path`` and they import
``from _common import ...``. Nothing here changes the numbers a script wrote before it used this module.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path

import torch
from torch import nn

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def read_official(repo: Path, rel: str) -> str:
    """The text of ``rel`` in the official repository, from a checkout or (failing that) a bare git mirror."""
    if (repo / rel).is_file():
        return (repo / rel).read_text()
    return subprocess.run(["git", "--git-dir", str(repo), "show", f"HEAD:{rel}"], check=True, capture_output=True,
                          text=True).stdout


def stub_module(name: str, source: str | None = None, *, package: bool = False, **attrs) -> types.ModuleType:
    """A fresh module registered as ``sys.modules[name]`` holding ``attrs``; ``package`` gives it an empty
    ``__path__`` (so submodules and relative imports resolve); ``source``, if given, is executed in it."""
    m = types.ModuleType(name)
    if package:
        m.__path__ = []
    m.__dict__.update(attrs)
    sys.modules[name] = m
    if source is not None:
        exec(compile(source, name.replace(".", "/") + ".py", "exec"), m.__dict__)
    return m


def patched(src: str, edits: dict[str, str], what: str) -> str:
    """``src`` with every ``old -> new`` of ``edits`` replaced; stops naming ``what`` if an ``old`` is not there
    (the official file changed, so the edits need a look)."""
    for a, b in edits.items():
        if a not in src:
            raise SystemExit(f"official {what} changed: {a!r} not found")
        src = src.replace(a, b)
    return src


def exec_official(repo: Path, rel: str, name: str, edits: dict[str, str] | None = None, **attrs) -> types.ModuleType:
    """The official file ``rel`` (with ``edits``, see :func:`patched`) executed as module ``sys.modules[name]``
    holding ``attrs`` (e.g. ``__package__``), its code objects named after ``rel``."""
    src = patched(read_official(repo, rel), edits or {}, Path(rel).name)
    mod = stub_module(name, **attrs)
    exec(compile(src, rel, "exec"), mod.__dict__)
    return mod

def make_tokenizer(out: Path, words: list[str]):
    """A lower-casing BERT WordPiece tokenizer over ``SPECIAL + words``, saved to ``out`` (the fixture's)."""
    from transformers import BertTokenizerFast

    vocab = out / "vocab.txt"
    vocab.write_text("\n".join(SPECIAL + list(words)) + "\n")
    tok = BertTokenizerFast(str(vocab), do_lower_case=True)
    tok.save_pretrained(str(out))
    return tok



def make_clip_tokenizer(words: list[str]):
    """A CLIP-style WordLevel tokenizer: ``<pad>`` = 0 (the official padding id), ``<unk>``, the sorted ``words``,
    then start / end of text last; lower-cased, split on whitespace and punctuation, wrapped in start / end."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    bos, eos = "<|startoftext|>", "<|endoftext|>"
    vocab = {t: i for i, t in enumerate(["<pad>", "<unk>"] + sorted(set(words)) + [bos, eos])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tk.post_processor = processors.TemplateProcessing(single=f"{bos} $A {eos}",
                                                      special_tokens=[(bos, vocab[bos]), (eos, vocab[eos])])
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token=bos, eos_token=eos, pad_token="<pad>",
                                   unk_token="<unk>")

def randomise(model: nn.Module, seed: int, *, fan_in_convs: bool = False, batchnorm_stats: bool = False) -> None:
    """Draw every parameter anew from ``seed`` so that no default initialisation hides a wrong mapping: 1-d
    weights (norm scales) ``1 + 0.1 N(0, 1)``, everything else ``0.05 N(0, 1)`` (tied parameters appear once).
    ``fan_in_convs``: 4-d weights ``N(0, 2 / fan_in)`` instead (variance-preserving, so deep ResNets keep a
    signal); ``batchnorm_stats``: running means ``0.1 N(0, 1)`` and running variances ``1 + 0.2 U(0, 1)`` too."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.dim() == 1:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif fan_in_convs and p.dim() == 4:
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / p[0].numel()) ** 0.5)
            else:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
        if batchnorm_stats:
            for name, b in model.named_buffers():
                if name.endswith("running_mean"):
                    b.copy_(0.1 * torch.randn(b.shape, generator=g))
                elif name.endswith("running_var"):
                    b.copy_(1.0 + 0.2 * torch.rand(b.shape, generator=g))


def parser(doc: str, official: str, out: str, deps_help: str | None = None) -> argparse.ArgumentParser:
    """The common command line: ``--repo`` (checkout or bare git mirror of ``official``), ``--out`` (default
    ``out``), ``--seed`` and, where ``deps_help`` is given, ``--deps`` (an extra folder for ``sys.path``)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--repo", type=Path, required=True, help=f"checkout or bare git mirror of {official}")
    if deps_help is not None:
        ap.add_argument("--deps", type=Path, default=None, help=deps_help)
    ap.add_argument("--out", type=Path, default=Path(out))
    ap.add_argument("--seed", type=int, default=0)
    return ap


def prepare(args: argparse.Namespace, *, deps_first: bool = True) -> None:
    """Put ``args.deps`` (if any) on ``sys.path`` (first, or last with ``deps_first=False``), use one CPU thread
    and create ``args.out``."""
    deps = getattr(args, "deps", None)
    if deps is not None:
        if deps_first:
            sys.path.insert(0, str(deps))
        else:
            sys.path.append(str(deps))
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)


def save_reference(out: Path, ref: dict[str, torch.Tensor], inputs: dict[str, torch.Tensor],
                   metadata: dict[str, str], note: str = "") -> None:
    """Write ``out/reference.safetensors``: the reference tensors (contiguous copies) and the inputs they were
    computed from, with ``metadata``; then print what ``out`` holds (after ``note``)."""
    from safetensors.torch import save_file

    save_file({**{k: v.contiguous().clone() for k, v in ref.items()}, **inputs}, str(out / "reference.safetensors"),
              metadata=metadata)
    print(f"{note}wrote {out}: {({p.name: p.stat().st_size for p in sorted(out.iterdir())})}")
