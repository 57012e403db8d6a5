"""The host -> Finsta-host pipeline used by ``harness demo`` and the synthetic claims study.

For one host and seed it chains ordinary harness runs (same jobs, same store, same tables as any run):

1. ``pretrain``: the host alone with its own coarse objectives (VLA, MLM) on the post-training corpus.
2. ``control``: the pre-trained host trained further with its own losses for exactly the optimizer steps,
   batch size and host learning rate of Finsta's stage 2. This is the "host" row: without it the
   Finsta-host would win simply by having trained longer (a confound the paper does not control for).
3. ``posttrain``: from the same pre-trained checkpoint, Finsta stage 1 (OSC + PTC) then stage 2 (joint
   with TRS and the host's losses, Eq 42); the host is saved without Finsta. This is "Finsta-<host>".
4. ``finetune`` / ``zeroshot`` of both checkpoints on every evaluation task.

With the ``inline`` executor and ``Pipeline.workers > 1`` (``harness demo --workers N``) independent runs go to a
pool of worker processes (:func:`run_pipeline`): control and post-training of one seed run side by side, the
evaluations of a checkpoint start as soon as that checkpoint exists, and a later seed's runs fill idle workers.

Post-training happens once per (host, seed, ablation) on the corpus task (``synth_pairs``) and the
post-trained host is evaluated on every task, instead of one post-training per target task; so the TRS
weights lambda^{T,D,C} (Eq 41) are those of the corpus task's family (retrieval). See docs/paper-notes.md.
"""

from __future__ import annotations

import heapq
import multiprocessing
import os
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from harness.jobs import RunResult
from harness.launch import submit
from harness.plan import RunSpec, plan_runs
from harness.store import RunStore

CORPUS_TASK = "synth_pairs"
SYNTH_EVAL_TASKS = ("synth_action", "synth_cap", "synth_ret", "synth_qa_mc", "synth_qa_oe", "synth_para",
                    "synth_longqa")


class PipelineError(RuntimeError):
    """A stage of the pipeline failed; the message names the run and its log."""


@dataclass
class Pipeline:
    """What to run. ``overrides`` apply to every run; ``finsta_overrides`` only to post-training (an
    ablation such as ``finsta.ptc=false``); ``corpus_options`` are options of the corpus task (e.g. SG
    noise for the robustness study) and ``eval_options`` options of the evaluation tasks."""

    hosts: Sequence[str] = ("tiny",)
    eval_tasks: Sequence[str] = SYNTH_EVAL_TASKS
    modes: Sequence[str] = ("finetune", "zeroshot")
    seeds: Sequence[int] = (1,)
    overrides: Sequence[str] = ("preset=small",)
    finsta_overrides: Sequence[str] = ()
    ablation: str = ""
    sweep: str = ""
    sweep_param: str = ""
    sweep_value: str = ""
    corpus_options: dict[str, object] = field(default_factory=dict)
    eval_options: dict[str, object] = field(default_factory=dict)
    control: bool = True
    evaluate_host: bool = True
    label_host: bool = False  # host evaluations also carry the sweep labels (arms whose evaluation data differ)
    store_root: str | Path = "results/runs"
    executor: str = "inline"
    workers: int = 1  # inline executor: runs executed at once, each in its own worker process when > 1


def _opts(prefix: str, options: dict[str, object]) -> list[str]:
    import json

    return [f"{prefix}.{k}={json.dumps(v)}" for k, v in options.items()]


def _one(runs: list[RunSpec]) -> RunSpec:
    assert len(runs) == 1, f"expected one planned run, got {len(runs)}"
    return runs[0]


def _run(specs: list[RunSpec], executor: str, prog: Progress, what: str) -> list[RunResult]:
    """Submit one stage, report it (also when it failed), and raise :class:`PipelineError` if a run failed."""
    results = submit(specs, executor)
    prog.step(what, results)
    for spec, res in zip(specs, results):
        if res.state not in ("finished", "skipped"):
            raise _stage_error(spec, res)
    return results


def _checkpoint(spec: RunSpec) -> str:
    return str(spec.run_dir / "host.safetensors")


def _stage2_host_loss_weights(post: RunSpec) -> dict[str, float]:
    """The weights Eq 42 gives the host's own losses in stage 2 (lambda_VLA, lambda_MLM; constant in the
    paper's schedule); any other own loss of the host (e.g. the tiny host's caption loss) gets 0 there too."""
    from finsta_core import FinstaConfig, loss_weights

    fcfg = FinstaConfig.preset(str(post.config["finsta_preset"]), **dict(post.config["finsta"]))
    w = loss_weights(fcfg, 2, 0, 1)
    return {"vla": float(w["vla"]), "mlm": float(w["mlm"])}


def plan_pretrain(p: Pipeline, host: str, seed: int) -> RunSpec:
    """The host-only pre-training run on the corpus task."""
    base = [*p.overrides, *_opts("task.options", p.corpus_options)]
    return _one(plan_runs(host, CORPUS_TASK, "pretrain", seeds=[seed], overrides=base, store_root=p.store_root))


def plan_checkpoints(p: Pipeline, host: str, seed: int, pre: RunSpec) -> dict[str, RunSpec]:
    """The posttrain (and control) runs starting from the finished pre-training run ``pre``."""
    base = [*p.overrides, *_opts("task.options", p.corpus_options)]
    post_over = [*base, f"host.checkpoint={_checkpoint(pre)}", "posttrain.then=none", *p.finsta_overrides]
    labels = {"ablation": p.ablation, "sweep": p.sweep, "sweep_param": p.sweep_param, "sweep_value": p.sweep_value}
    post = _one(plan_runs(host, CORPUS_TASK, "posttrain", seeds=[seed], overrides=post_over, store_root=p.store_root,
                          labels=labels))
    out = {"pretrain": pre, "posttrain": post}
    if p.control:
        s2 = post.config["posttrain"]["stage2"]
        ctrl_over = [*base, f"host.checkpoint={_checkpoint(pre)}", f"pretrain.epochs={s2['epochs']}",
                     f"pretrain.batch_size={s2['batch_size']}", f"pretrain.lr={s2['host_lr']}",
                     f"pretrain.warmup_epochs={s2['warmup_epochs']}",
                     *_opts("pretrain.loss_weights", _stage2_host_loss_weights(post))]
        out["control"] = _one(plan_runs(host, CORPUS_TASK, "pretrain", seeds=[seed], overrides=ctrl_over,
                                        store_root=p.store_root, labels={"sweep": "control"}))
    return out


def eval_sources(p: Pipeline, checkpoints: dict[str, RunSpec]) -> list[str]:
    """The checkpoint stages whose saved host :func:`plan_evaluations` evaluates, in its order: the host's
    (``control``, or ``pretrain`` when there is no control) when ``p.evaluate_host``, then ``posttrain``."""
    host = ["control" if "control" in checkpoints else "pretrain"] if p.evaluate_host else []
    return [*host, "posttrain"]


def plan_evaluations(p: Pipeline, host: str, seed: int, checkpoints: dict[str, RunSpec],
                     sources: Collection[str] | None = None) -> list[RunSpec]:
    """Fine-tune / zero-shot runs of the host (control or pre-trained) and of the Finsta-host.

    ``sources`` limits the plan to the evaluations of those checkpoint stages (see :func:`eval_sources`), so
    that one checkpoint's evaluations can start before the other checkpoint exists; default: all."""
    labels = {"ablation": p.ablation, "sweep": p.sweep, "sweep_param": p.sweep_param, "sweep_value": p.sweep_value}
    host_labels = {k: v for k, v in labels.items() if k != "ablation"} if p.label_host else {}
    variants = [(key, key == "posttrain", labels if key == "posttrain" else host_labels)
                for key in eval_sources(p, checkpoints)]
    runs: list[RunSpec] = []
    for key, finsta, lab in variants:
        if sources is not None and key not in sources:
            continue
        ckpt = checkpoints[key]
        over = [*p.overrides, *_opts("task.options", p.eval_options), f"host.checkpoint={_checkpoint(ckpt)}",
                f"host.finsta_posttrained={'true' if finsta else 'false'}"]
        for mode in p.modes:
            runs += plan_runs(host, list(p.eval_tasks), mode, seeds=[seed], overrides=over, store_root=p.store_root,
                              labels=lab)
    return runs


class Progress:
    """``done/total`` runs and an ETA (elapsed time per run started so far x runs left), one line per run, so
    a long wait is never silent. ``echo=None`` prints nothing."""

    def __init__(self, total: int, echo: Callable[[str], None] | None = print) -> None:
        self.total, self.done, self.echo, self.t0 = total, 0, echo, time.time()

    def step(self, what: str, results: Sequence[RunResult]) -> None:
        self.done += len(results)
        if self.echo is None:
            return
        el = time.time() - self.t0
        ran = [r for r in results if r.state != "skipped"]
        eta = el / self.done * (self.total - self.done) if self.done else 0.0
        state = ", ".join(sorted({r.state for r in results}))
        self.echo(f"[{el:5.0f}s] {self.done}/{self.total} runs  {what} ({state})"
                  + (f"  ETA {eta / 60:.1f} min" if ran and self.done < self.total else ""))


def pipeline_size(p: Pipeline) -> int:
    """Runs a pipeline plans: per host and seed pre-training, post-training, the control, and the evaluations."""
    per_ckpt = len(p.eval_tasks) * len(p.modes)
    per_seed = 2 + int(p.control) + per_ckpt * (1 + int(p.evaluate_host))
    return len(p.hosts) * len(p.seeds) * per_seed


def default_workers() -> int:
    """Worker processes a pipeline uses by default: two, or one on a single-core machine (the demo's runs use
    one torch thread each, so two runs side by side fill two cores)."""
    return max(1, min(2, os.cpu_count() or 1))


def run_spec(spec: RunSpec) -> RunResult:
    """Run one planned run in this process exactly as the ``inline`` executor does (skipped when finished or
    when another process holds its folder lock; every error recorded as a failed result). What the worker
    processes of :func:`run_pipeline` execute: a module-level function, so it pickles by reference."""
    return submit([spec], "inline")[0]


def _stage_error(spec: RunSpec, res: RunResult) -> PipelineError:
    return PipelineError(f"run {spec.run_id} {res.state}: {res.error} (log: {spec.run_dir / 'log.txt'})")


def run_pipeline(p: Pipeline, echo: Callable[[str], None] | None = None) -> list[RunResult]:
    """Run every stage for every host and seed (finished runs are skipped, so a re-run resumes); ``echo``
    receives one progress line per run (done/total, ETA). Returns the evaluation runs' results in plan order.

    With the ``inline`` executor and ``p.workers > 1`` the runs execute in that many worker processes
    (:class:`_ParallelRunner`; results, run ids and metrics are those of a sequential run); otherwise one after
    the other in this process (``inline``), or each stage as one submission to the executor (``debug``,
    ``local``, ``slurm``: they parallelise themselves). Workers are started with ``spawn``, which imports the
    calling script again: a script that calls this with ``workers > 1`` needs ``if __name__ == "__main__":``.

    Raises:
        PipelineError: a pre-training, control or post-training run failed (the runs already executing are
            waited for and reported first; no new run starts). A failed evaluation is a ``failed`` result.
    """
    prog = Progress(pipeline_size(p), echo)
    if p.executor == "inline" and p.workers > 1:
        return _ParallelRunner(p, prog).run()
    results: list[RunResult] = []
    for host in p.hosts:
        for seed in p.seeds:
            pre = plan_pretrain(p, host, seed)
            _run([pre], p.executor, prog, f"{host} seed {seed} pretrain")
            ck = plan_checkpoints(p, host, seed, pre)  # planned once the checkpoint exists (planning checks it)
            for k, spec in ck.items():
                if k != "pretrain":
                    _run([spec], p.executor, prog, f"{host} seed {seed} {k}")
            evals = plan_evaluations(p, host, seed, ck)
            if p.executor == "inline":  # one at a time, so progress is reported as it happens
                for spec in evals:
                    res = submit([spec], p.executor)
                    prog.step(f"{host} seed {seed} {_eval_what(spec)}", res)
                    results += res
            else:
                res = submit(evals, p.executor)
                prog.step(f"{host} seed {seed} {len(evals)} evaluations", res)
                results += res
    return results


def _eval_what(spec: RunSpec) -> str:
    return (f"{spec.config['mode']} {spec.config['task']['name']}"
            f"{' (Finsta-host)' if spec.config['host']['finsta_posttrained'] else ''}")


@dataclass
class _Job:
    """One run of the parallel pipeline: its (host, seed) ``unit``, its ``stage`` (pretrain | control |
    posttrain | eval) and, for an evaluation, the checkpoint stage it evaluates (``source``)."""

    jid: int
    unit: int
    stage: str
    spec: RunSpec
    what: str
    source: str = ""
    result: RunResult | None = None

    def priority(self) -> tuple[int, int, int, int]:
        """Earlier units first (a run cut short has whole seeds); inside a unit the checkpoint stages (they
        unlock the most work; post-training, the longer, before the control), then the longest evaluations
        (fine-tuning before zero-shot), so the last runs to finish are short ones."""
        rank = {"pretrain": (0, 0), "posttrain": (1, 0), "control": (1, 1)}.get(self.stage)
        if rank is None:
            rank = (2, 0 if self.spec.mode == "finetune" else 1)
        return (self.unit, *rank, self.jid)


class _ParallelRunner:
    """The pipeline as a dependency graph executed by ``p.workers`` worker processes.

    Per (host, seed) unit: ``pretrain``, then ``posttrain`` and ``control`` (both only need the pre-trained
    checkpoint), then the evaluations of each checkpoint as soon as that checkpoint exists; every run becomes
    ready when its inputs are finished, and a free worker takes the ready run of highest :meth:`_Job.priority`,
    so the seeds overlap. Planning stays in this process (it needs the finished checkpoints on disk); a worker
    only executes :func:`run_spec`. Workers are started with ``spawn``: forking a process whose torch has
    started its thread pools can deadlock the child.

    Guarantees: a finished run is skipped without a worker (resume); one run id is never handed to two
    workers at once (and :class:`harness.store.RunLock` refuses a second process anyway); a run whose worker
    raised or died is recorded as ``failed`` with the error (a dead worker's pool is replaced, the other runs
    go on); a failed stage stops new runs, the runs in flight are awaited and reported, then
    :class:`PipelineError` is raised. Nothing is left running on return (the pool is shut down).
    """

    def __init__(self, p: Pipeline, prog: Progress, runner: Callable[[RunSpec], RunResult] = run_spec) -> None:
        self.p, self.prog, self.runner = p, prog, runner
        self.units = [(host, seed) for host in p.hosts for seed in p.seeds]
        self.checkpoints: dict[int, dict[str, RunSpec]] = {}
        self.evals: dict[int, dict[str, list[_Job]]] = {}
        self.ready: list[tuple[tuple[int, int, int, int], _Job]] = []
        self.deferred: dict[str, list[_Job]] = {}  # run id -> jobs waiting while that run id is executing
        self.fatal: BaseException | None = None
        self._jid = 0

    # -- the graph -------------------------------------------------------------------------------------
    def _add(self, unit: int, stage: str, spec: RunSpec, what: str, source: str = "") -> _Job:
        self._jid += 1
        job = _Job(self._jid, unit, stage, spec, what, source)
        heapq.heappush(self.ready, (job.priority(), job))
        return job

    def _plan_evals(self, unit: int, sources: Sequence[str]) -> None:
        host, seed = self.units[unit]
        ck = self.checkpoints[unit]
        for src in eval_sources(self.p, ck):
            if src in sources:
                self.evals[unit][src] = [self._add(unit, "eval", spec, f"{host} seed {seed} {_eval_what(spec)}", src)
                                         for spec in plan_evaluations(self.p, host, seed, ck, sources=[src])]

    def _finished(self, job: _Job) -> None:
        """Record ``job``'s result, print its progress line, and make the runs that needed it ready."""
        res = job.result
        assert res is not None
        self.prog.step(job.what, [res])
        for waiting in self.deferred.pop(job.spec.run_id, []):  # the same run id planned twice: now skipped
            heapq.heappush(self.ready, (waiting.priority(), waiting))
        if job.stage == "eval" or self.fatal is not None:
            return
        if res.state not in ("finished", "skipped"):
            self.fatal = _stage_error(job.spec, res)
            return
        host, seed = self.units[job.unit]
        try:  # planned once the checkpoint exists (planning checks it)
            if job.stage == "pretrain":
                ck = self.checkpoints[job.unit] = plan_checkpoints(self.p, host, seed, job.spec)
                self.evals[job.unit] = {}
                for k in ("posttrain", "control"):
                    if k in ck:
                        self._add(job.unit, k, ck[k], f"{host} seed {seed} {k}")
            self._plan_evals(job.unit, [job.stage])
        except Exception as err:  # noqa: BLE001 - re-raised once the runs in flight are reported
            self.fatal = err

    # -- execution -------------------------------------------------------------------------------------
    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.p.workers, mp_context=multiprocessing.get_context("spawn"))

    @staticmethod
    def _failed(spec: RunSpec, err: BaseException) -> RunResult:
        """A run whose worker raised (or died): recorded as failed with the error, unless it finished."""
        what = "worker process died" if isinstance(err, BrokenProcessPool) else type(err).__name__
        msg = f"{what}: {err}".strip().splitlines()[0]
        try:
            store = RunStore(spec.store_root)
            if not store.is_finished(spec.run_id):
                store.set_status(spec.run_id, "failed", error=msg)
        except Exception:  # noqa: BLE001 - the failure is still returned (and printed) without the store
            pass
        return RunResult(spec.run_id, "failed", str(spec.run_dir), error=msg)

    def run(self) -> list[RunResult]:
        for unit, (host, seed) in enumerate(self.units):
            self._add(unit, "pretrain", plan_pretrain(self.p, host, seed), f"{host} seed {seed} pretrain")
        pool: ProcessPoolExecutor | None = None
        running: dict[Future[RunResult], _Job] = {}
        try:
            while running or (self.ready and self.fatal is None):
                while self.ready and self.fatal is None and len(running) < self.p.workers:
                    _, job = heapq.heappop(self.ready)
                    spec = job.spec
                    if any(j.spec.run_id == spec.run_id for j in running.values()):
                        self.deferred.setdefault(spec.run_id, []).append(job)
                        continue
                    if RunStore(spec.store_root).is_finished(spec.run_id):  # resume: no worker needed
                        job.result = RunResult(spec.run_id, "skipped", str(spec.run_dir), error="finished before")
                        self._finished(job)
                        continue
                    pool = pool or self._pool()
                    running[pool.submit(self.runner, spec)] = job
                if not running:
                    continue
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                if any(isinstance(f.exception(), BrokenProcessPool) for f in done) and pool is not None:
                    pool.shutdown(wait=True)  # a worker died: every run of this pool has ended; new runs, new pool
                    pool, done = None, set(running)
                for fut in sorted(done, key=lambda f: running[f].jid):
                    job = running.pop(fut)
                    try:
                        job.result = fut.result()
                    except Exception as err:  # noqa: BLE001 - recorded as the run's failure
                        job.result = self._failed(job.spec, err)
                    self._finished(job)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        if self.fatal is not None:
            raise self.fatal
        return [job.result for unit in range(len(self.units)) for src in eval_sources(self.p, self.checkpoints[unit])
                for job in self.evals[unit].get(src, []) if job.result is not None]
