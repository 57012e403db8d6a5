"""Measured runs in the paper's layouts: Tables 1-7 (task results), 8 (ablation grid), 9 (cost), plus
one table per sweep and per task type the paper has no table for.

Every cell is the mean over seeds with its sample standard deviation; Finsta rows carry their delta
to the same host without Finsta; the paper's value is shown in brackets where the paper has one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.tables.frame import PaperIndex, paper_lookup, prepare_frame
from harness.tables.grid import Grid
from harness.tables.grids import COST_METRICS, ablation_grid, cost_grid, results_grid, sweep_grids
from harness.tables.layouts import LAYOUTS, TableLayout
from harness.tables.render import render_grid

__all__ = ["COST_METRICS", "build_measured_grids", "render_measured_tables", "results_grid"]

_MODE_LABEL = {"finetune": "fine-tuned", "zeroshot": "zero-shot", "posttrain": "post-trained"}


def build_measured_grids(
    frame: pd.DataFrame, paper_dir: str | Path | None = None, all_metrics: bool = False
) -> dict[str, Grid]:
    """All tables the frame supports, as grids (see :func:`render_measured_tables`)."""
    df, dropped = prepare_frame(frame)
    paper = paper_lookup(paper_dir)
    grids: dict[str, Grid] = {}
    is_cost = df["mk"].isin(COST_METRICS) | (df["tt"] == "cost")
    main = df[(df["ablation"] == "") & (df["sweep"] == "") & ~is_cost]
    claimed = pd.Series(False, index=main.index)
    for lay in LAYOUTS.values():
        if lay.kind != "results":
            continue
        sel = (main["mode"] == lay.mode) & main["tt"].isin(lay.task_types) & ~claimed
        claimed |= sel
        if sel.any():
            grids[lay.name] = _layout_grid(main[sel], lay, paper, all_metrics)
    rest = main[~claimed]
    for (mode, tt), g in rest.groupby(["mode", "tt"], sort=True):
        name = f"extra_{mode or 'unknown'}_{tt or 'unknown'}"
        cap = f"Measured {tt.replace('_', ' ')} results ({_MODE_LABEL.get(mode, mode)}; no paper table)."
        grids[name] = results_grid(g, name, cap, paper, None, mode, [], [tt], all_metrics)
    if (df["ablation"] != "").any():
        grids["table08"] = ablation_grid(df[(df["sweep"] == "") & ~is_cost], LAYOUTS["table08"], paper)
    if is_cost.any():
        grids["table09"] = cost_grid(
            df[is_cost & (df["ablation"] == "") & (df["sweep"] == "")], LAYOUTS["table09"], paper
        )
    grids.update(sweep_grids(df[(df["sweep"] != "") & ~is_cost], paper, all_metrics))
    if dropped:
        for g in grids.values():
            g.notes.append(f"Left out: {dropped} unfinished run(s) (failed, running, ...).")
    failed = _failed_note(df)
    if failed:
        for g in grids.values():
            g.notes.append(failed)
    return grids


def _failed_note(df: pd.DataFrame) -> str:
    """One note naming the evaluations scored on fewer samples than their split has (``n_failed > 0``)."""
    bad = df[pd.to_numeric(df["n_failed"], errors="coerce").fillna(0) > 0]
    if bad.empty:
        return ""
    runs = bad.drop_duplicates(["run_id", "mode", "split"]) if "run_id" in bad else bad
    parts = [f"{r.host} {r.task or r.ds} seed {r.seed}: {int(r.n_failed)} of {int(r.n_samples)} failed"
             for r in runs.itertuples()]
    return ("Scored on fewer samples than the split has (unreadable videos / failed predictions): "
            + "; ".join(parts[:8]) + (f"; and {len(parts) - 8} more" if len(parts) > 8 else "") + ".")


def _layout_grid(sub: pd.DataFrame, lay: TableLayout, paper: PaperIndex, all_metrics: bool) -> Grid:
    spec = [(c.task_type, c.dataset_key, c.metric_key) for c in lay.columns]
    cap = f"Table {lay.number} (measured): {lay.title}."
    return results_grid(
        sub, lay.name, cap, paper, lay.number, lay.mode, spec, list(lay.task_types), all_metrics
    )


def render_measured_tables(
    frame: pd.DataFrame, fmt: str = "md", paper_dir: str | Path | None = None, all_metrics: bool = False
) -> dict[str, str]:
    """Render measured runs in the paper's layouts.

    Args:
        frame: tidy runs frame (columns :data:`harness.tables.frame.COLUMNS`; at least
            :data:`~harness.tables.frame.CORE_COLUMNS`), one row per (run, metric), values in the
            paper's units.
        fmt: ``"md"``, ``"latex"`` or ``"csv"``.
        paper_dir: ``results/paper``, to show the paper's value beside each measured one (None: not shown).
        all_metrics: show every metric measured on a dataset, not only the paper's.

    Returns:
        ``{"table01": text, ..., "table09": ..., "sweep_<name>": ..., "extra_<mode>_<task>": ...}``
        containing only the tables for which the frame has runs.
    """
    return {k: render_grid(g, fmt) for k, g in build_measured_grids(frame, paper_dir, all_metrics).items()}
