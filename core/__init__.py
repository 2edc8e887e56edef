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
from .comfyui.fields import check_values, field_problem, server_defs, typed_inputs
from .config import Credentials, credentials_with, load_credentials
from .errors import (
    AuthenticationFailed,
    ComfyRelayError,
    ConnectionFailed,
    ExecutionFailed,
    InvalidValues,
    JobCancelled,
    PromptRejected,
    ServerError,
    ServerRestarted,
    UploadTooLarge,
    ValueProblem,
    WorkflowError,
)
from .host.apps import AppField, AppLayout, AppView, LabelledInput, arrange, load_app, save_app
from .host.history import (
    RunHistory,
    RunRecord,
    bindings_for_rerun,
    history_from_json,
    history_to_json,
    new_run_record,
    record_run,
)
from .host.machines import EXTEND_MINUTES, MachinePanel, leftover_line, status_lines
from .host.runs import HostEvent, Run, RunEnded, WorkflowOpened
from .host.session import HostSession
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
from .jobs.seeds import SEED_CONTROLS, SeedControl, seed_for_run
from .jobs.workflow import Bindings, Workflow, WorkflowInput
from .runcomfy.api import RunComfyServer
from .runcomfy.ledger import Ledger
from .runcomfy.machine import MachineStatus, RunComfyMachineBackend, find_running
from .runcomfy.serverless import RunComfyServerlessBackend
from .version import __version__ as __version__  # re-exported

__all__ = [
    "EXTEND_MINUTES",
    "FIELDS",
    "FINAL_EVENTS",
    "KINDS",
    "KIND_FIELDS",
    "KIND_LABELS",
    "SEED_CONTROLS",
    "AppField",
    "AppLayout",
    "AppView",
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
    "InvalidValues",
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
    "LabelledInput",
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
    "RunHistory",
    "RunRecord",
    "SeedControl",
    "ServerError",
    "ServerRestarted",
    "UploadTooLarge",
    "ValueProblem",
    "View",
    "Workflow",
    "WorkflowError",
    "WorkflowInput",
    "WorkflowOpened",
    "arrange",
    "bindings_for_rerun",
    "check_values",
    "credentials_with",
    "field_problem",
    "find_running",
    "history_from_json",
    "history_to_json",
    "leftover_line",
    "load_app",
    "load_credentials",
    "make_backend",
    "new_run_record",
    "record_run",
    "runcomfy_server",
    "save_app",
    "seed_for_run",
    "server_defs",
    "status_lines",
    "typed_inputs",
]
