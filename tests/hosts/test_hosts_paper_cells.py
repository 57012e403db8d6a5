"""Every paper cell (Tables 1-7, ``results/paper/table0N.csv``) of every implemented paper host is plannable: the
host's capabilities satisfy what the mode registry (``harness/modes.py``) asks for that task type and setting.
(Issue 12: before, 28 of 105 cells were refused at planning, 11 of Video-LLaMA's 17.)"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

from hosts.registry import HOSTS, discover

ROOT = Path(__file__).resolve().parents[2]
TASK_TYPE = {"qa_oe": "oe_qa", "qa_mc": "mc_qa"}  # paper-table spelling -> task-type name


def _paper_cells() -> dict[str, set[tuple[str, str, str, str]]]:
    cells: dict[str, set[tuple[str, str, str, str]]] = defaultdict(set)
    for path in sorted((ROOT / "results" / "paper").glob("table0[1-7].csv")):
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if row["host"] and row["finsta"] == "false":
                    key = (row["table"], row["dataset_key"], TASK_TYPE.get(row["task_type"], row["task_type"]),
                           row["setting"])
                    cells[row["host"].replace("_", "").replace("-", "")].add(key)
    return cells


def _implemented() -> list[str]:
    discover()
    # paper hosts cite their paper; test doubles registered by other test modules (tests/harness/fakes.py) do not
    return [n for n in HOSTS.names() if HOSTS.get(n).status == "implemented" and HOSTS.get(n).paper
            and not n.startswith("tiny")]


@pytest.mark.parametrize("name", _implemented())
def test_every_paper_cell_is_plannable(name):
    from harness.modes import FINETUNE_CAPABILITIES, ZEROSHOT_CAPABILITIES

    spec = HOSTS.get(name)
    cells = _paper_cells()[name.replace("_", "")]
    assert cells, f"{name}: no paper cells found"
    refused = []
    for table, dataset, task_type, setting in sorted(cells):
        alternatives = (ZEROSHOT_CAPABILITIES if setting == "zeroshot" else FINETUNE_CAPABILITIES)[task_type]
        if not any(need <= spec.capabilities for need in alternatives):
            refused.append(f"Table {table} {dataset} {task_type} ({setting})")
    assert not refused, f"{name} ({sorted(spec.capabilities)}) cannot plan {len(refused)}/{len(cells)}: {refused}"
