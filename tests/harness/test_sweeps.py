"""Named sweeps: every shipped definition loads; planning labels runs for the tables; grids skip/retry;
``tables`` renders the store and the paper's numbers."""

from __future__ import annotations

import pytest

from harness.cli import main
from harness.errors import ConfigError
from harness.launch import submit
from harness.store import load_frame
from harness.sweeps import list_sweeps, load_sweep, plan_sweep

SHIPPED = ["fig10_thresholds", "fig11_order", "fig12_align", "synth_claims", "table12_sg_quality",
           "table8_ablation"]


def test_shipped_sweeps_load():
    assert set(SHIPPED) <= set(list_sweeps())
    t8 = load_sweep("table8_ablation")
    keys = [v["ablation"] for v in t8["variants"]]
    assert keys == ["", "no_temporal_coref", "no_adverbial_modifier", "no_xmodal_coref", "gtrm_to_gat",
                    "rgtrm_to_rgnn", "no_stgd", "no_osc", "osc_first_order", "no_ptc", "ptc_first_order"]
    assert load_sweep("table12_sg_quality")["axes"][0]["values"] == [0.0, 0.1, 0.3, 0.5]


@pytest.mark.parametrize("name", ["table8_ablation", "fig11_order", "fig12_align", "table12_sg_quality"])
def test_shipped_finsta_overrides_are_valid(name):
    """Every Finsta switch a sweep sets is a FinstaConfig field with an accepted value."""
    from harness.config import parse_overrides
    from harness.plan import validate_finsta_options

    sw = load_sweep(name)
    sets = [v.get("overrides") or [] for v in sw.get("variants") or []]
    sets += [[f"{a['key']}={v}"] for a in sw.get("axes") or [] for v in a["values"]]
    for ovr in sets:
        finsta = parse_overrides(ovr).get("finsta", {})
        validate_finsta_options(finsta, "small")


@pytest.fixture
def sweep_file(tmp_path):
    p = tmp_path / "mini.yaml"
    p.write_text("""
name: mini
mode: posttrain
overrides: [preset=small, run.progress=false, posttrain.then=zeroshot]
baseline: true
groups:
  - {hosts: [fake_host], tasks: [fake_mc]}
axes:
  - {param: rho_osc, key: finsta.rho_osc, values: [0.5, 0.9]}
""")
    return p


def test_sweep_plan_submit_skip(tmp_path, sweep_file):
    store = tmp_path / "runs"
    runs = plan_sweep(sweep_file, seeds=[1], store_root=store)
    assert [(r.mode, r.sweep_param, r.sweep_value) for r in runs] == [
        ("posttrain", "rho_osc", "0.5"), ("posttrain", "rho_osc", "0.9"), ("finetune", "", "")]
    assert runs[0].config["finsta"]["rho_osc"] == 0.5 and all(r.sweep == "mini" for r in runs)
    runs = [r for r in runs if r.mode == "posttrain"]
    assert [r.state for r in submit(runs, "inline")] == ["finished", "finished"]
    assert [r.state for r in submit(runs, "inline")] == ["skipped", "skipped"]
    f = load_frame(store)
    assert sorted(set(f.sweep_value)) == ["0.5", "0.9"] and set(f.sweep_param) == {"rho_osc"}
    assert main(["tables", "--store", str(store)]) == 0


def test_sweep_cli_dry_run_and_errors(tmp_path, sweep_file, capsys):
    assert main(["sweep", str(sweep_file), "--dry-run", "--seeds", "1,2", "--store", str(tmp_path)]) == 0
    assert "sweep " in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ngroups: [{hosts: [fake_host]}]\n")
    with pytest.raises(ConfigError, match="needs 'hosts' and 'tasks'"):
        load_sweep(bad)
    bad.write_text("name: bad\ngrups: []\n")
    assert main(["sweep", str(bad)]) == 2
    assert "unknown sweep keys ['grups']" in capsys.readouterr().err


def test_tables_paper_command(tmp_path, capsys):
    assert main(["tables", "--paper", "--tables", "table08"]) == 0
    assert "w/o L_PTC" in capsys.readouterr().out
    assert main(["tables", "--paper", "--format", "csv", "--out", str(tmp_path)]) == 0
    assert list(tmp_path.glob("*.csv"))
    assert main(["tables", "--store", str(tmp_path / "empty")]) == 2
