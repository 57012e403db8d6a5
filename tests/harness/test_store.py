"""Results store: atomic files, status transitions, tidy frame, half-written files never read as results."""

from __future__ import annotations

import json
import os

import pytest

from harness.store import FRAME_COLUMNS, RunStore, atomic_write_json, env_info, load_frame


def _run(store: RunStore, run_id: str, state: str, metrics: dict | None = None, **spec):
    store.write_json(run_id, "spec.json", {"host": "h", "task": "t", "task_type": "retrieval", "dataset": "d",
                                           "mode": "finetune", "seed": 1, "finsta": False, **spec})
    if metrics is not None:
        store.write_json(run_id, "metrics.json", {"evaluations": [{"mode": "finetune", "split": "test",
                                                                   "metrics": metrics, "n_samples": 9}]})
    store.set_status(run_id, state)


def test_atomic_write_keeps_old_file_on_crash(tmp_path, monkeypatch):
    path = tmp_path / "status.json"
    atomic_write_json(path, {"state": "running"})

    def boom(src, dst):
        raise OSError("disk died")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_json(path, {"state": "finished"})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"state": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temp file left behind


def test_status_transitions(tmp_path):
    s = RunStore(tmp_path)
    s.set_status("r", "pending")
    assert s.set_status("r", "running")["attempts"] == 1
    assert s.set_status("r", "failed", error="boom")["error"] == "boom"
    st = s.set_status("r", "running")
    assert st["attempts"] == 2 and "error" not in st
    with pytest.raises(ValueError, match="unknown run state"):
        s.set_status("r", "weird")


def test_load_frame(tmp_path):
    s = RunStore(tmp_path)
    _run(s, "a", "finished", {"R@1": 10.0, "R@5": 30.0}, sweep="fig12", sweep_param="rho_osc", sweep_value=0.5)
    _run(s, "b", "failed")
    _run(s, "c", "finished")  # finished but metrics missing: incomplete, not a result
    (tmp_path / "c" / "metrics.json").write_text('{"evaluations": [')  # half-written
    (tmp_path / ".tmp-x").mkdir()  # stray temp folder
    f = load_frame(tmp_path)
    assert list(f.columns) == FRAME_COLUMNS
    a = f[f.run_id == "a"]
    assert sorted(a.metric) == ["R@1", "R@5"] and set(a.status) == {"finished"} and a.finsta.dtype == bool
    assert a.iloc[0].sweep_value == "0.5" and a.iloc[0].n_samples == 9
    assert f[f.run_id == "b"].iloc[0].status == "failed" and f[f.run_id == "b"].value.isna().all()
    assert f[f.run_id == "c"].iloc[0].status == "incomplete"
    assert load_frame(tmp_path / "none").columns.tolist() == FRAME_COLUMNS


def test_predictions_roundtrip_and_env(tmp_path):
    s = RunStore(tmp_path)
    preds = [{"id": "x", "scores": [0.1, 0.2]}, {"id": "y", "error": "unreadable"}]
    s.write_predictions("r", preds)
    assert s.read_predictions("r") == preds
    env = env_info()
    assert {"git_commit", "git_dirty", "packages", "hardware", "python"} <= set(env)
    assert "torch" in env["packages"]


# -- store states that used to lie (issue 15) ------------------------------------------------------------
def test_half_written_metrics_is_not_finished_and_is_rerun(tmp_path):
    s = RunStore(tmp_path)
    _run(s, "a", "finished", {"R@1": 1.0})
    assert s.effective_state("a") == ("finished", "")
    (tmp_path / "a" / "metrics.json").write_text('{"evaluations": [{"mode": "fin')  # crash mid-write
    state, why = s.effective_state("a")
    assert state == "incomplete" and "metrics.json" in why and not s.is_finished("a")


def test_killed_run_is_dead_not_running_forever(tmp_path):
    import socket
    import subprocess
    import sys

    s = RunStore(tmp_path)
    _run(s, "a", "running")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    s.set_status("a", "running", pid=int(gone.stdout), hostname=socket.gethostname())  # its process was killed
    state, why = s.effective_state("a")
    assert state == "dead" and "is gone" in why
    s.set_status("a", "running", pid=os.getpid(), hostname=socket.gethostname())  # alive: still running
    assert s.effective_state("a")[0] == "running"
    s.set_status("a", "running", pid=1, hostname="another-node", updated=0.0)  # elsewhere, no heartbeat for long
    (tmp_path / "a" / "heartbeat").write_text("0\n")
    assert s.effective_state("a")[0] == "dead"


def test_corrupt_status_and_metrics_are_reported_not_tracebacks(tmp_path, capsys):
    from harness.cli import main

    s = RunStore(tmp_path)
    _run(s, "a", "finished", {"R@1": 1.0})
    _run(s, "b", "finished", {"R@1": 2.0})
    (tmp_path / "a" / "status.json").write_text("{not json")
    (tmp_path / "b" / "metrics.json").write_text('{"evaluations": "oops"}')
    assert main(["status", "--store", str(tmp_path), "--all"]) == 0
    out = capsys.readouterr().out
    assert "1 corrupt" in out and "1 incomplete" in out and "status.json: not valid JSON" in out
    f = load_frame(tmp_path)
    assert set(f.status) == {"corrupt", "incomplete"}
    from harness.errors import StoreError

    with pytest.raises(StoreError, match="status.json: not valid JSON"):
        s.status("a")
    with pytest.raises(StoreError, match="'evaluations' must be a list"):
        s.metrics("b")


def test_store_under_a_file_is_one_line_error(tmp_path, capsys):
    from harness.cli import main

    afile = tmp_path / "results.txt"
    afile.write_text("x")
    assert main(["status", "--store", str(afile)]) == 2
    assert capsys.readouterr().err.startswith("error: results store")
    assert main(["run", "--host", "fake_host", "--task", "fake_mc", "--mode", "zeroshot", "--seeds", "1",
                 "--executor", "inline", "--store", str(afile / "runs"), "preset=small", "run.progress=false"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: results store") and "lies under the file" in err and err.count("\n") == 1


def test_result_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        s = RunStore(tmp_path)
        _run(s, "a", "finished", {"R@1": 1.0})
        s.write_predictions("a", [{"id": "x"}])
    finally:
        os.umask(old)
    for name in ("spec.json", "status.json", "metrics.json", "predictions.jsonl"):
        assert (tmp_path / "a" / name).stat().st_mode & 0o777 == 0o644, name


def test_run_lock_refuses_a_second_process(tmp_path):
    from harness.store import RunLock

    first = RunLock(tmp_path / "a")
    assert first.acquire()
    assert RunLock(tmp_path / "a").held_elsewhere() and not RunLock(tmp_path / "a").acquire()
    first.release()
    assert RunLock(tmp_path / "a").acquire()
