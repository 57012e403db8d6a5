"""lm-evaluation-harness / lmms-eval spellings accepted by ``run`` and ``validate`` plan exactly what ours plan."""

from __future__ import annotations

import argparse

import pytest

from harness.cli import main
from harness.commands._common import lm_eval_overrides
from harness.errors import HarnessError


def _planned(capsys: pytest.CaptureFixture, argv: list[str]) -> list[str]:
    assert main(argv) == 0
    return [line.split()[-1] for line in capsys.readouterr().out.splitlines() if line.startswith("ok ")]


def test_aliases_plan_the_same_runs(tmp_path, capsys: pytest.CaptureFixture) -> None:
    ours = _planned(capsys, ["validate", "--host", "tiny", "--task", "synth_action", "--preset", "small", "--seeds",
                             "1", "--store", str(tmp_path), "data.limit=4"])
    theirs = _planned(capsys, ["validate", "--model", "tiny", "--tasks", "synth_action", "--preset", "small",
                               "--seeds", "1", "--output_path", str(tmp_path), "--limit", "4", "--log_samples"])
    assert ours and ours == theirs


def test_model_args_map_to_checkpoint_and_host_options() -> None:
    args = argparse.Namespace(model_args="pretrained=/ckpt/x, num_frames=8", limit=3)
    assert lm_eval_overrides(args) == ["host.checkpoint=/ckpt/x", "host.options.num_frames=8", "data.limit=3"]


@pytest.mark.parametrize("model_args, limit, message", [("d_model", None, "key=value"), (None, -1, ">= 0")])
def test_bad_alias_values_are_one_line_errors(model_args, limit, message) -> None:
    with pytest.raises(HarnessError, match=message):
        lm_eval_overrides(argparse.Namespace(model_args=model_args, limit=limit))
