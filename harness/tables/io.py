"""Atomic writing of rendered tables."""

from __future__ import annotations

from pathlib import Path

from finsta_core.io import atomic_write_bytes, atomic_write_text

__all__ = ["EXTENSIONS", "atomic_write_bytes", "atomic_write_text", "write_tables"]

EXTENSIONS = {"md": ".md", "markdown": ".md", "latex": ".tex", "tex": ".tex", "csv": ".csv"}


def write_tables(outputs: dict[str, str], out_dir: str | Path, fmt: str) -> list[Path]:
    """Write each ``{name: text}`` to ``out_dir/<name><ext>`` atomically; returns the paths written.

    Raises:
        ValueError: unknown ``fmt`` or a name that is not a plain file name.
    """
    if fmt not in EXTENSIONS:
        raise ValueError(f"unknown table format {fmt!r}; choose one of md, latex, csv")
    out_dir = Path(out_dir)
    paths = []
    for name, text in outputs.items():
        if not name or Path(name).name != name or name.startswith("."):
            raise ValueError(f"table name {name!r} is not a plain file name")
        paths.append(atomic_write_text(out_dir / f"{name}{EXTENSIONS[fmt]}", text))
    return paths
