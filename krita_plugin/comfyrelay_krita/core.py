"""The ComfyRelay core as this plugin sees it: the copy build_addons.py put in ./comfyrelay.

Type checkers read the installed core instead, which is the same code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import deps

deps.add_vendor_path()

if TYPE_CHECKING:
    from comfyrelay import (
        Backend,
        BackendSettings,
        Bindings,
        Capabilities,
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
        RunComfyServer,
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
    from comfyrelay.events import JobCancelled
    from comfyrelay.machine_backend import RunningMachine
    from comfyrelay.runcomfy import DEFAULT_API as RUNCOMFY_API
    from comfyrelay.runcomfy import SERVER_TYPES
else:
    from .comfyrelay import (
        Backend,
        BackendSettings,
        Bindings,
        Capabilities,
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
        RunComfyServer,
        Workflow,
        WorkflowError,
        WorkflowInput,
        credentials_with,
        leftover_line,
        make_backend,
        runcomfy_server,
        status_lines,
    )
    from .comfyrelay.comfyicu import ACCELERATORS
    from .comfyrelay.comfyicu import DEFAULT_API as COMFYICU_API
    from .comfyrelay.events import JobCancelled  # the event, not the exception
    from .comfyrelay.machine_backend import RunningMachine
    from .comfyrelay.runcomfy import DEFAULT_API as RUNCOMFY_API
    from .comfyrelay.runcomfy import SERVER_TYPES

__all__ = [
    "ACCELERATORS",
    "COMFYICU_API",
    "RUNCOMFY_API",
    "SERVER_TYPES",
    "Backend",
    "BackendSettings",
    "Bindings",
    "Capabilities",
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
    "RunComfyServer",
    "RunningMachine",
    "Workflow",
    "WorkflowError",
    "WorkflowInput",
    "credentials_with",
    "leftover_line",
    "make_backend",
    "runcomfy_server",
    "status_lines",
]
