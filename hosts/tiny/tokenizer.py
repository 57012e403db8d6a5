"""Word-level tokenizer of the tiny hosts, with character spans per token (for Finsta's node pooling).

The vocabulary is the synthetic benchmark's closed word list (``tests/synthetic`` checks it covers
``tasks.synthetic.vocab.all_words()``; the import rule keeps ``hosts`` from importing ``tasks``) plus
common English words; any other word is hashed (CRC32, stable across processes) into ``hash_buckets`` ids,
so arbitrary text still tokenises.
"""

from __future__ import annotations

import re
import zlib

import torch

from hosts.text import TokenizedText

SPECIALS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]")
PAD, CLS, SEP, MASK, UNK = range(5)
WORDS = """
the a an of to in on at by for with from and or then after before while first next finally meanwhile that this
these those it its is are was be being been do does did what which who where when how why many much times time
one two three four five six seven eight zero object objects colour color shape size direction video clip
happens happen right left up down above below underneath relative start end last of toward away closer halt
circle square triangle diamond cross red green blue yellow purple white small large big bigger
move moves moving slides travels approaches approach leaves leave drifts gets jumps jump hops bounces grows grow
expands stops stop halts comes mover
quickly slowly rapidly fast sluggishly unhurriedly abruptly suddenly gradually smoothly
yes no not true false statement describes , . ? ! ' " - : ;
""".split()
_TOKEN = re.compile(r"[A-Za-z0-9]+|[^\sA-Za-z0-9]")


class WordTokenizer:
    """``texts -> TokenizedText`` with ``[CLS] w1 .. wn [SEP]`` and character spans (``-1`` for specials)."""

    def __init__(self, max_len: int = 128, hash_buckets: int = 64) -> None:
        self.max_len = max_len
        self.hash_buckets = hash_buckets
        self.itos = list(SPECIALS) + list(dict.fromkeys(WORDS))
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.n_known = len(self.itos)
        self.vocab_size = self.n_known + hash_buckets

    def word_id(self, w: str) -> int:
        w = w.lower()
        i = self.stoi.get(w)
        if i is not None:
            return i
        if not self.hash_buckets:
            return UNK
        return self.n_known + zlib.crc32(w.encode()) % self.hash_buckets

    def words(self, text: str) -> list[tuple[str, int, int]]:
        return [(m.group().lower(), m.start(), m.end()) for m in _TOKEN.finditer(text)]

    def __call__(self, texts: list[str]) -> TokenizedText:
        rows = []
        for t in texts:
            ws = self.words(t)[: self.max_len - 2]
            ids = [CLS] + [self.word_id(w) for w, _, _ in ws] + [SEP]
            spans = [(-1, -1)] + [(s, e) for _, s, e in ws] + [(-1, -1)]
            rows.append((ids, spans))
        n = max(len(r[0]) for r in rows)
        ids = torch.full((len(rows), n), PAD, dtype=torch.long)
        spans = torch.full((len(rows), n, 2), -1, dtype=torch.long)
        for i, (r, s) in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            spans[i, : len(s)] = torch.tensor(s)
        return TokenizedText(ids, ids != PAD, spans)

    def decode(self, ids: list[int]) -> str:
        """Ids -> text (stops at ``[SEP]``; hashed ids render as ``[UNK]``; no space before punctuation)."""
        out = ""
        for i in ids:
            if i == SEP:
                break
            if i in (PAD, CLS, MASK):
                continue
            w = self.itos[i] if i < self.n_known else "[UNK]"
            out += w if (not out or w in {",", ".", "?", "!"}) else " " + w
        return out
