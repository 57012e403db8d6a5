"""Job functions: one planned :class:`~harness.spec.RunSpec` in, results in the store out.

``harness.jobs.run.run_job(spec)`` runs any mode (the job function comes from the mode registry
:mod:`harness.modes`); ``posttrain`` / ``pretrain`` live in :mod:`harness.jobs.posttrain`, ``finetune`` /
``zeroshot`` in :mod:`harness.jobs.finetune`. Jobs read the spec only (never :mod:`harness.plan`) and call
only the host, task and finsta_core contracts.
"""

from harness.jobs.run import RunResult, run_job, write_run_files

__all__ = ["RunResult", "run_job", "write_run_files"]
