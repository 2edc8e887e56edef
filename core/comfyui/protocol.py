"""ComfyUI wire data: WebSocket messages and history entries, as typed models
(docs/WIRE.md §1.3-1.5).

Servers differ by version and custom nodes, so every model ignores fields it does not know
and unknown message types are dropped rather than treated as errors.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..jobs.media import MediaKind, media_kind

_TOLERANT = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class WsMessage(BaseModel):
    model_config = _TOLERANT
    prompt_id: str | None = None


class Status(WsMessage):
    queue_remaining: int | None = None
    sid: str | None = None


class FeatureFlags(WsMessage):
    flags: dict[str, Any] = Field(default_factory=dict)


class ExecutionStart(WsMessage):
    pass


class ExecutionCached(WsMessage):
    nodes: list[str] = Field(default_factory=list)


class Executing(WsMessage):
    node: str | None = None  # None: the prompt has finished and its history is written
    display_node: str | None = None


class Executed(WsMessage):
    node: str
    output: dict[str, Any] = Field(default_factory=dict)


class Progress(WsMessage):
    node: str | None = None
    value: int = 0
    max: int = 0


class NodeState(BaseModel):
    model_config = _TOLERANT
    value: float = 0
    max: float = 0
    state: str = ""


class ProgressState(WsMessage):
    nodes: dict[str, NodeState] = Field(default_factory=dict)


class ExecutionSuccess(WsMessage):
    pass


class ExecutionError(WsMessage):
    node_id: str | None = None
    node_type: str | None = None
    exception_message: str = ""
    exception_type: str = ""
    traceback: list[str] = Field(default_factory=list)


class ExecutionInterrupted(WsMessage):
    node_id: str | None = None
    node_type: str | None = None


class Preview(WsMessage):
    """A preview image from a binary frame (event 1, or 4 with metadata)."""

    data: bytes
    mime: str
    node_id: str | None = None


class TextFrame(WsMessage):
    """Binary event 3: text a node sends while it runs."""

    node_id: str
    text: str


_TEXT_TYPES: dict[str, type[WsMessage]] = {
    "status": Status,
    "execution_start": ExecutionStart,
    "execution_cached": ExecutionCached,
    "executing": Executing,
    "executed": Executed,
    "progress": Progress,
    "progress_state": ProgressState,
    "execution_success": ExecutionSuccess,
    "execution_error": ExecutionError,
    "execution_interrupted": ExecutionInterrupted,
}
_IMAGE_FORMATS = {1: "image/jpeg", 2: "image/png"}


def parse_message(message: str | bytes) -> WsMessage | None:
    """One WebSocket message as a typed event; None for unknown or malformed ones."""
    try:
        if isinstance(message, bytes):
            return _parse_binary(message)
        return _parse_text(message)
    except (ValueError, ValidationError, struct.error, UnicodeDecodeError, TypeError):
        return None


def _parse_text(message: str) -> WsMessage | None:
    body = json.loads(message)
    kind, data = body.get("type"), body.get("data")
    if not isinstance(data, dict):
        return None
    if kind == "status":
        info = data.get("status") or {}
        remaining = (info.get("exec_info") or {}).get("queue_remaining")
        return Status(queue_remaining=remaining, sid=data.get("sid"))
    if kind == "feature_flags":
        return FeatureFlags(flags=data)
    model = _TEXT_TYPES.get(kind or "")
    return model.model_validate(data) if model else None


def _parse_binary(message: bytes) -> WsMessage | None:
    (event,) = struct.unpack(">I", message[:4])
    if event == 1:
        (fmt,) = struct.unpack(">I", message[4:8])
        return Preview(data=message[8:], mime=_IMAGE_FORMATS.get(fmt, "image/jpeg"))
    if event == 3:
        (size,) = struct.unpack(">I", message[4:8])
        node = message[8 : 8 + size]
        if len(node) != size:
            return None
        return TextFrame(node_id=node.decode(), text=message[8 + size :].decode())
    if event == 4:
        (size,) = struct.unpack(">I", message[4:8])
        meta = json.loads(message[8 : 8 + size])
        image = message[8 + size :]
        mime = str(meta.get("image_type") or "image/png")
        node = meta.get("display_node_id") or meta.get("node_id")
        return Preview(data=image, mime=mime, node_id=node, prompt_id=meta.get("prompt_id"))
    return None


class OutputFile(BaseModel):
    """A file a node wrote; its names come from the server and are never trusted as paths."""

    model_config = _TOLERANT
    filename: str
    subfolder: str = ""
    type: str = "output"
    format: str = ""  # a MIME type some custom nodes give (Video Helper Suite's "gifs")
    animated: bool = False  # the node flagged its output as frames over time

    @property
    def kind(self) -> MediaKind:
        """image, video, audio or file (docs/WIRE.md §1.5)."""
        return media_kind(self.filename, self.format)


class HistoryStatus(BaseModel):
    model_config = _TOLERANT
    status_str: str = ""
    completed: bool = False
    messages: list[Any] = Field(default_factory=list)

    def last(self, event: str) -> dict[str, Any] | None:
        for item in reversed(self.messages):
            if isinstance(item, list) and len(item) == 2 and item[0] == event:
                return item[1] if isinstance(item[1], dict) else {}
        return None


class HistoryEntry(BaseModel):
    model_config = _TOLERANT
    outputs: Any = Field(default_factory=dict)  # {node_id: {images: [...], ...}}; else no files
    status: HistoryStatus = Field(default_factory=HistoryStatus)

    def files(self) -> list[tuple[str, OutputFile]]:
        """Every output with a file name, whatever the list is called (images, gifs, audio...)."""
        found = []
        for node_id, output in (self.outputs if isinstance(self.outputs, dict) else {}).items():
            if isinstance(output, dict):
                found += [(str(node_id), f) for f in output_files(output)]
        return found


def output_files(output: dict[str, Any]) -> list[OutputFile]:
    """The files of one node's output. SaveVideo, SaveWEBM and the animated savers report
    under `images` with `animated: [true]`; Video Helper Suite under `gifs`
    (docs/WIRE.md §1.5)."""
    flagged = output.get("animated")
    animated = isinstance(flagged, list) and any(v is True for v in flagged)
    files = []
    for key, value in output.items():
        if not isinstance(value, list):
            continue
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("filename"), str):
                try:
                    file = OutputFile.model_validate(item)
                except ValidationError:
                    continue
                file.animated = animated or key == "gifs" or file.kind == "video"
                files.append(file)
    return files


def describe_outputs(outputs: Any) -> str:
    """What came back instead of files, for an error: each node's output keys."""
    if not isinstance(outputs, dict):
        return f"outputs that are a {type(outputs).__name__}, not an object"
    if not outputs:
        return "no outputs at all"
    parts = []
    for node_id, output in list(outputs.items())[:8]:
        keys = ", ".join(map(str, output)) if isinstance(output, dict) else type(output).__name__
        parts.append(f"node {node_id}: {keys or 'nothing'}")
    return "outputs of " + "; ".join(parts)


class JobInfo(BaseModel):
    """GET /api/jobs/{id} on servers that have it (docs/WIRE.md §1.2)."""

    model_config = _TOLERANT
    id: str = ""
    status: str = ""  # pending, in_progress, completed, failed, cancelled

    @property
    def active(self) -> bool:
        return self.status in ("pending", "in_progress")


class QueuedPrompt(BaseModel):
    model_config = _TOLERANT
    prompt_id: str
    number: int = 0
    node_errors: dict[str, Any] = Field(default_factory=dict)


class SystemStats(BaseModel):
    model_config = _TOLERANT
    system: dict[str, Any] = Field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.system.get("comfyui_version") or "unknown version")
