"""The ComfyRelay core as the add-on sees it: the copy build_addons.py puts in ./comfyrelay_core.

Blender installs the core's dependencies from the manifest's wheels, so only the core itself
is vendored. Type checkers read the installed core instead, which is the same code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from comfyrelay import (
        BackendSettings,
        Bindings,
        ComfyRelayError,
        ComfyUIBackend,
        ConnectionChecked,
        Credentials,
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
        MachinePanel,
        RunComfyMachineBackend,
        Workflow,
        WorkflowError,
        WorkflowInput,
        credentials_with,
        leftover_line,
        make_backend,
        runcomfy_server,
        status_lines,
    )
    from comfyrelay.comfyicu import ACCELERATORS
    from comfyrelay.comfyicu import DEFAULT_API as COMFYICU_API
    from comfyrelay.events import FINAL_EVENTS, JobCancelled
    from comfyrelay.runcomfy import DEFAULT_API as RUNCOMFY_API
    from comfyrelay.runcomfy import SERVER_TYPES
else:
    from .comfyrelay_core import (
        BackendSettings,
        Bindings,
        ComfyRelayError,
        ComfyUIBackend,
        ConnectionChecked,
        Credentials,
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
        MachinePanel,
        RunComfyMachineBackend,
        Workflow,
        WorkflowError,
        WorkflowInput,
        credentials_with,
        leftover_line,
        make_backend,
        runcomfy_server,
        status_lines,
    )
    from .comfyrelay_core.comfyicu import ACCELERATORS
    from .comfyrelay_core.comfyicu import DEFAULT_API as COMFYICU_API
    from .comfyrelay_core.events import FINAL_EVENTS, JobCancelled  # the event, not the error
    from .comfyrelay_core.runcomfy import DEFAULT_API as RUNCOMFY_API
    from .comfyrelay_core.runcomfy import SERVER_TYPES

__all__ = [
    "ACCELERATORS",
    "COMFYICU_API",
    "FINAL_EVENTS",
    "RUNCOMFY_API",
    "SERVER_TYPES",
    "BackendSettings",
    "Bindings",
    "ComfyRelayError",
    "ComfyUIBackend",
    "ConnectionChecked",
    "Credentials",
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
    "MachinePanel",
    "RunComfyMachineBackend",
    "Workflow",
    "WorkflowError",
    "WorkflowInput",
    "credentials_with",
    "leftover_line",
    "make_backend",
    "runcomfy_server",
    "status_lines",
]
