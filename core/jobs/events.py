"""What the job runner tells a host: one stream of small immutable events."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PLAIN_CANCEL
from .media import MediaKind


@dataclass(frozen=True)
class JobEvent:
    job_id: str


@dataclass(frozen=True)
class JobStarted(JobEvent):
    """The job left the local queue: its inputs are being sent."""

    seed: int | None = None  # the seed in use, a random one included


@dataclass(frozen=True)
class JobQueued(JobEvent):
    """The server accepted the job; `position` is how many jobs run before it, if known."""

    position: int | None = None


@dataclass(frozen=True)
class JobProgress(JobEvent):
    fraction: float  # 0..1 over the whole job
    node_id: str = ""
    node_title: str = ""
    value: int = 0  # step within the node (sampler steps and similar)
    max: int = 0
    message: str = ""


@dataclass(frozen=True)
class JobPreview(JobEvent):
    data: bytes = field(repr=False)
    mime: str = "image/png"
    node_id: str = ""


@dataclass(frozen=True)
class JobOutput(JobEvent):
    """One output file, already complete on disk.

    `kind` says how to open it (image, video, audio or file); `animated` says it holds frames
    over time: always for a video, and for an image when the server flagged it (animated
    WebP or PNG, a GIF from Video Helper Suite).
    """

    path: Path
    node_id: str = ""
    kind: MediaKind = MediaKind.IMAGE
    animated: bool = False


@dataclass(frozen=True)
class JobFinished(JobEvent):
    outputs: tuple[Path, ...] = ()


@dataclass(frozen=True)
class JobFailed(JobEvent):
    message: str
    node_id: str = ""
    node_type: str = ""
    error_type: str = ""  # the ComfyRelayError subclass name, for hosts that branch on it


@dataclass(frozen=True)
class JobCancelled(JobEvent):
    """`message` says what the service answered when that matters to the user (a hosted job
    that may still run and bill), else it is the plain "Cancelled."."""

    message: str = PLAIN_CANCEL


@dataclass(frozen=True)
class ConnectionChecked:
    ok: bool
    message: str


Event = JobEvent | ConnectionChecked
FINAL_EVENTS = (JobFinished, JobFailed, JobCancelled)
