"""Render a :class:`~harness.tables.grid.Grid` as Markdown, LaTeX (booktabs) or long-form CSV."""

from __future__ import annotations

import csv
import io
import math

from harness.tables.grid import Cell, Grid

__all__ = ["FORMATS", "render_grid", "to_csv", "to_latex", "to_markdown"]

FORMATS = ("md", "latex", "csv")


def _md_cell(c: Cell) -> str:
    num = c.number()
    if c.underlined and not c.missing:
        num = f"<u>{num}</u>"
    if c.best and not c.missing:
        num = f"**{num}**"
    return f"{num}{c.mark}{c.spread()}{c.delta_text()}{c.extras()}"


def to_markdown(grid: Grid) -> str:
    """GitHub-flavoured Markdown: caption, one header row (``group label``), rows, notes."""
    heads = [grid.row_header] + [f"{c.group} {c.header}".strip() for c in grid.columns] + grid.extra_headers
    lines = [
        f"**{grid.caption}**",
        "",
        "| " + " | ".join(heads) + " |",
        "|" + "|".join([":---"] + ["---:"] * (len(heads) - 1)) + "|",
    ]
    for r in grid.rows:
        if r.heading:
            lines.append("| " + " | ".join([f"*{r.label}*"] + [""] * (len(heads) - 1)) + " |")
            continue
        cells = [r.label] + [_md_cell(c) for c in r.cells] + [r.extra.get(h, "") for h in grid.extra_headers]
        lines.append("| " + " | ".join(cells) + " |")
    if grid.notes:
        lines.append("")
        lines.extend(f"- {n}" for n in grid.notes)
    return "\n".join(lines) + "\n"


_LATEX_SUBS = [
    ("\\", r"\textbackslash{}"),
    ("&", r"\&"),
    ("%", r"\%"),
    ("#", r"\#"),
    ("_", r"\_"),
    ("{", r"\{"),
    ("}", r"\}"),
    ("~", r"\textasciitilde{}"),
    ("^", r"\textasciicircum{}"),
    ("$", r"\$"),
    ("±", r"$\pm$"),
    ("↑", r"$\uparrow$"),
    ("↓", r"$\downarrow$"),
    ("→", r"$\rightarrow$"),
    ("†", r"$^\dagger$"),
    ("–", "--"),
    ("·", r"$\cdot$"),
]


def latex_escape(text: str) -> str:
    out = []
    for ch in str(text):
        for a, b in _LATEX_SUBS:
            if ch == a:
                out.append(b)
                break
        else:
            out.append(ch)
    return "".join(out)


def _tex_cell(c: Cell) -> str:
    num = latex_escape(c.number())
    if c.underlined and not c.missing:
        num = rf"\underline{{{num}}}"
    if c.best and not c.missing:
        num = rf"\textbf{{{num}}}"
    tail = latex_escape(c.mark + c.spread())
    delta = c.delta_text().strip()
    if delta:
        tail += rf" {{\scriptsize {latex_escape(delta)}}}"
    extras = c.extras().strip()
    if extras:
        tail += rf" {{\scriptsize {latex_escape(extras)}}}"
    return num + tail


def to_latex(grid: Grid) -> str:
    """A ``table`` environment with a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``)."""
    ncol = 1 + len(grid.columns) + len(grid.extra_headers)
    out = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(grid.caption)}}}",
        rf"\label{{tab:{grid.name}}}",
        r"\begin{tabular}{l" + "r" * (ncol - 1) + "}",
        r"\toprule",
    ]
    groups: list[tuple[str, int, int]] = []  # (group, first col index (1-based in tabular), span)
    for j, c in enumerate(grid.columns):
        if groups and groups[-1][0] == c.group:
            g, s, n = groups[-1]
            groups[-1] = (g, s, n + 1)
        else:
            groups.append((c.group, j + 2, 1))
    if any(g for g, _, _ in groups):
        cells, rules = [""], []
        for g, s, n in groups:
            cells.append(rf"\multicolumn{{{n}}}{{c}}{{{latex_escape(g)}}}" if n > 1 else latex_escape(g))
            if g:
                rules.append(rf"\cmidrule(lr){{{s}-{s + n - 1}}}")
        cells += [""] * len(grid.extra_headers)
        out.append(" & ".join(cells) + r" \\")
        out.append(" ".join(rules))
    heads = [grid.row_header] + [c.header for c in grid.columns] + grid.extra_headers
    out.append(" & ".join(latex_escape(h) for h in heads) + r" \\")
    out.append(r"\midrule")
    prev_section = None
    for r in grid.rows:
        if r.heading:
            if prev_section is not None:
                out.append(r"\midrule")
            out.append(rf"\multicolumn{{{ncol}}}{{l}}{{\textit{{{latex_escape(r.label)}}}}} \\")
            prev_section = r.section
            continue
        if not grid.section_headings and prev_section is not None and r.section != prev_section:
            out.append(r"\midrule")
        prev_section = r.section
        cells = [latex_escape(r.label)] + [_tex_cell(c) for c in r.cells]
        cells += [latex_escape(r.extra.get(h, "")) for h in grid.extra_headers]
        out.append(" & ".join(cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    if grid.notes:
        out.append(r"\par\smallskip{\footnotesize " + r" \\ ".join(latex_escape(n) for n in grid.notes) + "}")
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


CSV_FIELDS = [
    "table",
    "row_order",
    "section",
    "row",
    "column_group",
    "column",
    "value",
    "std",
    "n",
    "delta",
    "delta_kind",
    "paper",
    "best",
    "text",
]


def _num(x: float | None) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else repr(float(x))


def to_csv(grid: Grid) -> str:
    """Long form: one line per (row, column) cell, with the rendered text in ``text``."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for i, r in enumerate(grid.data_rows(), start=1):
        for col, c in zip(grid.columns, r.cells):
            w.writerow(
                dict(
                    table=grid.name,
                    row_order=i,
                    section=r.section,
                    row=r.label,
                    column_group=col.group,
                    column=col.label,
                    value=_num(None if c.missing else c.value),
                    std=_num(c.std),
                    n="" if c.n is None else c.n,
                    delta=_num(c.delta),
                    delta_kind=c.delta_kind if c.delta is not None else "",
                    paper=_num(c.paper),
                    best=str(c.best).lower(),
                    text=_md_cell(c).replace("**", ""),
                )
            )
    return buf.getvalue()


def render_grid(grid: Grid, fmt: str) -> str:
    """Dispatch on ``fmt`` (``"md"``, ``"latex"`` or ``"csv"``)."""
    if fmt in ("md", "markdown"):
        return to_markdown(grid)
    if fmt in ("latex", "tex"):
        return to_latex(grid)
    if fmt == "csv":
        return to_csv(grid)
    raise ValueError(f"unknown table format {fmt!r}; choose one of {', '.join(FORMATS)}")
