"""Arguments shared by ``run``, ``validate`` and ``sweep``."""

from __future__ import annotations

import argparse

from harness.errors import HarnessError


def parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise HarnessError(f"--seeds expects comma-separated integers, got {text!r}") from None
    if not seeds:
        raise HarnessError("--seeds is empty")
    return seeds


def add_plan_args(p: argparse.ArgumentParser) -> None:
    """``--host --task --mode --seeds --config --preset --store`` and ``key=value`` overrides."""
    p.add_argument("--host", required=True, help="host name(s), comma-separated; optional weight tag: clover.msrvtt_ft")
    p.add_argument("--task", required=True, help="task name(s), comma-separated")
    p.add_argument("--mode", default="finetune", help="posttrain | finetune | zeroshot | pretrain (default finetune)")
    add_common_args(p)


def add_common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: run.seeds of the config)")
    p.add_argument("--config", default=None, help="experiment YAML layered over the defaults")
    p.add_argument("--preset", default=None, help="config preset: paper (default) or small")
    p.add_argument("--store", default=None, help="results root (default: store.root, results/runs)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. finetune.epochs=5")


def add_submit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", default=None, choices=["inline", "debug", "local", "slurm"],
                   help="where jobs run (default: launch.executor of the config)")
    p.add_argument("--force", action="store_true", help="re-run finished runs too")
    p.add_argument("--no-wait", action="store_true", help="return after submitting")


def summarize(results: list, out: argparse.Namespace | None = None) -> int:
    """Print one line per run and the totals; exit status 1 if any run failed."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r.state] = counts.get(r.state, 0) + 1
        tail = f"  {r.error}" if r.error else ""
        print(f"{r.state:9s} {r.run_dir}{tail}")
    print("; ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    return 1 if counts.get("failed") else 0
