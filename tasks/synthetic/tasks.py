"""Registered task classes of the synthetic benchmark (``synth_*``).

Options (``create_task("synth_qa_mc", quick=True, sg_noise={"drop": 0.3})``):

* any :class:`~tasks.synthetic.config.SynthConfig` field (``size``, ``num_frames``, ``n_train``, ``seed`` ...);
  ``quick=True`` starts from :meth:`SynthConfig.quick` (small splits);
* ``num_events``: events per clip, an int or ``[lo, hi]`` (long tasks 1..8, default 3..8; short 1..2);
* ``sg_noise``: scene-graph corruption for robustness studies (:mod:`tasks.synthetic.corrupt`);
* ``with_graphs`` (default True): attach the exact HSG to every sample;
* ``cache_dir``: optional on-disk cache of generated splits;
* evaluator options (``on_failed``, ``tie_rule``, ``drop_articles``).

No files are needed: ``required_files`` is empty and every split is generated deterministically.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from tasks.base import Sample, Task, TaskType, VideoProtocol
from tasks.synthetic.cache import cache_path, load_samples, save_samples
from tasks.synthetic.config import SynthConfig
from tasks.synthetic.corrupt import apply_sg_noise, check_sg_noise
from tasks.synthetic.splits import DIAG_KINDS, LONG_KINDS, _check_events, build_split
from tasks.synthetic.vocab import OE_ANSWERS, action_classes

_OWN_OPTIONS = {"quick", "num_events", "sg_noise", "with_graphs", "cache_dir"}
_EVAL_OPTIONS = {"on_failed", "tie_rule", "drop_articles"}


class SyntheticTask(Task):
    """Base of the ``synth_*`` tasks: split generation, options, identity."""

    kind: str = ""
    dataset = "synthetic"  # replaced by each task's own name (``__init_subclass__``)
    version = "3"  # 2: meta["dynamic"] in the graphs; 3: test splits of >= 200 items in quick mode

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Each synthetic task is its own dataset (``dataset = name``, e.g. ``synth_ret``): the run store's
        ``dataset`` column keys the columns of the paper-style tables, so the tasks must not share one."""
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            cls.dataset = cls.name

    def __init__(self, root: str | Path | None = None, strict: bool = True, **options: Any) -> None:
        super().__init__(root=root, strict=strict, **options)
        opts = dict(options)
        quick = bool(opts.pop("quick", False))
        base = SynthConfig.quick() if quick else SynthConfig()
        cfg, rest = SynthConfig.from_options(opts)
        self.config: SynthConfig = replace(base, **{k: v for k, v in opts.items() if k in cfg.to_dict()})
        unknown = set(rest) - _OWN_OPTIONS - _EVAL_OPTIONS
        if unknown:
            raise ValueError(f"task {self.name!r}: unknown option(s) {sorted(unknown)} (known: SynthConfig fields, "
                             f"{', '.join(sorted(_OWN_OPTIONS | _EVAL_OPTIONS))})")
        self.num_events = rest.get("num_events")
        if isinstance(self.num_events, (list, tuple)):
            self.num_events = (int(self.num_events[0]), int(self.num_events[1]))
        _check_events(self.kind, self.num_events)
        self.sg_noise = check_sg_noise(rest.get("sg_noise"))
        self.with_graphs = bool(rest.get("with_graphs", True))
        self.cache_dir = rest.get("cache_dir")
        long = self.kind in LONG_KINDS
        self.protocol = VideoProtocol(num_frames=self.config.long_host_frames if long else self.config.host_frames,
                                      sampling="uniform", resolution=self.config.size, crop="none")
        self._splits: dict[str, list[Sample]] = {}

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["synth_config"] = self.config.to_dict()
        return ident

    def load_split(self, split: str) -> list[Sample]:
        if split not in self._splits:
            samples = None
            path = None
            if self.cache_dir:
                ident = {"kind": self.kind, "split": split, "config": self.config.to_dict(),
                         "num_events": self.num_events, "with_graphs": self.with_graphs, "version": self.version}
                path = cache_path(self.cache_dir, self.kind, split, ident)
                if path.exists():
                    samples = load_samples(path)
            if samples is None:
                samples = build_split(self.kind, split, self.config, num_events=self.num_events,
                                      with_graphs=self.with_graphs)
                if path is not None:
                    save_samples(path, samples)
            self._splits[split] = apply_sg_noise(samples, self.sg_noise)
        return list(self._splits[split])


def _diag(kind: str) -> tuple[str, ...]:
    return ("train", "test") + DIAG_KINDS.get(kind, ())


class SynthPairs(SyntheticTask):
    name, kind = "synth_pairs", "pairs"
    task_type = TaskType.RETRIEVAL
    metrics = ("R@1", "R@5", "R@10", "MdR", "MnR")
    description = "Synthetic video-caption pairs with exact HSGs (pre-training / Finsta post-training corpus)"


class SynthAction(SyntheticTask):
    name, kind = "synth_action", "action"
    task_type = TaskType.ACTION_RECOGNITION
    metrics = ("top1", "top5", "mean_class_acc")
    num_classes = len(action_classes())
    description = "Synthetic action recognition: 18 (predicate, manner) classes, e.g. 'move left quickly'"

    @property
    def class_names(self) -> list[str]:
        """Class names in label order (a property, like the official action tasks')."""
        return action_classes()


class SynthCaptioning(SyntheticTask):
    name, kind = "synth_cap", "cap"
    task_type = TaskType.CAPTIONING
    metrics = ("CIDEr", "BLEU@4", "METEOR", "ROUGE-L")
    description = "Synthetic captioning: one or two events, paraphrased references"


class SynthRetrieval(SyntheticTask):
    name, kind = "synth_ret", "ret"
    task_type = TaskType.RETRIEVAL
    splits = _diag("ret")
    metrics = ("R@1", "R@5", "R@10", "MdR", "MnR")
    description = "Synthetic text-video retrieval (2 paraphrases per video); hard-negative diagnostic galleries"


class SynthQAMC(SyntheticTask):
    name, kind = "synth_qa_mc", "qa_mc"
    task_type = TaskType.MC_QA
    splits = _diag("qa_mc")
    metrics = ("accuracy",)
    description = "Synthetic multiple-choice video QA; spatial / temporal / collaboration contrast splits"


class SynthQAOE(SyntheticTask):
    name, kind = "synth_qa_oe", "qa_oe"
    task_type = TaskType.OE_QA
    splits = _diag("qa_oe")
    metrics = ("accuracy",)
    num_classes = len(OE_ANSWERS)
    description = "Synthetic open-ended video QA (one-word answers, fixed answer vocabulary)"

    @property
    def answer_vocab(self) -> list[str]:
        """The answer vocabulary (``Sample.label`` indexes it; a property, like the official QA tasks')."""
        return list(OE_ANSWERS)

    class_names = answer_vocab


class SynthParagraph(SyntheticTask):
    name, kind = "synth_para", "para"
    task_type = TaskType.PARAGRAPH_RETRIEVAL
    metrics = ("R@1", "R@5", "R@10", "MdR", "MnR")
    description = "Synthetic video-paragraph retrieval: long clips with 3-8 events, one sentence per event"


class SynthLongQA(SyntheticTask):
    name, kind = "synth_longqa", "longqa"
    task_type = TaskType.LONGFORM_QA
    metrics = ("accuracy",)
    description = "Synthetic long-form QA on 3-8 event clips: event order (next / previous / first / last), counting"


SYNTH_TASKS: tuple[type[SyntheticTask], ...] = (SynthPairs, SynthAction, SynthCaptioning, SynthRetrieval, SynthQAMC,
                                                SynthQAOE, SynthParagraph, SynthLongQA)
