"""Format-neutral table model shared by the paper and the measured renderers.

A :class:`Grid` is what a layout becomes once filled with numbers: header columns, rows of
:class:`Cell` objects (value, spread over seeds, delta to the host, the paper's number, best
flag) and notes printed under the table. :mod:`harness.tables.render` turns a grid into Markdown,
LaTeX or CSV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["Cell", "Column", "Grid", "Row", "mark_best", "fmt_number"]


def fmt_number(x: float, decimals: int) -> str:
    """``fmt_number(1750, 0) == "1,750"``; ``fmt_number(83.4, 1) == "83.4"``."""
    return f"{x:,.{decimals}f}" if abs(x) >= 1000 else f"{x:.{decimals}f}"


@dataclass
class Cell:
    """One number in a table.

    Attributes:
        value: the (mean) value, ``None`` when absent (printed ``-``).
        decimals: digits after the point.
        std: standard deviation over seeds (measured tables), shown as ``mean ± std``.
        n: number of seeds behind ``value``; printed when it differs from the row's count.
        delta: difference to the reference row (host, or full model for the ablation average).
        delta_kind: ``"abs"`` (same units) or ``"rel"`` (percent change, printed with an arrow).
        paper: the paper's reported value for the same row and column (measured tables).
        best: best in its column.
        underlined: the paper underlines it (existing state of the art).
        mark: a footnote mark appended to the number (e.g. ``"†"``).
    """

    value: float | None
    decimals: int = 1
    std: float | None = None
    n: int | None = None
    delta: float | None = None
    delta_kind: str = "abs"
    paper: float | None = None
    paper_text: str = ""
    best: bool = False
    underlined: bool = False
    mark: str = ""
    show_n: bool = False

    @property
    def missing(self) -> bool:
        return self.value is None or (isinstance(self.value, float) and math.isnan(self.value))

    def number(self) -> str:
        return "-" if self.missing else fmt_number(float(self.value), self.decimals)

    def spread(self) -> str:
        if self.missing or self.std is None or math.isnan(self.std):
            return ""
        return f" ± {fmt_number(self.std, self.decimals)}"

    def delta_text(self) -> str:
        if self.delta is None or math.isnan(self.delta) or self.missing:
            return ""
        if self.delta_kind == "rel":
            d = self.delta
            dec = 2 if 0 < abs(d) < 1 else 1
            return f" ({'↑' if d >= 0 else '↓'}{abs(d):.{dec}f}%)"
        return f" ({self.delta:+.{self.decimals}f})"

    def extras(self) -> str:
        out = ""
        if self.show_n and self.n is not None:
            out += f" [n={self.n}]"
        if self.paper_text:
            out += f" [{self.paper_text}]"
        elif self.paper is not None and not math.isnan(self.paper):
            out += f" [{fmt_number(self.paper, self.decimals)}]"
        return out


@dataclass
class Column:
    """A header column: ``group`` is the upper header (dataset or host), ``label`` the lower one."""

    group: str
    label: str
    lower_is_better: bool = False
    key: tuple = ()

    @property
    def header(self) -> str:
        return f"{self.label} ↓" if self.lower_is_better else self.label


@dataclass
class Row:
    label: str
    cells: list[Cell]
    section: str = ""
    heading: bool = False  # a section heading row (label only)
    extra: dict[str, str] = field(default_factory=dict)  # trailing text columns, e.g. {"Seeds": "3"}
    key: tuple = ()


@dataclass
class Grid:
    """A filled table: ``columns`` x ``rows``, a caption and notes printed under it."""

    name: str
    caption: str
    columns: list[Column]
    rows: list[Row]
    row_header: str = "Method"
    notes: list[str] = field(default_factory=list)
    section_headings: bool = False
    extra_headers: list[str] = field(default_factory=list)

    def data_rows(self) -> list[Row]:
        return [r for r in self.rows if not r.heading]


def with_section_headings(rows: list[Row]) -> list[Row]:
    """Insert a heading row before each run of rows that starts a new ``section``."""
    out, prev = [], ""
    for r in rows:
        if r.section and r.section != prev:
            out.append(Row(r.section, [], section=r.section, heading=True))
        prev = r.section
        out.append(r)
    return out


def mark_best(grid: Grid, columns: list[int] | None = None) -> None:
    """Flag the best cell(s) of each column (ties all flagged); lower-is-better columns take the minimum."""
    idx = range(len(grid.columns)) if columns is None else columns
    for j in idx:
        finite = [float(r.cells[j].value) for r in grid.data_rows()
                  if not r.cells[j].missing and math.isfinite(float(r.cells[j].value))]
        if not finite:  # an infinite value (a diverged run) is never "best"
            continue
        best = min(finite) if grid.columns[j].lower_is_better else max(finite)
        for r in grid.data_rows():
            c = r.cells[j]
            c.best = (not c.missing) and math.isfinite(float(c.value)) and math.isclose(
                float(c.value), best, rel_tol=0, abs_tol=1e-9)


def measured_legend(grid: Grid, delta_meaning: str = "(+x) = Finsta-X minus X on the means") -> str:
    """The caption's key for a measured grid, listing only the decorations the grid actually uses."""
    cells = [c for r in grid.data_rows() for c in r.cells]
    parts = ["mean ± std over seeds (sample std, shown from two seeds)"]
    if any(c.delta is not None for c in cells):
        rel = any(c.delta is not None and c.delta_kind == "rel" for c in cells)
        parts.append("(↑x%) = percent change of +Finsta over Raw" if rel else delta_meaning)
    if any(c.paper is not None or c.paper_text for c in cells):
        parts.append("[x] = value reported in the paper")
    if any(c.best for c in cells):
        parts.append("bold = best mean per column")
    if any(col.lower_is_better for col in grid.columns) or any(r.label.endswith(" ↓") for r in grid.rows):
        parts.append("↓ = lower is better")
    if any(c.show_n for c in cells):
        parts.append("[n=k] = seeds behind a cell that has fewer than its row")
    return "; ".join(parts) + "."
