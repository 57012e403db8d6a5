"""``finsta_core.io``: the shared atomic write."""

from __future__ import annotations

import pytest

from finsta_core.io import atomic_write, atomic_write_text


def test_atomic_write_replaces_and_creates_parents(tmp_path) -> None:
    path = tmp_path / "a" / "b" / "x.txt"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["x.txt"]  # no temp file left behind


def test_crash_during_write_keeps_old_file_and_no_temp(tmp_path) -> None:
    path = tmp_path / "x.txt"
    atomic_write_text(path, "old")

    def crash(tmp: str) -> None:
        with open(tmp, "w") as fh:
            fh.write("half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(path, crash)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_written_files_get_the_umask_mode_not_private(tmp_path) -> None:
    import os
    import stat

    old = os.umask(0o022)
    try:
        p = atomic_write_text(tmp_path / "metrics.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o644
