"""The paper's transcribed numbers and their rendering (results/paper, harness.tables.paper)."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from harness.tables import LAYOUTS, render_paper_tables
from harness.tables.paper import DEFAULT_PAPER_DIR, build_paper_grid, load_paper_frame, load_paper_table

GOLDEN = Path(__file__).parent / "golden"
HOSTS = {
    "univl",
    "violet",
    "videoclip",
    "clip4clip",
    "mcq",
    "hdvila",
    "clover",
    "lfvila",
    "allinone",
    "internvideo",
    "videollama",
    "videochatgpt",
    "videollava",
}
# Rows per table (methods), and cells per table, as printed in the paper.
EXPECTED_ROWS = {1: 17, 2: 17, 3: 23, 4: 19, 5: 12, 6: 12, 7: 19, 8: 11, 9: 4, 12: 5, 14: 3}
EXPECTED_CELLS = {1: 68, 2: 68, 3: 92, 4: 76, 5: 48, 6: 24, 7: 76, 8: 66, 9: 20, 12: 20, 14: 12}


@pytest.fixture(scope="module")
def paper() -> pd.DataFrame:
    return load_paper_frame(DEFAULT_PAPER_DIR)


@pytest.fixture(scope="module")
def grids(paper):
    return {lay.number: build_paper_grid(lay, paper) for lay in LAYOUTS.values()}


def test_golden_table01_markdown():
    assert (
        render_paper_tables(DEFAULT_PAPER_DIR, "md", tables=[1])["table01"]
        == (GOLDEN / "table01.md").read_text()
    )


@pytest.mark.parametrize("number", sorted(EXPECTED_ROWS))
def test_transcription_shape(paper, number):
    t = paper[paper["table"] == number]
    assert t["row_order"].nunique() == EXPECTED_ROWS[number]
    assert len(t) == EXPECTED_CELLS[number]
    assert set(t["host"]) - {""} <= HOSTS
    fin = t[t["finsta"]]
    assert (fin["host"] != "").all(), "every Finsta row names its host"
    if number != 9:
        vals = t["value"].dropna()
        assert ((vals >= 0) & (vals <= 100)).all(), "percent metrics lie in [0, 100]"


def test_layout_columns_match_csv(paper):
    for lay in LAYOUTS.values():
        t = paper[paper["table"] == lay.number].drop_duplicates("col_order").sort_values("col_order")
        got = [
            (r.dataset_key, r.task_type, r.metric_key, r.host if lay.kind == "ablation" else "")
            for r in t.itertuples()
        ]
        assert got == [(c.dataset_key, c.task_type, c.metric_key, c.host) for c in lay.columns], lay.name


def test_table10_catalogue():
    t = pd.read_csv(DEFAULT_PAPER_DIR / "table10.csv", keep_default_na=False)
    assert set(t["host"]) == HOSTS and len(t) == 13 * 5
    flags = t[t["metric"].isin(["T", "V", "C"])].pivot(index="host", columns="metric", values="value")
    assert flags.loc["allinone"].tolist() == [1, 0, 0]  # C, T, V
    assert flags.loc["videoclip", "C"] == 0 and flags.loc["clip4clip", "C"] == 0
    params = t[t["metric_key"] == "params"].set_index("host")["value"]
    assert params["hdvila"] == 310 and params["internvideo"] == 1300 and params["clip4clip"] == 86


def _grid_value(grids, rec) -> float:
    """The renderer's computed number for one printed red/derived number of reported_deltas.csv."""
    g = grids[int(rec.table)]
    if rec.kind == "rel_pct_vs_host":
        row = next(r for r in g.rows if r.key == (rec.metric_key,))
        j = next(i for i, c in enumerate(g.columns) if c.key == (rec.host, True))
        return row.cells[j].delta
    row = next(r for r in g.data_rows() if r.key == (int(rec.row_order),))
    if rec.kind in ("row_average", "avg_diff_vs_full"):
        cell = row.cells[-1]
        return cell.value if rec.kind == "row_average" else cell.delta
    lay = LAYOUTS[g.name]
    j = next(
        i
        for i, c in enumerate(lay.columns)
        if (c.dataset_key, c.task_type, c.metric_key) == (rec.dataset_key, rec.task_type, rec.metric_key)
    )
    return row.cells[j].delta


def test_computed_deltas_equal_reported(grids):
    """Every red number of the paper is recomputed from the data to its printed precision.

    Rows noted as "paper inconsistency" are off in the paper itself; they must still be within one unit
    of the last printed digit, and must really be off (so the list of exceptions stays exact).
    """
    rep = pd.read_csv(DEFAULT_PAPER_DIR / "reported_deltas.csv", keep_default_na=False)
    assert len(rep) == 197
    for rec in rep.itertuples():
        got = _grid_value(grids, rec)
        assert got is not None and not math.isnan(got), rec
        err = abs(got - float(rec.reported))
        half = 0.5 * 10 ** -int(rec.decimals) + 1e-9
        if rec.note.startswith("paper inconsistency"):
            assert half < err <= 2 * half, (rec.table, rec.method, rec.metric, got, rec.reported)
        else:
            assert err <= half, (rec.table, rec.method, rec.metric, got, rec.reported)


@pytest.mark.parametrize("fmt", ["md", "latex", "csv"])
def test_all_tables_render(fmt):
    out = render_paper_tables(DEFAULT_PAPER_DIR, fmt)
    assert list(out) == list(LAYOUTS)
    assert all(text.endswith("\n") for text in out.values())


def test_csv_output_parses(grids):
    out = render_paper_tables(DEFAULT_PAPER_DIR, "csv", tables=[3, 9])
    t3 = pd.read_csv(io.StringIO(out["table03"]), keep_default_na=False)
    assert len(t3) == 92
    hd = t3[(t3["row"] == "Finsta-HDVILA") & (t3["column_group"] == "DiDeMo") & (t3["column"] == "R@5")].iloc[
        0
    ]
    assert float(hd["value"]) == pytest.approx(70.9) and float(hd["delta"]) == pytest.approx(13.5)
    best = t3[t3["best"].astype(str).str.lower() == "true"]
    assert set(best["row"]) == {"Finsta-Video-LLaMA", "Finsta-Video-LLaVA"}
    t9 = pd.read_csv(io.StringIO(out["table09"]), keep_default_na=False)
    gf = t9[(t9["row"] == "GFLOPs ↓") & (t9["column_group"] == "HDVILA") & (t9["column"] == "+Finsta")].iloc[
        0
    ]
    assert float(gf["delta"]) == pytest.approx(100 * (2036 / 1750 - 1)) and gf["delta_kind"] == "rel"


def _latex_body_rows(tex: str) -> list[str]:
    body = tex.split("\\midrule", 1)[1].split("\\bottomrule", 1)[0]
    return [ln for ln in body.splitlines() if ln.strip().endswith("\\\\") and "\\multicolumn" not in ln]


@pytest.mark.parametrize("number", [1, 4, 8, 9, 12])
def test_latex_output_is_well_formed(grids, number):
    tex = render_paper_tables(DEFAULT_PAPER_DIR, "latex", tables=[number])[f"table{number:02d}"]
    assert tex.count("\\begin{tabular}") == tex.count("\\end{tabular}") == 1
    braces = re.sub(r"\\[{}]", "", tex)
    assert braces.count("{") == braces.count("}")
    ncol = 1 + len(grids[number].columns)
    rows = _latex_body_rows(tex)
    assert len(rows) == len(grids[number].data_rows())
    for ln in rows:
        assert len(re.findall(r"(?<!\\)&", ln)) == ncol - 1, ln
    assert "\\textbf{" in tex or number == 9


def test_bad_value_is_reported_with_file_and_line(tmp_path):
    src = (DEFAULT_PAPER_DIR / "table06.csv").read_text().splitlines()
    src[1] = src[1].replace(",74.3,74.3,", ",7x.3,74.3,", 1)
    bad = tmp_path / "table06.csv"
    bad.write_text("\n".join(src) + "\n")
    with pytest.raises(ValueError, match=r"table06\.csv, line 2 .*not a number"):
        load_paper_table(bad)
    with pytest.raises(FileNotFoundError, match="results/paper"):
        load_paper_table(tmp_path / "table99.csv")
