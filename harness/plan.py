"""Planning and validation: (hosts x tasks x seeds [x sweep points]) -> :class:`RunSpec` list.

Everything a user can get wrong is checked here, before any compute is spent, and reported as one
line (:class:`~harness.errors.PlanError` / :class:`~harness.errors.ConfigError`): unknown host or task
(with suggestions), host/task capability mismatch (``tasks.base.REQUIRED_CAPABILITIES`` against
``HostSpec.capabilities``), catalogue-only hosts, missing data files (``Task.missing_files``), missing
checkpoints, bad overrides, unknown Finsta options.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finsta_core.registry import RegistryError, UnknownNameError
from harness.config import identity_view, load_config, to_container
from harness.errors import ConfigError, PlanError

__all__ = ["MODES", "ZEROSHOT_CAPABILITIES", "RunSpec", "plan_runs", "split_names", "validate_finsta_options"]

MODES = ("posttrain", "finetune", "zeroshot", "pretrain")

# Zero-shot recipes (harness.jobs.zeroshot) and the capabilities each needs: any one alternative suffices.
ZEROSHOT_CAPABILITIES: dict[str, tuple[frozenset[str], ...]] = {
    "action_recognition": (frozenset({"retrieval"}),),  # text-video similarity to class-name prompts
    "captioning": (frozenset({"generation"}),),
    "retrieval": (frozenset({"retrieval"}),),
    "paragraph_retrieval": (frozenset({"retrieval"}),),
    "mc_qa": (frozenset({"multiple_choice"}),),
    "longform_qa": (frozenset({"multiple_choice"}),),
    "oe_qa": (frozenset({"generation"}), frozenset({"retrieval"})),  # generate, else answer-text similarity
}


@dataclass
class RunSpec:
    """One planned run: everything a job needs, picklable (paths and plain data, no models)."""

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
        if self.mode == "posttrain":
            return str(self.config["posttrain"]["then"])
        return "none" if self.mode == "pretrain" else self.mode

    def to_dict(self) -> dict[str, Any]:
        """What goes into ``spec.json`` (the config goes to ``config.yaml``)."""
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("config", "task_info")}
        return {**d, **self.task_info, "finsta": self.finsta, "eval_mode": self.eval_mode}


def split_names(value: str | Sequence[str]) -> list[str]:
    """``"a,b"`` or ``["a", "b,c"]`` -> ``["a", "b", "c"]``."""
    items = [value] if isinstance(value, str) else list(value)
    return [x.strip() for item in items for x in str(item).split(",") if x.strip()]


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s)[:40]


def _host_spec(name: str):
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
    return spec, tag


def _task(name: str, cfg: dict[str, Any] | None = None, extra: dict[str, Any] | None = None):
    from tasks.registry import TASKS, create_task, task_names

    try:
        task_names()  # imports the registration modules
        cls = TASKS.get(name)
    except UnknownNameError as err:
        raise PlanError(str(err)) from None
    except RegistryError as err:
        raise PlanError(f"task {name!r} cannot be loaded: {err}") from None
    root, options = None, dict(extra or {})
    if cfg is not None:
        own = name == cfg["task"]["name"]
        root = (cfg["task"]["root"] if own else None) or cfg["data"]["roots"].get(getattr(cls, "dataset", "")) or None
        options = {**(dict(cfg["task"]["options"] or {}) if own else {}), **options}
    try:
        return create_task(name, root=root, **options)
    except (TypeError, ValueError) as err:
        raise PlanError(f"task {name!r}: bad options {options}: {err}") from None


def _check_capabilities(host_name: str, spec: Any, task: Any, mode: str) -> None:
    from tasks.base import REQUIRED_CAPABILITIES

    tt = task.task_type
    have = frozenset(spec.capabilities)
    if mode == "zeroshot":
        options = ZEROSHOT_CAPABILITIES[tt.value]
        if not any(opt <= have for opt in options):
            need = " or ".join("+".join(sorted(o)) for o in options)
            raise PlanError(f"host {host_name!r} cannot do zero-shot {tt.value} (task {task.name!r}): needs {need}, "
                            f"host has {', '.join(sorted(have)) or 'no capabilities'}")
        return
    if mode == "pretrain":
        return
    need = REQUIRED_CAPABILITIES[tt]
    if not need <= have:
        raise PlanError(f"host {host_name!r} cannot run {tt.value} task {task.name!r}: needs "
                        f"{', '.join(sorted(need - have))}, host has {', '.join(sorted(have)) or 'no capabilities'}")


def _check_files(task: Any, splits: Iterable[str]) -> None:
    for split in dict.fromkeys(splits):
        if split not in task.splits:
            raise PlanError(f"task {task.name!r} has no split {split!r} (splits: {', '.join(task.splits)})")
        missing = task.missing_files(split)
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise PlanError(f"task {task.name!r} split {split!r}: {missing[0].message()}{more}")


def _check_checkpoint(host_name: str, spec: Any, tag: str, cfg: dict[str, Any]) -> None:
    ckpt = cfg["host"]["checkpoint"]
    if ckpt:
        if not Path(ckpt).is_file():
            raise PlanError(f"host {host_name!r}: checkpoint file not found: {ckpt}")
        return
    wt = spec.tags.get(tag)
    if wt is not None and wt.filename:
        raise PlanError(f"host {host_name!r} needs its weights ({wt.what}, file {wt.filename}): get them from "
                        f"{wt.source} and pass host.checkpoint=PATH")


def validate_finsta_options(options: dict[str, Any], preset: str, module: str = "finsta_core") -> None:
    """Check ``finsta.*`` keys against ``FinstaConfig`` of the Finsta API ``module`` (and the preset)."""
    from harness.jobs.posttrain import load_finsta_api

    try:
        FinstaConfig = load_finsta_api(module).FinstaConfig
    except ImportError as err:
        raise PlanError(f"post-training is not available: {err}") from None
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


def _splits_needed(cfg: dict[str, Any], task: Any, mode: str) -> list[str]:
    eval_split = cfg["run"]["eval_split"] or task.eval_split
    eval_mode = cfg["posttrain"]["then"] if mode == "posttrain" else mode
    if eval_mode == "finetune":
        return ["train", eval_split] if "train" in task.splits else [eval_split]
    if eval_mode == "zeroshot":
        return [eval_split]
    return []


def _run_id(host: str, task: Any, mode: str, seed: int, cfg: dict[str, Any], labels: dict[str, str]) -> str:
    ident = {"host": host, "task": task.name, "task_fingerprint": task.fingerprint(), "mode": mode, "seed": seed,
             "config": identity_view(cfg), "labels": labels}
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{_slug(host)}-{_slug(task.name)}-{mode}-s{seed}-{digest}"


def plan_runs(host: str | Sequence[str], task: str | Sequence[str], mode: str = "finetune",
              seeds: Sequence[int] | None = None, overrides: Sequence[str] = (), experiment: str | Path | None = None,
              preset: str | None = None, store_root: str | Path | None = None, check_files: bool = True,
              labels: dict[str, str] | None = None) -> list[RunSpec]:
    """Plan and validate the runs of hosts x tasks x seeds.

    Args:
        host, task: names (comma-separated strings or lists).
        mode: ``posttrain | finetune | zeroshot | pretrain``.
        seeds: seeds (default: ``run.seeds`` of the config).
        overrides: ``key=value`` config overrides; experiment: YAML file layered before them.
        store_root: results root (default ``store.root`` of the config).
        labels: ``ablation``, ``sweep``, ``sweep_param``, ``sweep_value`` (tables; part of the run id).

    Raises:
        PlanError / ConfigError: the first problem found, as one line.
    """
    if mode not in MODES:
        close = difflib.get_close_matches(mode, MODES, n=1)
        raise PlanError(f"unknown mode {mode!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                        + f" (modes: {', '.join(MODES)})")
    labels = {k: str(v) for k, v in (labels or {}).items() if v not in (None, "")}
    hosts, tasks = split_names(host), split_names(task)
    if not hosts or not tasks:
        raise PlanError("give at least one host and one task")
    runs: list[RunSpec] = []
    for h in hosts:
        spec, tag = _host_spec(h)
        for t in tasks:
            task0 = _task(t)
            cfg = to_container(load_config(h, t, mode, task_family=task0.task_type.family, experiment=experiment,
                                           overrides=overrides, preset=preset))
            task_obj = _task(t, cfg)
            _check_capabilities(h, spec, task_obj, mode)
            _check_checkpoint(h, spec, tag, cfg)
            if check_files:
                _check_files(task_obj, _splits_needed(cfg, task_obj, mode))
            if mode == "posttrain":
                validate_finsta_options(dict(cfg["finsta"]), cfg["finsta_preset"],
                                        str(cfg["posttrain"].get("finsta_api", "finsta_core")))
                data_name = cfg["posttrain"]["data"] or t
                data_opts = dict(cfg["posttrain"].get("data_options") or {})
                data_task = task_obj if data_name == t and not data_opts else _task(data_name, cfg, data_opts)
                if check_files:
                    _check_files(data_task, [cfg["posttrain"]["split"]])
            lab = {"ablation": str(cfg.get("ablation") or ""), **labels}
            info = {"task_type": task_obj.task_type.value, "dataset": task_obj.dataset,
                    "protocol": task_obj.protocol.describe(), "task_version": task_obj.version,
                    "task_fingerprint": task_obj.fingerprint(), "host_arch": spec.arch}
            root = str(store_root if store_root is not None else cfg["store"]["root"])
            for seed in (list(seeds) if seeds is not None else list(cfg["run"]["seeds"])):
                c = json.loads(json.dumps(cfg))
                c["run"]["seed"] = int(seed)
                c["store"]["root"] = root
                run_id = _run_id(h, task_obj, mode, int(seed), c, lab)
                runs.append(RunSpec(run_id=run_id, host=h, task=task_obj.name, mode=mode, seed=int(seed), config=c,
                                    store_root=root, task_info=info, **{k: lab.get(k, "") for k in
                                                                        ("ablation", "sweep", "sweep_param",
                                                                         "sweep_value")}))
    return runs
