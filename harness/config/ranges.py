"""Range checks of a resolved config, at planning (before any compute): one line naming the key.

``epochs=0`` would train one step, ``lr=-1`` ascends, ``data.limit=-1`` silently drops a sample and a
batch size of 0 divides by zero late in a job; all of them are refused here.
"""

from __future__ import annotations

import math
from typing import Any

from harness.errors import ConfigError

__all__ = ["CHOICES", "RANGES", "check_ranges"]

# dotted key -> (lowest, strict, highest, nullable, why). strict: the value must be > lowest (else >= lowest).
RANGES: dict[str, tuple[float, bool, float, bool, str]] = {
    "data.limit": (1, False, math.inf, True, "number of samples kept per split (null = all)"),
    "data.num_workers": (0, False, math.inf, False, "data-loader worker processes"),
    "run.eval_batch_size": (1, False, math.inf, False, "evaluation batch size"),
    "run.ckpt_every": (1, False, math.inf, False, "optimizer steps between checkpoints"),
    "run.log_every": (1, False, math.inf, False, "optimizer steps between log lines"),
    "run.max_failed_fraction": (0, False, 1, False, "largest fraction of samples allowed to fail"),
    "run.threads": (1, False, math.inf, True, "torch threads per job (null = torch's default)"),
    "optim.weight_decay": (0, False, math.inf, False, "AdamW weight decay"),
    "optim.eps": (0, True, math.inf, False, "AdamW epsilon"),
    "optim.grad_clip": (0, False, math.inf, True, "max grad norm (0 disables)"),
    "finetune.epochs": (0, True, math.inf, False, "fine-tuning epochs"),
    "finetune.batch_size": (1, False, math.inf, False, "fine-tuning batch size"),
    "finetune.lr": (0, False, math.inf, False, "host learning rate (0 = frozen host)"),
    "finetune.head_lr": (0, True, math.inf, False, "task-head learning rate"),
    "finetune.warmup_epochs": (0, False, math.inf, False, "warm-up epochs"),
    "finetune.temperature": (0, True, math.inf, False, "InfoNCE temperature"),
    "finetune.max_new_tokens": (1, False, math.inf, False, "generated tokens"),
    "zeroshot.max_new_tokens": (1, False, math.inf, False, "generated tokens"),
    "posttrain.sg_node_missing_rate": (0, False, 1, False, "fraction of scene-graph nodes dropped (Table 12)"),
    "pretrain.epochs": (0, True, math.inf, False, "pre-training epochs"),
    "pretrain.batch_size": (1, False, math.inf, False, "pre-training batch size"),
    "pretrain.lr": (0, True, math.inf, False, "pre-training learning rate"),
    "pretrain.warmup_epochs": (0, False, math.inf, False, "warm-up epochs"),
}
for _stage in ("stage1", "stage2"):
    RANGES.update({
        f"posttrain.{_stage}.epochs": (0, True, math.inf, False, f"post-training {_stage} epochs"),
        f"posttrain.{_stage}.batch_size": (1, False, math.inf, False, f"post-training {_stage} batch size"),
        f"posttrain.{_stage}.lr": (0, True, math.inf, False, f"post-training {_stage} Finsta learning rate"),
        f"posttrain.{_stage}.warmup_epochs": (0, False, math.inf, False, f"post-training {_stage} warm-up epochs"),
    })
RANGES["posttrain.stage2.host_lr"] = (0, False, math.inf, False, "post-training host learning rate (0 = frozen)")


# dotted key -> allowed values
CHOICES: dict[str, tuple[str, ...]] = {
    "host.init": ("pretrained", "random"),
    "posttrain.then": ("finetune", "zeroshot", "none"),
    "optim.schedule": ("linear", "cosine", "constant"),
}


def _get(cfg: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def check_ranges(cfg: dict[str, Any]) -> None:
    """Refuse out-of-range values of :data:`RANGES` (and non-finite numbers) in a resolved config.

    Raises:
        ConfigError: ``'finetune.epochs' must be > 0 (fine-tuning epochs), got 0``.
    """
    for key, (low, strict, high, nullable, why) in RANGES.items():
        found, value = _get(cfg, key)
        if not found or (value is None and nullable):
            continue
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"'{key}' must be a number ({why}), got {value!r}")
        bad = (value <= low if strict else value < low) or value > high or math.isnan(value)
        if bad:
            rule = f"> {low:g}" if strict else f">= {low:g}"
            if high != math.inf:
                rule += f" and <= {high:g}"
            raise ConfigError(f"'{key}' must be {rule} ({why}), got {value!r}")
    for key, allowed in CHOICES.items():
        found, value = _get(cfg, key)
        if found and value not in allowed:
            raise ConfigError(f"'{key}' must be one of {', '.join(allowed)}, got {value!r}")
    seeds = cfg.get("run", {}).get("seeds")
    if isinstance(seeds, list) and (not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                          for s in seeds)):
        raise ConfigError(f"'run.seeds' must be a non-empty list of integers, got {seeds!r}")
