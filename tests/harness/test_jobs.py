"""Job functions end to end on the fake host/tasks: fine-tune and zero-shot per task type, post-train with the
real Finsta module (small preset), grid skip/retry, the CLI front end."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.jobs import RunResult
from harness.launch import submit
from harness.plan import plan_runs
from harness.store import RunStore, load_frame
from tests.harness.conftest import SMALL

TASKS = ["fake_action", "fake_ret", "fake_mc", "fake_oe", "fake_cap"]
FORMAT_KEYS = {"fake_action": "scores", "fake_ret": "text_index", "fake_mc": "scores", "fake_oe": "answer",
               "fake_cap": "caption"}


@pytest.mark.parametrize("mode", ["finetune", "zeroshot"])
@pytest.mark.parametrize("task", TASKS)
def test_finetune_and_zeroshot_every_task_type(store, task, mode):
    runs = plan_runs("fake_host", task, mode, seeds=[1], overrides=SMALL, store_root=store)
    (res,) = submit(runs, "inline")
    assert res.state == "finished", res.error
    s = RunStore(store)
    preds = s.read_predictions(res.run_id)
    assert preds and all(FORMAT_KEYS[task] in p for p in preds)
    metrics = s.read_json(res.run_id, "metrics.json")["evaluations"][0]
    assert metrics["mode"] == mode and metrics["split"] == "test" and metrics["metrics"]
    files = {p.name for p in runs[0].run_dir.iterdir()}
    assert {"spec.json", "config.yaml", "status.json", "env.json", "metrics.json", "predictions.jsonl",
            "timings.json", "log.txt"} <= files
    if mode == "finetune":
        hist = json.loads((runs[0].run_dir / "history" / "finetune.json").read_text())
        assert len(hist["losses"]) == hist["steps"] > 0


def test_finetune_learns_action(store):
    runs = plan_runs("fake_host", "fake_action", "finetune", seeds=[1], store_root=store,
                     overrides=[*SMALL, "finetune.epochs=6"])
    (res,) = submit(runs, "inline")
    assert res.metrics[0]["metrics"]["top1"] > 90.0  # the class colours the frames: easy to learn


def test_posttrain_runs_finsta_then_finetunes(store):
    runs = plan_runs("fake_host", "fake_action", "posttrain", seeds=[1], overrides=SMALL, store_root=store)
    (res,) = submit(runs, "inline")
    assert res.state == "finished", res.error
    d = runs[0].run_dir
    h1 = json.loads((d / "history" / "posttrain_stage1.json").read_text())
    h2 = json.loads((d / "history" / "posttrain_stage2.json").read_text())
    assert h1["steps"] > 0 and h2["steps"] > 0
    log = (d / "log.txt").read_text()
    assert "w_trs=0 " in log and "L_trs=" in log and "L_vla=" in log  # stage 1 without TRS, stage 2 with host losses
    from safetensors.torch import load_file

    saved = load_file(str(d / "host.safetensors"))
    assert saved and not any(k.startswith("finsta") for k in saved)  # the host alone
    cost = json.loads((d / "cost.json").read_text())
    assert cost["params_finsta"] > 0 and cost["task_family"] == "action"
    f = load_frame(store)
    costs = f[f["mode"] == "cost"]  # Table 9 rows from cost.json + timings.json
    assert set(costs.metric) == {"params_m", "data_m", "gpu_hours"} and set(costs.finsta) == {True}
    params = costs.set_index("metric")["value"]["params_m"]
    assert params == pytest.approx((cost["params_host"] + cost["params_finsta"]) / 1e6)
    f = f[f["mode"] != "cost"]
    assert set(f.finsta) == {True} and set(f["mode"]) == {"finetune"} and "top1" in set(f.metric)


def test_posttrain_with_dropped_nodes(store):
    runs = plan_runs("fake_host", "fake_ret", "posttrain", seeds=[1], store_root=store,
                     overrides=[*SMALL, "posttrain.sg_node_missing_rate=0.3", "posttrain.then=zeroshot"])
    (res,) = submit(runs, "inline")
    assert res.state == "finished", res.error


def test_grid_skips_finished_and_retries_failed(store):
    from harness.modes import JOBS

    runs = plan_runs("fake_host", "fake_action,fake_mc", "zeroshot", seeds=[1, 2], overrides=SMALL, store_root=store)
    real = JOBS.get("zeroshot")
    calls: list[str] = []

    def flaky(ctx, host, task):
        calls.append(ctx.spec.run_id)
        if task.name == "fake_mc" and ctx.spec.seed == 2 and calls.count(ctx.spec.run_id) == 1:
            raise RuntimeError("node fell over")
        return real(ctx, host, task)

    JOBS.register("zeroshot", flaky, overwrite=True)  # the mode registry's job function
    try:
        first = submit(runs, "inline")
        error = RunStore(store).status(first[3].run_id)["error"]
        second = submit(runs, "inline")
        n_calls = len(calls)
        third = submit(runs[:1], "inline", force=True)
    finally:
        JOBS.register("zeroshot", real, overwrite=True)
    assert [r.state for r in first] == ["finished", "finished", "finished", "failed"]
    assert "RuntimeError: node fell over" in first[3].error and error == "RuntimeError: node fell over"
    assert [r.state for r in second] == ["skipped", "skipped", "skipped", "finished"]
    assert RunStore(store).status(first[3].run_id)["attempts"] == 2
    assert n_calls == 5
    assert third[0].state == "finished" and len(calls) == 6


def test_debug_executor_returns_results(store):
    runs = plan_runs("fake_host", "fake_mc", "zeroshot", seeds=[1], overrides=SMALL, store_root=store)
    (res,) = submit(runs, "debug")
    assert isinstance(res, RunResult) and res.state == "finished"
    assert RunStore(store).read_json(res.run_id, "job.json")["executor"] == "debug"


def test_cli_run_status_and_help(store, capsys):
    assert main(["run", "--host", "fake_host", "--task", "fake_mc", "--mode", "zeroshot", "--seeds", "1,2",
                 "--executor", "inline", "--store", str(store), *SMALL]) == 0
    out = capsys.readouterr().out
    assert "planned 2 run(s)" in out and "2 finished" in out and str(store) in out
    assert main(["run", "--host", "fake_host", "--task", "fake_mc", "--mode", "zeroshot", "--seeds", "1,2",
                 "--executor", "inline", "--store", str(store), *SMALL]) == 0
    assert "2 skipped" in capsys.readouterr().out
    assert main(["status", "--store", str(store), "--all"]) == 0
    assert "2 finished" in capsys.readouterr().out
    for cmd in ("list", "run", "validate", "sweep", "tables", "status"):
        with pytest.raises(SystemExit) as ok:
            main([cmd, "--help"])
        assert ok.value.code == 0
    capsys.readouterr()
    assert main(["list", "tasks", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert any(r["name"] == "fake_action" and r["type"] == "action_recognition" for r in rows)
