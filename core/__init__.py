"""ComfyRelay's host-free core: run ComfyUI workflows from any host, on any back end.

This module is the public API: hosts and the CLI import from here. The folders read
top-down: `jobs` (workflows, jobs, events, the runner) and `net` (HTTP, files) at the
bottom; the services on them (`comfyui`, `runcomfy`, `comfyicu`, `comfyapi`), each with its
back-end kind; `kinds` (the list of kinds, and what follows from it); `host` (the session
Blender and Krita share); `cli`. docs/ARCHITECTURE.md tells the whole story.
"""


from .comfyicu.icu_backend import ComfyICUBackend
from .comfyui.client import ComfyClient
from .comfyui.fields import check_values, field_problem, server_defs, typed_inputs
from .comfyui.server_backend import ComfyUIBackend
from .config import Credential, Credentials
from .errors import (
    AuthenticationFailed,
    CancelledByUser,
    ComfyRelayError,
    ConnectionFailed,
    ExecutionFailed,
    InvalidValues,
    PromptRejected,
    ServerError,
    ServerRestarted,
    UploadTooLarge,
    ValueProblem,
    WorkflowError,
)
from .host.apps import (
    AppField,
    AppLayout,
    AppView,
    LabelledInput,
    all_inputs_title,
    arrange,
    default_app,
    effective_app,
    flags,
    input_labels,
    load_app,
    save_app,
)
from .host.history import (
    RunHistory,
    RunRecord,
    bindings_for_rerun,
    history_from_json,
    history_to_json,
    new_run_record,
    record_run,
)
from .host.runs import HostEvent, Run, RunEnded, WorkflowOpened
from .host.session import HostSession
from .host.settings import HostSettings
from .host.status import Flag, Status, attention_line
from .host.view import View
from .jobs.backend_api import Backend, Capabilities, ComfyUIServer, JobContext
from .jobs.backend_kind import (
    BackendKind,
    Button,
    CliOption,
    Controls,
    ControlsView,
    Found,
    KindSettings,
    Price,
    Setting,
)
from .jobs.events import (
    FINAL_EVENTS,
    ConnectionChecked,
    Event,
    JobCancelled,
    JobEvent,
    JobFailed,
    JobFinished,
    JobOutput,
    JobPreview,
    JobProgress,
    JobQueued,
    JobStarted,
)
from .jobs.job import InputFile, Job, MediaInput
from .jobs.loaders import Loader, Role, workflow_loaders
from .jobs.masks import MaskForm, mask_form
from .jobs.media import MediaKind
from .jobs.raster import Pixels, decode_png, encode_png
from .jobs.runner import JobRunner
from .jobs.seeds import SEED_CONTROLS, SeedControl, seed_for_run
from .jobs.workflow import Bindings, Workflow, WorkflowInput
from .kinds import (
    DEFAULT_KIND,
    KINDS,
    BackendSettings,
    KindRegistry,
    load_credentials,
    make_backend,
    rebuild_key,
)
from .runcomfy.api import RunComfyServer
from .runcomfy.ledger import Ledger
from .runcomfy.machine import MachineStatus, RunComfyMachineBackend, find_running
from .runcomfy.machine_controls import EXTEND_MINUTES, MachineAction
from .runcomfy.serverless import RunComfyServerlessBackend
from .version import __version__ as __version__  # re-exported

__all__ = [
    "DEFAULT_KIND",
    "EXTEND_MINUTES",
    "FINAL_EVENTS",
    "KINDS",
    "SEED_CONTROLS",
    "AppField",
    "AppLayout",
    "AppView",
    "AuthenticationFailed",
    "Backend",
    "BackendKind",
    "BackendSettings",
    "Bindings",
    "Button",
    "CancelledByUser",
    "Capabilities",
    "CliOption",
    "ComfyClient",
    "ComfyICUBackend",
    "ComfyRelayError",
    "ComfyUIBackend",
    "ComfyUIServer",
    "ConnectionChecked",
    "ConnectionFailed",
    "Controls",
    "ControlsView",
    "Credential",
    "Credentials",
    "Event",
    "ExecutionFailed",
    "Flag",
    "Found",
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
    "KindRegistry",
    "KindSettings",
    "LabelledInput",
    "Ledger",
    "Loader",
    "MachineAction",
    "MachineStatus",
    "MaskForm",
    "MediaInput",
    "MediaKind",
    "Pixels",
    "Price",
    "PromptRejected",
    "Role",
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
    "Setting",
    "Status",
    "UploadTooLarge",
    "ValueProblem",
    "View",
    "Workflow",
    "WorkflowError",
    "WorkflowInput",
    "WorkflowOpened",
    "__version__",
    "all_inputs_title",
    "arrange",
    "attention_line",
    "bindings_for_rerun",
    "check_values",
    "decode_png",
    "default_app",
    "effective_app",
    "encode_png",
    "field_problem",
    "find_running",
    "flags",
    "history_from_json",
    "history_to_json",
    "input_labels",
    "load_app",
    "load_credentials",
    "make_backend",
    "mask_form",
    "new_run_record",
    "rebuild_key",
    "record_run",
    "save_app",
    "seed_for_run",
    "server_defs",
    "typed_inputs",
    "workflow_loaders",
]
