"""Registers the synthetic benchmark's tasks (``synth_*``) into :data:`tasks.registry.TASKS` (lazy entries)."""

from __future__ import annotations

from tasks.registry import TASKS

_ENTRIES = {
    "synth_pairs": ("SynthPairs", "retrieval"),
    "synth_action": ("SynthAction", "action_recognition"),
    "synth_cap": ("SynthCaptioning", "captioning"),
    "synth_ret": ("SynthRetrieval", "retrieval"),
    "synth_qa_mc": ("SynthQAMC", "mc_qa"),
    "synth_qa_oe": ("SynthQAOE", "oe_qa"),
    "synth_para": ("SynthParagraph", "paragraph_retrieval"),
    "synth_longqa": ("SynthLongQA", "longform_qa"),
}

for _name, (_cls, _type) in _ENTRIES.items():
    if _name not in TASKS:
        TASKS.register(_name, f"tasks.synthetic.tasks:{_cls}", type=_type, dataset=_name, synthetic=True)
