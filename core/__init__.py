"""ComfyRelay's host-free core: run ComfyUI workflows from any host, on any back end."""

from .backend import Backend, Capabilities, JobContext
from .backends import BackendSettings, make_backend, runcomfy_server
from .client import ComfyClient
from .comfyicu import ComfyICUBackend
from .comfyui_backend import ComfyUIBackend
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
from .events import (
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
from .job import InputFile, Job
from .ledger import Ledger
from .machine_backend import MachineStatus, RunComfyMachineBackend, find_running
from .machine_panel import MachinePanel, leftover_line, status_lines
from .runcomfy import RunComfyServer
from .runner import JobRunner
from .serverless import RunComfyServerlessBackend
from .workflow import Bindings, Workflow, WorkflowInput

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
