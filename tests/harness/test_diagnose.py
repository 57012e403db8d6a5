"""``python -m harness diagnose``: runs end to end on a tiny synthetic setting and reports every figure."""

import json

import pytest

from harness.cli import main
from harness.commands.diagnose import parse_overrides
from harness.diagnose import ACTION_TARGETS, PROBE_TARGETS, DiagnoseConfig, format_report, run_diagnose
from harness.errors import HarnessError

TINY = dict(steps=3, n_corpus=32, n_probe_train=36, n_probe_test=18, batch_size=8)


def test_run_diagnose_reports_probes_alignment_collapse():
    res = run_diagnose(DiagnoseConfig(**TINY))
    assert set(res["probe"]) == {"finsta_dsg", "finsta_tsg", "finsta_hsg", "finsta_dynamic", "oracle_bag",
                                 "oracle_event_bag"}
    assert set(res["probe_ratio_dynamic_vs_events"]) == set(ACTION_TARGETS)
    assert {"actor_shape", "actor_colour"} <= set(res["probe"]["oracle_bag"])
    for accs in res["probe"].values():
        assert set(accs) == set(PROBE_TARGETS) and all(0.0 <= v <= 1.0 for v in accs.values())
    a = res["align"]
    for k in ("align_obj", "align_obj_chance", "align_event", "align_event_exact", "align_event_exact_chance"):
        assert 0.0 <= a[k] <= 1.0
    assert 0.0 < a["align_obj_chance"] < 1.0
    assert {"finsta_dsg_cos", "finsta_dsg_common"} <= set(res["collapse"])
    assert len(res["train_log"]) >= 1 and "align_obj" in res["train_log"][0]
    text = format_report(res)
    assert "oracle_bag" in text and "clean alignment" in text


def test_diagnose_with_host_and_stage2():
    res = run_diagnose(DiagnoseConfig(host="tiny", stage2_steps=2, **TINY))
    assert {"host", "student"} <= set(res["probe"])
    assert {"host_cos", "student_cos"} <= set(res["collapse"])
    assert any("student_video_cos" in log for log in res["train_log"])


def test_cli_and_overrides(tmp_path, capsys):
    assert parse_overrides(["finsta.osc_hops=1", "finsta.trs_distance=mse", 'finsta.positives=["cross"]']) == {
        "osc_hops": 1, "trs_distance": "mse", "positives": ("cross",)}
    with pytest.raises(HarnessError, match="finsta.FIELD=VALUE"):
        parse_overrides(["osc_hops=1"])
    out = tmp_path / "d.json"
    rc = main(["diagnose", "--literal", "--steps", "2", "--n-corpus", "16", "--n-train", "36", "--n-test", "18",
               "--batch-size", "8", "--json", str(out)])
    assert rc == 0 and "linear probes" in capsys.readouterr().out
    res = json.loads(out.read_text())
    assert res["config"]["finsta_config"]["trs_distance"] == "mse"
    assert main(["diagnose", "finsta.no_such_field=1", "--steps", "1"]) != 0
