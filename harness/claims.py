"""The synthetic claims study (issue 7): ``python -m harness sweep synth_claims``.

The protocol is data (``harness/sweeps/synth_claims.yaml``, ``kind: pipeline``): hosts, seeds, tasks, modes,
task options, the study arms and the decision rule. Every arm runs through the ordinary pipeline stages
(:mod:`harness.pipeline`: pre-train, step-matched control, Finsta post-training on ``synth_pairs``, fine-tune /
zero-shot evaluations) into one store, labelled ``sweep=<name>, sweep_param=<study>, sweep_value=<arm>``:

* ``main/full``     -- every host of ``hosts``: host (control) and Finsta-host on ``tasks`` x ``modes``;
* ``ablation/<a>``  -- the reference host post-trained with one Finsta component off (Table 8); the host rows
  and the pre-trained checkpoint are the main arm's (``evaluate_host=False``);
* ``events/<k>``    -- main-arm checkpoints evaluated on long tasks with ``num_events=k`` (Fig 18), host too;
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

import pandas as pd

from harness.claims_stats import ClaimResult, Test, headline_scores, paired_gains, pooled, select, slopes
from harness.errors import ConfigError
from harness.pipeline import Pipeline, PipelineError, plan_checkpoints, plan_evaluations, plan_pretrain

__all__ = ["Arm", "arms", "evaluate_claims", "gain_table", "load_protocol", "run_from_args", "run_study"]

log = logging.getLogger(__name__)
_KEYS = {"name", "kind", "description", "store", "report", "seeds", "overrides", "corpus_options", "eval_options",
         "hosts", "reference_host", "tasks", "modes", "headline", "decision", "studies", "notes"}
_STUDIES = {"ablation", "events", "sg_noise"}


def load_protocol(name_or_path: str | Path, seeds: Sequence[int] | None = None) -> dict[str, Any]:
    """Read and check a ``kind: pipeline`` study definition (by sweep name or path); ``seeds`` overrides."""
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
    sw = {**sw, "seeds": [int(s) for s in (seeds if seeds else sw["seeds"])]}
    sw.setdefault("reference_host", sw["hosts"][0])
    sw.setdefault("decision", {})
    sw["decision"] = {"level": 0.95, "method": "t", **sw["decision"]}
    if sw["reference_host"] not in sw["hosts"]:
        raise ConfigError(f"{where}: reference_host {sw['reference_host']!r} is not one of hosts {sw['hosts']}")
    studies = sw.setdefault("studies", {}) or {}
    for study, spec in studies.items():
        if not spec.get("tasks") or not set(spec["tasks"]) <= set(sw["tasks"]) and study != "events":
            raise ConfigError(f"{where}: study {study!r} needs 'tasks' (a subset of the main tasks)")
        if study == "ablation" and not spec.get("arms"):
            raise ConfigError(f"{where}: the ablation study needs 'arms' ({{name, overrides}})")
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
    for seed in sw["seeds"]:
        for arm in todo:
            t1 = time.time()
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


# -- the claims ------------------------------------------------------------------------------------------
def gain_table(scores: pd.DataFrame, sw: dict[str, Any], study: str = "main", value: str = "full",
               host_value: tuple[str, str] | None = None, ablation: str = "") -> pd.Series:
    """Paired gains (Finsta-host minus host, same seed) of one arm, indexed by host, task, task_type, mode, seed."""
    hp, hv = host_value or (study, value)
    g = paired_gains(select(scores, finsta=True, param=study, value=value, ablation=ablation),
                     select(scores, finsta=False, param=hp, value=hv))
    g.name = "gain"
    return g


def _only(s: pd.Series, **levels: Any) -> pd.Series:
    for k, v in levels.items():
        vals = v if isinstance(v, (list, tuple, set)) else [v]
        s = s[s.index.get_level_values(k).isin(list(vals))]
    return s


def _test(label: str, values: pd.Series, side: int, sw: dict[str, Any], unit: str = "pp") -> Test:
    d = sw["decision"]
    return Test(label, [float(v) for v in values.to_numpy()], side, float(d["level"]), str(d["method"]),
                [int(s) for s in values.index], unit)


def evaluate_claims(frame: pd.DataFrame, sw: dict[str, Any]) -> list[ClaimResult]:
    """The five claims of the issue, each with its per-seed tests (see :mod:`harness.claims_stats`)."""
    scores = headline_scores(frame, sw["headline"])
    ref, studies = sw["reference_host"], sw.get("studies") or {}
    main = gain_table(scores, sw)
    ref_gain = _only(main, host=ref)
    out: list[ClaimResult] = []
    # (1) every task type improves (reference host; per seed, gain averaged over modes)
    tests = [_test(f"{tt}: gain ({ref})", pooled(_only(ref_gain, task_type=tt), over=["mode"]), +1, sw)
             for tt in sorted(set(ref_gain.index.get_level_values("task_type")))]
    out.append(ClaimResult("1", "Finsta improves the host on every task type", tests,
                           "per task type: Finsta-host minus host, averaged over modes"))
    # (2) zero-shot gains > fine-tune gains
    both = ref_gain.groupby(level="task").filter(lambda g: g.index.get_level_values("mode").nunique() == 2)
    zs, ft = pooled(_only(both, mode="zeroshot")), pooled(_only(both, mode="finetune"))
    out.append(ClaimResult("2", "Gains are larger zero-shot than fine-tuned",
                           [_test("zero-shot gain - fine-tune gain", (zs - ft).dropna(), +1, sw)],
                           extra=[_test("zero-shot gain", zs, +1, sw), _test("fine-tune gain", ft, +1, sw)]))
    # (3) hosts missing encoders gain less
    tests, extra = [], [_test(f"{ref} gain", pooled(ref_gain), +1, sw)]
    for h in [h for h in sw["hosts"] if h != ref]:
        hg = _only(main, host=h)
        cells = set(zip(hg.index.get_level_values("task"), hg.index.get_level_values("mode")))
        mask = [(t, m) in cells for t, m in zip(ref_gain.index.get_level_values("task"),
                                                  ref_gain.index.get_level_values("mode"))]
        tests.append(_test(f"{ref} gain - {h} gain", (pooled(ref_gain[mask]) - pooled(hg)).dropna(), +1, sw))
        extra.append(_test(f"{h} gain", pooled(hg), +1, sw))
    out.append(ClaimResult("3", "Hosts missing encoders gain less", tests, extra=extra))
    # (4) ablation ordering: drop_a = Finsta(full) - Finsta(w/o a), pooled over the study's cells
    tests, extra = [], []
    if "ablation" in studies:
        st = studies["ablation"]
        full = _only(select(scores, finsta=True, param="main", value="full", host=ref), task=st["tasks"],
                     mode=st.get("modes", sw["modes"]))
        drops = {}
        for a in st["arms"]:
            ab = select(scores, finsta=True, param="ablation", value=a["name"], ablation=a["name"], host=ref)
            d = paired_gains(full, ab)
            d.name = "drop"
            drops[a["name"]] = pooled(d)
            extra.append(_test(f"drop: {a['name']}", drops[a["name"]], +1, sw))
        order = st.get("order") or []
        for hi_tier, lo_tier in zip(order, order[1:]):
            for a in hi_tier:
                for b in lo_tier:
                    tests.append(_test(f"drop {a} - drop {b}", (drops[a] - drops[b]).dropna(), +1, sw))
    out.append(ClaimResult("4", "Table 8 ordering: PTC, OSC > STGD > temporal edges > high-order regions", tests,
                           "drop = Finsta-host (full) minus Finsta-host (ablated), same seed", extra))
    # (5) gains grow with the number of events and fall with corrupted scene graphs
    tests, extra = [], []
    if "events" in studies:
        per_k = {float(k): pooled(gain_table(scores, sw, "events", str(k))) for k in studies["events"]["values"]}
        tests.append(_test("slope of gain vs num_events", slopes(per_k), +1, sw, "pp/event"))
        extra += [_test(f"gain at {int(k)} events", v, +1, sw) for k, v in per_k.items()]
    if "sg_noise" in studies:
        st = studies["sg_noise"]
        cells = _only(ref_gain, task=st["tasks"], mode=st.get("modes", sw["modes"]))
        per_r = {0.0: pooled(cells)}
        for r in st["values"]:
            per_r[float(r)] = pooled(gain_table(scores, sw, "sg_noise", str(r), host_value=("main", "full")))
        tests.append(_test(f"slope of gain vs SG {st.get('kind', 'drop')} rate", slopes(per_r), -1, sw, "pp/unit"))
        extra += [_test(f"gain at {st.get('kind', 'drop')}={r:g}", v, +1, sw) for r, v in per_r.items()]
    out.append(ClaimResult("5", "Gains grow with the number of events and fall with corrupted scene graphs", tests,
                           extra=extra))
    return out


def run_from_args(args: Any) -> int:
    """``harness sweep NAME`` for ``kind: pipeline`` studies: run (unless ``--report-only``), then report."""
    from harness.claims_report import stage_timings, verdict_lines, write_report
    from harness.commands._common import parse_seeds
    from harness.store import load_frame

    sw = load_protocol(args.name, seeds=parse_seeds(args.seeds))
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
