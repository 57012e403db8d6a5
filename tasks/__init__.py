"""Task registry: the paper's 12 datasets (6 task types) and the embedded synthetic benchmark."""

from __future__ import annotations

from tasks.base import (
    EvalResult,
    EvalSettings,
    RequiredFile,
    Sample,
    SplitReport,
    Task,
    TaskType,
    VideoProtocol,
)
from tasks.registry import TASKS, create_task, task_names

__all__ = [
    "EvalResult", "EvalSettings", "RequiredFile", "Sample", "SplitReport", "Task",
    "TaskType", "VideoProtocol",
    "TASKS", "create_task", "task_names",
]
