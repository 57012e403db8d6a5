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
