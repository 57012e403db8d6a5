"""The host -> Finsta-host pipeline (``harness.pipeline``) and the ``demo`` command, end to end on the
synthetic benchmark with very small splits."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from harness.cli import main
from harness.commands.demo import summary_table
from harness.pipeline import Pipeline, plan_checkpoints, plan_pretrain, run_pipeline
from harness.store import load_frame

TINY = {"quick": True, "n_train": 24, "n_test": 16, "n_pairs": 32, "diag_groups": 2}
OVERRIDES = ["preset=small", "run.progress=false", "finetune.epochs=1", "pretrain.epochs=1"]


@pytest.fixture(scope="module")
def pipeline_store(tmp_path_factory: pytest.TempPathFactory):
    store = tmp_path_factory.mktemp("pipe")
    p = Pipeline(hosts=["tiny"], eval_tasks=["synth_ret"], seeds=[1], overrides=OVERRIDES, corpus_options=TINY,
                 eval_options=TINY, store_root=store)
    results = run_pipeline(p)
    return p, store, results


def test_pipeline_chains_runs_and_labels_rows(pipeline_store) -> None:
    p, store, results = pipeline_store
    assert [r.state for r in results] == ["finished"] * 4  # {host, Finsta-host} x {finetune, zeroshot}
    frame = load_frame(store)
    evals = frame[(frame["mode"].isin(["finetune", "zeroshot"])) & (frame["metric"] == "R@1")]
    assert sorted(evals.groupby(["finsta", "mode"]).size().index.tolist()) == [
        (False, "finetune"), (False, "zeroshot"), (True, "finetune"), (True, "zeroshot")]
    # the evaluated checkpoints are the control run's (host) and the posttrain run's (Finsta-host)
    specs = [json.loads((store / r.run_id / "spec.json").read_text()) for r in results]
    assert [s["finsta"] for s in specs] == [False, False, True, True]


def test_control_is_step_matched_to_stage2(pipeline_store) -> None:
    p, store, _ = pipeline_store
    pre = plan_pretrain(p, "tiny", 1)
    ck = plan_checkpoints(p, "tiny", 1, pre)
    s2, ctrl = ck["posttrain"].config["posttrain"]["stage2"], ck["control"].config["pretrain"]
    assert (ctrl["epochs"], ctrl["batch_size"], ctrl["lr"]) == (s2["epochs"], s2["batch_size"], s2["host_lr"])
    # the host's own losses carry stage 2's Eq 42 weights (lambda_VLA = lambda_MLM = 0.3; other own losses 0)
    assert ctrl["loss_weights"] == {"vla": 0.3, "mlm": 0.3}
    assert ck["control"].config["host"]["checkpoint"] == ck["posttrain"].config["host"]["checkpoint"]
    h_post = json.loads((ck["posttrain"].run_dir / "history" / "posttrain_stage2.json").read_text())
    h_ctrl = json.loads((ck["control"].run_dir / "history" / "pretrain.json").read_text())
    assert h_post["steps"] == h_ctrl["steps"] > 0


def test_pipeline_rerun_skips_finished_runs(pipeline_store) -> None:
    p, _, _ = pipeline_store
    assert {r.state for r in run_pipeline(p)} == {"skipped"}


def test_summary_table_deltas() -> None:
    rows = []
    for finsta, vals in ((False, [10.0, 12.0]), (True, [13.0, 15.0])):
        for seed, v in enumerate(vals):
            rows.append({"run_id": f"r{finsta}{seed}", "host": "tiny", "finsta": finsta, "task": "synth_ret",
                         "task_type": "retrieval", "dataset": "synth_ret", "mode": "finetune", "split": "test",
                         "metric": "R@1", "value": v, "seed": seed, "n_samples": 64, "protocol": "", "ablation": "",
                         "sweep": "", "sweep_param": "", "sweep_value": "", "status": "finished"})
    text = summary_table(pd.DataFrame(rows), "tiny")
    assert "| synth_ret | retrieval | finetune | R@1 | 11.0 ± 1.4 | 14.0 ± 1.4 | +3.0 | 64 |" in text


def test_demo_command_prints_table(tmp_path, capsys) -> None:
    rc = main(["demo", "--quick", "--tasks", "synth_qa_mc", "--store", str(tmp_path),
               *[f"task.options.{k}={json.dumps(v)}" for k, v in TINY.items()], "finetune.epochs=1",
               "pretrain.epochs=1"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "| synth_qa_mc | mc_qa | finetune | accuracy |" in out and "0 failed" in out
    assert (tmp_path / "tables").is_dir()
    # progress: the plan size, then one done/total line per run (issue 14 item 5)
    assert ": 7 runs" in out and "1/7 runs" in out and "7/7 runs" in out


def test_progress_lines_count_runs_and_give_an_eta() -> None:
    from harness.jobs import RunResult
    from harness.pipeline import Progress, pipeline_size

    p = Pipeline(hosts=["tiny"], eval_tasks=["synth_ret", "synth_qa_mc"], modes=["finetune", "zeroshot"], seeds=[1, 2])
    assert pipeline_size(p) == 2 * (3 + 2 * 2 * 2)
    lines: list[str] = []
    prog = Progress(4, lines.append)
    prog.step("pretrain", [RunResult("a", "finished", "")])
    prog.step("evals", [RunResult("b", "skipped", ""), RunResult("c", "finished", "")])
    assert lines[0].split("]", 1)[1].startswith(" 1/4 runs  pretrain (finished)  ETA")
    assert "3/4 runs  evals (finished, skipped)" in lines[1]
