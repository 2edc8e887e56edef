"""The ComfyRelay core as this plugin sees it: the copy build_addons.py put in ./comfyrelay.

Type checkers read the installed core instead, which is the same code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import deps

deps.add_vendor_path()

if TYPE_CHECKING:
    from comfyrelay import (
        Bindings,
        ComfyRelayError,
        ComfyUIBackend,
        ConnectionChecked,
        Event,
        InputFile,
        Job,
        JobFailed,
        JobFinished,
        JobOutput,
        JobPreview,
        JobProgress,
        JobQueued,
        JobRunner,
        JobStarted,
        Workflow,
        WorkflowError,
        WorkflowInput,
    )
    from comfyrelay.events import JobCancelled
else:
    from .comfyrelay import (
        Bindings,
        ComfyRelayError,
        ComfyUIBackend,
        ConnectionChecked,
        Event,
        InputFile,
        Job,
        JobFailed,
        JobFinished,
        JobOutput,
        JobPreview,
        JobProgress,
        JobQueued,
        JobRunner,
        JobStarted,
        Workflow,
        WorkflowError,
        WorkflowInput,
    )
    from .comfyrelay.events import JobCancelled  # the event, not the exception

__all__ = [
    "Bindings",
    "ComfyRelayError",
    "ComfyUIBackend",
    "ConnectionChecked",
    "Event",
    "InputFile",
    "Job",
    "JobCancelled",
    "JobFailed",
    "JobFinished",
    "JobOutput",
    "JobPreview",
    "JobProgress",
    "JobQueued",
    "JobRunner",
    "JobStarted",
    "Workflow",
    "WorkflowError",
    "WorkflowInput",
]
