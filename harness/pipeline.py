"""The host -> Finsta-host pipeline used by ``harness demo`` and the synthetic claims study.

For one host and seed it chains ordinary harness runs (same jobs, same store, same tables as any run):

1. ``pretrain``: the host alone with its own coarse objectives (VLA, MLM) on the post-training corpus.
2. ``control``: the pre-trained host trained further with its own losses for exactly the optimizer steps,
   batch size and host learning rate of Finsta's stage 2. This is the "host" row: without it the
   Finsta-host would win simply by having trained longer (a confound the paper does not control for).
3. ``posttrain``: from the same pre-trained checkpoint, Finsta stage 1 (OSC + PTC) then stage 2 (joint
   with TRS and the host's losses, Eq 42); the host is saved without Finsta. This is "Finsta-<host>".
4. ``finetune`` / ``zeroshot`` of both checkpoints on every evaluation task.

Post-training happens once per (host, seed, ablation) on the corpus task (``synth_pairs``) and the
post-trained host is evaluated on every task, instead of one post-training per target task; so the TRS
weights lambda^{T,D,C} (Eq 41) are those of the corpus task's family (retrieval). See docs/paper-notes.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.jobs import RunResult
from harness.launch import submit
from harness.plan import RunSpec, plan_runs

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


def _opts(prefix: str, options: dict[str, object]) -> list[str]:
    import json

    return [f"{prefix}.{k}={json.dumps(v)}" for k, v in options.items()]


def _one(runs: list[RunSpec]) -> RunSpec:
    assert len(runs) == 1, f"expected one planned run, got {len(runs)}"
    return runs[0]


def _run(specs: list[RunSpec], executor: str) -> list[RunResult]:
    results = submit(specs, executor)
    for spec, res in zip(specs, results):
        if res.state not in ("finished", "skipped"):
            raise PipelineError(f"run {spec.run_id} {res.state}: {res.error} (log: {spec.run_dir / 'log.txt'})")
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


def plan_evaluations(p: Pipeline, host: str, seed: int, checkpoints: dict[str, RunSpec]) -> list[RunSpec]:
    """Fine-tune / zero-shot runs of the host (control or pre-trained) and of the Finsta-host."""
    labels = {"ablation": p.ablation, "sweep": p.sweep, "sweep_param": p.sweep_param, "sweep_value": p.sweep_value}
    variants = [(checkpoints["posttrain"], True, labels)]
    if p.evaluate_host:
        host_ckpt = checkpoints.get("control", checkpoints["pretrain"])
        host_labels = {k: v for k, v in labels.items() if k != "ablation"} if p.label_host else {}
        variants.insert(0, (host_ckpt, False, host_labels))
    runs: list[RunSpec] = []
    for ckpt, finsta, lab in variants:
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


def run_pipeline(p: Pipeline, echo: Callable[[str], None] | None = None) -> list[RunResult]:
    """Run every stage for every host and seed (finished runs are skipped, so a re-run resumes); ``echo``
    receives one progress line per run (done/total, ETA)."""
    results: list[RunResult] = []
    prog = Progress(pipeline_size(p), echo)
    for host in p.hosts:
        for seed in p.seeds:
            pre = plan_pretrain(p, host, seed)
            prog.step(f"{host} seed {seed} pretrain", _run([pre], p.executor))
            ck = plan_checkpoints(p, host, seed, pre)  # planned once the checkpoint exists (planning checks it)
            for k, spec in ck.items():
                if k != "pretrain":
                    prog.step(f"{host} seed {seed} {k}", _run([spec], p.executor))
            evals = plan_evaluations(p, host, seed, ck)
            if p.executor == "inline":  # one at a time, so progress is reported as it happens
                for spec in evals:
                    res = submit([spec], p.executor)
                    prog.step(f"{host} seed {seed} {spec.config['mode']} {spec.config['task']['name']}"
                              f"{' (Finsta-host)' if spec.config['host']['finsta_posttrained'] else ''}", res)
                    results += res
            else:
                res = submit(evals, p.executor)
                prog.step(f"{host} seed {seed} {len(evals)} evaluations", res)
                results += res
    return results
