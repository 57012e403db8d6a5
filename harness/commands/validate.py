"""``validate``: the planning and validation of ``run`` without running anything."""

from __future__ import annotations

import argparse

from harness.commands._common import add_plan_args, plan_from_args


def _validate(args: argparse.Namespace) -> int:
    from harness.store import RunStore

    runs = plan_from_args(args)
    for r in runs:
        state, _ = RunStore(r.store_root).effective_state(r.run_id)
        print(f"ok  {state:9s} {r.run_dir}")
    print(f"{len(runs)} run(s) valid")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="plan and validate runs without running them",
                       description="Same planning and checks as `run` (names, capability match, data files, "
                                   "checkpoints, scene graphs of post-training runs, overrides, value ranges); "
                                   "prints the run folders and their current state.")
    add_plan_args(p)
    p.set_defaults(func=_validate)
