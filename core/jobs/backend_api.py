"""The interface every back end (a ComfyUI URL, a RunComfy machine, ...) gives the runner."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CancelledByUser
from .events import JobEvent
from .job import Job


@dataclass(frozen=True)
class ComfyUIServer:
    """Where a ComfyUI answers, and the token it wants (never shown)."""

    url: str
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Capabilities:
    """What a back end can really do, so hosts can grey out what it cannot."""

    cancel: bool = True
    live_progress: bool = True  # per-node progress, not only queued/running/done
    previews: bool = True
    uploads: bool = True  # takes the host's image bytes (else inputs must be URLs)


class JobContext:
    """The runner's side of one job, handed to the back end: emit events, notice Cancel."""

    def __init__(
        self,
        job_id: str,
        emit: Callable[[JobEvent], None],
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self.job_id = job_id
        self._emit = emit
        self._on_idle = on_idle
        self._cancel = threading.Event()

    def emit(self, event: JobEvent) -> None:
        self._emit(event)

    def idle(self) -> None:
        """Call from wait loops: the runner sends the next queued jobs meanwhile."""
        if self._on_idle is not None:
            self._on_idle()

    def request_cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def is_cancelled(self) -> bool:
        """`cancelled` as a callable, for the waits that take a Cancelled (subclasses that
        widen `cancelled` widen this too)."""
        return self.cancelled

    def raise_if_cancelled(self) -> None:
        if self._cancel.is_set():
            raise CancelledByUser()


class Backend(ABC):
    """start() sends a job and returns a handle at once; finish() waits for it.

    Splitting the two lets the runner keep several jobs in flight: the next frame uploads
    while the server works on the previous one. Both run on the runner's worker thread.
    """

    name: str = "backend"
    capabilities = Capabilities()
    # Jobs the runner should hand over at once (start() before the first finish()): a pool
    # spreads them over its workers, so it asks for more than the runner's own default.
    parallel: int = 1

    @abstractmethod
    def check(self) -> str:
        """Reach the service; return a plain first line ("Connected to ComfyUI 0.3.64 —
        ready.") and, on the lines after it, details (what the service lacks, what is done
        instead), or raise ComfyRelayError."""

    @abstractmethod
    def start(self, job: Job, ctx: JobContext) -> Any:
        """Upload inputs and submit; return a handle for finish() and cancel()."""

    @abstractmethod
    def finish(self, handle: Any, ctx: JobContext) -> list[Path]:
        """Wait for the job, emit progress and outputs, return the saved files.

        Must return or raise within a bounded time, call ctx.idle() and check
        ctx.cancelled at least every half second (also on entry: the job may have been
        cancelled while it waited) and raise CancelledByUser after cancelling it on the server.
        """

    @property
    def server_version(self) -> str:
        """The server's ComfyUI version once known, for the run history; "" when unknown
        or when the service does not say."""
        return ""

    def comfyui_server(self) -> ComfyUIServer | None:
        """The ComfyUI whose node definitions (`/object_info`) describe what this back end
        runs: to convert UI-format workflows and type input fields. None when there is no
        ComfyUI to ask (hosted queues), or not yet (a machine still starting)."""
        return None

    def members(self) -> list[Backend]:
        """The back ends that do the work: itself, or a pool's workers (so what each leaves
        running can be named)."""
        return [self]

    def close(self) -> None:  # noqa: B027 - most back ends hold nothing to release
        """Release connections; called once when the runner closes."""
