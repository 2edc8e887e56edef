"""ComfyRelay's host-free core: run ComfyUI workflows from any host, on any back end."""

from .backends import BackendSettings, make_backend, runcomfy_server
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
from .jobs.backend import Backend, Capabilities, JobContext
from .jobs.events import (
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
    "AuthenticationFailed",
    "Backend",
    "BackendSettings",
    "Bindings",
    "Capabilities",
    "ComfyClient",
    "ComfyICUBackend",
    "ComfyRelayError",
    "ComfyUIBackend",
    "ConnectionChecked",
    "ConnectionFailed",
    "Credentials",
    "Event",
    "ExecutionFailed",
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
    "MachinePanel",
    "MachineStatus",
    "PromptRejected",
    "RunComfyMachineBackend",
    "RunComfyServer",
    "RunComfyServerlessBackend",
    "ServerError",
    "ServerRestarted",
    "UploadTooLarge",
    "Workflow",
    "WorkflowError",
    "WorkflowInput",
    "credentials_with",
    "find_running",
    "leftover_line",
    "load_credentials",
    "make_backend",
    "runcomfy_server",
    "status_lines",
]
