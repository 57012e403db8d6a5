"""Shared pieces of the end-to-end tests: the CLI in process, its output, the data writers."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import torch

pytest.importorskip("av", reason="the end-to-end tests write and decode real videos with PyAV")
pytest.importorskip("submitit", reason="sg parse and run launch through submitit")


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models on a shared CPU: one intra-op thread (faster, and the suite budget assumes it)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """``python -m harness ARGV`` in this process -> (exit status, stdout, stderr)."""
    from harness.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def command_argv(line: str, **fill: str) -> list[str]:
    """The arguments of a printed ``python -m harness ...`` command, placeholders ``<X>`` replaced by ``fill``."""
    start = line.index("python -m harness ")
    argv = shlex.split(line[start:])[3:]
    return [fill.get(a, a) for a in argv]


def run_dir(store: Path, mode: str) -> Path:
    """The one run folder of ``mode`` in ``store``."""
    dirs = [d for d in store.iterdir() if d.is_dir() and f"-{mode}-" in d.name]
    assert len(dirs) == 1, f"expected one {mode} run in {store}, found {[d.name for d in store.iterdir()]}"
    return dirs[0]
