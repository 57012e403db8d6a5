"""Small closed word lists used by the TSG rules (sec 3.2; design note C.1). Lower-case lemmas."""

from __future__ import annotations

# Verb particles. spaCy labels "sat down" as `prt` or as `advmod`; an advmod from this list directly after the
# verb (or carrying its own preposition: "walks up to") is read as a particle, not as an adverb attribute.
PARTICLES = frozenset({
    "up", "down", "out", "off", "away", "back", "over", "around", "about", "in", "on", "through", "along",
    "apart", "aside", "together", "forward", "backward", "backwards", "by", "across", "inside", "outside",
})

# Heads of two-word prepositions ("next to", "close to", "ahead of", "out of", "away from").
COMPOUND_PREP_HEADS = frozenset({"next", "close", "ahead", "out", "away", "up", "down", "right", "far", "prior",
                                 "instead", "inside", "outside", "apart"})

# Nouns that form phrasal prepositions "P (the) X of": "in front of", "on top of", "in the middle of".
PHRASAL_PREP_NOUNS = frozenset({"front", "top", "middle", "back", "bottom", "center", "centre", "edge", "side",
                                "corner", "rear", "inside", "outside", "end"})

# Quantifier nouns collapsed onto the real head ("a group of people" -> people + attribute "group").
QUANTIFIER_NOUNS = frozenset({"group", "couple", "pair", "bunch", "crowd", "herd", "flock", "team", "pack",
                              "lot", "lots", "number", "plenty", "handful", "kind", "type", "sort", "variety",
                              "set", "row", "pile", "stack", "bowl", "cup", "glass", "piece", "slice", "bottle"})
# ... of which these add no attribute node (they carry no visual content).
SILENT_QUANTIFIERS = frozenset({"lot", "lots", "number", "plenty", "kind", "type", "sort", "variety"})
# ... and these are containers/portions: they stay objects ("a cup of coffee" -> (cup, of, coffee)).
CONTAINER_NOUNS = frozenset({"bowl", "cup", "glass", "piece", "slice", "bottle", "pile", "stack", "row", "set"})

WH_WORDS = frozenset({"when", "where", "why", "how", "whenever", "wherever", "however", "what", "which", "who",
                      "whom", "whose", "that", "while", "whereas", "whether"})
NEGATIONS = frozenset({"not", "n't", "never", "no", "nt"})

# Verbs that behave as copulas with a predicative adjective ("looks happy"): no predicate node of their own.
LINKING_VERBS = frozenset({"be", "look", "seem", "appear", "become", "feel", "get", "remain", "stay", "sound"})

PERSONAL_PRONOUNS = {
    # pronoun -> preference of its antecedent: "person", "plural", "thing"
    "he": "person", "him": "person", "his": "person", "himself": "person",
    "she": "person", "her": "person", "hers": "person", "herself": "person",
    "they": "plural", "them": "plural", "their": "plural", "theirs": "plural", "themselves": "plural",
    "it": "thing", "its": "thing", "itself": "thing",
}
# Indefinite pronouns that name a scene entity ("someone is cooking").
ENTITY_PRONOUNS = frozenset({"someone", "somebody", "everyone", "everybody", "anyone", "anybody", "something",
                             "everything", "nobody"})

PERSON_WORDS = frozenset({
    "man", "woman", "person", "people", "boy", "girl", "child", "kid", "baby", "guy", "lady", "gentleman", "player",
    "someone", "somebody", "men", "women", "student", "teacher", "chef", "cook", "driver", "rider", "dancer",
    "singer", "actor", "actress", "host", "reporter", "athlete", "worker", "soldier", "doctor", "girlfriend",
    "boyfriend", "mother", "father", "mom", "dad", "son", "daughter", "brother", "sister", "friend", "crowd",
    "audience", "team", "couple", "family", "toddler", "teenager", "adult", "customer", "officer", "police",
    "policeman", "cop", "farmer", "musician", "guitarist", "drummer", "pianist", "skier", "surfer", "skater",
    "swimmer", "runner", "cyclist", "biker", "performer", "contestant", "judge", "character", "cartoon", "anchor",
})
