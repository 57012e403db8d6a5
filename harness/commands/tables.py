"""``tables``: the paper's tables from the results store (or the paper's own numbers with ``--paper``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import HarnessError

PAPER_DIR = Path(__file__).resolve().parents[2] / "results" / "paper"


def _store_notes(frame) -> list[str]:  # frame: pandas.DataFrame of harness.store.load_frame
    """One line per problem the tables must not hide: unfinished runs, evaluations with failed samples."""
    notes = []
    runs = frame.drop_duplicates("run_id")
    states = runs["status"].value_counts().to_dict()
    unfinished = {k: v for k, v in states.items() if k != "finished"}
    if unfinished:
        notes.append("not in the tables: " + ", ".join(f"{v} {k}" for k, v in sorted(unfinished.items()))
                     + " run(s) (python -m harness status)")
    bad = frame[(frame["status"] == "finished") & (frame["n_failed"].fillna(0) > 0)]
    for (run_id, mode, split), g in bad.groupby(["run_id", "mode", "split"], sort=True):
        r = g.iloc[0]
        notes.append(f"{run_id} ({mode}/{split}): {int(r.n_failed)} of {int(r.n_samples)} samples failed; its "
                     f"scores are on the {int(r.n_samples - r.n_failed)} that did not")
    return notes


def _tables(args: argparse.Namespace) -> int:
    from harness.tables import render_measured_tables, render_paper_tables, write_tables

    fmt = args.format
    names = [t.strip() for t in args.tables.split(",")] if args.tables else None
    paper_dir = Path(args.paper_dir)
    notes: list[str] = []
    if args.paper:
        if not paper_dir.is_dir():
            raise HarnessError(f"paper numbers not found: {paper_dir}")
        outputs = render_paper_tables(paper_dir, fmt, tables=names)
    else:
        from harness.store import load_frame

        frame = load_frame(args.store)
        if frame.empty:
            raise HarnessError(f"no runs under {args.store}; run some first (python -m harness run ...)")
        notes = _store_notes(frame)
        if not (frame["status"] == "finished").any():
            raise HarnessError(f"no finished runs under {args.store}: {notes[0]}")
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
    for note in notes:
        print(f"note: {note}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tables", help="render the paper's tables from the results store",
                       description="Pivot the runs of the results store into the paper's table layouts (mean and "
                                   "std over seeds, deltas against the host, paper numbers alongside); --paper renders "
                                   "the paper's reported numbers from results/paper/. Unfinished runs and "
                                   "evaluations with failed samples are listed as notes.")
    p.add_argument("--paper", action="store_true", help="render the paper's own reported numbers")
    p.add_argument("--format", default="md", choices=["md", "latex", "csv"])
    p.add_argument("--out", default=None, help="write one file per table into this folder")
    p.add_argument("--tables", default=None, help="comma-separated table names (e.g. table01,table08)")
    p.add_argument("--store", default="results/runs", help="results root (default results/runs)")
    p.add_argument("--paper-dir", default=str(PAPER_DIR), help="the paper's numbers (default results/paper)")
    p.set_defaults(func=_tables)
