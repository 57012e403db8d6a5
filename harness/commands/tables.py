"""``tables``: the paper's tables from the results store (or the paper's own numbers with ``--paper``)."""

from __future__ import annotations

import argparse
from pathlib import Path

PAPER_DIR = Path(__file__).resolve().parents[2] / "results" / "paper"


def _tables(args: argparse.Namespace) -> int:
    from harness.errors import HarnessError
    from harness.tables import render_measured_tables, render_paper_tables, write_tables

    fmt = args.format
    names = [t.strip() for t in args.tables.split(",")] if args.tables else None
    paper_dir = Path(args.paper_dir)
    if args.paper:
        if not paper_dir.is_dir():
            raise HarnessError(f"paper numbers not found: {paper_dir}")
        outputs = render_paper_tables(paper_dir, fmt, tables=names)
    else:
        from harness.store import load_frame

        frame = load_frame(args.store)
        if frame.empty:
            raise HarnessError(f"no runs under {args.store}; run some first (python -m harness run ...)")
        outputs = render_measured_tables(frame, fmt, paper_dir=paper_dir if paper_dir.is_dir() else None)
        if names:
            outputs = {k: v for k, v in outputs.items() if k in names}
    if args.out:
        write_tables(outputs, Path(args.out), fmt)
        print(f"{len(outputs)} table(s) written to {args.out}")
    else:
        for name, text in outputs.items():
            print(f"\n## {name}\n" if fmt == "md" else f"\n% {name}\n" if fmt == "latex" else f"\n# {name}\n")
            print(text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tables", help="render the paper's tables from the results store",
                       description="Pivot the runs of the results store into the paper's table layouts (mean and "
                                   "std over seeds, deltas against the host, paper numbers alongside); --paper renders "
                                   "the paper's reported numbers from results/paper/.")
    p.add_argument("--paper", action="store_true", help="render the paper's own reported numbers")
    p.add_argument("--format", default="md", choices=["md", "latex", "csv"])
    p.add_argument("--out", default=None, help="write one file per table into this folder")
    p.add_argument("--tables", default=None, help="comma-separated table names (e.g. table01,table08)")
    p.add_argument("--store", default="results/runs", help="results root (default results/runs)")
    p.add_argument("--paper-dir", default=str(PAPER_DIR), help="the paper's numbers (default results/paper)")
    p.set_defaults(func=_tables)
