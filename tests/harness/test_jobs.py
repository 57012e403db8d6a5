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


# -- reliability holes (issue 15), each failed before ----------------------------------------------------
def test_debug_executor_never_opens_pdb_on_a_failing_job(store, capsys):
    """run.device=cuda on a CPU machine: the default `debug` executor used to drop into (Pdb)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA (this one has a GPU)")
    assert main(["run", "--host", "fake_host", "--task", "fake_mc", "--mode", "zeroshot", "--seeds", "1",
                 "--executor", "debug", "--store", str(store), *SMALL, "run.device=cuda"]) == 1
    out = capsys.readouterr().out
    assert "failed" in out and "CUDA is not available" in out and "(Pdb)" not in out


@pytest.mark.parametrize("override, match", [
    ("finetune.epochs=0", "'finetune.epochs' must be > 0"),
    ("finetune.lr=-1", "'finetune.lr' must be >= 0"),
    ("data.limit=-1", "'data.limit' must be >= 1"),
    ("finetune.batch_size=0", "'finetune.batch_size' must be >= 1"),
    ("posttrain.stage1.lr=0", "'posttrain.stage1.lr' must be > 0"),
    ("posttrain.sg_node_missing_rate=1.5", "must be >= 0 and <= 1"),
    ("posttrain.then=later", "'posttrain.then' must be one of"),
])
def test_out_of_range_values_are_refused_at_planning(capsys, override, match):
    assert main(["validate", "--host", "fake_host", "--task", "fake_action", *SMALL, override]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1


def test_repeated_seed_is_planned_once(store, capsys):
    assert main(["validate", "--host", "fake_host", "--task", "fake_mc", "--seeds", "1,1", "--store", str(store),
                 *SMALL]) == 0
    assert "1 run(s) valid" in capsys.readouterr().out
    assert len(plan_runs("fake_host", "fake_mc", "finetune", seeds=[1, 1], overrides=SMALL, store_root=store)) == 1


def test_run_prints_plan_default_mode_and_scores(store, capsys):
    assert main(["run", "--host", "fake_host", "--task", "fake_mc", "--seeds", "1,2", "--executor", "inline",
                 "--store", str(store), *SMALL]) == 0
    out = capsys.readouterr().out
    assert "(mode finetune: the default; choose with --mode)" in out and out.count("  finetune  fake_host") == 2
    assert "scores:" in out and "Acc=" in out and "mean of 2 seeds" in out


def test_samples_and_metrics_files(store):
    runs = plan_runs("fake_host", "fake_ret", "zeroshot", seeds=[1], overrides=SMALL, store_root=store)
    (res,) = submit(runs, "inline")
    s = RunStore(store)
    m = s.read_json(res.run_id, "metrics.json")
    ev = m["evaluations"][0]
    assert m["task_version"] == "1" and ev["higher_is_better"]["R@1"] is True and ev["higher_is_better"]["MdR"] is False
    samples = s.read_predictions(res.run_id, "samples.jsonl")
    assert len(samples) == 2 * 9 and {"id", "text_index", "target", "prediction", "R@1"} <= set(samples[0])


def test_concurrent_run_of_one_spec_executes_once(store):
    from harness.jobs.run import run_job
    from harness.store import RunLock

    runs = plan_runs("fake_host", "fake_mc", "zeroshot", seeds=[1], overrides=SMALL, store_root=store)
    other = RunLock(runs[0].run_dir)  # another process executing this run right now
    assert other.acquire()
    try:
        assert run_job(runs[0]).state == "skipped"
        (res,) = submit(runs, "inline")
        assert res.state == "skipped" and "another process" in res.error
    finally:
        other.release()
    assert submit(runs, "inline")[0].state == "finished"


class _OneBadVideo:
    """Mixin: sample 0 of the test split (and optionally every train sample) has an unreadable video."""

    bad_train = False

    def load_split(self, split):
        out = super().load_split(split)
        for i, s in enumerate(out):
            if (split == "test" and i == 0) or (split == "train" and self.bad_train):
                s.frames, s.video = None, "/nonexistent/broken.mp4"
        return out


def _register_bad_tasks():
    from tasks.base import TaskType
    from tasks.registry import TASKS
    from tests.harness.fakes import FakeTask

    for name, tt, metrics, bad_train in (("fake_ret_bad", TaskType.RETRIEVAL, ("R@1",), False),
                                        ("fake_action_badtrain", TaskType.ACTION_RECOGNITION, ("top1",), True)):
        cls = type(name, (_OneBadVideo, FakeTask), {"name": name, "task_type": tt, "metrics": metrics,
                                                     "bad_train": bad_train})
        TASKS.register(name, cls, overwrite=True)


def test_one_unreadable_video_neither_aborts_retrieval_nor_blames_another(store):
    _register_bad_tasks()
    ok = plan_runs("fake_host", "fake_ret_bad", "zeroshot", seeds=[1], store_root=store,
                   overrides=[*SMALL, "run.max_failed_fraction=0.2"])
    (res,) = submit(ok, "inline")
    assert res.state == "finished", res.error
    ev = res.metrics[0]
    assert ev["n_samples"] == 9 and ev["n_failed"] == 1
    samples = RunStore(store).read_predictions(res.run_id, "samples.jsonl")
    bad = [r for r in samples if r["error"]]
    assert {r["id"] for r in bad} == {"test0"}  # only the broken video's own texts, nobody else blamed
    strict = plan_runs("fake_host", "fake_ret_bad", "zeroshot", seeds=[1], overrides=SMALL,
                       store_root=store / "strict")
    (res,) = submit(strict, "inline")  # default threshold 0.05: 1 of 9 is too many
    assert res.state == "failed" and "1 of 9 samples failed (> run.max_failed_fraction=0.05)" in res.error


def test_all_missing_training_split_is_an_error_not_zero_loss(store):
    _register_bad_tasks()
    runs = plan_runs("fake_host", "fake_action_badtrain", "finetune", seeds=[1], overrides=SMALL, store_root=store)
    (res,) = submit(runs, "inline")
    assert res.state == "failed" and "every sample of the batch failed to load" in res.error


def test_posttrain_without_scene_graphs_fails_at_planning_with_the_command(store, capsys):
    from tasks.base import TaskType
    from tasks.registry import TASKS
    from tests.harness.fakes import FakeTask

    class NoGraphs(FakeTask):
        name, task_type, metrics = "fake_nograph", TaskType.RETRIEVAL, ("R@1",)

        def load_split(self, split):
            out = super().load_split(split)
            for s in out:
                s.scene_graph = None
            return out

    TASKS.register("fake_nograph", NoGraphs, overwrite=True)
    assert main(["validate", "--host", "fake_host", "--task", "fake_nograph", "--mode", "posttrain",
                 "--store", str(store), *SMALL]) == 2
    err = capsys.readouterr().err
    assert "has no scene graphs" in err and "python -m harness sg parse" in err and err.count("\n") == 1


def test_validate_refuses_an_empty_checkpoint_and_accepts_random_init(tmp_path, capsys):
    empty = tmp_path / "w.pt"
    empty.write_bytes(b"")
    assert main(["validate", "--host", "fake_host", "--task", "fake_mc", *SMALL, f"host.checkpoint={empty}"]) == 2
    assert "empty (0 bytes)" in capsys.readouterr().err
    assert main(["validate", "--host", "fake_host", "--task", "fake_mc", "--store", str(tmp_path / "r"), *SMALL,
                 "host.init=random"]) == 0
    assert main(["validate", "--host", "fake_host", "--task", "fake_mc", *SMALL, "host.init=random",
                 f"host.checkpoint={empty}"]) == 2
    assert "contradict" in capsys.readouterr().err


@pytest.mark.parametrize("teacher_lr", [None, 0.0])
def test_posttrain_stage2_teacher_lr(store, monkeypatch, teacher_lr):
    """``posttrain.stage2.teacher_lr``: Finsta's own parameters get that lr in stage 2 (0 = a fixed stage-1
    teacher) while the TRS projector keeps ``lr``; null = one group (joint training)."""
    import harness.jobs.posttrain as pt

    seen: list[tuple[str, list[tuple[float, int]]]] = []
    real = pt.train_loop

    def spy(ctx, name, model, groups, *args, **kwargs):
        seen.append((name, [(g["lr"], sum(p.numel() for p in g["params"])) for g in groups]))
        return real(ctx, name, model, groups, *args, **kwargs)

    monkeypatch.setattr(pt, "train_loop", spy)
    over = [*SMALL, "posttrain.then=none", f"posttrain.stage2.teacher_lr={'null' if teacher_lr is None else 0.0}"]
    runs = plan_runs("fake_host", "fake_action", "posttrain", seeds=[1], overrides=over, store_root=store)
    (res,) = submit(runs, "inline")
    assert res.state == "finished", res.error
    stage2 = dict(seen)["posttrain_stage2"]
    if teacher_lr is None:
        assert len(stage2) == 2  # Finsta, host
    else:
        (lr_proj, n_proj), (lr_teacher, n_teacher) = stage2[:2]
        assert lr_teacher == 0.0 and lr_proj > 0 and 0 < n_proj < n_teacher
