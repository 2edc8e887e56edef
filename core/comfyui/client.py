"""A client for one ComfyUI server: its HTTP routes and its WebSocket event stream."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import websocket

from ..errors import (
    ComfyRelayError,
    ConnectionFailed,
    NodeProblem,
    PromptRejected,
    ServerError,
    UploadTooLarge,
)
from ..net import files
from ..net.http import HttpClient
from .protocol import (
    HistoryEntry,
    JobInfo,
    OutputFile,
    QueuedPrompt,
    SystemStats,
    WsMessage,
    parse_message,
)

log = logging.getLogger(__name__)
SERVICE = "ComfyUI server"
MARKER = "comfyrelay_job"  # our id in extra_data: finds a prompt whose answer was lost
_ABSENT = (404, 405)  # a route the server does not have
# Releases that first had a feature (docs/WIRE.md §1.2): only for what no request can probe.
OWN_IDS_FROM = (0, 3, 45)  # ComfyUI PR #8189: the body's prompt_id is kept
TARGETED_INTERRUPT_FROM = (0, 3, 57)  # ComfyUI PR #9607: /interrupt {prompt_id}


@dataclass
class ServerTraits:
    """What one server has, learned once and kept for its client (None: not known yet)."""

    version: str = ""
    feature_flags: bool | None = None  # GET /features; previews with node ids
    keeps_prompt_ids: bool | None = None  # known from the first POST /prompt answer
    jobs_api: bool | None = None  # GET /api/jobs... (ComfyUI PR #11054)
    api_prefix: bool | None = None  # every route also under /api

    @property
    def targeted_interrupt(self) -> bool:
        """Only a newer server's /interrupt {prompt_id} spares other prompts; no request can
        tell without interrupting one, so the version (or the job routes) decides."""
        found = version_tuple(self.version)
        return bool(self.jobs_api) or (found is not None and found >= TARGETED_INTERRUPT_FROM)

    @property
    def own_prompt_ids(self) -> bool:
        """The server picks its own prompt ids (seen, or foretold by its version)."""
        if self.keeps_prompt_ids is not None:
            return not self.keeps_prompt_ids
        found = version_tuple(self.version)
        return found is not None and found < OWN_IDS_FROM

    def lacks(self) -> list[str]:
        """What the server lacks, each with what ComfyRelay does instead."""
        missing = []
        if self.feature_flags is False:
            missing.append("feature flags (previews come without node ids)")
        if self.own_prompt_ids:
            missing.append("client-chosen prompt ids (the server's own are followed)")
        if not self.targeted_interrupt:
            missing.append("targeted interrupt (Cancel interrupts only while /queue shows "
                           "this job running)")
        if self.jobs_api is False:
            missing.append("job routes /api/jobs (jobs are followed through /queue and "
                           "/history)")
        if self.api_prefix is False:
            missing.append("/api routes (the plain ones are used)")
        return missing


def version_tuple(version: str) -> tuple[int, ...] | None:
    """(0, 3, 44) from "0.3.44" or "v0.3.44-rc"; None when it is not a version."""
    found = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", version.strip())
    return tuple(int(part or 0) for part in found.groups()) if found else None


# (server URL, content-named file) -> the name the server gave it, while this process runs.
_UPLOADED: dict[tuple[str, str], str] = {}
_UPLOADED_LOCK = threading.Lock()


class ComfyClient:
    """HTTP routes of one ComfyUI server (docs/WIRE.md §1.2)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        traits: ServerTraits | None = None,
    ) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ComfyRelayError(
                f"{url!r} is not a server address; use one like "
                "http://127.0.0.1:8188 or https://my-server.example."
            )
        self.url = url.rstrip("/")
        self.token = token
        self.headers = dict(headers or {})
        self.http = HttpClient(self.url, token=token, headers=self.headers, service=SERVICE)
        self.traits = traits or ServerTraits()  # shared by the clients of one back end

    # ---- server ----
    def system_stats(self) -> SystemStats:
        stats = SystemStats.model_validate(self.http.json("GET", "/system_stats"))
        self.traits.version = stats.version
        return stats

    def detect(self) -> ServerTraits:
        """Probe, once, the routes this server may lack (docs/WIRE.md §1.2)."""
        traits = self.traits
        if traits.feature_flags is None:
            traits.feature_flags = self._answers("/features")
        self.has_jobs_api()
        if traits.api_prefix is None:
            traits.api_prefix = traits.jobs_api or self._answers("/api/system_stats")
        return traits

    def has_jobs_api(self) -> bool:
        """GET /api/jobs answers with a job list: the job routes are there. Asked once; a
        failed probe is asked again next time."""
        if self.traits.jobs_api is None:
            try:
                response = self.http.request("GET", "/api/jobs?limit=1", accept=_ABSENT)
                data = _json(response) if response.status_code == 200 else None
                self.traits.jobs_api = isinstance(data, dict) and isinstance(
                    data.get("jobs"), list
                )
            except ComfyRelayError as exc:
                log.info("could not tell whether the server has /api/jobs: %s", exc)
                return False
        return self.traits.jobs_api

    def _answers(self, path: str) -> bool | None:
        try:
            response = self.http.request("GET", path, accept=_ABSENT)
        except ComfyRelayError:
            return None
        return response.status_code == 200 and isinstance(_json(response), dict)

    def check(self) -> str:
        stats = self.system_stats()
        return f"Connected to ComfyUI {stats.version} at {self.url}"

    def object_info(self, class_type: str | None = None) -> dict[str, Any]:
        path = f"/object_info/{class_type}" if class_type else "/object_info"
        data = self.http.json("GET", path)
        return data if isinstance(data, dict) else {}

    def max_upload_size(self) -> int | None:
        try:
            value = self.http.json("GET", "/features").get("max_upload_size")
        except (ComfyRelayError, AttributeError):
            return None
        return value if isinstance(value, int) else None

    # ---- inputs ----
    def upload_once(self, name: str, data: bytes) -> tuple[str, bool]:
        """Upload `data` named after its content (jobs/loaders.content_name) unless this
        process has sent it to this server already: the server keeps one file for the same
        bytes (docs/WIRE.md §1.2), and a second loader or run needs no transfer. Returns the
        server's name for it, and True when it was not sent now (known from before)."""
        key = (self.url, name)
        with _UPLOADED_LOCK:
            known = _UPLOADED.get(key)
        if known is not None:
            return known, True
        answer = self.upload(name, data)
        with _UPLOADED_LOCK:
            _UPLOADED[key] = answer
        return answer, False

    def forget_uploads(self) -> None:
        """This server may have lost what was sent to it (another server at the same address,
        an emptied input folder): send everything again from now on."""
        with _UPLOADED_LOCK:
            for key in [k for k in _UPLOADED if k[0] == self.url]:
                del _UPLOADED[key]

    def upload(self, name: str, data: bytes, *, overwrite: bool = False) -> str:
        """Upload an image or video to the input folder; returns the name the server chose."""
        form = {"overwrite": "true" if overwrite else "false", "type": "input"}
        try:
            response = self.http.request(
                "POST", "/upload/image", data=form, files={"image": (files.safe_name(name), data)}
            )
        except UploadTooLarge:
            raise UploadTooLarge(self._too_large(name, len(data))) from None
        reply = self.http.parse(response, "/upload/image")
        if not isinstance(reply, dict) or not isinstance(reply.get("name"), str):
            raise ComfyRelayError(f"The ComfyUI server's upload answer has no file name: {reply}")
        subfolder = reply.get("subfolder") or ""
        return f"{subfolder}/{reply['name']}" if subfolder else str(reply["name"])

    def _too_large(self, name: str, size: int) -> str:
        limit = self.max_upload_size()
        allowed = f"; it accepts at most {limit / 2**20:.1f} MiB" if limit else ""
        return (
            f"The ComfyUI server refused {name} ({size / 2**20:.1f} MiB) as too large{allowed}. "
            "Send a smaller image (lower resolution or JPEG), or start ComfyUI with a larger "
            "--max-upload-size."
        )

    # ---- prompts ----
    def queue_prompt(
        self,
        graph: dict[str, Any],
        client_id: str,
        prompt_id: str,
        extra_data: dict[str, Any] | None = None,
    ) -> QueuedPrompt:
        """Queue a prompt under our id; the answer's prompt_id is the one to follow (servers
        before 0.3.45 pick their own). extra_data may hold secrets: never logged."""
        body: dict[str, Any] = {"prompt": graph, "client_id": client_id, "prompt_id": prompt_id}
        if extra_data:
            body["extra_data"] = extra_data
        response = self.http.request("POST", "/prompt", json=body, accept=(400,))
        reply = self.http.parse(response, "/prompt")
        if response.status_code == 400:
            raise prompt_rejected(reply, graph)
        queued = QueuedPrompt.model_validate(reply)
        self.traits.keeps_prompt_ids = queued.prompt_id == prompt_id
        return queued

    def find_marked(self, marker: str) -> str | None:
        """The id of the prompt whose extra_data carries our marker, queued or just done:
        how a prompt whose answer was lost is found on a server that picks its own ids."""
        data = self.http.json("GET", "/queue")
        rows = [*(data.get("queue_running") or []), *(data.get("queue_pending") or [])]
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, list) and len(row) > 3 and _marked(row[3], marker):
                return str(row[1])
        recent = self.http.json("GET", "/history?max_items=64")
        for prompt_id, entry in (recent if isinstance(recent, dict) else {}).items():
            row = entry.get("prompt") if isinstance(entry, dict) else None
            if isinstance(row, list) and len(row) > 3 and _marked(row[3], marker):
                return str(prompt_id)
        return None

    def history(self, prompt_id: str) -> HistoryEntry | None:
        """The finished prompt's entry, or None while unknown, queued or running."""
        data = self.http.json("GET", f"/history/{prompt_id}")
        entry = data.get(prompt_id) if isinstance(data, dict) else None
        return HistoryEntry.model_validate(entry) if isinstance(entry, dict) else None

    def queue(self) -> tuple[list[str], list[str]]:
        """Prompt ids (running, pending), pending in the order they will run."""
        data = self.http.json("GET", "/queue")

        def ids(items: Any) -> list[str]:
            rows = [i for i in items or [] if isinstance(i, list) and len(i) > 1]
            return [str(i[1]) for i in sorted(rows, key=lambda i: i[0])]

        return ids(data.get("queue_running")), ids(data.get("queue_pending"))

    def dequeue(self, prompt_id: str) -> None:
        self.http.request("POST", "/queue", json={"delete": [prompt_id]})

    def interrupt(self, prompt_id: str) -> None:
        """Interrupt our prompt. Servers from 0.3.57 ignore the call when another one runs;
        older ones stop whatever runs, so callers check /queue first."""
        self.http.request("POST", "/interrupt", json={"prompt_id": prompt_id})

    # ---- job routes (newer servers; has_jobs_api() first) ----
    def job(self, prompt_id: str) -> JobInfo | None:
        """The job's state, or None when the server does not know it."""
        response = self.http.request("GET", f"/api/jobs/{prompt_id}", accept=(404,))
        data = _json(response)
        if response.status_code == 404:
            if isinstance(data, dict):
                return None
            self.traits.jobs_api = False  # the route itself is gone (a proxy, a downgrade)
            raise ServerError("The ComfyUI server no longer has /api/jobs.", 404)
        return JobInfo.model_validate(data if isinstance(data, dict) else {})

    def cancel_job(self, prompt_id: str) -> bool:
        """Dequeue or interrupt this job only; False when it had already ended."""
        data = self.http.json("POST", f"/api/jobs/{prompt_id}/cancel")
        return isinstance(data, dict) and data.get("cancelled") is True

    # ---- outputs ----
    def download(self, file: OutputFile, out_dir: Path) -> Path:
        """Stream one output into out_dir under a safe, new name."""
        target = files.output_path(out_dir, file.filename, file.subfolder)
        params = {"filename": file.filename, "subfolder": file.subfolder, "type": file.type}
        return files.write_stream(self.http.stream("/view", params, file.filename), target)

    # ---- events ----
    def ws_url(self, client_id: str) -> str:
        parts = urlsplit(self.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, parts.netloc, parts.path + "/ws", f"clientId={client_id}", ""))

    def open_events(self, client_id: str, timeout: float = 10.0) -> EventSocket:
        headers = dict(self.headers)
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return EventSocket(self.ws_url(client_id), headers, timeout)

    def close(self) -> None:
        self.http.close()


class EventSocket:
    """The /ws stream: typed messages, with previews negotiated to carry metadata
    (docs/WIRE.md §1.3-1.4)."""

    def __init__(self, url: str, headers: Mapping[str, str], timeout: float) -> None:
        self.url = url
        try:
            self.ws = websocket.create_connection(
                url,
                timeout=timeout,
                header=[f"{k}: {v}" for k, v in headers.items()],
                suppress_origin=True,  # a foreign Origin gets 403 (docs/WIRE.md §1.1)
                enable_multithread=True,
                # Its pure-Python UTF-8 check cost ~2 ms a job; recv() still decodes strictly.
                skip_utf8_validation=True,
            )
            flags = {"type": "feature_flags", "data": {"supports_preview_metadata": True}}
            self.ws.send(json.dumps(flags))
        except websocket.WebSocketBadStatusException as exc:
            raise ConnectionFailed(self._refused(exc.status_code)) from None
        except (OSError, websocket.WebSocketException) as exc:
            raise ConnectionFailed(
                f"Could not open the ComfyUI event stream at {safe_url(url)} "
                f"({type(exc).__name__}). Check the URL and that the server is running."
            ) from None

    def _refused(self, status: int) -> str:
        if status in (401, 403):
            return (
                f"The ComfyUI server refused the event stream ({status}). Check the API "
                "token, or a proxy that blocks WebSockets."
            )
        return f"The ComfyUI server refused the event stream at {safe_url(self.url)} ({status})."

    def receive(self, timeout: float) -> Iterator[WsMessage]:
        """Messages that arrive within `timeout`; stops early at the first quiet moment.

        Raises ConnectionFailed if the socket drops.
        """
        self.ws.settimeout(timeout)
        while True:
            try:
                raw = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                return
            except UnicodeDecodeError:  # a malformed text frame: dropped, as unknown ones are
                continue
            except (OSError, websocket.WebSocketException):
                raise ConnectionFailed("The ComfyUI event stream dropped.") from None
            if raw is None or raw == "":
                raise ConnectionFailed("The ComfyUI event stream closed.")
            message = parse_message(raw)
            if message is not None:
                yield message
            self.ws.settimeout(0.001)  # drain what is already there, then hand back

    def close(self) -> None:
        with contextlib.suppress(OSError, websocket.WebSocketException):
            self.ws.close(timeout=1)


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _marked(extra_data: Any, marker: str) -> bool:
    return isinstance(extra_data, dict) and extra_data.get(MARKER) == marker


def safe_url(url: str) -> str:
    """The URL without query or credentials, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def new_id() -> str:
    return str(uuid.uuid4())


def prompt_rejected(reply: Any, graph: dict[str, Any]) -> PromptRejected:
    """Turn ComfyUI's 400 body into a message naming every failing node and input."""
    reply = reply if isinstance(reply, dict) else {}
    error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
    kind = str(error.get("type", ""))
    message = str(error.get("message") or "The ComfyUI server rejected the workflow.")
    if kind == "prompt_no_outputs":
        message = (
            "The workflow has no output node the server knows (SaveImage, PreviewImage...). "
            "Add one and export the workflow again."
        )
    elif kind in ("invalid_prompt", "missing_node_type"):
        message = (
            f"{message.rstrip('.')}. {error.get('details') or ''} Install the missing "
            "custom nodes on the server, or pick a workflow made for it."
        ).strip()
    else:
        message = f"The ComfyUI server rejected the workflow: {message}"
    return PromptRejected(message, node_problems(reply.get("node_errors"), graph))


def node_problems(node_errors: Any, graph: dict[str, Any]) -> list[NodeProblem]:
    problems = []
    for node_id, entry in (node_errors or {}).items():
        if not isinstance(entry, dict):
            continue
        class_type = entry.get("class_type") or graph.get(node_id, {}).get("class_type", "")
        for err in entry.get("errors") or []:
            extra = err.get("extra_info") or {}
            reason = str(err.get("message") or err.get("type") or "invalid")
            if err.get("details"):
                reason += f" ({err['details']})"
            problems.append(
                NodeProblem(
                    str(node_id), str(class_type), str(extra.get("input_name") or ""), reason
                )
            )
    return problems
