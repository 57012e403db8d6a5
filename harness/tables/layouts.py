"""The paper's table layouts as data.

A :class:`TableLayout` says which measured runs a table collects (mode and task types), which
columns the paper prints and in what order, how deltas are formed, and how the table is decorated
(best per column, section headings, a per-row average). The paper renderer
(:mod:`harness.tables.paper`) and the measured renderer (:mod:`harness.tables.measured`) both read
these objects; adding a table means adding one entry to :data:`LAYOUTS`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ColumnSpec",
    "TableLayout",
    "LAYOUTS",
    "PAPER_TABLES",
    "ABLATION_LABELS",
    "ABLATION_ORDER",
    "ABLATION_SECTIONS",
    "TASK_DEFAULT_METRICS",
    "PRIMARY_METRIC",
    "layout_for",
]


@dataclass(frozen=True)
class ColumnSpec:
    """One printed column: a metric on a dataset for a task type (and, in Table 8, a host)."""

    dataset_key: str
    task_type: str
    metric_key: str
    host: str = ""


@dataclass(frozen=True)
class TableLayout:
    """How one of the paper's tables is laid out.

    Attributes:
        name: file stem (``"table01"``).
        number: the paper's table number.
        title: short title used as the caption's first sentence.
        kind: ``"results"`` (methods x dataset/metric), ``"ablation"`` (ablation switches x
            host/dataset/metric, Table 8), ``"cost"`` (cost items x host/raw-or-Finsta, Table 9) or
            ``"sg"`` (scene-graph source rows, Tables 12 and 14).
        mode: ``"finetune"`` / ``"zeroshot"``: which measured runs the table collects.
        task_types: canonical task types the table collects from a measured frame.
        columns: the paper's columns in order.
        delta: ``"abs"`` (Finsta minus host, in metric units), ``"rel"`` (percent change) or ``"none"``.
        mark_best: bold the best value per column.
        row_average: add an ``AVG`` column (mean over the row's columns) with its delta to the full model.
        section_headings: print section names as heading rows (otherwise only a rule between sections).
    """

    name: str
    number: int
    title: str
    kind: str
    mode: str
    task_types: tuple[str, ...]
    columns: tuple[ColumnSpec, ...]
    delta: str = "abs"
    mark_best: bool = True
    row_average: bool = False
    section_headings: bool = False


def _cols(*specs: tuple[str, str, str] | tuple[str, str, str, str]) -> tuple[ColumnSpec, ...]:
    return tuple(ColumnSpec(*s) for s in specs)


AR, CAP, RET, MC, OE, PR, LF = (
    "action_recognition",
    "captioning",
    "retrieval",
    "qa_mc",
    "qa_oe",
    "paragraph_retrieval",
    "longform_qa",
)
_SG_COLUMNS = _cols(
    ("k400", AR, "top1"), ("msrvtt", CAP, "meteor"), ("didemo", RET, "r1"), ("msvd", OE, "acc")
)

LAYOUTS: dict[str, TableLayout] = {
    lay.name: lay
    for lay in (
        TableLayout(
            "table01",
            1,
            "Video action recognition (fine-tuned, accuracy)",
            "results",
            "finetune",
            (AR,),
            _cols(("k400", AR, "top1"), ("k400", AR, "top5"), ("ssv2", AR, "top1"), ("ssv2", AR, "top5")),
        ),
        TableLayout(
            "table02",
            2,
            "Video captioning (fine-tuned; M = METEOR, B@4 = BLEU-4)",
            "results",
            "finetune",
            (CAP,),
            _cols(
                ("youcook2", CAP, "meteor"),
                ("youcook2", CAP, "bleu4"),
                ("msrvtt", CAP, "meteor"),
                ("msrvtt", CAP, "bleu4"),
            ),
        ),
        TableLayout(
            "table03",
            3,
            "Video-text retrieval (fine-tuned, recall)",
            "results",
            "finetune",
            (RET,),
            _cols(("lsmdc", RET, "r1"), ("lsmdc", RET, "r5"), ("didemo", RET, "r1"), ("didemo", RET, "r5")),
        ),
        TableLayout(
            "table04",
            4,
            "Video question answering (fine-tuned, accuracy; MC = multiple choice, OE = open-ended)",
            "results",
            "finetune",
            (MC, OE),
            _cols(("msrvtt", MC, "acc"), ("msrvtt", OE, "acc"), ("msvd", OE, "acc"), ("tgif", OE, "acc")),
        ),
        TableLayout(
            "table05",
            5,
            "Video-paragraph retrieval (fine-tuned, recall)",
            "results",
            "finetune",
            (PR,),
            _cols(
                ("queryd", PR, "r1"),
                ("queryd", PR, "r5"),
                ("activitynet", PR, "r1"),
                ("activitynet", PR, "r5"),
            ),
        ),
        TableLayout(
            "table06",
            6,
            "Long-form video question answering (fine-tuned, accuracy)",
            "results",
            "finetune",
            (LF,),
            _cols(("how2qa", LF, "acc"), ("violin", LF, "acc")),
        ),
        TableLayout(
            "table07",
            7,
            "Zero-shot action recognition, video-text retrieval and video QA",
            "results",
            "zeroshot",
            (AR, RET, OE, MC),
            _cols(("k400", AR, "top1"), ("lsmdc", RET, "r1"), ("lsmdc", RET, "r5"), ("msvd", OE, "acc")),
        ),
        TableLayout(
            "table08",
            8,
            "Ablation of Finsta-HDVILA and Finsta-LFVILA",
            "ablation",
            "finetune",
            (AR, CAP, RET, OE, MC, PR, LF),
            _cols(
                ("k400", AR, "top1", "hdvila"),
                ("msrvtt", CAP, "meteor", "hdvila"),
                ("didemo", RET, "r1", "hdvila"),
                ("msvd", OE, "acc", "hdvila"),
                ("activitynet", PR, "r1", "lfvila"),
                ("how2qa", LF, "acc", "lfvila"),
            ),
            delta="none",
            row_average=True,
            section_headings=True,
        ),
        TableLayout(
            "table09",
            9,
            "Computation cost of Finsta-VLM pre-/post-training",
            "cost",
            "",
            ("cost",),
            _cols(
                ("", "cost", "params_m"),
                ("", "cost", "data_m"),
                ("", "cost", "gpu_hours_k"),
                ("", "cost", "gpu_mem_g"),
                ("", "cost", "gflops"),
            ),
            delta="rel",
            mark_best=False,
        ),
        TableLayout(
            "table12",
            12,
            "Finsta-HDVILA post-trained with incomplete / impaired scene graphs",
            "sg",
            "finetune",
            (AR, CAP, RET, OE),
            _SG_COLUMNS,
            section_headings=True,
        ),
        TableLayout(
            "table14",
            14,
            "Finsta-HDVILA post-trained with different scene-graph annotations",
            "sg",
            "finetune",
            (AR, CAP, RET, OE),
            _SG_COLUMNS,
        ),
    )
}
PAPER_TABLES: tuple[str, ...] = tuple(LAYOUTS)

# Table 8 rows in order: ablation switch key (as in results/paper/table08.csv; "" = the full model) -> label.
ABLATION_LABELS: dict[str, str] = {
    "": "Finsta-[VLM] (full)",
    "no_temporal_coref": "w/o Temporal coref. edge in DSG",
    "no_adverbial_modifier": "w/o Adverbial modifier in TSG",
    "no_xmodal_coref": "w/o X-modal coref. edge in HSG",
    "gtrm_to_gat": "GTrm→GAT",
    "rgtrm_to_rgnn": "R-GTrm→RGNN",
    "no_stgd": "w/o STGD-GTrm",
    "no_osc": "w/o L_OSC",
    "osc_first_order": "w/o L_OSC high-order",
    "no_ptc": "w/o L_PTC",
    "ptc_first_order": "w/o L_PTC high-order",
}
ABLATION_ORDER: tuple[str, ...] = tuple(ABLATION_LABELS)

# Metrics shown for a dataset the paper does not have, per task type (first present ones are used).
TASK_DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    AR: ("top1", "top5"),
    CAP: ("meteor", "bleu4", "cider"),
    RET: ("r1", "r5", "r10", "mdr"),
    MC: ("acc",),
    OE: ("acc",),
    PR: ("r1", "r5", "r10", "mdr"),
    LF: ("acc",),
}
# The single metric an ablation grid shows per dataset (Table 8 shows one metric per column).
PRIMARY_METRIC: dict[str, str] = {
    AR: "top1",
    CAP: "meteor",
    RET: "r1",
    MC: "acc",
    OE: "acc",
    PR: "r1",
    LF: "acc",
}


def layout_for(name: str | int) -> TableLayout:
    """Look a layout up by name (``"table03"``), number (``3``) or ``"3"``; the error lists the known ones."""
    key = name if isinstance(name, str) and name.startswith("table") else f"table{int(name):02d}"
    if key not in LAYOUTS:
        raise KeyError(f"no layout for table {name!r}; known: {', '.join(LAYOUTS)}")
    return LAYOUTS[key]


# Table 8 sections, by ablation key.
ABLATION_SECTIONS: dict[str, str] = {
    "no_temporal_coref": "SG Representation Integration",
    "no_adverbial_modifier": "SG Representation Integration",
    "no_xmodal_coref": "SG Representation Integration",
    "gtrm_to_gat": "SG Encoding",
    "rgtrm_to_rgnn": "SG Encoding",
    "no_stgd": "SG Encoding",
    "no_osc": "Alignment Learning",
    "osc_first_order": "Alignment Learning",
    "no_ptc": "Alignment Learning",
    "ptc_first_order": "Alignment Learning",
}
