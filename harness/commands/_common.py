"""Arguments and output shared by ``run``, ``validate`` and ``sweep``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from harness.errors import HarnessError

DEFAULT_MODE = "finetune"


def parse_seeds(text: str | None) -> list[int] | None:
    """``"1,2,2"`` -> ``[1, 2]`` (a repeated seed is planned once)."""
    if text is None:
        return None
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise HarnessError(f"--seeds expects comma-separated integers, got {text!r}") from None
    if not seeds:
        raise HarnessError("--seeds is empty")
    return list(dict.fromkeys(seeds))


def add_plan_args(p: argparse.ArgumentParser) -> None:
    """``--host --task --mode --seeds --config --preset --store`` and ``key=value`` overrides, plus the spellings
    users of lm-evaluation-harness / lmms-eval bring (``--model --tasks --model_args --output_path --log_samples
    --limit``), which mean the same here (see :func:`lm_eval_overrides`)."""
    p.add_argument("--host", "--model", dest="host", required=True,
                   help="host name(s), comma-separated; optional weight tag: clover.msrvtt_ft (alias --model)")
    p.add_argument("--task", "--tasks", dest="task", required=True,
                   help="task name(s), comma-separated (alias --tasks)")
    p.add_argument("--mode", default=None,
                   help=f"posttrain | finetune | zeroshot | pretrain (default {DEFAULT_MODE}; the plan is printed)")
    p.add_argument("--model_args", "--model-args", dest="model_args", default=None,
                   help="lm-eval style 'key=value,...' for the host: pretrained=PATH is host.checkpoint, any other key "
                        "a host.options.<key> override")
    p.add_argument("--limit", type=int, default=None, help="first N samples of every split (= data.limit=N)")
    p.add_argument("--log_samples", "--log-samples", action="store_true",
                   help="accepted for lm-eval users: every run always writes samples.jsonl (id, target, prediction, "
                        "per-sample metrics)")
    add_common_args(p)


def lm_eval_overrides(args: argparse.Namespace) -> list[str]:
    """``key=value`` overrides for ``--model_args`` and ``--limit`` (appended before the user's own, which win).

    Raises:
        HarnessError: a ``--model_args`` item without ``=``, or a negative ``--limit``.
    """
    out: list[str] = []
    for item in filter(None, (x.strip() for x in (getattr(args, "model_args", None) or "").split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise HarnessError(f"--model_args expects key=value items separated by commas, got {item!r}")
        key = key.strip()
        out.append(f"host.checkpoint={value}" if key == "pretrained" else f"host.options.{key}={value}")
    limit = getattr(args, "limit", None)
    if limit is not None:
        if limit < 0:
            raise HarnessError(f"--limit must be >= 0, got {limit}")
        out.append(f"data.limit={limit}")
    return out


def add_common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: run.seeds of the config)")
    p.add_argument("--config", default=None, help="experiment YAML layered over the defaults")
    p.add_argument("--preset", default=None, help="config preset: paper (default) or small")
    p.add_argument("--store", "--output_path", "--output-path", dest="store", default=None,
                   help="results root (default: store.root, results/runs; alias --output_path)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. finetune.epochs=5")


def add_submit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", default=None, choices=["inline", "debug", "local", "slurm"],
                   help="where jobs run (default: launch.executor of the config)")
    p.add_argument("--force", action="store_true", help="re-run finished runs too")
    p.add_argument("--no-wait", action="store_true", help="return after submitting")


def plan_from_args(args: argparse.Namespace) -> list[Any]:
    """Plan the runs of ``run`` / ``validate`` and print the plan (one line per run; the mode when defaulted)."""
    from harness.plan import plan_runs

    mode = args.mode or DEFAULT_MODE
    overrides = lm_eval_overrides(args) + list(args.overrides)
    runs = plan_runs(args.host, args.task, mode, seeds=parse_seeds(args.seeds), overrides=overrides,
                     experiment=args.config, preset=args.preset, store_root=args.store)
    note = "" if args.mode else f" (mode {mode}: the default; choose with --mode)"
    print(f"planned {len(runs)} run(s) under {runs[0].store_root}{note}:")
    for r in runs:
        print(f"  {r.mode:9s} {r.host:14s} {r.task:16s} seed {r.seed:<3d} {r.run_id}")
    return runs


def summarize(results: list, out: argparse.Namespace | None = None) -> int:
    """Print one line per run and the totals; exit status 1 if any run failed."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r.state] = counts.get(r.state, 0) + 1
        tail = f"  {r.error}" if r.error else ""
        print(f"{r.state:9s} {r.run_dir}{tail}")
    print("; ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    return 1 if counts.get("failed") else 0


def print_scores(runs: Sequence[Any]) -> None:
    """The scores the runs produced (their ``metrics.json``), one line per evaluation, and the mean over seeds."""
    from harness.store import RunStore
    from tasks.metrics.registry import higher_is_better, metric_label

    lines, groups = [], {}
    for r in runs:
        store = RunStore(r.store_root)
        if not store.is_finished(r.run_id):
            continue
        for ev in store.metrics(r.run_id)["evaluations"]:
            m = {k: float(v) for k, v in (ev.get("metrics") or {}).items()}
            key = (r.host, r.task, r.mode, ev.get("mode", ""), ev.get("split", ""))
            groups.setdefault(key, []).append(m)
            vals = "  ".join(f"{metric_label(k)}{'' if higher_is_better(k) else '↓'}={v:.2f}" for k, v in m.items())
            lines.append(f"  {r.host:14s} {r.task:16s} {r.mode:9s} s{r.seed:<3d} {ev.get('split', ''):6s} {vals}  "
                         f"(n={ev.get('n_samples')}, failed={ev.get('n_failed', 0)})")
    if not lines:
        return
    print("scores:")
    print("\n".join(lines))
    for (host, task, mode, _, split), ms in groups.items():
        if len(ms) > 1:
            keys = [k for k in ms[0] if all(k in m for m in ms)]
            vals = "  ".join(f"{metric_label(k)}={sum(m[k] for m in ms) / len(ms):.2f}" for k in keys)
            print(f"  {host:14s} {task:16s} {mode:9s} mean of {len(ms)} seeds, {split}: {vals}")
