"""Loading and layering the run configuration (see :mod:`harness.config` for the layer order) and checking
its values (:func:`check_ranges`).

Range checks run at planning, before any compute: ``epochs=0`` would train one step, ``lr=-1`` ascends,
``data.limit=-1`` silently drops a sample and a batch size of 0 divides by zero late in a job; all of them are
refused with one line naming the key.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from harness.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent

# Maps that accept any key (their contents are validated elsewhere).
OPEN_MAPS = ("finsta", "host.options", "task.options", "data.roots", "posttrain.data_options",
             "pretrain.loss_weights", "posttrain.corpus")

# Keys that do not change a run's result; left out of the run identity (hash of the run folder name).
IDENTITY_EXCLUDE = ("launch", "store", "run.seeds", "run.device", "run.progress", "run.log_every",
                    "run.ckpt_every", "run.eval_batch_size",
                    "run.max_failed_fraction", "data.num_workers", "data.roots", "task.root",
                    "host.checkpoint", "posttrain.corpus", "posttrain.sg_store")
# (the paths above enter the identity as fingerprints of what they point to: RunSpec.resolved["inputs"])


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys, got {type(data).__name__}")
    return data


def _is_open(path: str) -> bool:
    return any(path == m or path.startswith(m + ".") for m in OPEN_MAPS)


def _type_name(x: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a mapping"}.get(type(x), type(x).__name__)


def _check_layer(base: dict[str, Any], layer: dict[str, Any], source: str, prefix: str = "") -> None:
    """Refuse keys of ``layer`` unknown to ``base`` and values of the wrong type (one-line errors)."""
    for key, value in layer.items():
        path = f"{prefix}{key}"
        if _is_open(prefix.rstrip(".")) or _is_open(path):
            continue
        if not isinstance(base, dict) or key not in base:
            known = sorted(base) if isinstance(base, dict) else []
            close = difflib.get_close_matches(str(key), known, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(prefix + c) for c in close)}?" if close else ""
            raise ConfigError(f"{source}: unknown config key '{path}'{hint}")
        old = base[key]
        if isinstance(old, dict):
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{path}' is a section; got {_type_name(value)} {value!r}")
            _check_layer(old, value, source, path + ".")
            continue
        if old is None or value is None or old == "???":
            continue
        ok = (isinstance(value, type(old)) and not (isinstance(value, bool) and not isinstance(old, bool))) or (
            isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            raise ConfigError(f"{source}: '{path}' expects {_type_name(old)}, got {value!r}")


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """``["finetune.epochs=3", "finsta.rho_osc=0.5"]`` -> nested dict (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip().lstrip("+")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"bad override {item!r}: expected key=value, e.g. finetune.epochs=5")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            raise ConfigError(f"bad override {item!r}: the value is not valid YAML") from None
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"bad override {item!r}: '{part}' was already given a value")
            node = nxt
        node[parts[-1]] = value
    return out


def _merge(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(host: str, task: str, mode: str = "finetune", *, task_family: str | None = None,
                experiment: str | Path | None = None, overrides: Sequence[str] = (),
                preset: str | None = None, config_dir: str | Path = CONFIG_DIR) -> DictConfig:
    """The resolved, layered config of one (host, task, mode) run.

    Args:
        host: host name (``arch`` or ``arch.tag``); selects ``hosts/<arch>.yaml``.
        task: task name; selects ``tasks/<task>.yaml``.
        mode: ``posttrain | finetune | zeroshot | pretrain``; selects ``modes/<mode>.yaml``.
        task_family: ``TaskType.family`` of the task; selects ``tasks/<family>.yaml``.
        experiment: optional YAML file with any subset of the keys.
        overrides: ``key=value`` strings (highest priority).
        preset: preset name; ``preset=`` in ``overrides`` or the experiment file wins over it.

    Raises:
        ConfigError: unknown key, wrong value type, bad YAML, unknown preset or mode.
    """
    root = Path(config_dir)
    cfg = _read_yaml(root / "defaults.yaml")
    cli = parse_overrides(overrides)
    exp: dict[str, Any] = {}
    if experiment is not None:
        path = Path(experiment)
        if not path.is_file():
            raise ConfigError(f"experiment config file not found: {path}")
        exp = _read_yaml(path)
    name = cli.get("preset", exp.get("preset", preset or cfg.get("preset", "paper")))
    preset_file = root / "presets" / f"{name}.yaml"
    if not preset_file.is_file():
        known = sorted(p.stem for p in (root / "presets").glob("*.yaml"))
        raise ConfigError(f"unknown preset {name!r} (known: {', '.join(known)})")
    if not (root / "modes" / f"{mode}.yaml").is_file():
        known = sorted(p.stem for p in (root / "modes").glob("*.yaml"))
        raise ConfigError(f"unknown mode {mode!r} (known: {', '.join(known)})")
    layers: list[tuple[Path | str, dict[str, Any]]] = [(preset_file, _read_yaml(preset_file))]
    candidates = [root / "hosts" / f"{host.partition('.')[0]}.yaml"]
    if task_family:
        candidates.append(root / "tasks" / f"{task_family}.yaml")
    candidates += [root / "tasks" / f"{task}.yaml", root / "modes" / f"{mode}.yaml"]
    layers += [(p, _read_yaml(p)) for p in candidates if p.is_file()]
    layers.append(("--host/--task/--mode", {"host": {"name": host}, "task": {"name": task}, "mode": mode}))
    if exp:
        layers.append((Path(experiment), exp))  # type: ignore[arg-type]
    if cli:
        layers.append(("command line", cli))
    for source, layer in layers:
        _check_layer(cfg, layer, str(source))
        cfg = _merge(cfg, layer)
    if cfg.get("mode") != mode:
        raise ConfigError(f"'mode' is set by --mode, not by a config layer (got {cfg.get('mode')!r})")
    conf = OmegaConf.create(cfg)
    try:
        OmegaConf.resolve(conf)
    except Exception as err:  # noqa: BLE001 - interpolation errors, re-raised as one line
        raise ConfigError(f"config interpolation failed: {err}".splitlines()[0]) from None
    OmegaConf.set_struct(conf, True)
    for path in OPEN_MAPS:
        node = OmegaConf.select(conf, path)
        if isinstance(node, DictConfig):
            OmegaConf.set_struct(node, False)
    return conf


def to_container(cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """Plain, resolved ``dict`` (what is saved with a run and hashed)."""
    if isinstance(cfg, dict):
        return copy.deepcopy(cfg)
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def identity_view(cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """The config minus :data:`IDENTITY_EXCLUDE` (keys that do not change results)."""
    out = to_container(cfg)
    for path in IDENTITY_EXCLUDE:
        *parents, leaf = path.split(".")
        node: Any = out
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return out


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
RANGES["posttrain.stage2.teacher_lr"] = (0, False, math.inf, True,
                                         "stage-2 Finsta learning rate except the TRS projector (0 = fixed teacher)")


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
