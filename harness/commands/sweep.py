"""``sweep NAME``: a named grid (``harness/sweeps/NAME.yaml``) planned, validated and submitted as job arrays."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.commands._common import add_submit_args, parse_seeds, summarize


def _sweep(args: argparse.Namespace) -> int:
    from harness.launch import submit
    from harness.sweeps import load_sweep, plan_sweep

    if load_sweep(args.name).get("kind") == "pipeline":  # e.g. synth_claims: a study of whole pipelines + report
        from harness.claims import run_from_args

        return run_from_args(args)
    runs = plan_sweep(args.name, seeds=parse_seeds(args.seeds), overrides=args.overrides, store_root=args.store)
    print(f"sweep {args.name}: {len(runs)} run(s) under {runs[0].store_root if runs else '-'}")
    if args.dry_run:
        for r in runs:
            label = r.ablation or (f"{r.sweep_param}={r.sweep_value}" if r.sweep_param else "")
            print(f"{r.mode:9s} {r.host:12s} {r.task:16s} s{r.seed} {label:24s} {r.run_id}")
        return 0
    results = submit(runs, args.executor, force=args.force, wait=False if args.no_wait else None)
    status = summarize(results)
    if args.plot and runs:
        from harness.store import load_frame
        from harness.tables import plot_sweep

        out = Path(args.plot)
        plot_sweep(load_frame(runs[0].store_root), args.name, out)
        print(f"figure: {out}")
    return status


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run a named grid (Table 8, Figs 10-12, Table 12, synthetic claims)",
                       description="Plan every run of a named sweep (harness/sweeps/NAME.yaml or a path), validate "
                                   "them all, then submit them as job arrays; finished runs are skipped, failed ones "
                                   "retried. `python -m harness list sweeps` shows the names.")
    p.add_argument("name", help="sweep name or YAML path")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: the sweep's or the config's)")
    p.add_argument("--store", default=None, help="results root")
    p.add_argument("--dry-run", action="store_true", help="plan and list the runs only")
    p.add_argument("--plot", default=None, metavar="PNG", help="after the runs, plot metric vs sweep value")
    p.add_argument("--report-only", action="store_true",
                   help="pipeline studies (synth_claims): regenerate the report from the store, run nothing")
    p.add_argument("--report", default=None, metavar="MD", help="pipeline studies: report path (default: the study's)")
    add_submit_args(p)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for every run")
    p.set_defaults(func=_sweep)
