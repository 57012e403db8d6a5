"""Architecture sizes read off a host-named state dict, shared by the BERT-family hosts' ``infer_config``:
the number of numbered blocks under a prefix, the attention heads of a width, the Video Swin window of a
relative-position bias table. Torch-free (keys and shapes only)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hosts.errors import CheckpointError


def count_indexed(state: Mapping[str, Any], prefix: str) -> int:
    """How many distinct ``N`` appear in keys ``prefix + "N." + ...`` (layers, blocks, stages)."""
    return len({int(m.group(1)) for k in state if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))})


def heads_for_width(d: int) -> int:
    """Attention heads of a width ``d`` (the released models' head width 64; 16 for the tiny test widths)."""
    return d // 64 if d >= 64 else max(1, d // 16)


def swin_window(table: int, index: int) -> tuple[int, int, int]:
    """The (t, h, w) window (h = w) whose bias table has ``table`` rows and whose index covers ``index`` tokens
    (``(2t - 1)(2h - 1)^2`` rows and ``t h^2`` tokens); a one-line :class:`CheckpointError` when none fits."""
    for wt in range(1, 33):
        for wh in range(1, 33):
            if wt * wh * wh == index and (2 * wt - 1) * (2 * wh - 1) ** 2 == table:
                return (wt, wh, wh)
    raise CheckpointError(f"cannot infer the Video Swin window from a bias table of {table} rows")
