"""Errors a user can fix (bad name, missing file, bad override): printed as ONE line, exit status 2."""

from __future__ import annotations


class HarnessError(Exception):
    """A user-fixable problem; the CLI prints ``error: <message>`` and exits with status 2."""


class PlanError(HarnessError):
    """A run cannot be planned (unknown host/task, capability mismatch, missing data or checkpoint)."""


class ConfigError(HarnessError):
    """A config file or override is malformed (unknown key, wrong type, bad syntax)."""


class StoreError(HarnessError):
    """The results store cannot be used as asked (a file where a folder should be, a corrupt run file)."""
