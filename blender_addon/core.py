"""The ComfyRelay core as the add-on sees it: the copy build_addons.py puts in ./comfyrelay_core.

Blender installs the core's dependencies from the manifest's wheels, so only the core itself
is vendored. Type checkers read the installed core instead, which is the same code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    from comfyrelay.events import FINAL_EVENTS, JobCancelled
else:
    from .comfyrelay_core import (
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
    from .comfyrelay_core.events import FINAL_EVENTS, JobCancelled  # the event, not the error

__all__ = [
    "FINAL_EVENTS",
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
