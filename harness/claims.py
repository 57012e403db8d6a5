"""The synthetic claims study (issue 7): ``python -m harness sweep synth_claims``.

The protocol is data (``harness/sweeps/synth_claims.yaml``, ``kind: pipeline``): hosts, seeds, tasks, modes,
task options, the study arms and the decision rule. Every arm runs through the ordinary pipeline stages
(:mod:`harness.pipeline`: pre-train, step-matched control, Finsta post-training on ``synth_pairs``, fine-tune /
zero-shot evaluations) into one store, labelled ``sweep=<name>, sweep_param=<study>, sweep_value=<arm>``:

* ``main/full``     -- every host of ``hosts``: host (control) and Finsta-host on ``tasks`` x ``modes``;
* ``ablation/<a>``  -- the reference host post-trained with one Finsta component off (Table 8); the host rows
  and the pre-trained checkpoint are the main arm's (``evaluate_host=False``);
* ``events/<k>``    -- main-arm checkpoints evaluated on long tasks with ``num_events=k`` (Fig 18), host too;
* ``controls/<a>``  -- the reference host post-trained with other Finsta overrides (the oracle teacher of
  :mod:`tasks.synthetic.oracle`, the paper-literal configuration), compared with the main arm's host rows;
* ``sg_noise/<r>``  -- Finsta post-trained from the main pre-trained checkpoint on corrupted scene graphs
  (``sg_noise={<kind>: r}``, Table 12); host rows are the main arm's (the host never reads scene graphs).

Runs are ordered seed by seed, so a study cut short still has every arm at the seeds done. Finished runs are
skipped, so re-running resumes. The claims are then tested by :mod:`harness.claims_stats` and written up by
:mod:`harness.claims_report`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.claims_report import stage_timings, verdict_lines, write_report
from harness.claims_stats import evaluate_claims, gain_table
from harness.errors import ConfigError
from harness.pipeline import Pipeline, PipelineError, plan_checkpoints, plan_evaluations, plan_pretrain

__all__ = ["Arm", "arms", "evaluate_claims", "gain_table", "load_protocol", "run_from_args", "run_study"]

log = logging.getLogger(__name__)
_KEYS = {"name", "kind", "description", "store", "report", "seeds", "overrides", "corpus_options", "eval_options",
         "hosts", "reference_host", "tasks", "modes", "headline", "decision", "studies", "notes", "appendix"}
_STUDIES = {"ablation", "events", "sg_noise", "controls"}


def load_protocol(name_or_path: str | Path, seeds: Sequence[int] | str | None = None) -> dict[str, Any]:
    """Read and check a ``kind: pipeline`` study definition (by sweep name or path); ``seeds`` overrides (a
    list or the command line's ``"1,2,3"``; a repeated seed runs once)."""
    from harness.sweeps import load_sweep

    sw = load_sweep(name_or_path)
    where = f"sweep {sw.get('name')!r}"
    if sw.get("kind") != "pipeline":
        raise ConfigError(f"{where} is a grid sweep, not a pipeline study (kind: pipeline)")
    bad = sorted(set(sw) - _KEYS) + sorted(set(sw.get("studies") or {}) - _STUDIES)
    if bad:
        raise ConfigError(f"{where}: unknown keys {bad} (allowed: {sorted(_KEYS)}; studies: {sorted(_STUDIES)})")
    for key in ("hosts", "tasks", "modes", "seeds", "headline"):
        if not sw.get(key):
            raise ConfigError(f"{where}: {key!r} must be given and non-empty")
    if isinstance(seeds, str):
        try:
            seeds = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--seeds expects comma-separated integers, got {seeds!r}") from None
    sw = {**sw, "seeds": list(dict.fromkeys(int(s) for s in (seeds if seeds else sw["seeds"])))}
    sw.setdefault("reference_host", sw["hosts"][0])
    sw.setdefault("decision", {})
    sw["decision"] = {"level": 0.95, "method": "t", **sw["decision"]}
    if sw["reference_host"] not in sw["hosts"]:
        raise ConfigError(f"{where}: reference_host {sw['reference_host']!r} is not one of hosts {sw['hosts']}")
    studies = sw.setdefault("studies", {}) or {}
    for study, spec in studies.items():
        if not spec.get("tasks") or not set(spec["tasks"]) <= set(sw["tasks"]) and study != "events":
            raise ConfigError(f"{where}: study {study!r} needs 'tasks' (a subset of the main tasks)")
        if study in ("ablation", "controls") and not spec.get("arms"):
            raise ConfigError(f"{where}: the {study} study needs 'arms' ({{name, overrides}})")
        if study in ("events", "sg_noise") and not spec.get("values"):
            raise ConfigError(f"{where}: study {study!r} needs 'values'")
    return sw


@dataclass
class Arm:
    """One study arm: the host, the pipeline that plans its checkpoints (``post``) and its evaluations."""

    study: str
    name: str
    host: str
    post: Pipeline
    evals: Pipeline


def _labels(sw: dict[str, Any], study: str, name: str) -> dict[str, str]:
    return {"sweep": str(sw["name"]), "sweep_param": study, "sweep_value": str(name)}


def arms(sw: dict[str, Any], store: str | Path, executor: str = "inline",
         overrides: Sequence[str] = ()) -> tuple[Pipeline, list[Arm]]:
    """The base pipeline (pre-training) and every arm of the protocol ``sw``, in run order."""
    corpus, evalo = dict(sw.get("corpus_options") or {}), dict(sw.get("eval_options") or {})
    base = Pipeline(hosts=list(sw["hosts"]), eval_tasks=list(sw["tasks"]), modes=list(sw["modes"]), seeds=sw["seeds"],
                    overrides=[*(sw.get("overrides") or []), *overrides], corpus_options=corpus, eval_options=evalo,
                    store_root=store, executor=executor)
    out: list[Arm] = []
    mains = {}
    for host in sw["hosts"]:
        mains[host] = replace(base, hosts=[host], label_host=True, **_labels(sw, "main", "full"))
        out.append(Arm("main", "full", host, mains[host], mains[host]))
    ref, studies = sw["reference_host"], sw.get("studies") or {}
    main = mains[ref]
    if "ablation" in studies:
        st = studies["ablation"]
        for a in st["arms"]:
            p = replace(main, eval_tasks=list(st["tasks"]), modes=list(st.get("modes", sw["modes"])),
                        finsta_overrides=list(a.get("overrides") or []), ablation=str(a["name"]), control=False,
                        evaluate_host=False, label_host=False, **_labels(sw, "ablation", a["name"]))
            out.append(Arm("ablation", str(a["name"]), ref, p, p))
    if "controls" in studies:  # positive control (oracle teacher), paper-literal arm: own Finsta post-training
        st = studies["controls"]
        for a in st["arms"]:
            p = replace(main, eval_tasks=list(st["tasks"]), modes=list(st.get("modes", sw["modes"])),
                        finsta_overrides=list(a.get("overrides") or []), control=False, evaluate_host=False,
                        label_host=False, **_labels(sw, "controls", a["name"]))
            out.append(Arm("controls", str(a["name"]), ref, p, p))
    if "events" in studies:
        st = studies["events"]
        for k in st["values"]:
            ev = replace(main, eval_tasks=list(st["tasks"]), modes=list(st.get("modes", sw["modes"])),
                         eval_options={**evalo, "num_events": k}, **_labels(sw, "events", k))
            out.append(Arm("events", str(k), ref, main, ev))
    if "sg_noise" in studies:
        st = studies["sg_noise"]
        kind = str(st.get("kind", "drop"))
        for r in st["values"]:
            p = replace(main, eval_tasks=list(st["tasks"]), modes=list(st.get("modes", sw["modes"])),
                        corpus_options={**corpus, "sg_noise": {kind: r}}, control=False, evaluate_host=False,
                        label_host=False, **_labels(sw, "sg_noise", r))
            out.append(Arm("sg_noise", str(r), ref, p, p))
    return base, out


def _check(specs: list, executor: str) -> None:
    from harness.launch import submit

    for spec, res in zip(specs, submit(specs, executor)):
        if res.state not in ("finished", "skipped"):
            raise PipelineError(f"run {spec.run_id} {res.state}: {res.error} (log: {spec.run_dir / 'log.txt'})")


def run_study(sw: dict[str, Any], store: str | Path, executor: str = "inline", overrides: Sequence[str] = (),
              echo=print) -> dict[str, int]:
    """Run every arm, seed by seed; returns counts of evaluation runs by state. A failing pipeline stage is
    reported and its arm skipped for that seed (the report counts what is missing)."""
    from harness.launch import submit

    base, todo = arms(sw, store, executor, overrides)
    counts: dict[str, int] = {}
    t0 = time.time()
    total, done = len(sw["seeds"]) * len(todo), 0
    for seed in sw["seeds"]:
        for arm in todo:
            t1 = time.time()
            if done:
                eta = (time.time() - t0) / done * (total - done)
                echo(f"[{time.time() - t0:6.0f}s] {done}/{total} arm-seeds done, ETA {eta / 60:.0f} min")
            done += 1
            try:
                pre = plan_pretrain(replace(base, hosts=[arm.host]), arm.host, seed)
                _check([pre], executor)
                ck = plan_checkpoints(arm.post, arm.host, seed, pre)
                _check([s for k, s in ck.items() if k != "pretrain"], executor)
                results = submit(plan_evaluations(arm.evals, arm.host, seed, ck), executor)
            except PipelineError as err:
                counts["stage_failed"] = counts.get("stage_failed", 0) + 1
                echo(f"[{time.time() - t0:6.0f}s] seed {seed} {arm.study}/{arm.name} {arm.host}: FAILED: {err}")
                continue
            for r in results:
                counts[r.state] = counts.get(r.state, 0) + 1
            bad = [r for r in results if r.state == "failed"]
            echo(f"[{time.time() - t0:6.0f}s] seed {seed} {arm.study}/{arm.name} {arm.host}: {len(results)} "
                 f"evaluations ({len(bad)} failed) in {time.time() - t1:.0f}s")
    return counts


def run_from_args(args: Any) -> int:
    """``harness sweep NAME`` for ``kind: pipeline`` studies: run (unless ``--report-only``), then report."""
    from harness.store import load_frame

    sw = load_protocol(args.name, seeds=args.seeds)
    store = Path(args.store or sw.get("store") or f"results/runs/{sw['name']}")
    report = Path(getattr(args, "report", None) or sw.get("report") or f"results/claims/{sw['name']}.md")
    _, todo = arms(sw, store, args.executor or "inline", args.overrides)
    print(f"sweep {sw['name']} (pipeline study): {len(todo)} arm(s) x {len(sw['seeds'])} seed(s), store {store}")
    if args.dry_run:
        for arm in todo:
            print(f"{arm.study:9s} {arm.name:18s} {arm.host:12s} tasks={','.join(arm.evals.eval_tasks)} "
                  f"modes={','.join(arm.evals.modes)} host_rows={'own' if arm.evals.evaluate_host else 'main'}")
        return 0
    counts: dict[str, int] = {}
    if not getattr(args, "report_only", False):
        counts = run_study(sw, store, args.executor or "inline", args.overrides)
        print("runs: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    frame = load_frame(store)
    if frame.empty:
        raise ConfigError(f"no runs under {store}: run `python -m harness sweep {args.name}` first")
    path = write_report(frame, sw, report, stage_timings(store))
    print("\n".join(verdict_lines(evaluate_claims(frame, sw))))
    print(f"report: {path}")
    return 1 if counts.get("failed") or counts.get("stage_failed") else 0
