"""``demo``: the whole Finsta pipeline on the embedded synthetic benchmark, on CPU, in minutes.

Pre-trains the tiny host on ``synth_pairs`` with its own coarse objectives, trains a step-matched control,
post-trains the pre-trained host with Finsta (stage 1 then stage 2), fine-tunes and zero-shot evaluates the
host and the Finsta-host on the synthetic tasks, and prints a paper-style table with deltas. Everything goes
through the ordinary jobs, store and tables (``harness.pipeline``), so ``harness tables --store DIR`` and
``harness status --store DIR`` work on the demo's runs too. ``--workers N`` runs independent runs (control and
post-training of a seed, the evaluations) in N worker processes (default: two, one on a one-core machine).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

SUMMARY_METRICS = {"action_recognition": "top1", "captioning": "CIDEr", "retrieval": "R@1", "mc_qa": "accuracy",
                   "oe_qa": "accuracy", "paragraph_retrieval": "R@1", "longform_qa": "accuracy"}


def summary_table(frame: pd.DataFrame, host: str) -> str:
    """Markdown: one row per (task, mode): the headline metric of the host and the Finsta-host, mean ± std
    over seeds, the delta, and the sample count."""
    done = frame[(frame["status"] == "finished") & (frame["host"] == host) & (frame["ablation"] == "")
                 & (frame["sweep"] == "") & frame["metric"].ne("") & (frame["mode"] != "cost")]
    lines = ["| task | type | mode | metric | host | Finsta-host | Δ | n |", "|:--|:--|:--|:--|--:|--:|--:|--:|"]
    for (task, mode), g in done.groupby(["task", "mode"], sort=True):
        metric = SUMMARY_METRICS.get(str(g["task_type"].iloc[0]), str(g["metric"].iloc[0]))
        g = g[g["metric"] == metric]
        cells = {}
        for finsta, h in g.groupby("finsta"):
            cells[bool(finsta)] = (h["value"].mean(), h["value"].std(ddof=1) if len(h) > 1 else 0.0, len(h))
        if not cells:
            continue
        fmt = {k: f"{m:.1f} ± {s:.1f}" if n > 1 else f"{m:.1f}" for k, (m, s, n) in cells.items()}
        delta = f"{cells[True][0] - cells[False][0]:+.1f}" if True in cells and False in cells else ""
        n = int(g["n_samples"].max()) if g["n_samples"].notna().any() else ""
        lines.append(f"| {task} | {g['task_type'].iloc[0]} | {mode} | {metric} | {fmt.get(False, '')} | "
                     f"{fmt.get(True, '')} | {delta} | {n} |")
    return "\n".join(lines)


def _demo(args: argparse.Namespace) -> int:
    from harness.commands._common import parse_seeds
    from harness.errors import HarnessError
    from harness.pipeline import SYNTH_EVAL_TASKS, Pipeline, PipelineError, default_workers, pipeline_size, run_pipeline
    from harness.store import load_frame
    from harness.tables import render_measured_tables, write_tables

    store = Path(args.store or ("results/runs/demo-quick" if args.quick else "results/runs/demo"))
    tasks = [t.strip() for t in args.tasks.split(",")] if args.tasks else list(SYNTH_EVAL_TASKS)
    overrides = ["preset=small", "run.progress=false", *args.overrides]
    workers = default_workers() if args.workers is None else args.workers
    if workers < 1:
        raise HarnessError(f"--workers must be >= 1, got {workers}")
    pipe = Pipeline(hosts=[args.host], eval_tasks=tasks, seeds=parse_seeds(args.seeds) or [1], overrides=overrides,
                    corpus_options={"quick": True} if args.quick else {},
                    eval_options={"quick": True} if args.quick else {}, store_root=store, executor=args.executor,
                    workers=workers)
    t0 = time.time()
    par = f", {workers} workers" if args.executor == "inline" and workers > 1 else ""
    print(f"demo: host={args.host} tasks={','.join(tasks)} seeds={list(pipe.seeds)} store={store}"
          f"{' (quick)' if args.quick else ''}: {pipeline_size(pipe)} runs{par}", flush=True)
    try:
        results = run_pipeline(pipe, echo=lambda line: print(line, flush=True))
    except PipelineError as err:  # a checkpoint stage failed: nothing to evaluate; say which run and its log
        print(f"failed: {err}\nRe-running the same command resumes (finished runs are skipped).", flush=True)
        return 1
    failed = [r for r in results if r.state == "failed"]
    frame = load_frame(store)
    print(f"\n# Demo: {args.host} vs Finsta-{args.host} on the synthetic benchmark "
          f"({time.time() - t0:.0f} s, {len(results)} evaluation runs, {len(failed)} failed)\n")
    print("Host = pre-trained + step-matched control training; Finsta-host = pre-trained + Finsta post-training "
          "(stage 1 + 2), Finsta removed. Headline metric per task, test split:\n")
    print(summary_table(frame, args.host))
    tables = render_measured_tables(frame[frame["host"] == args.host], "md")
    write_tables(tables, store / "tables", "md")
    print(f"\nFull paper-style tables: {store / 'tables'}/ (or python -m harness tables --store {store})")
    for r in failed:
        print(f"failed: {r.run_id}: {r.error} (log: {r.run_dir}/log.txt)")
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="host vs Finsta-host on the embedded synthetic benchmark (CPU, minutes)",
                       description="Pre-train the tiny host, post-train it with Finsta (stage 1 then 2), evaluate host "
                                   "and Finsta-host in fine-tune and zero-shot settings on the synthetic tasks, and "
                                   "print a paper-style table with deltas. Re-running resumes (finished runs are "
                                   "skipped).")
    p.add_argument("--quick", action="store_true", help="small splits and few steps (a few minutes)")
    p.add_argument("--host", default="tiny", help="tiny (T/V/C), tiny_dual (no cross encoder) or tiny_cross")
    p.add_argument("--tasks", default=None, help="comma-separated synthetic tasks (default: all seven)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default 1)")
    p.add_argument("--store", default=None, help="results root (default results/runs/demo[-quick])")
    p.add_argument("--executor", default="inline", choices=["inline", "debug", "local", "slurm"])
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="inline executor: run up to N independent runs at once, each in a worker process "
                        "(default: min(2, CPU cores); 1 = one after the other in this process)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for every run")
    p.set_defaults(func=_demo)
