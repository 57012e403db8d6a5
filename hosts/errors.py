"""Host errors, in a leaf module so that ``hosts.base`` and ``hosts.io`` both import it (no cycle)."""

from __future__ import annotations


class CapabilityError(NotImplementedError):
    """The host lacks a capability a task needs (normally caught when the run is planned)."""


class CheckpointError(FileNotFoundError):
    """A checkpoint is missing, empty, unreadable or malformed; the message names the path, says what it is
    and where to get it."""
