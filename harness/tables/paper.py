"""Load the paper's reported numbers (``results/paper/*.csv``) and render them in the paper's layouts.

The CSVs hold only what the paper prints as data; the red improvement numbers are recomputed here
(``Finsta-X`` minus ``X``, or the percent change in Table 9) and the Table 8 averages too. The
printed ones live in ``results/paper/reported_deltas.csv`` for a test to compare against.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from harness.tables.grid import Cell, Column, Grid, Row, mark_best, with_section_headings
from harness.tables.layouts import LAYOUTS, TableLayout, layout_for
from harness.tables.names import host_label
from harness.tables.render import render_grid

__all__ = [
    "DEFAULT_PAPER_DIR",
    "build_paper_grid",
    "load_paper_frame",
    "load_paper_table",
    "render_paper_tables",
]

DEFAULT_PAPER_DIR = Path(__file__).resolve().parents[2] / "results" / "paper"
REQUIRED = [
    "table",
    "section",
    "row_order",
    "method",
    "host",
    "finsta",
    "variant",
    "ablation",
    "col_order",
    "dataset",
    "dataset_key",
    "task_type",
    "metric",
    "metric_key",
    "higher_is_better",
    "setting",
    "value",
    "printed",
    "underlined",
    "note",
]
_BOOL = {"true": True, "false": False}

PAPER_NOTES: dict[str, list[str]] = {
    "table08": [
        "AVG = mean of the six columns, (x) = AVG minus the full model's AVG, both computed here. The "
        "paper prints 59.9 and 58.9 for the GTrm→GAT and R-GTrm→RGNN averages (truncated).",
        "HDVILA columns: Finsta-HDVILA; LFVILA columns: Finsta-LFVILA (L-Vid). The paper's DiDeMo "
        "R@1 of the full model (49.3) differs from Table 3 (41.3).",
    ],
    "table09": [
        "Raw: the host's pre-training; +Finsta: with Finsta post-training. (↑x%) = percent change, "
        "computed here."
    ],
}


def _bool(value: str, where: str) -> bool:
    try:
        return _BOOL[str(value).strip().lower()]
    except KeyError:
        raise ValueError(f"{where}: expected true/false, got {value!r}") from None


def load_paper_table(path: str | Path) -> pd.DataFrame:
    """Read and validate one ``tableNN.csv``; errors name the file, the line and the problem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"paper table {path} not found (the paper's numbers live in results/paper/)")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    values = []
    for i, rec in df.iterrows():
        where = f"{path}, line {i + 2} ({rec['method']!r}, {rec['dataset']} {rec['metric']})"
        v = rec["value"].strip()
        if v == "":
            if rec["printed"].strip() not in ("-", ""):
                raise ValueError(f"{where}: empty value but printed {rec['printed']!r}")
            values.append(float("nan"))
        else:
            try:
                values.append(float(v))
            except ValueError:
                raise ValueError(f"{where}: value {v!r} is not a number") from None
        for col in ("finsta", "underlined", "higher_is_better"):
            _bool(rec[col], f"{where}, column {col}")
    df["value"] = values
    for col in ("finsta", "underlined", "higher_is_better"):
        df[col] = df[col].str.lower().map(_BOOL)
    for col in ("table", "row_order", "col_order"):
        df[col] = df[col].astype(int)
    dup = df.duplicated(["table", "row_order", "col_order"], keep=False)
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        raise ValueError(f"{path}, line {i + 2}: duplicate (table, row_order, col_order)")
    return df


def load_paper_frame(
    paper_dir: str | Path | None = None, tables: Iterable[str | int] | None = None
) -> pd.DataFrame:
    """All result tables (not Table 10) of ``paper_dir`` as one tidy frame."""
    paper_dir = Path(paper_dir) if paper_dir is not None else DEFAULT_PAPER_DIR
    names = [layout_for(t).name for t in tables] if tables is not None else list(LAYOUTS)
    frames = [load_paper_table(paper_dir / f"{n}.csv") for n in names]
    return pd.concat(frames, ignore_index=True)


def _decimals(printed: str) -> int:
    m = re.search(r"\.(\d+)", printed)
    return len(m.group(1)) if m else (0 if re.search(r"\d", printed) else 1)


def _caption(layout: TableLayout, source: str) -> str:
    return f"Table {layout.number} ({source}): {layout.title}."


def _legend(layout: TableLayout, df: pd.DataFrame) -> str:
    parts = []
    if layout.mark_best:
        parts.append("bold = best per column")
    if layout.delta == "abs" and df["finsta"].any() and (~df["finsta"] & (df["host"] != "")).any():
        parts.append("(+x) = Finsta-X minus X, computed here")
    if df["underlined"].any():
        parts.append("underlined = previous state of the art, as marked in the paper")
    if df["value"].isna().any():
        parts.append("- = not reported")
    if (~df["higher_is_better"]).any():
        parts.append("↓ = lower is better")
    return "; ".join(parts) + "." if parts else ""


def build_paper_grid(layout: TableLayout, df: pd.DataFrame) -> Grid:
    """Fill ``layout`` with the paper's numbers (``df``: rows from :func:`load_paper_table`)."""
    df = df[df["table"] == layout.number]
    if df.empty:
        raise ValueError(f"no paper rows for table {layout.number}")
    if layout.kind == "cost":
        return _cost_grid(layout, df)
    cols = df.drop_duplicates("col_order").sort_values("col_order")
    columns = []
    for _, c in cols.iterrows():
        if layout.kind == "ablation":
            columns.append(
                Column(
                    host_label(c["host"]),
                    f"{c['dataset']} ({c['metric']})",
                    not c["higher_is_better"],
                    (c["col_order"],),
                )
            )
        else:
            columns.append(Column(c["dataset"], c["metric"], not c["higher_is_better"], (c["col_order"],)))
    cell_of = {(r.row_order, r.col_order): r for r in df.itertuples()}
    rows: list[Row] = []
    meta = df.drop_duplicates("row_order").sort_values("row_order")
    host_rows = {(r.host, r.col_order): r.value for r in df.itertuples() if r.host and not r.finsta}
    for _, m in meta.iterrows():
        cells = []
        for _, c in cols.iterrows():
            r = cell_of.get((m["row_order"], c["col_order"]))
            if r is None:
                cells.append(Cell(None))
                continue
            dec = _decimals(r.printed)
            cell = Cell(r.value, dec, underlined=bool(r.underlined))
            if layout.delta == "abs" and r.finsta and (r.host, r.col_order) in host_rows:
                cell.delta = round(r.value - host_rows[(r.host, r.col_order)], dec + 4)
            cells.append(cell)
        rows.append(Row(m["method"], cells, section=m["section"], key=(m["row_order"],)))
    if layout.row_average:
        columns.append(Column("", "AVG", False, ("avg",)))
        full = None
        for row in rows:
            vals = [c.value for c in row.cells if not c.missing]
            avg = sum(vals) / len(vals) if vals else None
            row.cells.append(Cell(avg, 1))
            if full is None:  # the first row is the full model
                full = avg
            elif avg is not None:
                row.cells[-1].delta = avg - full
    grid = Grid(
        layout.name,
        f"{_caption(layout, 'as reported in the paper')} {_legend(layout, df)}".strip(),
        columns,
        [],
        row_header="Method" if layout.kind != "sg" else "SG source",
        notes=list(PAPER_NOTES.get(layout.name, [])),
        section_headings=layout.section_headings,
    )
    grid.rows = with_section_headings(rows) if layout.section_headings else rows
    if layout.mark_best:
        mark_best(grid)
    return grid


def _cost_grid(layout: TableLayout, df: pd.DataFrame) -> Grid:
    """Table 9: rows are cost items, columns are (host, Raw / +Finsta), deltas in percent."""
    hosts = df.drop_duplicates("row_order").sort_values("row_order")
    columns = [
        Column(host_label(h["host"]), "+Finsta" if h["finsta"] else "Raw", True, (h["host"], h["finsta"]))
        for _, h in hosts.iterrows()
    ]
    rows = []
    for _, item in df.drop_duplicates("col_order").sort_values("col_order").iterrows():
        cells = []
        for col in columns:
            host, fin = col.key
            sel = df[(df["col_order"] == item["col_order"]) & (df["host"] == host) & (df["finsta"] == fin)]
            r = sel.iloc[0]
            cell = Cell(r["value"], _decimals(r["printed"]))
            if fin:
                raw = df[(df["col_order"] == item["col_order"]) & (df["host"] == host) & ~df["finsta"]]
                if len(raw):
                    cell.delta = (r["value"] / raw.iloc[0]["value"] - 1.0) * 100.0
                    cell.delta_kind = "rel"
            cells.append(cell)
        rows.append(Row(item["metric"] + " ↓", cells, key=(item["metric_key"],)))
    for c in columns:
        c.lower_is_better = False  # the arrow sits on the row labels
    return Grid(
        layout.name,
        f"{_caption(layout, 'as reported in the paper')} {_legend(layout, df)}".strip(),
        columns,
        rows,
        row_header="Item",
        notes=list(PAPER_NOTES.get(layout.name, [])),
    )


def render_paper_tables(
    paper_dir: str | Path | None = None, fmt: str = "md", tables: Iterable[str | int] | None = None
) -> dict[str, str]:
    """Render the paper's Tables 1-9, 12 and 14 from ``paper_dir`` (default ``results/paper``).

    Args:
        paper_dir: folder holding ``tableNN.csv``.
        fmt: ``"md"``, ``"latex"`` or ``"csv"``.
        tables: a subset by name (``"table03"``) or number (``3``); default all.

    Returns:
        ``{"table01": text, ...}`` in the paper's order.
    """
    names = [layout_for(t).name for t in tables] if tables is not None else list(LAYOUTS)
    df = load_paper_frame(paper_dir, names)
    return {n: render_grid(build_paper_grid(LAYOUTS[n], df), fmt) for n in names}
