"""Checkpoint + requeue: a job interrupted mid-training and resumed ends with the same result as an
uninterrupted one (CPU, deterministic)."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import torch

from harness.launch import make_executor, submit
from harness.plan import plan_runs
from harness.store import RunStore
from tests.harness.conftest import SMALL
from tests.harness.fakes import FakeRunner

OVR = [*SMALL, "finetune.epochs=4", "run.ckpt_every=2", "run.deterministic=true"]


def _outputs(run_dir):
    hist = json.loads((run_dir / "history" / "finetune.json").read_text())
    preds = [json.loads(x) for x in (run_dir / "predictions.jsonl").read_text().splitlines()]
    return hist, preds


def test_resume_after_simulated_preemption_is_exact(tmp_path, monkeypatch):
    import harness.jobs.recipes as recipes

    ref = plan_runs("fake_host", "fake_action", "finetune", seeds=[3], overrides=OVR, store_root=tmp_path / "a")
    assert submit(ref, "inline")[0].state == "finished"

    runs = plan_runs("fake_host", "fake_action", "finetune", seeds=[3], overrides=OVR, store_root=tmp_path / "b")
    real = recipes.FinetuneModel.forward

    def preempted(self, box, step, total):
        if step == 5:
            raise SystemExit(144)  # what submitit's signal handler does after checkpointing
        return real(self, box, step, total)

    monkeypatch.setattr(recipes.FinetuneModel, "forward", preempted)
    with pytest.raises(SystemExit):
        submit(runs, "inline")
    assert RunStore(tmp_path / "b").state(runs[0].run_id) == "running"  # interrupted, not finished
    assert torch.load(runs[0].run_dir / "checkpoint" / "finetune.pt", weights_only=True)["step"] == 4
    monkeypatch.setattr(recipes.FinetuneModel, "forward", real)
    (res,) = submit(runs, "inline")  # the requeue
    assert res.state == "finished"
    hist_b, preds_b = _outputs(runs[0].run_dir)
    hist_a, preds_a = _outputs(ref[0].run_dir)
    assert hist_b["resumed_from"] == 4 and hist_b["losses"] == hist_a["losses"]
    assert preds_b == preds_a
    assert RunStore(tmp_path / "b").status(res.run_id)["attempts"] == 2
    assert "resumed from step 4" in (runs[0].run_dir / "log.txt").read_text()


@pytest.mark.slow
def test_requeue_by_signal_with_local_executor(tmp_path):
    """submitit LocalExecutor: USR2 (preemption) -> JobRunner.checkpoint -> requeue -> resume -> same result."""
    ovr = [*OVR, "finetune.epochs=20", "run.ckpt_every=3", "host.options.sleep=0.02"]
    ref = plan_runs("fake_slow", "fake_action", "finetune", seeds=[3], overrides=ovr, store_root=tmp_path / "a")
    assert submit(ref, "inline")[0].state == "finished"
    spec = plan_runs("fake_slow", "fake_action", "finetune", seeds=[3], overrides=ovr, store_root=tmp_path / "b")[0]
    ex = make_executor("local", tmp_path / "submitit", {**spec.config["launch"], "tasks_per_node": 1})
    job = ex.submit(FakeRunner(), spec)
    ckpt = spec.run_dir / "checkpoint" / "finetune.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert ckpt.exists(), job.stderr()
    status = RunStore(tmp_path / "b").status(spec.run_id)
    os.kill(int(status["pid"]), signal.SIGUSR2)  # the preemption signal, as Slurm delivers it to the task
    res = job.result()
    assert res.state == "finished", job.stderr()
    hist_b, preds_b = _outputs(spec.run_dir)
    hist_a, preds_a = _outputs(ref[0].run_dir)
    assert hist_b["resumed_from"] is not None and hist_b["losses"] == hist_a["losses"]
    assert preds_b == preds_a
    assert RunStore(tmp_path / "b").status(spec.run_id)["requeues"] == 1
