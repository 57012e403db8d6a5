"""Pure, deterministic split builders: ``build_split(kind, split, cfg, ...) -> list[Sample]``.

Sample ``i`` of a split is generated from its own generator seeded by ``(cfg.seed, kind, split, i)``, so it
does not depend on the split size, on other samples or on the process (``tests/synthetic`` checks byte
equality). Every sample carries ``frames`` (``uint8 [T, 3, H, W]``), ``timestamps`` (``[T]`` seconds),
its ground truth in ``extra`` (objects, events) and, unless ``with_graphs=False``, its exact HSG in
``scene_graph`` (TSG of the sample's caption, or of a description caption for QA samples).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from tasks.base import Sample
from tasks.synthetic.config import SynthConfig
from tasks.synthetic.diagnostic import DiagItem, diagnostic_groups
from tasks.synthetic.generator import sample_clip
from tasks.synthetic.grammar import caption, paragraph
from tasks.synthetic.graphs import build_dsg, build_hsg
from tasks.synthetic.questions import long_question, short_question
from tasks.synthetic.render import render
from tasks.synthetic.scene import Clip
from tasks.synthetic.vocab import OE_ANSWERS, action_classes

KINDS = ("pairs", "action", "cap", "ret", "qa_mc", "qa_oe", "para", "longqa")
LONG_KINDS = frozenset({"para", "longqa"})
DIAG_SPLITS = {"test_spatial": "spatial", "test_temporal": "temporal", "test_collab": "collab"}
DIAG_KINDS = {"qa_mc": ("test_spatial", "test_temporal", "test_collab"),
              "qa_oe": ("test_spatial", "test_temporal", "test_collab"),
              "ret": ("test_spatial", "test_temporal")}
RET_TEXTS = 2  # captions per retrieval video (paraphrases)


def sample_rng(cfg: SynthConfig, kind: str, split: str, i: int) -> np.random.Generator:
    """The generator of sample ``i`` of ``split`` of task kind ``kind`` (process-independent)."""
    return np.random.default_rng([cfg.seed, zlib.crc32(kind.encode()), zlib.crc32(split.encode()), i])


def split_size(cfg: SynthConfig, kind: str, split: str) -> int:
    if split == "train":
        return cfg.n_pairs if kind == "pairs" else cfg.n_train
    return cfg.n_test


def events_for(i: int, num_events: int | tuple[int, int] | list[int] | None, long: bool,
               rng: np.random.Generator) -> int:
    """Events of sample ``i``: a fixed count, a balanced cycle over ``[lo, hi]``, or the default range."""
    if num_events is None:
        lo, hi = (3, 8) if long else (1, 2)
        return int(rng.integers(lo, hi + 1))
    if isinstance(num_events, int):
        return num_events
    lo, hi = int(num_events[0]), int(num_events[1])
    return lo + i % (hi - lo + 1)


def _check_events(kind: str, num_events: Any) -> None:
    if num_events is None:
        return
    lo, hi = (num_events, num_events) if isinstance(num_events, int) else tuple(num_events)
    ok_lo, ok_hi = (1, 8) if kind in LONG_KINDS else (1, 2)
    if not (ok_lo <= lo <= hi <= ok_hi):
        raise ValueError(f"synthetic task kind {kind!r}: num_events must lie in [{ok_lo}, {ok_hi}], got {num_events}")


def _ground_truth(clip: Clip) -> dict[str, Any]:
    return {"objects": [[o.category, o.colour, o.size, o.static] for o in clip.objects],
            "events": [e.to_dict() for e in clip.events], "num_events": len(clip.events),
            "panned": bool(clip.camera[-1] != 0)}


def _make(cfg: SynthConfig, sid: str, clip: Clip, graph_text_rng: np.random.Generator | None, tsg=None,
          with_graphs: bool = True, long: bool = False, **fields: Any) -> Sample:
    """Render ``clip`` and wrap it as a Sample with its HSG (``tsg`` or a fresh caption's TSG)."""
    hsg = None
    if with_graphs:
        if tsg is None:
            tsg = caption(clip, graph_text_rng, cfg.relation_prob, cfg.size_prob, list(range(min(2, len(clip.events)))))
        hsg = build_hsg(tsg, build_dsg(clip, cfg.long_keyframes if long else cfg.keyframes), sid)
    extra = {**_ground_truth(clip), **fields.pop("extra", {})}
    return Sample(id=sid, frames=torch.from_numpy(render(clip)), timestamps=torch.from_numpy(clip.timestamps()),
                  scene_graph=hsg, extra=extra, **fields)


def _regular(cfg: SynthConfig, kind: str, split: str, i: int, num_events: Any, with_graphs: bool) -> Sample:
    rng = sample_rng(cfg, kind, split, i)
    sid = f"synth_{kind}-{split}-{i:05d}"
    long = kind in LONG_KINDS
    if kind == "action":
        classes = action_classes()
        label = i % len(classes) if split == "train" else int(rng.integers(len(classes)))
        parts = classes[label].split()
        first = (parts[0], parts[-1] in ("quickly", "abruptly"), parts[1] if parts[0] == "move" else None)
        clip = sample_clip(cfg, rng, 1, first=first)
        tsg = caption(clip, rng, cfg.relation_prob, cfg.size_prob)
        return _make(cfg, sid, clip, rng, tsg, with_graphs, texts=[tsg.caption], label=label,
                     extra={"class_name": classes[label]})
    clip = sample_clip(cfg, rng, events_for(i, num_events, long, rng), long=long)
    if kind in ("pairs", "cap", "ret"):
        n_text = 1 if kind == "pairs" else (RET_TEXTS if kind == "ret" else cfg.paraphrases)
        tsgs = [caption(clip, rng, cfg.relation_prob, cfg.size_prob) for _ in range(n_text)]
        texts = [t.caption for t in tsgs]
        refs = texts if kind == "cap" else None
        return _make(cfg, sid, clip, rng, tsgs[0], with_graphs, texts=texts, references=refs)
    if kind == "para":
        tsg = paragraph(clip, rng, cfg.relation_prob, cfg.size_prob)
        spans = [(clip.events[e].start / cfg.fps, clip.events[e].end / cfg.fps) for _, _, e in tsg.meta["sentences"]]
        return _make(cfg, sid, clip, rng, tsg, with_graphs, long=True, texts=[tsg.caption], spans=spans)
    qa = long_question(clip, rng) if kind == "longqa" else short_question(clip, rng)
    tsg = paragraph(clip, rng, cfg.relation_prob, cfg.size_prob) if long else None
    fields: dict[str, Any] = {"texts": [qa.question], "extra": {"answer_type": qa.qtype}}
    if kind == "qa_oe":
        fields.update(answer=qa.answer, label=OE_ANSWERS.index(qa.answer))
    else:
        fields.update(options=qa.options, answer_index=qa.answer_index, answer=qa.options[qa.answer_index])
    return _make(cfg, sid, clip, rng, tsg, with_graphs, long=long, **fields)


def _diag_sample(cfg: SynthConfig, kind: str, split: str, it: DiagItem, with_graphs: bool) -> Sample:
    sid = f"synth_{kind}-{split}-g{it.group:03d}-{it.variant:02d}"
    # one caption generator per group, so captions of a group differ only in the contrasted words
    text_rng = sample_rng(cfg, kind, f"{split}/caption", it.group)
    tsg = caption(it.clip, text_rng, 0.0, 0.0, list(range(min(2, len(it.clip.events)))))
    extra = {"group": it.group, "variant": it.variant, "diagnostic": it.kind}
    if kind == "ret":  # retrieval: the gallery text is the caption
        return _make(cfg, sid, it.clip, None, tsg, with_graphs, texts=[tsg.caption], extra=extra)
    extra["answer_type"] = it.qa.qtype
    fields: dict[str, Any] = {"texts": [it.qa.question], "extra": extra}
    if kind == "qa_oe":
        fields.update(answer=it.qa.answer, label=OE_ANSWERS.index(it.qa.answer))
    else:
        fields.update(options=it.qa.options, answer_index=it.qa.answer_index, answer=it.qa.answer)
    return _make(cfg, sid, it.clip, None, tsg, with_graphs, **fields)


def build_split(kind: str, split: str, cfg: SynthConfig | None = None, n: int | None = None,
                num_events: int | tuple[int, int] | None = None, with_graphs: bool = True,
                progress: Callable[[int], None] | None = None) -> list[Sample]:
    """All samples of ``split`` (``train``, ``test`` or a diagnostic ``test_*``) of task kind ``kind``.

    Args:
        kind: one of :data:`KINDS`; cfg: benchmark config (default :class:`SynthConfig`).
        n: number of samples (default from ``cfg``); for diagnostic splits, the number of contrast groups.
        num_events: events per clip: an int, or ``(lo, hi)`` cycled over samples (long kinds: 1..8,
            short kinds: 1..2); default 3..8 (long) / 1..2 (short) drawn per sample.
        with_graphs: attach the exact HSG to every sample.
    """
    cfg = cfg or SynthConfig()
    if kind not in KINDS:
        raise ValueError(f"unknown synthetic task kind {kind!r} (known: {', '.join(KINDS)})")
    _check_events(kind, num_events)
    if split in DIAG_SPLITS:
        if split not in DIAG_KINDS.get(kind, ()):
            raise ValueError(f"synthetic task kind {kind!r} has no diagnostic split {split!r}")
        items = diagnostic_groups(cfg, DIAG_SPLITS[split], n if n is not None else cfg.diag_groups,
                                  lambda g: sample_rng(cfg, kind, split, g), retrieval=kind == "ret")
        return [_diag_sample(cfg, kind, split, it, with_graphs) for it in items]
    if split not in ("train", "test"):
        raise ValueError(f"synthetic task kind {kind!r} has no split {split!r}")
    out = []
    for i in range(split_size(cfg, kind, split) if n is None else n):
        out.append(_regular(cfg, kind, split, i, num_events, with_graphs))
        if progress is not None:
            progress(i)
    return out
