"""Finsta core: scene-graph types and batching, the GTrm / R-GTrm / STGD-GTrm encoders, OSC / PTC / TRS.

Public API (lazy: ``import finsta_core`` stays light for ``finsta_core.registry`` users)::

    FinstaConfig.preset("paper" | "small", **overrides)
    collate_graphs(list[HolisticSceneGraph]) -> GraphBatch
    Finsta(cfg, host_widths) ; Finsta.forward(graphs, host, stage, step, task_family) -> FinstaOutput
    loss_weights(cfg, stage, step, total_steps) -> {"osc", "ptc", "trs", "mlm", "vla"}
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "FinstaConfig": "finsta_core.config",
    "TRS_LAMBDAS": "finsta_core.config",
    "collate_graphs": "finsta_core.graphs.batch",
    "GraphBatch": "finsta_core.graphs.batch",
    "Finsta": "finsta_core.model",
    "FinstaOutput": "finsta_core.model",
    "loss_weights": "finsta_core.schedule",
    "HostOutputs": "finsta_core.interface",
    "EncoderOutput": "finsta_core.interface",
    "TokenStates": "finsta_core.interface",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'finsta_core' has no attribute {name!r}")
