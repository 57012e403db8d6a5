"""Planning and validation: (hosts x tasks x seeds [x sweep points]) -> :class:`~harness.spec.RunSpec` list.

Planning resolves everything a job needs, once: the host spec and weight tag, the checkpoint (through the
hosts' own check, ``hosts.registry.resolve_checkpoint``: files and directories), the task with its data
root and options, the post-training data, and the fingerprints of every input a config only points to
(checkpoint, dataset root, annotation files; :mod:`harness.config.identity`), which enter the run id.
Jobs read the spec and never re-resolve.

Everything a user can get wrong is checked here, before any compute is spent, and reported as one line
(:class:`~harness.errors.PlanError` / :class:`~harness.errors.ConfigError`): unknown host, task or mode
(with suggestions), host/task capability mismatch (the mode registry :mod:`harness.modes`), catalogue-only
hosts, missing data files, missing / empty / unreadable checkpoints, out-of-range values, unknown Finsta
options, a Finsta config that cannot be imported.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from finsta_core.registry import RegistryError, UnknownNameError
from harness.config import check_ranges, identity_view, load_config, to_container
from harness.config.identity import checkpoint_fingerprint, files_fingerprint
from harness.errors import ConfigError, PlanError
from harness.modes import Mode, get_mode
from harness.spec import RunSpec

__all__ = ["RunSpec", "plan_runs", "split_names", "validate_finsta_options"]


def split_names(value: str | Sequence[str]) -> list[str]:
    """``"a,b"`` or ``["a", "b,c"]`` -> ``["a", "b", "c"]`` (duplicates removed, order kept)."""
    items = [value] if isinstance(value, str) else list(value)
    return list(dict.fromkeys(x.strip() for item in items for x in str(item).split(",") if x.strip()))


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s)[:40]


def _host_spec(name: str) -> tuple[Any, str]:
    from hosts.registry import get_spec, split_host_name

    try:
        spec = get_spec(name)
    except UnknownNameError as err:
        raise PlanError(str(err)) from None
    except RegistryError as err:
        raise PlanError(f"host {name!r} cannot be loaded: {err}") from None
    _, tag = split_host_name(name)
    if tag and tag not in spec.tags:
        raise PlanError(f"host {spec.name!r} has no weight tag {tag!r} "
                        f"(tags: {', '.join(sorted(t for t in spec.tags if t)) or 'none'})")
    if spec.factory is None:
        raise PlanError(f"host {spec.name!r} is in the catalogue only (status {spec.status!r}), no implementation "
                        "to run; see `python -m harness list hosts`")
    if isinstance(spec.factory, str):  # a lazy "module:function" factory: its code must import before any compute
        module, _, attr = spec.factory.partition(":")
        try:
            found = hasattr(importlib.import_module(module), attr)
        except Exception as err:  # noqa: BLE001 - any import failure of the host's code is the user's to fix
            raise PlanError(f"host {spec.name!r}: its code cannot be imported (factory {spec.factory!r}: "
                            f"{type(err).__name__}: {err})".splitlines()[0]) from None
        if not found:
            raise PlanError(f"host {spec.name!r}: factory {spec.factory!r} names no {attr!r} in module {module}")
    return spec, tag


def _task_class(name: str) -> type:
    from tasks.registry import TASKS, task_names

    try:
        task_names()  # imports the registration modules
        return TASKS.get(name)
    except UnknownNameError as err:
        raise PlanError(str(err)) from None
    except RegistryError as err:
        raise PlanError(f"task {name!r} cannot be loaded: {err}") from None


def _resolve_task(name: str, cfg: dict[str, Any], own: bool, extra: dict[str, Any] | None = None
                  ) -> tuple[Any, str | None, dict[str, Any]]:
    """The task ``name`` built once with its data root and options: ``(task, root, options)``.

    The run's own task (``own``) takes ``task.root`` / ``task.options``; any task falls back to
    ``data.roots[<dataset>]`` for its root.
    """
    from tasks.registry import create_task

    cls = _task_class(name)
    root = (cfg["task"]["root"] if own else None) or cfg["data"]["roots"].get(cls.dataset) or None
    root = str(Path(root).expanduser().resolve()) if root else None
    options = {**(dict(cfg["task"]["options"] or {}) if own else {}), **dict(extra or {})}
    try:
        task = create_task(name, root=root, strict=bool(cfg["task"]["strict"]), **options)
    except (TypeError, ValueError) as err:
        raise PlanError(f"task {name!r}: bad options {options}: {err}") from None
    return task, root, options


def _check_capabilities(host_name: str, spec: Any, task: Any, mode: Mode, cfg: dict[str, Any]) -> None:
    tt = task.task_type.value
    have = frozenset(spec.capabilities)
    options = mode.required_capabilities(cfg, tt)
    if not options or any(opt <= have for opt in options):
        return
    need = " or ".join("+".join(sorted(o - have) or sorted(o)) for o in options)
    what = "do zero-shot" if mode.eval_mode(cfg) == "zeroshot" else "run"
    raise PlanError(f"host {host_name!r} cannot {what} {tt} task {task.name!r}: needs {need}, "
                    f"host has {', '.join(sorted(have)) or 'no capabilities'}")


def _check_files(task: Any, splits: Iterable[str]) -> None:
    for split in dict.fromkeys(splits):
        if split not in task.splits:
            raise PlanError(f"task {task.name!r} has no split {split!r} (splits: {', '.join(task.splits)})")
        missing = task.missing_files(split)
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise PlanError(f"task {task.name!r} split {split!r}: {missing[0].message()}{more}")


def _annotation_fingerprint(task: Any, splits: Iterable[str]) -> dict[str, str]:
    """Per split, the content fingerprint of the annotation files it reads (run identity)."""
    out = {}
    for split in dict.fromkeys(splits):
        if split not in task.splits:
            continue
        files = [f.path for f in task.required_files(split)]
        out[split] = files_fingerprint(files) if files else ""
    return out


def random_init(cfg: dict[str, Any]) -> bool:
    """Whether the run builds its host with random weights (``host.init=random``, or the host factory's
    ``host.options.random_init=true``)."""
    return cfg["host"]["init"] == "random" or bool((cfg["host"]["options"] or {}).get("random_init", False))


def _resolve_checkpoint(host_name: str, cfg: dict[str, Any]) -> tuple[str | None, str]:
    """``(checkpoint path or None, its fingerprint)`` through the hosts' one checkpoint check (C1)."""
    from hosts.errors import CheckpointError
    from hosts.registry import resolve_checkpoint

    if random_init(cfg):
        if cfg["host"]["checkpoint"]:
            raise PlanError(f"host {host_name!r}: host.init=random (random weights) and host.checkpoint="
                            f"{cfg['host']['checkpoint']} contradict each other; drop one")
        return None, "random_init"
    try:
        path = resolve_checkpoint(host_name, cfg["host"]["checkpoint"] or None)
    except CheckpointError as err:
        raise PlanError(str(err).replace("pass checkpoint=PATH", "pass host.checkpoint=PATH")) from None
    if path is None:
        return None, ""
    return str(Path(path).resolve()), checkpoint_fingerprint(path)


def validate_finsta_options(options: dict[str, Any], preset: str) -> None:
    """Check ``finsta.*`` keys against ``finsta_core.FinstaConfig`` and build the preset with them."""
    try:
        from finsta_core.config import FinstaConfig
    except ImportError as err:
        raise PlanError(f"post-training is not available: finsta_core.config cannot be imported ({err})") from None
    names = [f.name for f in dataclasses.fields(FinstaConfig)]
    for key in options:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join('finsta.' + c for c in close)}?" if close else ""
            raise ConfigError(f"unknown Finsta option 'finsta.{key}'{hint}")
    try:
        FinstaConfig.preset(preset, **options)
    except (ValueError, TypeError, KeyError) as err:
        raise ConfigError(f"Finsta config (preset {preset!r}) rejected the overrides: {err}") from None


def _run_id(host: str, task: Any, mode: str, seed: int, cfg: dict[str, Any], labels: dict[str, str],
            inputs: dict[str, Any]) -> str:
    ident = {"host": host, "task": task.name, "task_fingerprint": task.fingerprint(), "mode": mode, "seed": seed,
             "config": identity_view(cfg), "labels": labels, "inputs": inputs}
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{_slug(host)}-{_slug(task.name)}-{mode}-s{seed}-{digest}"


def _carries_graphs(task: Any, split: str) -> bool:
    """Whether the samples of ``task`` / ``split`` carry their scene graphs themselves (synthetic tasks)."""
    try:
        samples = task.samples(split, limit=1)
    except (OSError, ValueError):
        return False
    return bool(samples) and samples[0].scene_graph is not None


def _sources(cfg: dict[str, Any], data_task: Any, split: str) -> dict[str, Any] | None:
    """The post-training corpus and scene-graph store (contract C3, :mod:`harness.sources`), or None when the
    data task's own samples carry their graphs and no corpus / store is configured."""
    from harness.sources import resolve_posttrain_sources

    pt = cfg["posttrain"]
    try:
        return resolve_posttrain_sources(cfg, data_task).to_dict()
    except PlanError:
        if not pt.get("corpus") and not pt.get("sg_store") and _carries_graphs(data_task, split):
            return None
        raise


def _posttrain_data(cfg: dict[str, Any], task: Any, root: str | None, options: dict[str, Any],
                    check_files: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Resolve the post-training data (``posttrain.data`` task, default the run's task, or ``posttrain.corpus``)
    and its scene graphs: the resolved part of the spec and the input fingerprints."""
    pt = cfg["posttrain"]
    validate_finsta_options(dict(cfg["finsta"]), cfg["finsta_preset"])
    name = pt["data"] or task.name
    data_opts = dict(pt.get("data_options") or {})
    if name == task.name and not data_opts:
        data_task, data_root, data_options = task, root, options
    else:
        data_task, data_root, data_options = _resolve_task(name, cfg, own=False, extra=data_opts)
    split = str(pt["split"])
    if check_files and not pt.get("corpus"):
        _check_files(data_task, [split])
    sources = _sources(cfg, data_task, split)
    resolved = {"posttrain_task": data_task.name, "posttrain_root": data_root, "posttrain_options": data_options,
                "posttrain_split": split, "sources": sources}
    inputs = {"posttrain_task": data_task.name, "posttrain_fingerprint": data_task.fingerprint(),
              "posttrain_root": data_root, "posttrain_annotations": _annotation_fingerprint(data_task, [split]),
              "posttrain_sources": {k: sources[k] for k in ("kind", "corpus_fingerprint", "sg_fingerprint")}
              if sources else None}
    return resolved, inputs


def plan_runs(host: str | Sequence[str], task: str | Sequence[str], mode: str = "finetune",
              seeds: Sequence[int] | None = None, overrides: Sequence[str] = (), experiment: str | Path | None = None,
              preset: str | None = None, store_root: str | Path | None = None, check_files: bool = True,
              labels: dict[str, str] | None = None) -> list[RunSpec]:
    """Plan and validate the runs of hosts x tasks x seeds.

    Args:
        host, task: names (comma-separated strings or lists).
        mode: a mode of :mod:`harness.modes` (``posttrain | finetune | zeroshot | pretrain``).
        seeds: seeds (default: ``run.seeds`` of the config); duplicates are planned once.
        overrides: ``key=value`` config overrides; experiment: YAML file layered before them.
        store_root: results root (default ``store.root`` of the config).
        check_files: check the data files of the splits the runs read.
        labels: ``ablation``, ``sweep``, ``sweep_param``, ``sweep_value`` (tables; part of the run id).

    Raises:
        PlanError / ConfigError: the first problem found, as one line.
    """
    try:
        mode_obj = get_mode(mode)
    except UnknownNameError as err:
        raise PlanError(str(err)) from None
    labels = {k: str(v) for k, v in (labels or {}).items() if v not in (None, "")}
    hosts, tasks = split_names(host), split_names(task)
    if not hosts or not tasks:
        raise PlanError("give at least one host and one task")
    runs: list[RunSpec] = []
    for h in hosts:
        spec, _tag = _host_spec(h)
        for t in tasks:
            family = _task_class(t).task_type.family
            cfg = to_container(load_config(h, t, mode_obj.name, task_family=family, experiment=experiment,
                                           overrides=overrides, preset=preset))
            check_ranges(cfg)
            task_obj, root, options = _resolve_task(t, cfg, own=True)
            _check_capabilities(h, spec, task_obj, mode_obj, cfg)
            checkpoint, ckpt_fp = _resolve_checkpoint(h, cfg)
            splits = mode_obj.splits(cfg, task_obj.splits, task_obj.eval_split)
            if check_files:
                _check_files(task_obj, splits)
            if store_root is not None:  # the default scene-graph store lies beside the results store
                cfg["store"]["root"] = str(store_root)
            resolved: dict[str, Any] = {"task_root": root, "task_options": options, "checkpoint": checkpoint}
            inputs: dict[str, Any] = {"checkpoint": checkpoint, "checkpoint_fingerprint": ckpt_fp, "task_root": root,
                                      "annotations": _annotation_fingerprint(task_obj, splits)}
            if mode_obj.needs_posttrain_data:
                pt_resolved, pt_inputs = _posttrain_data(cfg, task_obj, root, options, check_files)
                resolved.update(pt_resolved)
                inputs.update(pt_inputs)
            resolved["inputs"] = inputs
            lab = {"ablation": str(cfg.get("ablation") or ""), **labels}
            info = {"task_type": task_obj.task_type.value, "dataset": task_obj.dataset,
                    "protocol": task_obj.protocol.describe(), "task_version": task_obj.version,
                    "task_fingerprint": task_obj.fingerprint(), "host_arch": spec.arch}
            root_dir = str(store_root if store_root is not None else cfg["store"]["root"])
            for seed in dict.fromkeys(int(s) for s in (seeds if seeds is not None else cfg["run"]["seeds"])):
                c = json.loads(json.dumps(cfg))
                c["run"]["seed"] = seed
                c["store"]["root"] = root_dir
                run_id = _run_id(h, task_obj, mode_obj.name, seed, c, lab, inputs)
                runs.append(RunSpec(run_id=run_id, host=h, task=task_obj.name, mode=mode_obj.name, seed=seed,
                                    config=c, store_root=root_dir, task_info=info,
                                    resolved=json.loads(json.dumps(resolved)),
                                    **{k: lab.get(k, "") for k in ("ablation", "sweep", "sweep_param",
                                                                   "sweep_value")}))
    return runs

