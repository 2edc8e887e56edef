"""ComfyRelay's host-free core: run ComfyUI workflows from any host, on any back end.

This module is the public API: hosts and the CLI import from here. The folders read
top-down: `jobs` (workflows, jobs, events, the runner) and `net` (HTTP, files) at the
bottom; the services on them (`comfyui`, `runcomfy`, `comfyicu`); `backends` (one factory
for all); `host` (the session Blender and Krita share); `cli`.
"""


from .backends import KINDS, BackendSettings, make_backend, runcomfy_server
from .comfyicu.backend import ComfyICUBackend
from .comfyui.backend import ComfyUIBackend
from .comfyui.client import ComfyClient
from .config import Credentials, credentials_with, load_credentials
from .errors import (
    AuthenticationFailed,
    ComfyRelayError,
    ConnectionFailed,
    ExecutionFailed,
    JobCancelled,
    PromptRejected,
    ServerError,
    ServerRestarted,
    UploadTooLarge,
    WorkflowError,
)
from .host.machines import MachinePanel, leftover_line, status_lines
from .host.session import HostEvent, HostSession, Run, RunEnded, WorkflowOpened
from .host.settings import FIELDS, KIND_FIELDS, KIND_LABELS, Field, HostSettings
from .host.view import LeftoverRow, View
from .jobs.backend import Backend, Capabilities, ComfyUIServer, JobContext
from .jobs.events import (
    FINAL_EVENTS,
    ConnectionChecked,
    Event,
    JobEvent,
    JobFailed,
    JobFinished,
    JobOutput,
    JobPreview,
    JobProgress,
    JobQueued,
    JobStarted,
)
from .jobs.job import InputFile, Job
from .jobs.runner import JobRunner
from .jobs.workflow import Bindings, Workflow, WorkflowInput
from .runcomfy.api import RunComfyServer
from .runcomfy.ledger import Ledger
from .runcomfy.machine import MachineStatus, RunComfyMachineBackend, find_running
from .runcomfy.serverless import RunComfyServerlessBackend

__version__ = "0.1.0"

__all__ = [
    "FIELDS",
    "FINAL_EVENTS",
    "KINDS",
    "KIND_FIELDS",
    "KIND_LABELS",
    "AuthenticationFailed",
    "Backend",
    "BackendSettings",
    "Bindings",
    "Capabilities",
    "ComfyClient",
    "ComfyICUBackend",
    "ComfyRelayError",
    "ComfyUIBackend",
    "ComfyUIServer",
    "ConnectionChecked",
    "ConnectionFailed",
    "Credentials",
    "Event",
    "ExecutionFailed",
    "Field",
    "HostEvent",
    "HostSession",
    "HostSettings",
    "InputFile",
    "Job",
    "JobCancelled",
    "JobContext",
    "JobEvent",
    "JobFailed",
    "JobFinished",
    "JobOutput",
    "JobPreview",
    "JobProgress",
    "JobQueued",
    "JobRunner",
    "JobStarted",
    "Ledger",
    "LeftoverRow",
    "MachinePanel",
    "MachineStatus",
    "PromptRejected",
    "Run",
    "RunComfyMachineBackend",
    "RunComfyServer",
    "RunComfyServerlessBackend",
    "RunEnded",
    "ServerError",
    "ServerRestarted",
    "UploadTooLarge",
    "View",
    "Workflow",
    "WorkflowError",
    "WorkflowInput",
    "WorkflowOpened",
    "credentials_with",
    "find_running",
    "leftover_line",
    "load_credentials",
    "make_backend",
    "runcomfy_server",
    "status_lines",
]
