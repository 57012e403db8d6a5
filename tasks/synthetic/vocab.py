"""The closed vocabulary of the synthetic benchmark: object categories, colours, sizes, events, adverbs,
spatial relations, connectives and the answer vocabularies of the QA tasks.

Everything the caption grammar, the renderer and the question templates can produce is listed here, so
that (a) a word-level host tokenizer can cover it (``tests/synthetic`` checks ``hosts.tiny``'s word list
against :func:`all_words`) and (b) the label-noise study can draw corrupted labels per node type
(:func:`label_vocabulary`).
"""

from __future__ import annotations

import re

from finsta_core.graphs.types import NodeType

# -- objects -------------------------------------------------------------------------------------------
CATEGORIES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 90, 235),
    "yellow": (235, 215, 40),
    "purple": (160, 60, 210),
    "white": (240, 240, 240),
}
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)
SIZES: tuple[str, ...] = ("small", "large")
SIZE_RADIUS: dict[str, float] = {"small": 2.6, "large": 4.2}  # pixels at a 32-pixel frame; scaled with the frame

# -- events --------------------------------------------------------------------------------------------
DIRECTIONS: dict[str, tuple[float, float]] = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0),
                                              "down": (0.0, 1.0)}
DIRECTION_NAMES: tuple[str, ...] = tuple(DIRECTIONS)
# canonical predicate per event kind; "move" carries its direction ("move left", like "sit down on")
VERBS: tuple[str, ...] = ("move", "approach", "leave", "jump", "grow", "stop")
TRANSITIVE: frozenset[str] = frozenset({"approach", "leave"})
# manner adverbs per verb: (fast, slow); "stop" is abrupt versus gradual
ADVERBS: dict[str, tuple[str, str]] = {v: ("quickly", "slowly") for v in VERBS}
ADVERBS["stop"] = ("abruptly", "gradually")
ADVERB_NAMES: tuple[str, ...] = ("quickly", "slowly", "abruptly", "gradually")
ADVERB_PARAPHRASES: dict[str, tuple[str, ...]] = {
    "quickly": ("quickly", "rapidly", "fast"),
    "slowly": ("slowly", "sluggishly", "unhurriedly"),
    "abruptly": ("abruptly", "suddenly"),
    "gradually": ("gradually", "smoothly"),
}
# present-tense surface forms (paraphrases) per verb; "{d}" = direction, "{o}" = object phrase
VERB_FORMS: dict[str, tuple[str, ...]] = {
    "move": ("moves {d}", "slides {d}", "travels {d}", "is moving {d}"),
    "approach": ("approaches {o}", "moves toward {o}", "gets closer to {o}"),
    "leave": ("moves away from {o}", "leaves {o}", "drifts away from {o}"),
    "jump": ("jumps", "hops", "bounces"),
    "grow": ("grows", "gets bigger", "expands"),
    "stop": ("stops", "comes to a halt", "halts"),
}
# third-person verb phrase used in questions and action class names, keyed by predicate label
PREDICATE_LABELS: tuple[str, ...] = tuple(f"move {d}" for d in DIRECTION_NAMES) + VERBS[1:]

# -- spatial relations (subject relative to object, from geometry) --------------------------------------
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
RELATION_FORMS: dict[str, tuple[str, ...]] = {
    "left of": ("left of", "to the left of"),
    "right of": ("right of", "to the right of"),
    "above": ("above",),
    "below": ("below", "underneath"),
}

# -- connectives ---------------------------------------------------------------------------------------
CONNECTIVES: tuple[str, ...] = ("then", "after", "while", "first", "meanwhile", "finally", "next", "and")

# -- QA --------------------------------------------------------------------------------------------------
NUMBERS: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight")
VERB_WORDS: dict[str, str] = {"move": "move", "approach": "approach", "leave": "leave", "jump": "jump",
                              "grow": "grow", "stop": "stop"}
# answer vocabulary of the open-ended QA task (single words; index = Sample.label)
OE_ANSWERS: tuple[str, ...] = tuple(dict.fromkeys(
    COLOUR_NAMES + CATEGORIES + SIZES + DIRECTION_NAMES + ADVERB_NAMES + ("above", "below")
    + NUMBERS[1:] + VERBS))

# words of the question templates (kept here so the vocabulary stays closed)
_QUESTION_WORDS = ("what which where how many times does do is are the a an object objects colour shape size "
                   "direction first last before after relative to at start of in video happens that who "
                   "move moves moving one statement true this describes happen right end mover")


def action_classes() -> list[str]:
    """The 18 action-recognition classes: every (predicate, manner adverb) pair, e.g. ``move left quickly``."""
    out = []
    for pred in PREDICATE_LABELS:
        verb = pred.split()[0]
        out += [f"{pred} {a}" for a in ADVERBS[verb]]
    return out


def label_vocabulary() -> dict[NodeType, list[str]]:
    """Node labels per node type (for ``finsta_core.sg.noise.corrupt_labels``)."""
    return {
        NodeType.OBJECT: list(CATEGORIES),
        NodeType.ATTRIBUTE: list(COLOUR_NAMES + SIZES),
        NodeType.RELATION: list(PREDICATE_LABELS + RELATIONS),
        NodeType.ADVERB: list(ADVERB_NAMES),
    }


def words(text: str) -> list[str]:
    """Lower-cased word / punctuation tokens (the segmentation the grammar and tiny host agree on)."""
    return re.findall(r"[a-z0-9]+|[^\sa-z0-9]", text.lower())


def all_words() -> set[str]:
    """Every word any caption, paragraph, question, option or answer of the benchmark can contain."""
    parts = [" ".join(CATEGORIES), " ".join(COLOUR_NAMES), " ".join(SIZES), " ".join(DIRECTION_NAMES),
             " ".join(" ".join(v) for v in VERB_FORMS.values()), " ".join(" ".join(v) for v in
                                                                       ADVERB_PARAPHRASES.values()),
             " ".join(" ".join(v) for v in RELATION_FORMS.values()), " ".join(CONNECTIVES), " ".join(NUMBERS),
             " ".join(OE_ANSWERS), " ".join(action_classes()), _QUESTION_WORDS, "the , . ? that"]
    out: set[str] = set()
    for p in parts:
        out.update(words(p.replace("{d}", "").replace("{o}", "")))
    return out
