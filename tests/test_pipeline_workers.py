"""``Pipeline.workers``: the pipeline's runs in worker processes (``harness demo --workers N``).

Very small synthetic splits (a run takes about a second) so that the whole file stays well under a minute on
two cores; most of the time is the worker processes' start (``spawn``: a fresh interpreter importing torch).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from harness.jobs import RunResult
from harness.pipeline import Pipeline, PipelineError, Progress, _ParallelRunner, pipeline_size, run_pipeline, run_spec
from harness.plan import RunSpec
from harness.store import RunStore

TINY = {"quick": True, "n_train": 24, "n_test": 16, "n_pairs": 32, "diag_groups": 2}
OVERRIDES = ["preset=small", "run.progress=false", "finetune.epochs=1", "pretrain.epochs=1"]


def _pipeline(store: Path, workers: int, **kw: object) -> Pipeline:
    args: dict[str, object] = dict(hosts=["tiny"], eval_tasks=["synth_ret"], seeds=[1, 2], overrides=OVERRIDES,
                                   corpus_options=TINY, eval_options=TINY, store_root=store, workers=workers)
    return Pipeline(**{**args, **kw})  # type: ignore[arg-type]


def _runs(store: Path) -> dict[tuple[str, str, int, bool, str], tuple[str, Path]]:
    """Every run of a store by what it is (mode, task, seed, Finsta-host, sweep label): (run id, folder)."""
    out = {}
    for run_id in RunStore(store).run_ids():
        s = json.loads((store / run_id / "spec.json").read_text())
        key = (s["mode"], s["task"], s["seed"], s["finsta"], s["sweep"])
        assert key not in out, f"two runs for {key}"
        out[key] = (run_id, store / run_id)
    return out


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory):
    """The same two-seed pipeline run one after the other in this process and with two workers."""
    seq, par = tmp_path_factory.mktemp("seq"), tmp_path_factory.mktemp("par")
    res_seq = run_pipeline(_pipeline(seq, 1))
    lines: list[str] = []
    res_par = run_pipeline(_pipeline(par, 2), echo=lines.append)
    return seq, par, res_seq, res_par, lines


def test_workers_give_the_same_runs_checkpoints_and_metrics(stores) -> None:
    seq, par, res_seq, res_par, lines = stores
    assert [r.state for r in res_par] == ["finished"] * 8  # 2 seeds x {host, Finsta-host} x {finetune, zeroshot}
    a, b = _runs(seq), _runs(par)
    assert sorted(a) == sorted(b) and len(a) == 14  # per seed: pretrain, control, posttrain + 4 evaluations
    for key in a:
        if key[0] == "pretrain" and key[4] == "":  # no input checkpoint: the run id is the same in both stores
            assert a[key][0] == b[key][0]
        # every other run id hashes its input checkpoint's path and mtime (harness.config.identity), which
        # differ between two stores by design; what must agree are the bytes and the numbers:
        ckpt = a[key][1] / "host.safetensors"
        if ckpt.exists():
            digest = [hashlib.sha256((d / "host.safetensors").read_bytes()).hexdigest() for d in (a[key][1], b[key][1])]
            assert digest[0] == digest[1], f"{key}: checkpoints differ"
        ma, mb = (json.loads((d / "metrics.json").read_text())["evaluations"] for d in (a[key][1], b[key][1]))
        assert ma == mb, f"{key}: metrics differ"
    # the results come back in plan order, as without workers
    assert [r.run_id.rsplit("-", 1)[0] for r in res_par] == [r.run_id.rsplit("-", 1)[0] for r in res_seq]
    assert len(lines) == 14 and "14/14 runs" in lines[-1] and "1/14 runs" in lines[0]
    assert any("seed 1 control" in x for x in lines) and any("(Finsta-host)" in x for x in lines)


def test_rerun_skips_finished_runs_and_plans_the_same_run_ids(stores) -> None:
    _, par, _, res_par, _ = stores
    for workers in (2, 1):  # the parallel runs are exactly the runs the sequential pipeline plans
        again = run_pipeline(_pipeline(par, workers))
        assert [r.run_id for r in again] == [r.run_id for r in res_par]
        assert {r.state for r in again} == {"skipped"}
    assert len(RunStore(par).run_ids()) == 14  # nothing planned twice


def test_failed_stage_raises_after_the_runs_in_flight(tmp_path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    p = _pipeline(tmp_path / "runs", 2, modes=["zeroshot"], corpus_options={**TINY, "cache_dir": str(blocker / "c")})
    lines: list[str] = []
    with pytest.raises(PipelineError, match=r"run tiny-synth_pairs-pretrain-s\d-\w+ failed: NotADirectoryError"):
        run_pipeline(p, echo=lines.append)
    # both seeds' pre-training ran at once: the second is awaited and reported, nothing else started
    assert len(lines) == 2 and all("pretrain (failed)" in x for x in lines)
    assert {RunStore(p.store_root).state(r) for r in RunStore(p.store_root).run_ids()} == {"failed"}


def _die_on_finsta_ret(spec: RunSpec) -> RunResult:
    """A worker function that kills its worker process instead of running the Finsta-host's retrieval run."""
    if spec.finsta and spec.mode == "zeroshot" and spec.task == "synth_ret":
        os._exit(3)
    return run_spec(spec)


def test_failed_and_dead_evaluations_in_workers_are_reported(tmp_path) -> None:
    """An evaluation that fails in its worker is a failed result with its error; one whose worker process dies
    too (with the run sharing the pool at that moment; the pool is replaced for the rest). None is lost and
    the pipeline returns."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    p = _pipeline(tmp_path / "runs", 2, seeds=[1], modes=["zeroshot"], eval_tasks=["synth_ret", "synth_qa_mc"],
                  control=False, eval_options={**TINY, "cache_dir": str(blocker / "cache")})  # fails when written
    lines: list[str] = []
    results = _ParallelRunner(p, Progress(pipeline_size(p), lines.append), runner=_die_on_finsta_ret).run()
    assert len(results) == 4 and len(lines) == 6  # {host, Finsta-host} x 2 tasks; + pretrain, posttrain
    assert {r.state for r in results} == {"failed"}
    died = [r for r in results if r.error.startswith("worker process died")]
    own = [r for r in results if r.error.startswith("NotADirectoryError") and "a_file" in r.error]
    assert results[2] in died  # the Finsta-host's retrieval run (plan order: host ret, host qa, Finsta ret, qa)
    assert len(died) + len(own) == 4 and len(died) <= 2  # two workers: at most one other run died with it
    store = RunStore(p.store_root)
    for r in results:
        assert store.effective_state(r.run_id) == ("failed", r.error)


def test_demo_workers_option(tmp_path, capsys) -> None:
    """``demo --workers``: refused below 1; a failed stage is one ``failed:`` line naming the run (exit 1)."""
    from harness.cli import main
    from harness.pipeline import default_workers

    assert 1 <= default_workers() <= 2
    assert main(["demo", "--quick", "--workers", "0", "--store", str(tmp_path / "runs")]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    rc = main(["demo", "--quick", "--workers", "1", "--tasks", "synth_ret", "--store", str(tmp_path / "runs"),
               *[f"task.options.{k}={json.dumps(v)}" for k, v in TINY.items()],
               f"task.options.cache_dir={blocker / 'cache'}"])
    out = capsys.readouterr().out
    assert rc == 1 and "1/7 runs  tiny seed 1 pretrain (failed)" in out
    assert "failed: run tiny-synth_pairs-pretrain-s1-" in out and "NotADirectoryError" in out
