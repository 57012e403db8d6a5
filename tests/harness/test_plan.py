"""Planning and validation: every user error is one line, exit status 2, no traceback."""

from __future__ import annotations

import pytest

from harness.cli import main
from harness.errors import PlanError
from harness.plan import plan_runs
from tests.harness.conftest import SMALL


@pytest.mark.parametrize("argv, match", [
    (["run", "--host", "fake_hots", "--task", "fake_action"], "unknown host 'fake_hots'; did you mean 'fake_host'"),
    (["run", "--host", "fake_host", "--task", "fake_acton"], "unknown task 'fake_acton'; did you mean 'fake_action'"),
    (["validate", "--host", "fake_retonly", "--task", "fake_mc"],
     "host 'fake_retonly' cannot run mc_qa task 'fake_mc': needs multiple_choice"),
    (["validate", "--host", "fake_retonly", "--task", "fake_cap", "--mode", "zeroshot"],
     "cannot do zero-shot captioning"),
    (["validate", "--host", "fake_host", "--task", "fake_missing"],
     "task 'fake_missing' split 'train': missing fake train annotations: /nonexistent/fake/train.json "
     "(get it from the fake dataset page)"),
    (["validate", "--host", "fake_host", "--task", "fake_action", "finetune.epoch=2"],
     "unknown config key 'finetune.epoch'"),
    (["validate", "--host", "fake_host", "--task", "fake_action", "--mode", "posttrain", "finsta.rho_os=1"],
     "unknown Finsta option 'finsta.rho_os'; did you mean finsta.rho_osc"),
    (["validate", "--host", "fake_host", "--task", "fake_action", "host.checkpoint=/nope/w.pt"],
     "checkpoint file not found: /nope/w.pt"),
    (["validate", "--host", "fake_host", "--task", "fake_action", "--mode", "postrain"],
     "unknown mode 'postrain'; did you mean 'posttrain'"),
    (["validate", "--host", "fake_host", "--task", "fake_action", "--seeds", "1,x"], "--seeds expects"),
    (["sweep", "nope"], "unknown sweep 'nope'"),
])
def test_planning_errors_are_one_line(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and match in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unimplemented_and_weightless_hosts(capsys):
    assert main(["validate", "--host", "clover", "--task", "msrvtt_ret"]) == 2
    err = capsys.readouterr().err
    assert "needs its weights" in err or "catalogue only" in err


def test_plan_ids_are_stable_and_distinct(store):
    a = plan_runs("fake_host", "fake_action,fake_ret", "finetune", seeds=[1, 2], overrides=SMALL, store_root=store)
    b = plan_runs("fake_host", "fake_action,fake_ret", "finetune", seeds=[1, 2], overrides=SMALL, store_root=store)
    assert [r.run_id for r in a] == [r.run_id for r in b] and len({r.run_id for r in a}) == 4
    # what does not change results does not change the identity; what does, does
    c = plan_runs("fake_host", "fake_action", "finetune", seeds=[1], store_root=store,
                  overrides=[*SMALL, "run.progress=true", "launch.executor=local"])
    d = plan_runs("fake_host", "fake_action", "finetune", seeds=[1], store_root=store,
                  overrides=[*SMALL, "finetune.lr=0.5"])
    assert c[0].run_id == a[0].run_id and d[0].run_id != a[0].run_id
    assert a[0].task_info["task_type"] == "action_recognition" and a[0].to_dict()["finsta"] is False


def test_validate_prints_runs(capsys, store):
    assert main(["validate", "--host", "fake_host", "--task", "fake_action", "--seeds", "1,2", "--store", str(store),
                 *SMALL]) == 0
    out = capsys.readouterr().out
    assert out.count("ok  new") == 2 and "2 run(s) valid" in out


def test_plan_error_type():
    with pytest.raises(PlanError):
        plan_runs("fake_host", "fake_missing", "finetune")
