"""Grid builders of measured runs: the results tables (Tables 1-7 and the extra per-task tables), Table 8
(ablation grid), Table 9 (cost) and one table per sweep. :mod:`harness.tables.measured` assembles them."""

from __future__ import annotations

import math
import re

import pandas as pd

from harness.tables.frame import PaperIndex, aggregate, row_label, row_sort_key, sweep_value_key
from harness.tables.grid import Cell, Column, Grid, Row, mark_best, measured_legend, with_section_headings
from harness.tables.layouts import (
    ABLATION_LABELS,
    ABLATION_ORDER,
    ABLATION_SECTIONS,
    PRIMARY_METRIC,
    TASK_DEFAULT_METRICS,
    TableLayout,
)
from harness.tables.names import dataset_label, host_label, is_lower_better, metric_label

__all__ = ["COST_METRICS", "ablation_grid", "cost_grid", "results_grid", "sweep_grids"]

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



_TASK_ORDER = list(PRIMARY_METRIC)


def _protocol_note(df: pd.DataFrame) -> list[str]:
    protos = sorted({p for p in df["protocol"] if p})
    return [f"Video protocol(s): {'; '.join(protos)}."] if protos else []


def ablation_grid(df: pd.DataFrame, layout: TableLayout, paper: PaperIndex) -> Grid:
    """Rows = ablation switches ("" = full model), columns = (host, dataset, primary metric), plus AVG.

    AVG is the mean of a row's cell means; its delta is the mean over the columns the row shares with
    the full model of (row - full). A row missing some columns gets its AVG marked ``†``.
    """
    hosts = sorted(set(df.loc[df["ablation"] != "", "host"]), key=lambda h: row_sort_key(h, True))
    sel = df[df["finsta"] & df["host"].isin(hosts)]
    # Only (host, mode, task, dataset, protocol) groups that some ablated run evaluates: the full model's
    # other results (main tables) would make the averages incomparable.
    ablated = {
        tuple(x) for x in sel.loc[sel["ablation"] != "", ["host", "mode", "tt", "ds", "protocol"]].to_numpy()
    }
    in_grid = [tuple(x) in ablated for x in sel[["host", "mode", "tt", "ds", "protocol"]].to_numpy()]
    sel = sel[in_grid]
    keys = ["host", "mode", "tt", "ds", "mk", "protocol", "ablation"]
    agg = aggregate(sel, keys)
    spec = [(c.host, c.task_type, c.dataset_key) for c in layout.columns]
    cols: list[tuple] = []
    for host in hosts:
        h = agg[agg["host"] == host]
        groups = sorted(
            {(r.mode, r.tt, r.ds, r.protocol) for r in h.itertuples()},
            key=lambda g: (
                g[0] != "finetune",
                spec.index((host, g[1], g[2])) if (host, g[1], g[2]) in spec else len(spec),
                _TASK_ORDER.index(g[1]) if g[1] in _TASK_ORDER else len(_TASK_ORDER),
                g,
            ),
        )
        for mode, tt, ds, proto in groups:
            have = sorted(set(h[(h["mode"] == mode) & (h["tt"] == tt) & (h["ds"] == ds)]["mk"]))
            mk = PRIMARY_METRIC.get(tt) if PRIMARY_METRIC.get(tt) in have else have[0]
            cols.append((host, mode, tt, ds, mk, proto))
    multi_proto = len({c[5] for c in cols}) > 1
    columns = []
    for host, mode, tt, ds, mk, proto in cols:
        group = host_label(host) + (f" ({mode})" if mode != "finetune" else "")
        label = f"{dataset_label(ds)} ({metric_label(mk)})" + (f" @{proto}" if multi_proto else "")
        columns.append(Column(group, label, is_lower_better(mk), (host, mode, tt, ds, mk, proto)))
    cell_of = {tuple(getattr(r, k) for k in keys): r for r in agg.itertuples()}
    present = set(agg["ablation"])
    order = [a for a in ABLATION_ORDER if a in present] + sorted(present - set(ABLATION_ORDER))
    rows, means = [], {}
    for abl in order:
        cells, vals = [], {}
        for col in cols:
            r = cell_of.get(col + (abl,))
            if r is None:
                cells.append(Cell(None))
                continue
            cell = Cell(r.mean, 1, std=r.std, n=int(r.n))
            host, mode, tt, ds, mk, _ = col
            if mode == "finetune":
                cell.paper, cell.paper_text = paper.get(8, "finetune", host, True, tt, ds, mk, ablation=abl)
            cells.append(cell)
            vals[col] = r.mean
        means[abl] = vals
        rows.append(Row(ABLATION_LABELS.get(abl, abl), cells, section=_section(abl), key=(abl,)))
    columns.append(Column("", "AVG", False, ("avg",)))
    partial = False
    for row, abl in zip(rows, order):
        vals = means[abl]
        avg = Cell(sum(vals.values()) / len(vals) if vals else None, 1)
        papers = [c.paper for c in row.cells if c.paper is not None]
        if papers and len(papers) == len(cols):
            avg.paper = sum(papers) / len(papers)
        if len(vals) < len(cols):
            avg.mark, partial = "†", True
        if abl != "" and "" in means:
            shared = [c for c in vals if c in means[""]]
            if shared:
                avg.delta = sum(vals[c] - means[""][c] for c in shared) / len(shared)
        row.cells.append(avg)
    rows = with_section_headings(rows)
    notes = ["AVG = mean of the row's cells; (x) = mean difference to the full model over shared columns."]
    if partial:
        notes.append("† = average over the columns this row has (some are missing).")
    cap = f"Table 8 (measured): {layout.title}."
    grid = Grid(
        layout.name,
        cap,
        columns,
        rows,
        row_header="Variant",
        notes=notes + _protocol_note(sel),
        section_headings=True,
    )
    mark_best(grid, list(range(len(cols))))
    complete = [r for r in grid.data_rows() if not r.cells[-1].mark and not r.cells[-1].missing]
    if complete:  # AVG: best among rows that have every column
        best = max(r.cells[-1].value for r in complete)
        for r in complete:
            r.cells[-1].best = r.cells[-1].value == best
    key = measured_legend(grid, "(x) = AVG minus the full model's AVG")
    grid.caption = f"{cap} {key}"
    return grid


def _section(ablation: str) -> str:
    if ablation == "":
        return ""
    return ABLATION_SECTIONS.get(ablation, "Other switches")


def _cost_decimals(v: float) -> int:
    """Two decimals, more for small values (CPU-sized runs: 0.002 M pairs) so they do not print as 0.00."""
    if abs(v) >= 100:
        return 0
    if v == 0 or abs(v) >= 0.1:
        return 2
    return min(6, 1 - math.floor(math.log10(abs(v))))


def cost_grid(df: pd.DataFrame, layout: TableLayout, paper: PaperIndex) -> Grid:
    """Rows = cost metrics, columns = (host, raw / +Finsta); Finsta cells carry the percent change."""
    agg = aggregate(df, ["host", "finsta", "mk"])
    col_ids = sorted({(r.host, r.finsta) for r in agg.itertuples()}, key=lambda x: row_sort_key(*x))
    columns = [Column(host_label(h), "+Finsta" if f else "Raw", False, (h, f)) for h, f in col_ids]
    spec = [c.metric_key for c in layout.columns]
    mks = [m for m in spec if m in set(agg["mk"])] + sorted(set(agg["mk"]) - set(spec))
    cell_of = {(r.host, r.finsta, r.mk): r for r in agg.itertuples()}
    rows = []
    for mk in mks:
        cells = []
        for host, fin in col_ids:
            r = cell_of.get((host, fin, mk))
            if r is None:
                cells.append(Cell(None))
                continue
            cell = Cell(r.mean, _cost_decimals(r.mean), std=r.std, n=int(r.n))
            raw = cell_of.get((host, False, mk)) if fin else None
            if raw is not None and raw.mean:
                cell.delta, cell.delta_kind = (r.mean / raw.mean - 1.0) * 100.0, "rel"
            cell.paper, cell.paper_text = paper.get(9, "", host, fin, "cost", "", mk)
            cells.append(cell)
        rows.append(Row(metric_label(mk) + (" ↓" if is_lower_better(mk) else ""), cells, key=(mk,)))
    cap = f"Table 9 (measured): {layout.title}."
    grid = Grid(layout.name, cap, columns, rows, row_header="Item", notes=_protocol_note(df))
    grid.caption = f"{cap} {measured_legend(grid)}"
    return grid


def sweep_grids(df: pd.DataFrame, paper: PaperIndex, all_metrics: bool) -> dict[str, Grid]:
    """One table per sweep name: rows = (host, Finsta, sweep parameter = value), columns as in Tables 1-7."""
    out = {}
    for sweep, g in df.groupby("sweep", sort=True):
        name = "sweep_" + re.sub(r"[^A-Za-z0-9_-]+", "_", sweep)
        modes = sorted(set(g["mode"]))
        mode = modes[0] if len(modes) == 1 else "finetune"

        def label(rid: tuple) -> str:
            host, fin, param, value = rid
            return f"{row_label(host, fin)}, {param or 'value'}={value}"

        cap = f"Sweep {sweep!r} (measured)."
        out[name] = results_grid(
            g,
            name,
            cap,
            paper,
            None,
            mode,
            [],
            _TASK_ORDER,
            all_metrics,
            row_keys=("sweep_param", "sweep_value"),
            row_label_fn=label,
        )
    return out
