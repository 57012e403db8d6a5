"""The run spec: one planned run, everything a job needs, resolved once by :mod:`harness.plan`.

The harness runs one way: CLI -> plan -> :class:`RunSpec` -> job -> store -> report. Jobs read the spec
(never the planner): the task root and options, the checkpoint path and the post-training sources are
resolved at planning time and carried here, so a job never re-resolves them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.modes import get_mode
from harness.store import RunStore

__all__ = ["RunResult", "RunSpec", "write_run_files"]


@dataclass
class RunSpec:
    """One planned run: picklable (paths and plain data, no models).

    Attributes:
        run_id: ``<host>-<task>-<mode>-s<seed>-<digest>``; the digest hashes everything that defines the
            result, including the fingerprints in ``resolved["inputs"]``.
        config: the resolved config (``config.yaml``).
        task_info: task facts for the tables (type, dataset, protocol, version, fingerprint).
        resolved: what planning resolved once: ``task_root`` (str | None), ``task_options`` (dict),
            ``checkpoint`` (str | None: the file or directory the host loads), ``posttrain_task`` /
            ``posttrain_root`` / ``posttrain_options`` (post-training data), ``sources`` (post-training
            corpus and scene-graph store, contract C3) and ``inputs`` (fingerprints).
    """

    run_id: str
    host: str
    task: str
    mode: str
    seed: int
    config: dict[str, Any]
    store_root: str
    task_info: dict[str, Any] = field(default_factory=dict)
    ablation: str = ""
    sweep: str = ""
    sweep_param: str = ""
    sweep_value: str = ""
    resolved: dict[str, Any] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return Path(self.store_root) / self.run_id

    @property
    def finsta(self) -> bool:
        """Whether the evaluated host was post-trained with Finsta (the "Finsta-<host>" rows): a posttrain run, or a
        fine-tune / zero-shot run of a checkpoint that a posttrain run saved (``host.finsta_posttrained``)."""
        return self.mode == "posttrain" or bool(self.config.get("host", {}).get("finsta_posttrained", False))

    @property
    def eval_mode(self) -> str:
        """How the run is evaluated: finetune | zeroshot | none (posttrain follows ``posttrain.then``)."""
        return get_mode(self.mode).eval_mode(self.config)

    def to_dict(self) -> dict[str, Any]:
        """What goes into ``spec.json`` (the config goes to ``config.yaml``)."""
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("config", "task_info")}
        return {**d, **self.task_info, "finsta": self.finsta, "eval_mode": self.eval_mode}


@dataclass
class RunResult:
    """Outcome of one run (what ``harness.launch.submit`` returns per run)."""

    run_id: str
    state: str  # finished | failed | skipped | submitted
    run_dir: str
    metrics: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


def write_run_files(spec: RunSpec) -> None:
    """``spec.json`` and ``config.yaml`` of a planned run (idempotent, atomic)."""
    store = RunStore(spec.store_root)
    store.write_json(spec.run_id, "spec.json", spec.to_dict())
    store.write_text(spec.run_id, "config.yaml", yaml.safe_dump(spec.config, sort_keys=False))
