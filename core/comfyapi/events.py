"""A job's live events ([spec] getJobEvents, Server-Sent Events) read on a thread of its own.

[spec] The stream is live push only: no ids, no replay; on connect it sends the current
snapshot (status, latest progress, latest preview) and it ends after the terminal status.
It is never the source of truth: polling the job is. So a dropped stream is reconnected a
few times and then left alone; the job still completes by polling. Events, payloads and what
the proxy sends: docs/WIRE.md §5.5.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import requests
import urllib3
from pydantic import BaseModel, ValidationError

from ..errors import ComfyRelayError
from ..net.http import pieces
from .api import ANY_ERROR, ComfyApi
from .wire import TERMINAL, Output, PreviewEvent, Progress, StatusEvent

log = logging.getLogger(__name__)

MAX_LINE = 32 * 2**20  # a base64 preview is one data line; past this the stream is broken
# [proxy] sends a keepalive comment every 15 s; a silent stream past this is taken as dead
# (docs/WIRE.md §5.5).
READ_TIMEOUT = 45.0
MODELS: dict[str, type[BaseModel]] = {
    "status": StatusEvent, "progress": Progress, "preview": PreviewEvent, "output": Output,
}


@dataclass(frozen=True)
class SseFrame:
    event: str
    data: str


def frames(pieces: Iterable[bytes]) -> Iterator[SseFrame]:
    """SSE frames from a byte stream (the text/event-stream format): `event:` and `data:`
    fields up to a blank line; comments (`:`) and `id:`/`retry:` are skipped."""
    buffer = b""
    event, data = "", list[str]()
    for piece in pieces:
        buffer += piece
        if len(buffer) > MAX_LINE and b"\n" not in buffer:
            raise ValueError("an event stream line exceeded the size limit")
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            line = raw.rstrip(b"\r").decode("utf-8", "replace")
            if not line:
                if data:
                    yield SseFrame(event or "message", "\n".join(data))
                event, data = "", list[str]()
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)


def parse(frame: SseFrame) -> BaseModel | None:
    """The spec's payload model for a frame; None for unknown events or bad JSON."""
    model = MODELS.get(frame.event)
    if model is None:
        return None
    try:
        return model.model_validate(json.loads(frame.data))
    except (ValueError, ValidationError):
        log.debug("ignored a malformed %s event", frame.event)
        return None


class EventStream:
    """Reads one job's events into a queue on its own daemon thread.

    Thread: start(), take() and close() are called by the runner's worker; the reading thread
    owns its own ComfyApi (its own HTTP session) and only ever puts into the queue.
    """

    def __init__(self, api: ComfyApi, url: str, *, reconnects: int = 3) -> None:
        self.api = api.copy()
        self.url = url
        self.reconnects = reconnects
        self.events: queue.Queue[BaseModel] = queue.Queue()
        self._stop = threading.Event()
        self._response: requests.Response | None = None
        self._thread = threading.Thread(target=self._run, name="comfyrelay-sse", daemon=True)

    def start(self) -> EventStream:
        self._thread.start()
        return self

    def take(self, timeout: float = 0.0) -> list[BaseModel]:
        """What arrived so far; waits up to `timeout` for the first one."""
        found: list[BaseModel] = []
        try:
            found.append(self.events.get(timeout=timeout) if timeout > 0
                         else self.events.get_nowait())
            while True:
                found.append(self.events.get_nowait())
        except queue.Empty:
            return found

    def close(self) -> None:
        """Stop reading. Closing a socket does not wake a thread blocked reading it on Linux,
        and the server may stay silent for a while: shut the socket down, so the thread ends
        now and the server sees the stream go (its open-stream count goes down)."""
        self._stop.set()
        response = self._response
        if response is None:
            return
        sock = getattr(getattr(response.raw, "_connection", None), "sock", None)
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):  # a close racing the reader may raise anything
            response.close()

    def _run(self) -> None:
        try:
            for attempt in range(self.reconnects + 1):
                if self._stop.is_set() or self._read_once():
                    return
                log.info("the job's event stream dropped; polling goes on (reconnect %d of %d)",
                         attempt + 1, self.reconnects)
                self._stop.wait(min(5.0, 0.5 * 2**attempt))
        finally:
            self.api.close()

    def _read_once(self) -> bool:
        """Read until the terminal status (True) or until the stream breaks (False)."""
        try:
            self.api.limiter.acquire(self._stop.is_set)
            # Not api.call(): a 429 here ([spec] too_many_streams) means "poll instead", not
            # "wait and insist".
            response = self.api.http.request(
                "GET", self.url, stream=True, accept=ANY_ERROR,
                headers={"Accept": "text/event-stream"},
                timeout=(self.api.timeout[0], READ_TIMEOUT),
            )
        except ComfyRelayError as exc:
            log.info("no live events for this job (%s); polling only", exc)
            return False
        if response.status_code != 200:
            # [spec] 429 too_many_streams, 501 not_implemented (and 4xx): poll only. A 5xx
            # may pass: try again later (docs/WIRE.md §5.5).
            log.info("the server offers no event stream now (%d); polling only",
                     response.status_code)
            response.close()
            return response.status_code < 500
        self._response = response
        try:
            with response:
                for frame in frames(pieces(response, fallback=None)):
                    if self._stop.is_set():
                        return True
                    event = parse(frame)
                    if event is None:
                        continue
                    self.events.put(event)
                    if isinstance(event, StatusEvent) and event.status in TERMINAL:
                        return True
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError,
                ValueError, AttributeError) as exc:
            # AttributeError: urllib3 reading from a response another thread closed.
            if self._stop.is_set():
                return True
            log.debug("event stream broke: %s", type(exc).__name__)
        return self._stop.is_set()


def wait_briefly(stream: EventStream | None, seconds: float) -> list[BaseModel]:
    """Events for up to `seconds` (or a plain sleep when there is no stream)."""
    if stream is None:
        time.sleep(seconds)
        return []
    return stream.take(seconds)
