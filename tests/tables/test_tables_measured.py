"""Measured runs rendered in the paper's layouts (harness.tables.measured), sweeps and writing."""

from __future__ import annotations

import io
import statistics

import pandas as pd
import pytest

from harness.tables import plot_sweep, render_measured_tables, write_tables
from harness.tables.measured import build_measured_grids
from harness.tables.paper import DEFAULT_PAPER_DIR

PROTO = "8f uniform 224px"


def _row(
    host,
    fin,
    tt,
    ds,
    metric,
    value,
    seed,
    mode="finetune",
    ablation="",
    sweep="",
    sp="",
    sv="",
    status="done",
    n=200,
    task=None,
):
    return dict(
        run_id=f"{host}|{fin}|{tt}|{ds}|{seed}|{ablation}|{sweep}{sv}",
        host=host,
        finsta=fin,
        task=task or f"{ds}_{tt}",
        task_type=tt,
        dataset=ds,
        mode=mode,
        split="test",
        metric=metric,
        value=value,
        seed=seed,
        n_samples=n,
        protocol=PROTO,
        ablation=ablation,
        sweep=sweep,
        sweep_param=sp,
        sweep_value=sv,
        status=status,
    )


# value = base[host] + 4 * finsta + seed  ->  mean base + 4 * finsta + 1, std 1.0 over seeds 0..2
BASE = {"hdvila": 30.0, "clover": 40.0}


@pytest.fixture()
def frame() -> pd.DataFrame:
    rows = []
    for host, base in BASE.items():
        for fin in (False, True):
            for seed in range(3):
                v = base + 4 * fin + seed
                rows.append(_row(host, fin, "retrieval", "DiDeMo", "R@1", v, seed))
                rows.append(_row(host, fin, "retrieval", "DiDeMo", "MdR", 20 - v / 10, seed))
                rows.append(
                    _row(host, fin, "retrieval", "synth_ret", "recall@1", v + 1, seed, task="synth_ret")
                )
                rows.append(_row(host, fin, "synth_grounding", "synth_grd", "miou", v / 2, seed))
                rows.append(_row(host, fin, "cost", "", "params_m", 300 + 87 * fin, seed, mode="posttrain"))
    rows.append(_row("hdvila", True, "retrieval", "DiDeMo", "R@1", 0.0, 3, status="failed"))
    # as the run store reports an unfinished run: one row, no metric, NaN value
    rows.append(_row("clover", True, "retrieval", "DiDeMo", "", float("nan"), 4, status="pending"))
    return pd.DataFrame(rows)


def test_task_table_mean_std_delta_best_paper(frame):
    grids = build_measured_grids(frame, paper_dir=DEFAULT_PAPER_DIR)
    g = grids["table03"]
    assert [c.group + " " + c.label for c in g.columns] == ["DiDeMo R@1", "synth_ret R@1"]
    assert [r.label for r in g.rows] == ["HDVILA", "Finsta-HDVILA", "Clover", "Finsta-Clover"]
    fh = g.rows[1].cells[0]
    assert fh.value == pytest.approx(35.0) and fh.std == pytest.approx(statistics.stdev([34, 35, 36]))
    assert fh.n == 3 and fh.delta == pytest.approx(4.0)
    assert fh.paper == pytest.approx(41.3)  # Table 3, Finsta-HDVILA, DiDeMo R@1
    assert g.rows[0].cells[0].delta is None
    assert [r.cells[0].best for r in g.rows] == [False, False, False, True]
    assert g.rows[2].cells[1].paper is None  # synthetic dataset: no paper number
    assert all(r.extra["Seeds"] == "3" for r in g.rows)  # failed / pending runs are left out
    md = render_measured_tables(frame, "md", paper_dir=DEFAULT_PAPER_DIR)["table03"]
    assert "| Finsta-HDVILA | 35.0 ± 1.0 (+4.0) [41.3] | 36.0 ± 1.0 (+4.0) | 3 |" in md
    assert "DiDeMo (test): n=200" in md and f"Video protocol: DiDeMo (test): {PROTO}" in md
    assert "Left out: 2 unfinished run(s)" in md


def test_unknown_task_type_gets_its_own_table_and_all_metrics_option(frame):
    out = render_measured_tables(frame, "md")
    assert "extra_finetune_synth_grounding" in out and "miou" in out["extra_finetune_synth_grounding"]
    assert "MdR" not in out["table03"]
    full = build_measured_grids(frame, all_metrics=True)["table03"]
    mdr = [c for c in full.columns if c.label == "MdR"]
    assert len(mdr) == 1 and mdr[0].lower_is_better and mdr[0].header == "MdR ↓"
    j = full.columns.index(mdr[0])
    assert [r.cells[j].best for r in full.rows] == [False, False, False, True]  # lowest MdR is best


def test_missing_columns_and_bad_values_raise(frame):
    with pytest.raises(ValueError, match="lacks columns.*'seed'"):
        render_measured_tables(frame.drop(columns=["seed"]), "md")
    bad = frame.astype({"value": object})
    bad.loc[3, "value"] = "n/a"
    with pytest.raises(ValueError, match="row 3 .*not a number"):
        render_measured_tables(bad, "md")


def test_cost_table_relative_delta(frame):
    g = build_measured_grids(frame, paper_dir=DEFAULT_PAPER_DIR)["table09"]
    assert [(c.group, c.label) for c in g.columns] == [
        ("HDVILA", "Raw"),
        ("HDVILA", "+Finsta"),
        ("Clover", "Raw"),
        ("Clover", "+Finsta"),
    ]
    cell = g.rows[0].cells[1]
    assert cell.value == pytest.approx(387) and cell.delta == pytest.approx(29.0) and cell.delta_kind == "rel"
    assert cell.paper == pytest.approx(397)
    assert g.rows[0].label == "Param. (M) ↓"


def _ablation_frame() -> pd.DataFrame:
    rows = []
    drops = {"": 0.0, "no_ptc": 6.0, "gtrm_to_gat": 1.5}
    for abl, d in drops.items():
        for seed in range(3):
            rows.append(
                _row("hdvila", True, "action_recognition", "k400", "top1", 80 - d + seed, seed, ablation=abl)
            )
            rows.append(
                _row("hdvila", True, "retrieval", "didemo", "r1", 40 - 2 * d + seed, seed, ablation=abl)
            )
            rows.append(
                _row("lfvila", True, "paragraph_retrieval", "activitynet", "r1", 60 - d, seed, ablation=abl)
            )
    rows.append(_row("hdvila", True, "action_recognition", "k400", "top1", 70.0, 0, ablation="my_switch"))
    return pd.DataFrame(rows)


def test_ablation_grid_average_and_delta():
    g = build_measured_grids(_ablation_frame(), paper_dir=DEFAULT_PAPER_DIR)["table08"]
    assert [c.label for c in g.columns] == ["K400 (Top-1)", "DiDeMo (R@1)", "ActivityNet (R@1)", "AVG"]
    rows = {r.key[0]: r for r in g.data_rows()}
    assert list(rows) == ["", "gtrm_to_gat", "no_ptc", "my_switch"]
    full_avg = (81 + 41 + 60) / 3
    assert rows[""].cells[-1].value == pytest.approx(full_avg) and rows[""].cells[-1].delta is None
    ptc = rows["no_ptc"].cells[-1]
    assert ptc.value == pytest.approx((75 + 29 + 54) / 3) and ptc.delta == pytest.approx(-(6 + 12 + 6) / 3)
    assert rows["gtrm_to_gat"].cells[-1].delta == pytest.approx(-(1.5 + 3 + 1.5) / 3)
    mine = rows["my_switch"].cells[-1]
    assert mine.mark == "†" and mine.delta == pytest.approx(70 - 81) and not mine.best
    assert rows[""].cells[-1].best
    assert rows["no_ptc"].cells[0].paper == pytest.approx(79.5)  # Table 8, w/o L_PTC, K400
    assert rows["no_ptc"].section == "Alignment Learning" and rows["my_switch"].section == "Other switches"
    md = render_measured_tables(_ablation_frame(), "md")["table08"]
    assert "| *Alignment Learning* |" in md and "| w/o L_PTC |" in md


@pytest.mark.parametrize("fmt", ["latex", "csv"])
def test_measured_latex_and_csv_parse(frame, fmt):
    out = render_measured_tables(frame, fmt, paper_dir=DEFAULT_PAPER_DIR)
    text = out["table03"]
    if fmt == "csv":
        t = pd.read_csv(io.StringIO(text))
        assert len(t) == 4 * 2
        r = t[(t["row"] == "Finsta-Clover") & (t["column_group"] == "DiDeMo")].iloc[0]
        assert r["value"] == pytest.approx(45.0) and r["std"] == pytest.approx(1.0) and r["n"] == 3
        assert r["delta"] == pytest.approx(4.0) and r["paper"] == pytest.approx(56.0) and bool(r["best"])
    else:
        assert "\\begin{tabular}{lrrr}" in text and text.count("\\textbf{") == 2
        assert "$\\pm$" in text and "\\label{tab:table03}" in text


def test_sweep_table_and_plot(tmp_path):
    rows = []
    for sp in ("gamma_d", "gamma_c"):
        for sv in (0.5, 0.6, 0.7):
            for seed in range(3):
                rows.append(
                    _row(
                        "hdvila",
                        True,
                        "qa_oe",
                        "msvd",
                        "acc",
                        50 + 10 * sv + seed,
                        seed,
                        sweep="thresholds",
                        sp=sp,
                        sv=sv,
                    )
                )
    for sv in (0.0, 0.1):
        rows.append(
            _row(
                "hdvila",
                True,
                "qa_oe",
                "msvd",
                "acc",
                53 - 10 * sv,
                0,
                sweep="sg_quality",
                sp="sg_node_missing_rate",
                sv=sv,
            )
        )
    frame = pd.DataFrame(rows)
    grids = build_measured_grids(frame, paper_dir=DEFAULT_PAPER_DIR)
    thr = grids["sweep_thresholds"]
    assert [r.label for r in thr.rows][:3] == [f"Finsta-HDVILA, gamma_c={v}" for v in (0.5, 0.6, 0.7)]
    sgq = grids["sweep_sg_quality"]
    assert sgq.rows[1].cells[0].paper == pytest.approx(51.5)  # Table 12, node missing rate 10%, MSVD
    png = plot_sweep(frame, "thresholds", tmp_path / "fig10.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="sweeps in the frame: \\['sg_quality', 'thresholds'\\]"):
        plot_sweep(frame, "nope", tmp_path / "x.png")


def test_write_tables_atomic(tmp_path, frame):
    out = render_measured_tables(frame, "md")
    paths = write_tables(out, tmp_path / "tables", "md")
    assert sorted(p.name for p in paths) == sorted(f"{k}.md" for k in out)
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == sorted(f"{k}.md" for k in out)
    assert paths[0].read_text() == out[paths[0].stem]
    with pytest.raises(ValueError, match="plain file name"):
        write_tables({"../x": "y"}, tmp_path, "md")
    with pytest.raises(ValueError, match="unknown table format"):
        write_tables(out, tmp_path, "html")


# -- values the tables used to hide (issue 15) --------------------------------------------------------------
def test_nan_metric_keeps_its_column_and_inf_is_never_best():
    rows = [_row("clip4clip", False, "retrieval", "msrvtt", "R@1", 40.0, 1),
            _row("clip4clip", True, "retrieval", "msrvtt", "R@1", float("inf"), 1),
            _row("clip4clip", False, "retrieval", "msrvtt", "R@5", float("nan"), 1),
            _row("clip4clip", True, "retrieval", "msrvtt", "R@5", float("nan"), 1)]
    grids = build_measured_grids(pd.DataFrame(rows))
    grid = next(iter(grids.values()))
    labels = [c.label for c in grid.columns]
    assert any("R@5" in lab for lab in labels), labels  # the NaN metric's column is still there
    j = next(i for i, c in enumerate(grid.columns) if "R@1" in c.label)
    best = [r.label for r in grid.data_rows() if r.cells[j].best]
    assert best == ["CLIP4Clip"], best  # 40.0 is best; the diverged (inf) Finsta row is not


def test_failed_samples_are_noted_under_the_tables():
    rows = [dict(_row("clip4clip", False, "retrieval", "msrvtt", "R@1", 40.0, 1), n_failed=3, n_samples=100)]
    text = render_measured_tables(pd.DataFrame(rows), "md")
    assert any("3 of 100 failed" in t for t in text.values())


def test_tables_command_on_a_store_of_unfinished_runs(tmp_path, capsys):
    from harness.cli import main
    from harness.store import RunStore

    s = RunStore(tmp_path)
    for rid, state in (("a", "running"), ("b", "failed")):
        s.write_json(rid, "spec.json", {"host": "h", "task": "t", "mode": "finetune", "seed": 1})
        s.set_status(rid, state, pid=None)
    assert main(["tables", "--store", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no finished runs" in err and "1 failed" in err
