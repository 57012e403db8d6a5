"""DDP on CPU (gloo, 2 processes): the same loss trajectory as one process with the same global batch."""

from __future__ import annotations

import json

import pytest
import torch.multiprocessing as mp

from harness.launch import submit
from harness.plan import plan_runs
from tests.harness.conftest import SMALL
from tests.harness.fakes import ddp_worker

OVR = [*SMALL, "finetune.epochs=3", "finetune.batch_size=8", "run.device=cpu"]


@pytest.mark.parametrize("task", ["fake_action"])
def test_ddp_two_processes_match_one(tmp_path, task):
    one = plan_runs("fake_host", task, "finetune", seeds=[7], overrides=OVR, store_root=tmp_path / "one")
    assert submit(one, "inline")[0].state == "finished"
    two = plan_runs("fake_host", task, "finetune", seeds=[7], overrides=OVR, store_root=tmp_path / "two")[0]
    mp.spawn(ddp_worker, args=(2, str(tmp_path / "init"), two), nprocs=2, join=True)
    h1 = json.loads((one[0].run_dir / "history" / "finetune.json").read_text())["losses"]
    h2 = json.loads((two.run_dir / "history" / "finetune.json").read_text())["losses"]
    assert len(h1) == len(h2) == 9  # 24 samples / global batch 8 x 3 epochs
    assert h2 == pytest.approx(h1, rel=1e-5, abs=1e-6)
    m1 = json.loads((one[0].run_dir / "metrics.json").read_text())["evaluations"][0]["metrics"]
    m2 = json.loads((two.run_dir / "metrics.json").read_text())["evaluations"][0]["metrics"]
    assert m2 == pytest.approx(m1)
    assert json.loads((two.run_dir / "status.json").read_text())["world_size"] == 2
