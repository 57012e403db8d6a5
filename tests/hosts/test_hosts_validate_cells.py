"""Issue 12 / 13 "done when": the planner (what ``python -m harness validate`` runs) plans every paper cell of every
implemented host against its official checkpoint layout, a tiny official-format fixture standing in for the
weights. Without the datasets here, planning must get past the capability and checkpoint checks (which come
first) and stop only at the first missing dataset file; a missing checkpoint must stop it at the checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_hosts_paper_cells import TASK_TYPE, _implemented, _paper_cells
from tiny_builders import make_tokenizer, tiny_video_llava_config

from harness.errors import PlanError
from harness.plan import plan_runs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hosts"
# (paper dataset key, task type) -> our task
TASKS = {("activitynet", "paragraph_retrieval"): "activitynet_para", ("didemo", "retrieval"): "didemo_ret",
         ("how2qa", "longform_qa"): "how2qa", ("k400", "action_recognition"): "k400",
         ("lsmdc", "retrieval"): "lsmdc_ret", ("msrvtt", "captioning"): "msrvtt_cap", ("msrvtt", "mc_qa"): "msrvtt_mc",
         ("msrvtt", "oe_qa"): "msrvtt_qa", ("msrvtt", "retrieval"): "msrvtt_ret", ("msvd", "oe_qa"): "msvd_qa",
         ("msvd", "captioning"): "msvd_cap", ("queryd", "paragraph_retrieval"): "queryd_para",
         ("ssv2", "action_recognition"): "ssv2", ("tgif", "oe_qa"): "tgif_frameqa", ("violin", "longform_qa"): "violin",
         ("youcook2", "captioning"): "youcook2_cap"}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The official-format fixture of each host; Video-LLaVA's HF directory is written here (its layout is the
    transformers class itself)."""
    from transformers import VideoLlavaForConditionalGeneration

    out = {p.name: p for p in FIXTURES.iterdir() if p.is_dir()}
    d = tmp_path_factory.mktemp("video_llava_hf")
    VideoLlavaForConditionalGeneration(tiny_video_llava_config()).save_pretrained(d)
    make_tokenizer("llama").save_pretrained(d)
    out["video_llava"] = d
    return out


@pytest.mark.parametrize("name", _implemented())
def test_validate_plans_every_paper_cell_up_to_the_dataset(name: str, checkpoints: dict[str, Path],
                                                          tmp_path: Path) -> None:
    cells = sorted(_paper_cells()[name.replace("_", "")])
    assert cells, name
    assert name in checkpoints, f"{name}: no official-format fixture under {FIXTURES}"
    stopped_elsewhere = []
    for _table, dataset, task_type, setting in cells:
        task = TASKS[(dataset, TASK_TYPE.get(task_type, task_type))]
        with pytest.raises(PlanError) as err:
            plan_runs(name, task, setting, seeds=[1], overrides=[f"host.checkpoint={checkpoints[name]}"],
                      store_root=str(tmp_path / "runs"))
        msg = str(err.value)
        if not (msg.startswith(f"task '{task}' split") and "missing" in msg):
            stopped_elsewhere.append(f"{task} ({setting}): {msg[:160]}")
    assert not stopped_elsewhere, f"{name}: planning stopped before the dataset check: {stopped_elsewhere}"


def test_a_missing_checkpoint_stops_planning_at_the_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="missing checkpoint of host 'clover'"):
        plan_runs("clover", "msrvtt_cap", "finetune", seeds=[1], overrides=[f"host.checkpoint={tmp_path / 'absent'}"],
                  store_root=str(tmp_path / "runs"))
