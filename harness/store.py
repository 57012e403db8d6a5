"""The results store: one folder per run, named by a hash of what defines the run.

Layout of ``<root>/<run_id>/`` (every file written atomically: temp file in the same folder, then
``os.replace``, so a crash leaves either the old or the new file, never half of one; files get the
umask's mode, 0644 usually, so a shared store is readable by the group):

* ``spec.json``       what the run is: host, task, mode, seed, labels (sweep, ablation), task facts, resolved inputs;
* ``config.yaml``     the resolved config;
* ``status.json``     ``{"state": pending|running|finished|failed, "attempts", "error", "updated", "pid",
  "hostname", ...}``;
* ``heartbeat``       the time a running job last said it was alive (every :data:`HEARTBEAT_S` seconds);
* ``lock``            held (``flock``) by the process executing the run: a second process does not run it;
* ``env.json``        git commit and dirty flag, package versions, hardware;
* ``metrics.json``    ``{"schema": 2, "task_version", "evaluations": [{"mode", "split", "metrics",
  "higher_is_better", "n_samples", "n_failed", "notes"}]}``;
* ``samples.jsonl``   per-sample records: id, target, prediction, per-sample metrics;
* ``predictions.jsonl`` raw per-sample predictions (the conventions' formats), one JSON object per line;
* ``timings.json``    wall seconds per phase; ``cost.json`` parameter counts, peak memory;
* ``log.txt``         the run's log; ``checkpoint/`` training state (resume), ``host.safetensors``
  (post-trained host, without Finsta).

A run counts as finished only when ``status.json`` says so (written last) *and* its ``metrics.json`` is
readable; a "running" run whose process is gone (same host, pid dead) or whose heartbeat is older than
:data:`STALE_AFTER_S` is reported as ``dead``.
"""

from __future__ import annotations

import errno
import json
import math
import os
import platform
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from finsta_core.io import atomic_write_bytes, atomic_write_text
from harness.errors import StoreError

__all__ = ["FRAME_COLUMNS", "HEARTBEAT_S", "STALE_AFTER_S", "RunLock", "RunStore", "atomic_write_bytes",
           "atomic_write_json", "atomic_write_text", "check_store_root", "env_info", "load_frame"]

FRAME_COLUMNS = ["run_id", "host", "finsta", "task", "task_type", "dataset", "mode", "split", "metric", "value",
                 "seed", "n_samples", "n_failed", "protocol", "ablation", "sweep", "sweep_param", "sweep_value",
                 "status"]
STATES = ("pending", "running", "finished", "failed")
HEARTBEAT_S = 30.0  # a running job touches <run>/heartbeat this often
STALE_AFTER_S = 15 * 60.0  # a "running" run without a heartbeat for this long is reported dead
_PACKAGES = ("finsta", "torch", "torchvision", "numpy", "pandas", "omegaconf", "submitit",
             "pycocoevalcap", "transformers", "spacy", "av", "torch_geometric")


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _publish(path: Path) -> Path:
    """Give a freshly written result file the umask's mode (atomic writes create 0600 temp files)."""
    try:
        os.chmod(path, _umask_mode())
    except OSError:  # pragma: no cover - a store on a file system without modes
        pass
    return path


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")
    _publish(Path(path))


def _json_default(x: Any) -> Any:
    if hasattr(x, "tolist"):
        return x.tolist()
    if isinstance(x, (set, frozenset, tuple)):
        return list(x)
    return str(x)


def _read_json(path: Path) -> Any | None:
    """The parsed file, or None when it does not exist; :class:`StoreError` naming it when it is corrupt."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise StoreError(f"{path}: cannot be read ({err})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise StoreError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}); a crashed write or a "
                         "hand edit? delete the run folder or re-run with --force") from None


def check_store_root(root: str | Path) -> Path:
    """``root`` as a store folder to write to: refuses a path that is, or lies under, a regular file."""
    path = Path(root)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                what = "is a file" if p == path else f"lies under the file {p}"
                raise StoreError(f"results store {path} {what}: pass --store DIR (a folder)")
            break
    return path


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError as err:  # pragma: no cover
        return err.errno != errno.ESRCH
    return True


class RunLock:
    """Exclusive lock of one run folder (``<run>/lock``, ``fcntl.flock``): at most one process executes a run.

    The kernel drops the lock when its process dies, so a killed run never blocks its re-run.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False when another process holds it."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, _umask_mode())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """``"<pid> <hostname>"`` of the last process that took the lock ("" if none)."""
        try:
            return self.path.read_text().strip()
        except OSError:
            return ""

    def held_elsewhere(self) -> bool:
        """Whether another process holds the lock now (the run is alive). Read-only: works on a store this
        user cannot write (a shared store); False when it cannot tell."""
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)  # closing drops the probe's shared lock
        return False

    def release(self) -> None:
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class RunStore:
    """Folder-per-run store under ``root`` (default ``results/runs``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def run_dir(self, run_id: str) -> Path:
        return self.root / run_id

    # -- status ----------------------------------------------------------------------------------
    def status(self, run_id: str) -> dict[str, Any] | None:
        """The run's status dict, or None if the run was never created.

        Raises:
            StoreError: ``status.json`` is corrupt (not JSON, or not a mapping with a known ``state``).
        """
        path = self.run_dir(run_id) / "status.json"
        st = _read_json(path)
        if st is None:
            return None
        if not isinstance(st, dict) or st.get("state") not in STATES:
            raise StoreError(f"{path}: not a run status (expected a mapping with state "
                             f"{'|'.join(STATES)}, got {str(st)[:60]!r})")
        return st

    def state(self, run_id: str) -> str | None:
        st = self.status(run_id)
        return st.get("state") if st else None

    def set_status(self, run_id: str, state: str, **extra: Any) -> dict[str, Any]:
        if state not in STATES:
            raise ValueError(f"unknown run state {state!r} (states: {', '.join(STATES)})")
        try:
            old = self.status(run_id) or {}
        except StoreError:  # a corrupt status is replaced
            old = {}
        new = {**old, **extra, "state": state, "run_id": run_id, "updated": time.time()}
        if state == "running" and old.get("state") != "running":
            new["attempts"] = int(old.get("attempts", 0)) + 1
        if state != "failed":
            new.pop("error", None)
        atomic_write_json(self.run_dir(run_id) / "status.json", new)
        return new

    def heartbeat(self, run_id: str) -> None:
        """Say the run is alive (a running job calls this every :data:`HEARTBEAT_S` seconds)."""
        path = self.run_dir(run_id) / "heartbeat"
        atomic_write_text(path, f"{time.time():.3f}\n")
        _publish(path)

    def liveness(self, run_id: str, st: dict[str, Any]) -> str:
        """For a ``running`` status: ``""`` when the run looks alive, else why it is dead (one phrase)."""
        if st.get("state") != "running":
            return ""
        run_dir = self.run_dir(run_id)
        if RunLock(run_dir).held_elsewhere():
            return ""
        pid, host = st.get("pid"), st.get("hostname")
        if host == socket.gethostname() and isinstance(pid, int) and not _pid_alive(pid):
            return f"its process {pid} on {host} is gone"
        try:
            beat = float((run_dir / "heartbeat").read_text())
        except (OSError, ValueError):
            beat = float(st.get("updated") or 0.0)
        age = time.time() - beat
        if age > STALE_AFTER_S:
            return f"no heartbeat for {age / 60:.0f} min (pid {pid} on {host})"
        return ""

    def effective_state(self, run_id: str) -> tuple[str, str]:
        """``(state, problem)``: the stored state corrected by what is on disk.

        ``finished`` needs a readable ``metrics.json`` (else ``incomplete``); ``running`` needs a live process
        (else ``dead``); a corrupt file gives ``corrupt``. ``problem`` says why in one line ("" when fine).
        """
        try:
            st = self.status(run_id)
        except StoreError as err:
            return "corrupt", str(err)
        if st is None:
            return "new", ""
        state = str(st["state"])
        if state == "finished":
            try:
                self.metrics(run_id)
            except StoreError as err:
                return "incomplete", str(err)
        if state == "running":
            why = self.liveness(run_id, st)
            if why:
                return "dead", f"status says running but {why}; re-run it"
        return state, str(st.get("error", "") or "")

    def is_finished(self, run_id: str) -> bool:
        return self.effective_state(run_id)[0] == "finished"

    # -- files -----------------------------------------------------------------------------------
    def write_json(self, run_id: str, name: str, obj: Any) -> Path:
        path = self.run_dir(run_id) / name
        atomic_write_json(path, obj)
        return path

    def read_json(self, run_id: str, name: str) -> Any | None:
        """The parsed file (None when absent); :class:`StoreError` naming the file when corrupt."""
        return _read_json(self.run_dir(run_id) / name)

    def metrics(self, run_id: str) -> dict[str, Any]:
        """``metrics.json`` of a run, checked: a mapping whose ``evaluations`` is a list of mappings.

        Raises:
            StoreError: missing, corrupt or malformed (naming the file and the field).
        """
        path = self.run_dir(run_id) / "metrics.json"
        m = _read_json(path)
        if m is None:
            raise StoreError(f"{path}: missing (the run did not write its metrics)")
        evs = m.get("evaluations") if isinstance(m, dict) else None
        if not isinstance(evs, list):
            raise StoreError(f"{path}: field 'evaluations' must be a list")
        for i, ev in enumerate(evs):
            if not isinstance(ev, dict) or not isinstance(ev.get("metrics", {}), dict):
                raise StoreError(f"{path}: evaluations[{i}] must be a mapping with a 'metrics' mapping")
        return m

    def write_text(self, run_id: str, name: str, text: str) -> Path:
        path = self.run_dir(run_id) / name
        atomic_write_text(path, text)
        return _publish(path)

    def write_jsonl(self, run_id: str, name: str, records: Iterable[dict[str, Any]]) -> Path:
        lines = [json.dumps(p, sort_keys=True, default=_json_default) for p in records]
        return self.write_text(run_id, name, "\n".join(lines) + ("\n" if lines else ""))

    def write_predictions(self, run_id: str, predictions: Iterable[dict[str, Any]],
                          name: str = "predictions.jsonl") -> Path:
        return self.write_jsonl(run_id, name, predictions)

    def read_predictions(self, run_id: str, name: str = "predictions.jsonl") -> list[dict[str, Any]]:
        path = self.run_dir(run_id) / name
        out = []
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise StoreError(f"{path}: line {i}: not valid JSON ({err.msg})") from None
        return out

    def run_ids(self) -> list[str]:
        """Runs with a ``spec.json`` (temp files and stray folders are ignored)."""
        if not self.root.exists():
            return []
        if not self.root.is_dir():
            raise StoreError(f"results store {self.root} is not a folder: pass --store DIR")
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and (p / "spec.json").is_file())

    def iter_runs(self) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
        """``(run_id, spec, status)`` for every run; the status carries the effective state (see
        :meth:`effective_state`) and, for a corrupt or dead run, ``problem``."""
        for run_id in self.run_ids():
            try:
                spec = self.read_json(run_id, "spec.json")
            except StoreError as err:
                spec, problem = {}, str(err)
            else:
                problem = "" if isinstance(spec, dict) else f"{self.run_dir(run_id) / 'spec.json'}: not a mapping"
            if problem:
                yield run_id, {}, {"state": "corrupt", "problem": problem}
                continue
            state, why = self.effective_state(run_id)
            try:
                st = self.status(run_id) or {}
            except StoreError:
                st = {}
            yield run_id, spec, {**st, "state": state, "problem": why if state != st.get("state") else ""}


def _cost_rows(store: RunStore, run_id: str, spec: dict[str, Any], base: dict[str, Any]) -> list[dict[str, Any]]:
    """Table 9 rows of a finished pretrain / posttrain run: parameters (M) trained, training pairs (M) and
    device hours (wall time of the run; a CPU hour on CPU), from ``cost.json`` and ``timings.json``."""
    if base["status"] != "finished" or spec.get("mode") not in ("pretrain", "posttrain"):
        return []
    try:
        cost = store.read_json(run_id, "cost.json")
        timings = store.read_json(run_id, "timings.json") or {}
    except StoreError:
        return []
    if not isinstance(cost, dict) or not isinstance(timings, dict):
        return []
    values = {"params_m": (cost.get("params_host", 0) + cost.get("params_finsta", 0)) / 1e6,
              "data_m": cost.get("posttrain_pairs", 0) / 1e6, "gpu_hours": timings.get("total_s", float("nan")) / 3600}
    cost_base = {**base, "task_type": "cost", "finsta": spec.get("mode") == "posttrain"}
    return [{**cost_base, "mode": "cost", "split": "", "metric": k, "value": float(v), "n_samples": float("nan"),
             "n_failed": float("nan")} for k, v in values.items()]


def _value(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def load_frame(root: str | Path) -> Any:
    """Tidy ``pandas.DataFrame`` of every run under ``root`` with :data:`FRAME_COLUMNS` (one row per metric).

    Finished runs give one row per (evaluation, metric); a metric stored as NaN or inf keeps its row (the
    tables show it as not a number instead of dropping the column). Runs that are not finished (or whose
    metrics file is unreadable: ``incomplete``; corrupt files: ``corrupt``; running without a live process:
    ``dead``) give one row with an empty ``metric``, a NaN ``value`` and their ``status``, so that
    ``harness status`` and the tables can count them without treating them as results.
    """
    import pandas as pd

    store = RunStore(root)
    rows: list[dict[str, Any]] = []
    for run_id, spec, st in store.iter_runs():
        base = {"run_id": run_id, "host": spec.get("host", ""), "finsta": bool(spec.get("finsta", False)),
                "task": spec.get("task", ""), "task_type": spec.get("task_type", ""),
                "dataset": spec.get("dataset", ""), "seed": spec.get("seed"), "protocol": spec.get("protocol", ""),
                "ablation": spec.get("ablation", "") or "", "sweep": spec.get("sweep", "") or "",
                "sweep_param": spec.get("sweep_param", "") or "", "sweep_value": str(spec.get("sweep_value", "") or ""),
                "status": st.get("state", "unknown")}
        evaluations = store.metrics(run_id)["evaluations"] if base["status"] == "finished" else None
        rows += _cost_rows(store, run_id, spec, base)
        if not evaluations:
            rows.append({**base, "mode": spec.get("eval_mode", spec.get("mode", "")), "split": "", "metric": "",
                         "value": float("nan"), "n_samples": float("nan"), "n_failed": float("nan")})
            continue
        for ev in evaluations:
            for name, value in (ev.get("metrics") or {}).items():
                rows.append({**base, "mode": ev.get("mode", ""), "split": ev.get("split", ""), "metric": name,
                             "value": _value(value), "n_samples": _value(ev.get("n_samples", math.nan)),
                             "n_failed": _value(ev.get("n_failed", 0))})
    frame = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    return frame.astype({"finsta": bool}) if len(frame) else frame
