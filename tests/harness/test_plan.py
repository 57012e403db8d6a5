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
     "missing checkpoint of host 'fake_host': /nope/w.pt"),
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
    assert "needs its checkpoint" in err or "catalogue only" in err


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


# -- run identity: a changed input never reuses an old result (issue 15 "stale results", issue 11) ----------
def _ids(store, *overrides, task="fake_action", mode="finetune"):
    return [r.run_id for r in plan_runs("fake_host", task, mode, seeds=[1], overrides=[*SMALL, *overrides],
                                        store_root=store)]


def test_changed_checkpoint_changes_run_id(tmp_path, store):
    import os

    ckpt = tmp_path / "w.pt"
    ckpt.write_bytes(b"weights-v1")
    a = _ids(store, f"host.checkpoint={ckpt}")
    assert a == _ids(store, f"host.checkpoint={ckpt}")  # stable while the file is unchanged
    ckpt.write_bytes(b"weights-v2!")  # retrained / re-downloaded
    assert _ids(store, f"host.checkpoint={ckpt}") != a
    st = ckpt.stat()
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same size, touched
    assert _ids(store, f"host.checkpoint={ckpt}") != a
    d = tmp_path / "hf"  # a directory checkpoint (HF layout): a changed file inside changes the id too
    d.mkdir()
    (d / "model.safetensors").write_bytes(b"x" * 8)
    b = _ids(store, f"host.checkpoint={d}")
    (d / "model.safetensors").write_bytes(b"y" * 9)
    assert _ids(store, f"host.checkpoint={d}") != b


def test_changed_dataset_root_and_annotations_change_run_id(tmp_path, store):
    import os

    roots = []
    for name in ("a", "b"):
        root = tmp_path / name
        root.mkdir()
        for split in ("train", "test"):
            (root / f"{split}.json").write_text('{"v": 1}')
        roots.append(root)
    a = _ids(store, f"task.root={roots[0]}", task="fake_missing")
    assert a != _ids(store, f"task.root={roots[1]}", task="fake_missing")
    ann = roots[0] / "test.json"
    st = ann.stat()
    ann.write_text('{"v": 2}')  # same size, and the same mtime: only the content differs
    os.utime(ann, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _ids(store, f"task.root={roots[0]}", task="fake_missing") != a


def test_rerun_with_changed_checkpoint_is_not_skipped(tmp_path, store):
    from harness.launch import submit
    from hosts.registry import create_host

    ckpt = tmp_path / "host.safetensors"
    create_host("fake_host").save(ckpt)
    over = [*SMALL, f"host.checkpoint={ckpt}"]
    runs = plan_runs("fake_host", "fake_mc", "zeroshot", seeds=[1], overrides=over, store_root=store)
    assert [r.state for r in submit(runs, "inline")] == ["finished"]
    assert [r.state for r in submit(runs, "inline")] == ["skipped"]
    create_host("fake_host").save(ckpt)  # new weights at the same path
    again = plan_runs("fake_host", "fake_mc", "zeroshot", seeds=[1], overrides=over, store_root=store)
    assert again[0].run_id != runs[0].run_id
    assert [r.state for r in submit(again, "inline")] == ["finished"]


def test_validate_refuses_a_host_whose_code_cannot_import(capsys):
    from hosts.base import HostSpec
    from hosts.registry import HOSTS

    HOSTS.register("fake_broken", HostSpec("fake_broken", True, True, False, frozenset({"retrieval"}),
                                           factory="no_such_pkg.hosts:build", status="implemented"), overwrite=True)
    assert main(["validate", "--host", "fake_broken", "--task", "fake_ret", *SMALL]) == 2
    err = capsys.readouterr().err
    assert "its code cannot be imported" in err and "no_such_pkg" in err and err.count("\n") == 1


def test_strict_mode_hint_names_a_real_flag(store):
    """The loaders' strict-mode hint says `task.strict=false`: that key exists and reaches the task."""
    import inspect

    import tasks.datasets.common as common

    assert "task.strict=false" in inspect.getsource(common)
    (run,) = plan_runs("fake_host", "fake_action", "finetune", seeds=[1], overrides=[*SMALL, "task.strict=false"],
                       store_root=store)
    assert run.config["task"]["strict"] is False
    (strict,) = plan_runs("fake_host", "fake_action", "finetune", seeds=[1], overrides=SMALL, store_root=store)
    assert strict.run_id != run.run_id  # lenient loading may keep fewer samples: another run
