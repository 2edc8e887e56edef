"""ComfyRelay's host-free core: run ComfyUI workflows from any host, on any back end."""

from .backend import Backend, Capabilities, JobContext
from .client import ComfyClient
from .comfyui_backend import ComfyUIBackend
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
from .runner import JobRunner
from .workflow import Bindings, Workflow, WorkflowInput

__version__ = "0.1.0"

__all__ = [
    "AuthenticationFailed",
    "Backend",
    "Bindings",
    "Capabilities",
    "ComfyClient",
    "ComfyRelayError",
    "ComfyUIBackend",
    "ConnectionChecked",
    "ConnectionFailed",
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
    "PromptRejected",
    "ServerError",
    "ServerRestarted",
    "UploadTooLarge",
    "Workflow",
    "WorkflowError",
    "WorkflowInput",
]
