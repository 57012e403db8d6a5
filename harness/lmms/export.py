"""Write one of our tasks as an lmms-eval task folder (for ``lmms-eval --include_path``).

Our loader reads the official-format files (so the docs are exactly the samples ``harness run`` evaluates), and
the folder gets:

* ``<name>.jsonl``  one doc per sample: ``id``, absolute ``video`` path, the task's video ``protocol`` (so the
  ``finsta_host`` model decodes the frames ``harness run`` evaluates), ``prompt``, and the task type's target
  (``answer`` | ``options`` + ``answer_index`` | ``references``);
* ``<name>.yaml``   the lmms-eval task in the task's paper protocol (``dataset_path: json`` over that file);
* ``utils.py``      re-exports :mod:`harness.lmms.task_utils` (lmms-eval resolves ``!function utils.x`` there).

Supported task types and their lmms-eval output types: open-ended QA -> ``generate_until`` scored by normalised
exact match; multiple-choice and long-form QA -> ``multiple_choice`` (lmms-eval ranks the options by summed
log-likelihood: ``acc``, and by byte-length-normalised log-likelihood: ``acc_norm``; our harness ranks by
``score_options``, which for Video-LLaVA is per-token mean when ``mc_length_norm`` is on, so ``acc`` matches
our number only with ``host.options.mc_length_norm=false``); captioning -> ``generate_until`` with corpus CIDEr,
BLEU@4, ROUGE-L aggregations. Retrieval has no lmms-eval output type and is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from finsta_core.io import atomic_write_text
from harness.errors import HarnessError
from tasks.base import Task
from tasks.types import Sample, TaskType

PREFIX = "finsta_"
MC_PROMPT = "Which option describes the video?"
GEN_TOKENS = {TaskType.OE_QA: 8, TaskType.CAPTIONING: 30}
SUPPORTED = (TaskType.OE_QA, TaskType.MC_QA, TaskType.LONGFORM_QA, TaskType.CAPTIONING)


class ExportError(HarnessError):
    """The task cannot be exported (type lmms-eval cannot express, or a sample lacks a field)."""


def _doc(task: Task, s: Sample, tt: TaskType, drop_articles: bool) -> dict[str, Any]:
    if not s.video:
        raise ExportError(f"{task.name}: sample {s.id!r} has no video path (field 'video')")
    p = task.protocol
    doc: dict[str, Any] = {"id": s.id, "video": str(Path(s.video).resolve()),
                           "protocol": {"num_frames": p.num_frames, "fps": p.fps, "sampling": p.sampling,
                                        "resolution": p.resolution, "crop": p.crop, "backend": p.backend}}
    question = s.texts[0] if s.texts else ""
    if tt == TaskType.OE_QA:
        if s.answer is None:
            raise ExportError(f"{task.name}: sample {s.id!r} has no reference answer (field 'answer')")
        doc.update(prompt=question, answer=s.answer, drop_articles=drop_articles)
    elif tt in (TaskType.MC_QA, TaskType.LONGFORM_QA):
        if not s.options or s.answer_index is None:
            raise ExportError(f"{task.name}: sample {s.id!r} needs 'options' and 'answer_index'")
        doc.update(prompt=question or MC_PROMPT, options=list(s.options), answer_index=int(s.answer_index))
    elif tt == TaskType.CAPTIONING:
        if not s.references:
            raise ExportError(f"{task.name}: sample {s.id!r} has no reference captions (field 'references')")
        doc.update(prompt="", references=list(s.references))
    return doc


def task_yaml(task: Task, name: str, data_file: Path) -> dict[str, Any]:
    """The lmms-eval task config of ``task`` (see the module docstring for the scoring rules)."""
    tt = TaskType(task.task_type)
    cfg: dict[str, Any] = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file.resolve())}},
        "test_split": "test",
        "doc_to_visual": "!function utils.doc_to_visual",
        "doc_to_text": "!function utils.doc_to_text",
        "metadata": {"version": task.version, "finsta_task": task.name, "finsta_fingerprint": task.fingerprint(),
                     "protocol": task.protocol.describe()},
    }
    if tt == TaskType.OE_QA:
        cfg.update(output_type="generate_until", doc_to_target="answer",
                   generation_kwargs={"max_new_tokens": GEN_TOKENS[tt], "do_sample": False},
                   process_results="!function utils.process_qa",
                   metric_list=[{"metric": "accuracy", "aggregation": "mean", "higher_is_better": True}])
    elif tt in (TaskType.MC_QA, TaskType.LONGFORM_QA):
        cfg.update(output_type="multiple_choice", doc_to_choice="!function utils.doc_to_choice",
                   doc_to_target="answer_index",
                   metric_list=[{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                                {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}])
    elif tt == TaskType.CAPTIONING:
        cfg.update(output_type="generate_until", doc_to_target="references",
                   generation_kwargs={"max_new_tokens": GEN_TOKENS[tt], "do_sample": False},
                   process_results="!function utils.process_caption",
                   metric_list=[{"metric": m, "aggregation": f"!function utils.{agg}", "higher_is_better": True}
                                for m, agg in (("CIDEr", "agg_cider"), ("BLEU@4", "agg_bleu4"),
                                               ("ROUGE-L", "agg_rouge_l"))])
    else:
        raise ExportError(f"task {task.name!r} ({tt.value}) has no lmms-eval output type")
    return cfg


class _FunctionTag(str):
    """A ``!function x`` YAML scalar (lmms-eval's tag for a Python callable)."""


def _dump(cfg: dict[str, Any]) -> str:
    def tag(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: tag(v) for k, v in x.items()}
        if isinstance(x, list):
            return [tag(v) for v in x]
        if isinstance(x, str) and x.startswith("!function "):
            return _FunctionTag(x[len("!function "):])
        return x

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(_FunctionTag, lambda d, v: d.represent_scalar("!function", str(v)))
    return yaml.dump(tag(cfg), Dumper=Dumper, sort_keys=False)


def export_task(task: Task, out_dir: str | Path, split: str | None = None, limit: int | None = None) -> Path:
    """Write ``task``'s ``split`` (default its eval split) as an lmms-eval task folder under ``out_dir``.

    Returns:
        the folder ``out_dir/finsta_<task>`` (pass ``out_dir`` to ``--include_path``; the task is
        ``finsta_<task>``).

    Raises:
        ExportError: unsupported task type, a sample missing a field, or an empty split.
    """
    tt = TaskType(task.task_type)
    if tt not in SUPPORTED:
        raise ExportError(f"task {task.name!r} ({tt.value}) has no lmms-eval output type (lmms-eval scores "
                          "generation, log-likelihood and multiple choice; retrieval stays in `harness run`)")
    split = split or task.eval_split
    samples = task.samples(split, limit=limit)
    if not samples:
        raise ExportError(f"{task.name}: split {split!r} has no samples under {task.data_root}")
    name = PREFIX + task.name
    folder = Path(out_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    drop = bool(task.eval_settings().option("drop_articles", False))
    docs = [_doc(task, s, tt, drop) for s in samples]
    data_file = folder / f"{name}.jsonl"
    atomic_write_text(data_file, "".join(json.dumps(d) + "\n" for d in docs))
    atomic_write_text(folder / f"{name}.yaml", _dump(task_yaml(task, name, data_file)))
    atomic_write_text(folder / "utils.py", '"""lmms-eval task utilities (generated)."""\n'
                      "from harness.lmms.task_utils import *  # noqa: F401,F403\n")
    return folder
