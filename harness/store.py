"""The results store: one folder per run, named by a hash of what defines the run.

Layout of ``<root>/<run_id>/`` (every file written atomically: temp file in the same folder, then
``os.replace``, so a crash leaves either the old or the new file, never half of one):

* ``spec.json``       what the run is: host, task, mode, seed, labels (sweep, ablation), task facts;
* ``config.yaml``     the resolved config;
* ``status.json``     ``{"state": pending|running|finished|failed, "attempts", "error", "updated", ...}``;
* ``env.json``        git commit and dirty flag, package versions, hardware;
* ``metrics.json``    ``{"evaluations": [{"mode", "split", "metrics", "n_samples", "n_failed", "notes"}]}``;
* ``predictions.jsonl`` per-sample predictions (the conventions' formats), one JSON object per line;
* ``timings.json``    wall seconds per phase; ``cost.json`` parameter counts, peak memory;
* ``log.txt``         the run's log; ``checkpoint/`` training state (resume), ``host.safetensors``
  (post-trained host, without Finsta).

A run counts as finished only when ``status.json`` says so, and that is written last.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from finsta_core.io import atomic_write_bytes, atomic_write_text

__all__ = ["FRAME_COLUMNS", "RunStore", "atomic_write_bytes", "atomic_write_json", "atomic_write_text",
           "env_info", "load_frame"]

FRAME_COLUMNS = ["run_id", "host", "finsta", "task", "task_type", "dataset", "mode", "split", "metric", "value",
                 "seed", "n_samples", "protocol", "ablation", "sweep", "sweep_param", "sweep_value", "status"]
STATES = ("pending", "running", "finished", "failed")
_PACKAGES = ("finsta", "torch", "torchvision", "numpy", "pandas", "omegaconf", "submitit", "torchmetrics",
             "pycocoevalcap", "transformers", "spacy", "av", "torch_geometric")


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(x: Any) -> Any:
    if hasattr(x, "tolist"):
        return x.tolist()
    if isinstance(x, (set, frozenset, tuple)):
        return list(x)
    if isinstance(x, Path):
        return str(x)
    return str(x)


def _read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def env_info() -> dict[str, Any]:
    """Git commit and dirty flag, package versions, Python, platform and accelerators."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            try:
                versions[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
    status = _git("status", "--porcelain", "--untracked-files=no")
    hw: dict[str, Any] = {"platform": platform.platform(), "machine": platform.machine(),
                          "cpu_count": os.cpu_count(), "hostname": platform.node()}
    try:
        import torch

        hw["cuda"] = torch.cuda.is_available()
        if hw["cuda"]:
            hw["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            hw["cuda_version"] = torch.version.cuda
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return {"git_commit": _git("rev-parse", "HEAD"), "git_dirty": bool(status) if status is not None else None,
            "python": platform.python_version(), "packages": versions, "hardware": hw,
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


class RunStore:
    """Folder-per-run store under ``root`` (default ``results/runs``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def run_dir(self, run_id: str) -> Path:
        return self.root / run_id

    # -- status ----------------------------------------------------------------------------------
    def status(self, run_id: str) -> dict[str, Any] | None:
        """The run's status dict, or None if the run was never created (or its status is unreadable)."""
        return _read_json(self.run_dir(run_id) / "status.json")

    def state(self, run_id: str) -> str | None:
        st = self.status(run_id)
        return st.get("state") if isinstance(st, dict) else None

    def set_status(self, run_id: str, state: str, **extra: Any) -> dict[str, Any]:
        if state not in STATES:
            raise ValueError(f"unknown run state {state!r} (states: {', '.join(STATES)})")
        old = self.status(run_id) or {}
        new = {**old, **extra, "state": state, "run_id": run_id, "updated": time.time()}
        if state == "running" and old.get("state") != "running":
            new["attempts"] = int(old.get("attempts", 0)) + 1
        if state != "failed":
            new.pop("error", None)
        atomic_write_json(self.run_dir(run_id) / "status.json", new)
        return new

    # -- files -----------------------------------------------------------------------------------
    def write_json(self, run_id: str, name: str, obj: Any) -> Path:
        path = self.run_dir(run_id) / name
        atomic_write_json(path, obj)
        return path

    def read_json(self, run_id: str, name: str) -> Any | None:
        return _read_json(self.run_dir(run_id) / name)

    def write_text(self, run_id: str, name: str, text: str) -> Path:
        path = self.run_dir(run_id) / name
        atomic_write_text(path, text)
        return path

    def write_predictions(self, run_id: str, predictions: Iterable[dict[str, Any]],
                          name: str = "predictions.jsonl") -> Path:
        lines = [json.dumps(p, sort_keys=True, default=_json_default) for p in predictions]
        path = self.run_dir(run_id) / name
        atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
        return path

    def read_predictions(self, run_id: str, name: str = "predictions.jsonl") -> list[dict[str, Any]]:
        path = self.run_dir(run_id) / name
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def run_ids(self) -> list[str]:
        """Runs with a readable ``spec.json`` (temp files and stray folders are ignored)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and (p / "spec.json").is_file())

    def iter_runs(self) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
        """``(run_id, spec, status)`` for every run (status ``{"state": "unknown"}`` when unreadable)."""
        for run_id in self.run_ids():
            spec = self.read_json(run_id, "spec.json")
            if not isinstance(spec, dict):
                continue
            st = self.status(run_id)
            yield run_id, spec, st if isinstance(st, dict) else {"state": "unknown"}


def _cost_rows(store: RunStore, run_id: str, spec: dict[str, Any], base: dict[str, Any]) -> list[dict[str, Any]]:
    """Table 9 rows of a finished pretrain / posttrain run: parameters (M) trained, training pairs (M) and
    device hours (wall time of the run; a CPU hour on CPU), from ``cost.json`` and ``timings.json``."""
    cost = store.read_json(run_id, "cost.json") if base["status"] == "finished" else None
    if not isinstance(cost, dict) or spec.get("mode") not in ("pretrain", "posttrain"):
        return []
    timings = store.read_json(run_id, "timings.json") or {}
    values = {"params_m": (cost.get("params_host", 0) + cost.get("params_finsta", 0)) / 1e6,
              "data_m": cost.get("posttrain_pairs", 0) / 1e6, "gpu_hours": timings.get("total_s", float("nan")) / 3600}
    cost_base = {**base, "task_type": "cost", "finsta": spec.get("mode") == "posttrain"}
    return [{**cost_base, "mode": "cost", "split": "", "metric": k, "value": float(v), "n_samples": float("nan")}
            for k, v in values.items()]


def load_frame(root: str | Path) -> pd.DataFrame:
    """Tidy frame of every run under ``root`` with :data:`FRAME_COLUMNS` (one row per evaluated metric).

    Finished runs give one row per (evaluation, metric). Runs that are not finished (or whose metrics
    file is unreadable) give one row with an empty ``metric``, a NaN ``value`` and their ``status``, so
    that ``harness status`` and the tables can count them without treating them as results.
    """
    store = RunStore(root)
    rows: list[dict[str, Any]] = []
    for run_id, spec, st in store.iter_runs():
        base = {"run_id": run_id, "host": spec.get("host", ""), "finsta": bool(spec.get("finsta", False)),
                "task": spec.get("task", ""), "task_type": spec.get("task_type", ""),
                "dataset": spec.get("dataset", ""), "seed": spec.get("seed"), "protocol": spec.get("protocol", ""),
                "ablation": spec.get("ablation", "") or "", "sweep": spec.get("sweep", "") or "",
                "sweep_param": spec.get("sweep_param", "") or "", "sweep_value": str(spec.get("sweep_value", "") or ""),
                "status": st.get("state", "unknown")}
        metrics = store.read_json(run_id, "metrics.json") if base["status"] == "finished" else None
        evaluations = metrics.get("evaluations") if isinstance(metrics, dict) else None
        if base["status"] == "finished" and not isinstance(evaluations, list):
            base["status"] = "incomplete"
        rows += _cost_rows(store, run_id, spec, base)
        if not evaluations:
            rows.append({**base, "mode": spec.get("eval_mode", spec.get("mode", "")), "split": "", "metric": "",
                         "value": float("nan"), "n_samples": float("nan")})
            continue
        for ev in evaluations:
            for name, value in (ev.get("metrics") or {}).items():
                rows.append({**base, "mode": ev.get("mode", ""), "split": ev.get("split", ""), "metric": name,
                             "value": float(value) if value is not None else float("nan"),
                             "n_samples": ev.get("n_samples", float("nan"))})
    frame = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    return frame.astype({"finsta": bool}) if len(frame) else frame
