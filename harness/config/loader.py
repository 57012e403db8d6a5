"""Loading and layering the run configuration; see :mod:`harness.config` for the layer order."""

from __future__ import annotations

import copy
import difflib
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
