"""``validate``: the planning and validation of ``run`` without running anything."""

from __future__ import annotations

import argparse

from harness.commands._common import add_plan_args, parse_seeds


def _validate(args: argparse.Namespace) -> int:
    from harness.plan import plan_runs
    from harness.store import RunStore

    runs = plan_runs(args.host, args.task, args.mode, seeds=parse_seeds(args.seeds), overrides=args.overrides,
                     experiment=args.config, preset=args.preset, store_root=args.store)
    for r in runs:
        state = RunStore(r.store_root).state(r.run_id) or "new"
        print(f"ok  {state:9s} {r.run_dir}")
    print(f"{len(runs)} run(s) valid")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="plan and validate runs without running them",
                       description="Same planning and checks as `run` (names, capability match, data files, "
                                   "checkpoints, overrides); prints the run folders and their current state.")
    add_plan_args(p)
    p.set_defaults(func=_validate)
