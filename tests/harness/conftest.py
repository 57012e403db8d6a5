"""Shared fixtures: the fake host/tasks are registered on import; runs go to a temp store."""

from __future__ import annotations

import pytest

import tests.harness.fakes  # noqa: F401 - registers fake_host, fake_* tasks

SMALL = ["preset=small", "run.progress=false"]


@pytest.fixture
def store(tmp_path):
    return tmp_path / "runs"
