"""The Comfy API v2 wire models ([spec] components/schemas), tolerant of what servers add
(docs/WIRE.md §5.3-5.7)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from ..jobs.media import MediaKind
from ..net.wire import Wire

# [spec] JobStatus: queued → running → succeeded | failed | expired; a cancel request moves
# running → canceling → canceled. Terminal: succeeded, canceled, failed, expired (docs/WIRE.md
# §5.3).
TERMINAL = frozenset({"succeeded", "canceled", "failed", "expired"})


class Progress(Wire):
    """[spec] Progress: a complete server-computed snapshot, so one re-syncs a client
    (docs/WIRE.md §5.5)."""

    value: float = 0.0
    nodes_done: int = 0
    nodes_total: int = 0
    current_node: str = ""
    current_node_class: str = ""
    step: int | None = None
    steps: int | None = None
    message: str = ""

    @field_validator("value", mode="before")
    @classmethod
    def _fraction(cls, value: Any) -> Any:
        return 0.0 if value is None else value


class Output(Wire):
    """[spec] Output: a committed job output; `id` is an asset id, `url` a short-lived link
    (docs/WIRE.md §5.7)."""

    node_id: str = ""
    name: str = ""
    type: str = "file"  # [spec] OutputType: image video audio text file latent
    content_type: str = ""
    size_bytes: int | None = None
    id: str = ""
    hash: str = ""
    url: str = ""


class JobError(Wire):
    """[spec] JobError: why an execution failed (in job.error, not an HTTP error);
    docs/WIRE.md §5.3."""

    code: str = ""
    message: str = ""
    node_id: str = ""
    class_type: str = ""
    traceback: str = ""


class JobUrls(Wire):
    """[spec] JobUrls: follow-up links to follow instead of building URLs (docs/WIRE.md
    §5.1)."""

    self_url: str = Field(default="", alias="self")
    events: str = ""
    cancel: str = ""


class Job(Wire):
    """[spec] Job: the authoritative, pollable state of one execution (docs/WIRE.md §5.3)."""

    id: str
    status: str = ""
    queue_position: int | None = None
    progress: Progress | None = None
    outputs: list[Output] = Field(default_factory=list)
    error: JobError | None = None
    urls: JobUrls = Field(default_factory=JobUrls)

    @field_validator("outputs", mode="before")
    @classmethod
    def _no_null_list(cls, value: Any) -> Any:
        return [] if value is None else value

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


class Asset(Wire):
    """[spec] Asset: a record over a content-addressed blob; `hash` may still be null
    (docs/WIRE.md §5.6)."""

    id: str
    hash: str = ""
    size_bytes: int | None = None
    content_type: str = ""
    file_path: str = ""
    created_new: bool | None = None
    url: str = ""


class ApiError(Wire):
    """[spec] ErrorEnvelope.error: a machine-readable code and a message (docs/WIRE.md
    §5.9)."""

    code: str = ""
    message: str = ""
    details: dict[str, Any] | None = None


class StatusEvent(Wire):
    """[spec] StatusEvent: the SSE `status` payload (docs/WIRE.md §5.5)."""

    status: str = ""
    queue_position: int | None = None


class PreviewEvent(Wire):
    """[spec] PreviewEvent: the SSE `preview` payload (base64 image, throttled); the proxy
    sends PNG as well as JPEG (docs/WIRE.md §5.5)."""

    node_id: str = ""
    content_type: str = "image/jpeg"
    data_base64: str = ""


def asset_reference(asset_id: str) -> dict[str, Any]:
    """[spec] AssetReference: what goes where a loader's file name would go; `info.id` is
    required and authoritative (hash and file_path are optional hints, not sent);
    docs/WIRE.md §5.6."""
    return {"__type": "core/ASSET", "info": {"id": asset_id}}




def output_kind(output: Output) -> MediaKind:
    """The kind hosts show: from content_type first, because [proxy] 0.1.6 labels the mp4
    and webm of ComfyUI 0.3.64's SaveVideo as type "image" (they are reported under
    `images`); then from the spec's type (docs/WIRE.md §5.7, §5.10)."""
    major = output.content_type.split("/", 1)[0].strip().lower()
    if major in ("image", "video", "audio"):
        return MediaKind(major)
    if output.type in ("image", "video", "audio"):
        return MediaKind(output.type)
    return MediaKind.FILE
