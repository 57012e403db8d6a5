"""Benchmark harness: post-train / fine-tune / zero-shot jobs for (host, task) pairs, a results store,
submitit launching, named sweeps and paper tables. Entry point: ``python -m harness --help``.

Python API (used by the synthetic demo and by tests)::

    from harness.plan import plan_runs
    from harness.launch import submit
    from harness.jobs import run_job

    runs = plan_runs(host="tiny", task="synth_ret", mode="posttrain", seeds=[1], overrides=["preset=small"])
    results = submit(runs, executor="debug")
"""

__version__ = "0.1.0"
