"""Paper-style tables and sweep figures, from the paper's reported numbers or from measured runs.

Public entry points:

* :func:`render_paper_tables` -- Tables 1-9, 12, 14 from ``results/paper/*.csv``;
* :func:`render_measured_tables` -- the same layouts from a tidy frame of measured runs;
* :func:`plot_sweep` -- a metric-vs-sweep-value figure (mean ± std over seeds);
* :func:`write_tables` -- atomic writes of rendered tables.
"""

from harness.tables.io import write_tables
from harness.tables.layouts import LAYOUTS, PAPER_TABLES, TableLayout, layout_for
from harness.tables.measured import render_measured_tables
from harness.tables.paper import load_paper_frame, render_paper_tables
from harness.tables.plots import plot_sweep

__all__ = [
    "LAYOUTS",
    "PAPER_TABLES",
    "TableLayout",
    "layout_for",
    "load_paper_frame",
    "plot_sweep",
    "render_measured_tables",
    "render_paper_tables",
    "write_tables",
]
