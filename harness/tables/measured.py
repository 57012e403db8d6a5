"""Measured runs in the paper's layouts: Tables 1-7 (task results), 8 (ablation grid), 9 (cost), plus
one table per sweep and per task type the paper has no table for.

Every cell is the mean over seeds with its sample standard deviation; Finsta rows carry their delta
to the same host without Finsta; the paper's value is shown in brackets where the paper has one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.tables.frame import (
    PaperIndex,
    aggregate,
    paper_lookup,
    prepare_frame,
    row_label,
    row_sort_key,
    sweep_value_key,
)
from harness.tables.grid import Cell, Column, Grid, Row, mark_best, measured_legend
from harness.tables.layouts import LAYOUTS, TASK_DEFAULT_METRICS, TableLayout
from harness.tables.names import dataset_label, is_lower_better, metric_label
from harness.tables.render import render_grid

__all__ = ["COST_METRICS", "build_measured_grids", "render_measured_tables", "results_grid"]

COST_METRICS = {
    "params_m",
    "data_m",
    "gpu_hours_k",
    "gpu_hours",
    "gpu_mem_g",
    "gflops",
    "step_time_s",
    "throughput",
}
RESULT_KEYS = ["host", "finsta", "tt", "ds", "mk", "protocol"]
_MODE_LABEL = {"finetune": "fine-tuned", "zeroshot": "zero-shot", "posttrain": "post-trained"}


def _task_columns(
    agg: pd.DataFrame, spec_cols: list[tuple[str, str, str]], task_order: list[str], all_metrics: bool
) -> list[tuple[str, str, str, str]]:
    """Columns (tt, ds, mk, protocol) in paper order first; other datasets grouped by task type."""
    present = {(r.tt, r.ds, r.mk) for r in agg.itertuples()}
    protos: dict[tuple, list[str]] = {}
    for r in agg.itertuples():
        protos.setdefault((r.tt, r.ds, r.mk), [])
        if r.protocol not in protos[(r.tt, r.ds, r.mk)]:
            protos[(r.tt, r.ds, r.mk)].append(r.protocol)
    chosen: list[tuple[str, str, str]] = [c for c in spec_cols if c in present]
    pairs = sorted(
        {(tt, ds) for tt, ds, _ in present},
        key=lambda p: (task_order.index(p[0]) if p[0] in task_order else len(task_order), p),
    )
    for tt, ds in pairs:
        have = sorted(mk for t, d, mk in present if (t, d) == (tt, ds))
        known = [mk for t, d, mk in spec_cols if (t, d) == (tt, ds)]
        if all_metrics:
            wanted = known + [m for m in TASK_DEFAULT_METRICS.get(tt, ()) if m not in known]
            wanted += [m for m in have if m not in wanted]
        else:
            wanted = known or [m for m in TASK_DEFAULT_METRICS.get(tt, ()) if m in have] or have
        chosen += [(tt, ds, mk) for mk in wanted if mk in have and (tt, ds, mk) not in chosen]
    return [(tt, ds, mk, p) for tt, ds, mk in chosen for p in sorted(protos[(tt, ds, mk)])]


def _column(tt: str, ds: str, mk: str, proto: str, multi_proto: bool, multi_tt: bool) -> Column:
    group = dataset_label(ds)
    if multi_tt:
        group += {"qa_mc": " MC", "qa_oe": " OE"}.get(tt, f" ({tt})")
    if multi_proto:
        group += f" @{proto or '?'}"
    return Column(group, metric_label(mk), is_lower_better(mk), (tt, ds, mk, proto))


def _notes(sub: pd.DataFrame, agg: pd.DataFrame) -> list[str]:
    notes = []
    samples, protos = [], []
    for (ds, split), g in sub.groupby(["ds", "split"], sort=True):
        counts = sorted({int(x) for x in g["n_samples"] if pd.notna(x)})
        name = dataset_label(ds) + (f" ({split})" if split else "")
        if counts:
            samples.append(
                f"{name}: n={counts[0]:,}" if len(counts) == 1 else f"{name}: n={counts[0]:,}–{counts[-1]:,}"
            )
        p = sorted({x for x in g["protocol"] if x})
        if p:
            protos.append(f"{name}: {', '.join(p)}")
    if samples:
        notes.append("Evaluated samples: " + "; ".join(samples) + ".")
    if protos:
        notes.append("Video protocol: " + "; ".join(protos) + ".")
    return notes


def _seeds_text(ns: list[int]) -> str:
    ns = sorted(set(ns))
    return "" if not ns else (str(ns[0]) if len(ns) == 1 else f"{ns[0]}–{ns[-1]}")


def results_grid(
    sub: pd.DataFrame,
    name: str,
    caption: str,
    paper: PaperIndex,
    table_no: int | None,
    mode: str,
    spec_cols: list[tuple[str, str, str]],
    task_order: list[str],
    all_metrics: bool = False,
    row_keys: tuple[str, ...] = (),
    row_label_fn=None,
) -> Grid:
    """A methods x (dataset, metric) grid from prepared rows ``sub`` (one mode, main runs only).

    ``row_keys`` adds grouping columns to the (host, finsta) row identity (used for sweep tables).
    """
    keys = RESULT_KEYS + list(row_keys)
    agg = aggregate(sub, keys)
    cols = _task_columns(agg, spec_cols, task_order, all_metrics)
    n_proto = {}
    for tt, ds, mk, p in cols:
        n_proto.setdefault((tt, ds, mk), set()).add(p)
    tts_per_ds = {}
    for tt, ds, _, _ in cols:
        tts_per_ds.setdefault(ds, set()).add(tt)
    columns = [
        _column(tt, ds, mk, p, len(n_proto[(tt, ds, mk)]) > 1, len(tts_per_ds[ds]) > 1)
        for tt, ds, mk, p in cols
    ]
    cell_of = {tuple(getattr(r, k) for k in keys): r for r in agg.itertuples()}
    row_ids = sorted(
        {(r.host, r.finsta) + tuple(getattr(r, k) for k in row_keys) for r in agg.itertuples()},
        key=lambda x: row_sort_key(x[0], x[1]) + tuple(sweep_value_key(e) for e in x[2:]),
    )
    rows = []
    for rid in row_ids:
        host, fin, extra = rid[0], rid[1], rid[2:]
        cells, ns = [], []
        for tt, ds, mk, p in cols:
            r = cell_of.get((host, fin, tt, ds, mk, p) + extra)
            if r is None:
                cells.append(Cell(None))
                continue
            cell = Cell(r.mean, 1, std=r.std, n=int(r.n))
            ns.append(int(r.n))
            base = cell_of.get((host, False, tt, ds, mk, p) + extra) if fin else None
            if base is not None:
                cell.delta = r.mean - base.mean
            sweep = dict(zip(row_keys, extra))
            for tno in [table_no] if table_no else [12, 14]:
                val, text = paper.get(
                    tno,
                    mode,
                    host,
                    fin,
                    tt,
                    ds,
                    mk,
                    sweep_param=sweep.get("sweep_param", ""),
                    sweep_value=sweep.get("sweep_value", ""),
                )
                if val is not None or text:
                    cell.paper, cell.paper_text = val, text
                    break
            cells.append(cell)
        top = max(ns) if ns else None
        for c in cells:
            c.show_n = c.n is not None and c.n != top
        label = row_label_fn(rid) if row_label_fn else row_label(host, fin)
        rows.append(Row(label, cells, section="", extra={"Seeds": _seeds_text(ns)}, key=rid))
    grid = Grid(name, caption, columns, rows, extra_headers=["Seeds"], notes=_notes(sub, agg))
    mark_best(grid)
    grid.caption = f"{caption} {measured_legend(grid)}"
    return grid


def build_measured_grids(
    frame: pd.DataFrame, paper_dir: str | Path | None = None, all_metrics: bool = False
) -> dict[str, Grid]:
    """All tables the frame supports, as grids (see :func:`render_measured_tables`)."""
    from harness.tables.measured_extra import ablation_grid, cost_grid, sweep_grids

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
    return grids


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
