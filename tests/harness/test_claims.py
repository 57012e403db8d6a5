"""The synthetic claims study: the decision rule on hand-made frames, report rendering on a fake frame (no
training), the protocol loader, and one tiny end-to-end run of the sweep (slow)."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd
import pytest

from harness.claims import evaluate_claims, load_protocol
from harness.claims_report import write_report
from harness.claims_stats import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    combine,
    decide,
    headline_scores,
    interval,
    slopes,
    t_quantile,
)
from harness.errors import ConfigError
from harness.store import FRAME_COLUMNS

TYPES = {"synth_ret": "retrieval", "synth_qa_mc": "mc_qa", "synth_para": "paragraph_retrieval"}
HEADLINE = {"retrieval": ["R@1", "R@5"], "mc_qa": ["accuracy"], "paragraph_retrieval": ["R@1", "R@5"]}


def _sw(**extra):
    sw = {"name": "synth_claims", "kind": "pipeline", "hosts": ["tiny", "tiny_dual"], "reference_host": "tiny",
          "seeds": [1, 2, 3, 4], "tasks": ["synth_ret", "synth_qa_mc"], "modes": ["finetune", "zeroshot"],
          "headline": HEADLINE, "decision": {"level": 0.95, "method": "t"}, "studies": {}}
    sw.update(extra)
    return sw


def _rows(host, finsta, task, mode, seed, value, param="main", sv="full", ablation=""):
    metrics = HEADLINE[TYPES[task]]
    return [{"run_id": f"{host}-{finsta}-{task}-{mode}-{seed}-{param}-{sv}-{ablation}", "host": host, "finsta": finsta,
             "task": task, "task_type": TYPES[task], "dataset": "synthetic", "mode": mode, "split": "test",
             "metric": m, "value": value, "seed": seed, "n_samples": 64, "protocol": "", "ablation": ablation,
             "sweep": "synth_claims", "sweep_param": param, "sweep_value": sv, "status": "finished"}
            for m in metrics]


def fake_frame(gain_fn, hosts=("tiny", "tiny_dual"), seeds=(1, 2, 3, 4), extra=()):
    """Host score 40 + seed; Finsta-host = host + gain_fn(host, task, mode, seed)."""
    rows = []
    for h in hosts:
        for t in ("synth_ret", "synth_qa_mc"):
            for m in ("finetune", "zeroshot"):
                for s in seeds:
                    base = 40.0 + s
                    rows += _rows(h, False, t, m, s, base)
                    rows += _rows(h, True, t, m, s, base + gain_fn(h, t, m, s))
    for r in extra:
        rows += _rows(*r)
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def test_t_quantile_golden():
    assert t_quantile(0.975, 4) == pytest.approx(2.776445, abs=1e-4)
    assert t_quantile(0.975, 1) == pytest.approx(12.706205, abs=1e-3)
    assert t_quantile(0.975, 30) == pytest.approx(2.042272, abs=1e-4)
    assert t_quantile(0.025, 4) == pytest.approx(-2.776445, abs=1e-4)


@pytest.mark.parametrize("values, side, expected", [
    ([1.0, 1.2, 0.9, 1.1, 1.0], +1, SUPPORTED),
    ([-1.0, -1.2, -0.9, -1.1, -1.0], +1, NOT_SUPPORTED),
    ([-1.0, -1.2, -0.9, -1.1, -1.0], -1, SUPPORTED),
    ([1.0, -1.0, 0.5, -0.5, 0.1], +1, INCONCLUSIVE),
    ([3.0], +1, INCONCLUSIVE),  # one seed: no interval
    ([], +1, INCONCLUSIVE),
])
def test_decide(values, side, expected):
    assert decide(values, side) == expected


def test_interval_t_and_bootstrap():
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    lo, hi = interval(x)
    half = 2.776445 * np.std(x, ddof=1) / math.sqrt(5)
    assert (lo, hi) == pytest.approx((3 - half, 3 + half), abs=1e-4)
    blo, bhi = interval(x, method="bootstrap")
    assert 1.0 <= blo < 3.0 < bhi <= 5.0
    assert math.isnan(interval([1.0])[0])
    with pytest.raises(ValueError, match="unknown interval method"):
        interval(x, method="jackknife")


def test_combine():
    assert combine([SUPPORTED, SUPPORTED]) == SUPPORTED
    assert combine([SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE]) == NOT_SUPPORTED
    assert combine([SUPPORTED, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine([]) == INCONCLUSIVE


def test_headline_scores_average_and_drop_incomplete():
    frame = fake_frame(lambda *a: 2.0, hosts=("tiny",), seeds=(1,))
    frame.loc[(frame["metric"] == "R@5") & (frame["mode"] == "zeroshot") & frame["finsta"], "metric"] = "MdR"
    s = headline_scores(frame, HEADLINE)
    assert len(s) == 7  # the zero-shot Finsta retrieval run lost a headline metric: dropped, not scored 0
    assert set(s["score"]) == {41.0, 43.0}


def test_slopes_per_seed():
    per_x = {0.0: pd.Series({1: 1.0, 2: 2.0}), 1.0: pd.Series({1: 2.0, 2: 2.0}), 2.0: pd.Series({1: 3.0, 2: 2.0})}
    assert slopes(per_x).to_dict() == pytest.approx({1: 1.0, 2: 0.0})


def _verdicts(frame, sw):
    return {c.key: c.verdict for c in evaluate_claims(frame, sw)}


def test_claims_supported():
    """Constant positive gains, bigger zero-shot, bigger for the full host (with seed jitter)."""
    def gain(h, t, m, s):
        return (3.0 if h == "tiny" else 1.0) + (2.0 if m == "zeroshot" else 0.0) + 0.1 * s
    v = _verdicts(fake_frame(gain), _sw())
    assert v["1"] == SUPPORTED and v["2"] == SUPPORTED and v["3"] == SUPPORTED
    assert v["4"] == INCONCLUSIVE and v["5"] == INCONCLUSIVE  # no ablation / events / SG arms: not measured


def test_claims_not_supported():
    """Finsta hurts retrieval; fine-tune gains exceed zero-shot; the dual host gains more."""
    def gain(h, t, m, s):
        return (-2.0 if t == "synth_ret" else 1.0) + (1.0 if m == "finetune" else 0.0) + (2 if h != "tiny" else 0) \
            + 0.1 * s
    v = _verdicts(fake_frame(gain), _sw())
    assert v["1"] == NOT_SUPPORTED and v["2"] == NOT_SUPPORTED and v["3"] == NOT_SUPPORTED


def test_claims_inconclusive():
    rng = np.random.default_rng(0)
    noise = {k: float(rng.normal(0, 3)) for k in range(200)}
    def gain(h, t, m, s):  # deterministic across processes (no salted hash())
        return noise[zlib.crc32(repr((h, t, m, s)).encode()) % 200] * (1 if s % 2 else -1)

    v = _verdicts(fake_frame(gain), _sw())
    assert v["2"] == INCONCLUSIVE and v["3"] == INCONCLUSIVE


def _study_frame():
    """Main arm + ablations (drop ordering ptc > stgd) + events (gain grows with k) + SG (gain falls with r)."""
    extra = []
    for s in (1, 2, 3, 4):
        for t in ("synth_ret", "synth_qa_mc"):
            for m in ("finetune", "zeroshot"):
                full = 40.0 + s + 3.0
                for a, drop in (("no_ptc", 2.0), ("no_stgd", 1.0)):
                    extra.append(("tiny", True, t, m, s, full - drop - 0.05 * s, "ablation", a, a))
                for r, g in (("0.3", 2.0), ("0.6", 1.0)):
                    extra.append(("tiny", True, t, m, s, 40.0 + s + g + 0.05 * s, "sg_noise", r))
        for k in (2, 8):
            extra.append(("tiny", False, "synth_para", "zeroshot", s, 20.0 + s, "events", str(k)))
            extra.append(("tiny", True, "synth_para", "zeroshot", s, 20.0 + s + k * 0.5 + 0.1 * s, "events", str(k)))
    frame = fake_frame(lambda h, t, m, s: 3.0, hosts=("tiny",), extra=extra)
    studies = {"ablation": {"tasks": ["synth_ret", "synth_qa_mc"], "arms": [{"name": "no_ptc"}, {"name": "no_stgd"}],
                            "order": [["no_ptc"], ["no_stgd"]]},
               "events": {"tasks": ["synth_para"], "modes": ["zeroshot"], "values": [2, 8]},
               "sg_noise": {"tasks": ["synth_ret", "synth_qa_mc"], "kind": "drop", "values": [0.3, 0.6]}}
    return frame, _sw(hosts=["tiny"], studies=studies)


def test_claims_ablation_events_sg():
    frame, sw = _study_frame()
    claims = {c.key: c for c in evaluate_claims(frame, sw)}
    assert claims["4"].verdict == SUPPORTED
    assert [t.mean for t in claims["4"].extra] == pytest.approx([2.125, 1.125])
    assert claims["5"].verdict == SUPPORTED
    assert claims["5"].tests[0].mean == pytest.approx(0.5)  # pp per event
    assert claims["5"].tests[1].mean < 0


def test_report_renders(tmp_path):
    frame, sw = _study_frame()
    out = write_report(frame, sw, tmp_path / "rep" / "claims.md")
    text = out.read_text()
    for needle in ("## Verdicts", "## Decision rule", "## Per-task results", "Claim 4", "supported", "## Caveats",
                   "| tiny | synth_ret | retrieval | zeroshot |"):
        assert needle in text
    pngs = sorted(p.name for p in out.parent.glob("*.png"))
    assert pngs == ["claims_ablation.png", "claims_gain_per_task.png", "claims_gain_vs_events.png",
                    "claims_gain_vs_sg.png"]
    assert not list(out.parent.glob(".*tmp*"))


def test_protocol_loads_and_rejects_bad(tmp_path):
    sw = load_protocol("synth_claims")
    assert sw["kind"] == "pipeline" and sw["reference_host"] in sw["hosts"]
    assert load_protocol("synth_claims", seeds=[7])["seeds"] == [7]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nkind: pipeline\nhosts: [tiny]\ntasks: [synth_ret]\nmodes: [zeroshot]\nseeds: [1]\n"
                   "headline: {retrieval: [R@1]}\nstudies: {ablations: {}}\n")
    with pytest.raises(ConfigError, match="unknown keys"):
        load_protocol(bad)


@pytest.mark.slow
def test_end_to_end_tiny_sweep(tmp_path, capsys):
    """One seed, quick sizes, one task, one ablation arm: the sweep runs, the report is written."""
    from harness.cli import main

    proto = tmp_path / "mini_claims.yaml"
    proto.write_text(f"""
name: mini_claims
kind: pipeline
store: {tmp_path / 'runs'}
report: {tmp_path / 'report' / 'mini.md'}
seeds: [1]
overrides: [preset=small, run.progress=false, data.limit=32, pretrain.epochs=1]
corpus_options: {{quick: true}}
eval_options: {{quick: true}}
hosts: [tiny]
tasks: [synth_ret]
modes: [zeroshot]
headline: {{retrieval: ["R@1", "R@5", "R@10"]}}
studies:
  ablation:
    tasks: [synth_ret]
    arms: [{{name: no_ptc, overrides: [finsta.ptc=false]}}]
""")
    assert main(["sweep", str(proto)]) == 0
    text = (tmp_path / "report" / "mini.md").read_text()
    assert "| tiny | synth_ret | retrieval | zeroshot |" in text and "inconclusive" in text
    assert main(["sweep", str(proto), "--report-only"]) == 0
    assert "report:" in capsys.readouterr().out


def test_sweep_command_dispatches_pipeline_study(capsys):
    """`harness sweep synth_claims --dry-run` lists the study's arms; grid planning refuses a pipeline study."""
    from harness.cli import main
    from harness.sweeps import plan_sweep

    assert main(["sweep", "synth_claims", "--dry-run", "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert "pipeline study" in out and "controls  oracle" in out and "controls  paper_literal" in out
    with pytest.raises(ConfigError, match="pipeline study"):
        plan_sweep("synth_claims")


def _controls_frame(oracle_gain):
    """Main arm (Finsta gain 0) + a positive-control oracle arm + a paper-literal arm, compared with the host."""
    extra = []
    for s in (1, 2, 3, 4, 5):
        for t in ("synth_ret", "synth_qa_mc"):
            for m in ("finetune", "zeroshot"):
                g = oracle_gain(t) + (0.5 if s % 2 else -0.5)
                extra.append(("tiny", True, t, m, s, 40.0 + s + g, "controls", "oracle"))
                extra.append(("tiny", True, t, m, s, 40.0 + s - 1.0 - 0.1 * s, "controls", "paper_literal"))
    frame = fake_frame(lambda h, t, m, s: 0.1 * (s - 3), hosts=("tiny",), seeds=(1, 2, 3, 4, 5), extra=extra)
    studies = {"controls": {"tasks": ["synth_ret", "synth_qa_mc"],
                            "arms": [{"name": "oracle", "positive_control": True,
                                      "overrides": ["finsta.trs_teacher=tasks.synthetic.oracle:oracle_teacher"]},
                                     {"name": "paper_literal", "overrides": ["finsta_preset=small_literal"]}]}}
    return frame, _sw(hosts=["tiny"], seeds=[1, 2, 3, 4, 5], studies=studies)


def test_positive_control_gate(tmp_path):
    frame, sw = _controls_frame(lambda t: 4.0 if t == "synth_qa_mc" else 0.0)
    claims = {c.key: c for c in evaluate_claims(frame, sw)}
    assert claims["P"].verdict == SUPPORTED  # one task type (mc_qa) above 0 suffices
    assert claims["C:paper_literal"].verdict == "not supported"
    text = write_report(frame, sw, tmp_path / "claims.md").read_text()
    assert "## Can this benchmark test Finsta?" in text and "**No.**" not in text
    assert (tmp_path / "claims_controls.png").exists()
    frame, sw = _controls_frame(lambda t: 0.0)
    claims = {c.key: c for c in evaluate_claims(frame, sw)}
    assert claims["P"].verdict != SUPPORTED
    assert "**No.**" in write_report(frame, sw, tmp_path / "claims2.md").read_text()


def test_claims_modules_do_not_import_each_other_in_a_cycle():
    import ast
    from pathlib import Path

    def imports(mod):
        tree = ast.parse(Path(f"harness/{mod}.py").read_text())
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}

    assert "harness.claims" not in imports("claims_report") and "harness.claims" not in imports("claims_stats")
    assert "harness.claims_report" not in imports("claims_stats")
    assert not any(m.startswith("harness.commands") for m in imports("claims"))
