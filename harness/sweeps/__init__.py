"""Named grids as data (``harness/sweeps/<name>.yaml``) and their planning.

A sweep file::

    name: fig12_align
    description: ...
    mode: posttrain                 # default mode of every group
    overrides: [posttrain.then=finetune]   # common config overrides
    groups:                         # host x task blocks (optional mode / overrides / variant per group)
      - {hosts: [hdvila], tasks: [k400, msrvtt_cap]}
    axes:                           # one-at-a-time axes: each varied alone, others at their defaults
      - {param: rho_osc, key: finsta.rho_osc, values: [0.5, 0.6, 0.7, 0.8, 0.9]}
    variants:                       # or named override sets (Table 8 rows; label = the ablation key)
      - {ablation: no_osc, overrides: [finsta.osc=false]}
    baseline: true                  # also plan the hosts' own fine-tune runs (the "w/o Finsta" row)

Axis runs are labelled ``sweep=<name>, sweep_param=<param>, sweep_value=<value>``; variant runs
``ablation=<key>`` (no sweep label: Table 8 reads them as the ablation grid).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError
from harness.plan import plan_runs
from harness.spec import RunSpec

__all__ = ["SWEEP_DIR", "list_sweeps", "load_sweep", "plan_sweep"]

SWEEP_DIR = Path(__file__).resolve().parent
_KEYS = {"name", "description", "mode", "overrides", "groups", "axes", "variants", "baseline", "seeds", "notes"}


def list_sweeps() -> list[str]:
    return sorted(p.stem for p in SWEEP_DIR.glob("*.yaml"))


def load_sweep(name_or_path: str | Path) -> dict[str, Any]:
    """Read and check a sweep definition (by name from ``harness/sweeps/`` or by path)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SWEEP_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown sweep {str(name_or_path)!r} (known: {', '.join(list_sweeps())})")
    data = yaml.safe_load(path.read_text()) or {}
    if data.get("kind") == "pipeline":  # a pipeline study (harness.claims checks its own keys)
        data.setdefault("name", path.stem)
        return data
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown sweep keys {unknown} (allowed: {sorted(_KEYS)})")
    if not data.get("groups"):
        raise ConfigError(f"{path}: a sweep needs at least one group of hosts and tasks")
    for i, g in enumerate(data["groups"]):
        if not g.get("hosts") or not g.get("tasks"):
            raise ConfigError(f"{path}: group {i} needs 'hosts' and 'tasks'")
    for i, a in enumerate(data.get("axes") or []):
        if not {"param", "key", "values"} <= set(a) or not a["values"]:
            raise ConfigError(f"{path}: axis {i} needs 'param', 'key' and a non-empty 'values' list")
    for i, v in enumerate(data.get("variants") or []):
        if "ablation" not in v:
            raise ConfigError(f"{path}: variant {i} needs an 'ablation' key ('' = the full model)")
    data.setdefault("name", path.stem)
    return data


def _fmt(v: Any) -> str:
    return yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()


def plan_sweep(name_or_path: str | Path, *, seeds: Sequence[int] | None = None, overrides: Sequence[str] = (),
               store_root: str | Path | None = None, check_files: bool = True) -> list[RunSpec]:
    """Every run of the sweep, planned and validated (duplicates removed, order kept)."""
    sw = load_sweep(name_or_path)
    if sw.get("kind") == "pipeline":
        raise ConfigError(f"sweep {sw['name']!r} is a pipeline study, not a grid: run `python -m harness sweep "
                          f"{sw['name']}` (harness.claims)")
    name, mode0 = str(sw["name"]), str(sw.get("mode", "posttrain"))
    common = [*(sw.get("overrides") or []), *overrides]
    seeds = seeds if seeds is not None else sw.get("seeds")
    points: list[tuple[list[str], dict[str, str], str | None]] = []  # (overrides, labels, mode)
    for axis in sw.get("axes") or []:
        for value in axis["values"]:
            points.append(([f"{axis['key']}={_fmt(value)}"],
                           {"sweep": name, "sweep_param": str(axis["param"]), "sweep_value": _fmt(value)}, None))
    for var in sw.get("variants") or []:
        points.append((list(var.get("overrides") or []), {"ablation": str(var["ablation"])}, None))
    if not points:
        points.append(([], {"sweep": name}, None))
    if sw.get("baseline"):
        points.append(([], {"sweep": name} if sw.get("axes") else {}, "finetune"))
    runs: list[RunSpec] = []
    seen: set[str] = set()
    for group in sw["groups"]:
        for extra, labels, mode in points:
            for r in plan_runs(group["hosts"], group["tasks"], mode or group.get("mode", mode0), seeds=seeds,
                               overrides=[*common, *(group.get("overrides") or []), *extra], store_root=store_root,
                               check_files=check_files, labels=labels):
                if r.run_id not in seen:
                    seen.add(r.run_id)
                    runs.append(r)
    return runs
