"""The job runner: a worker thread that does all network work; hosts poll() from a UI timer."""

from __future__ import annotations

import dataclasses
import functools
import logging
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import CancelledByUser, ComfyRelayError
from .backend_api import Backend, JobContext
from .events import (
    FINAL_EVENTS,
    ConnectionChecked,
    Event,
    JobCancelled,
    JobEvent,
    JobFailed,
    JobFinished,
    JobStarted,
)
from .job import Job

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    job_id: str
    job: Job
    ctx: JobContext
    handle: Any = None


class JobRunner:
    """Runs jobs in submission order on one background thread.

    `max_in_flight` > 1 lets the back end work on one job while the next is sent, and
    results still come back in submission order.
    """

    def __init__(self, backend: Backend, *, max_in_flight: int = 1) -> None:
        self.backend = backend
        # A back end that works on many jobs at once (a pool) asks for them through `parallel`.
        self.max_in_flight = max(1, max_in_flight, backend.parallel)
        self._events: queue.Queue[Event] = queue.Queue()
        self._waiting: deque[_Entry] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._running: list[_Entry] = []
        self._open_jobs: set[str] = set()
        self._worker = threading.Thread(target=self._work, name="comfyrelay-runner", daemon=True)
        self._worker.start()

    # ---- host side: never blocks ----
    def submit(self, job: Job) -> str:
        if self._closed:
            raise ComfyRelayError("This runner is closed; create a new one.")
        job_id = uuid.uuid4().hex[:12]
        job = dataclasses.replace(job, bindings=job.bindings.resolve())
        entry = _Entry(job_id, job, JobContext(job_id, self._events.put, self._start_more))
        with self._lock:
            self._waiting.append(entry)
            self._open_jobs.add(job_id)
        self._wake.set()
        return job_id

    def poll(self) -> list[Event]:
        """All events since the last call, oldest first."""
        events: list[Event] = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return events
            if isinstance(event, FINAL_EVENTS):
                with self._lock:
                    self._open_jobs.discard(event.job_id)
            events.append(event)

    def cancel(self, job_id: str | None = None) -> None:
        """Cancel one job, or every job when job_id is None. Safe at any moment."""
        with self._lock:
            self._cancel_flags(job_id)
        self._wake.set()

    def check_connection(self) -> None:
        """Check the back end off the UI thread; the answer arrives as ConnectionChecked."""
        threading.Thread(target=self._check, name="comfyrelay-check", daemon=True).start()

    @property
    def busy(self) -> bool:
        """True while a submitted job has not yet reported its final event through poll()."""
        with self._lock:
            return bool(self._open_jobs)

    def wait_idle(self, timeout: float | None = None, interval: float = 0.05) -> list[Event]:
        """Block until every job has ended (for scripts and `blender -b`); return the events."""
        deadline = None if timeout is None else time.monotonic() + timeout
        events: list[Event] = []
        while True:
            events += self.poll()
            if not self.busy:
                return events
            if deadline is not None and time.monotonic() > deadline:
                return events
            time.sleep(interval)

    def close(self, timeout: float = 5.0) -> None:
        """Cancel everything, stop the worker and release the back end."""
        self._closed = True
        self.cancel()
        self._wake.set()
        self._worker.join(timeout)
        self.backend.close()

    # ---- worker side ----
    def _cancel_flags(self, job_id: str | None) -> None:
        for entry in [*self._waiting, *self._running]:
            if job_id is None or entry.job_id == job_id:
                entry.ctx.request_cancel()

    def _check(self) -> None:
        try:
            message = self.backend.check()
            event = ConnectionChecked(True, message)
        except ComfyRelayError as exc:
            event = ConnectionChecked(False, str(exc))
        except Exception as exc:  # a bug must still reach the user, not kill a thread silently
            log.exception("connection check failed")
            event = ConnectionChecked(False, f"Unexpected error: {type(exc).__name__}: {exc}")
        self._events.put(event)

    def _work(self) -> None:
        while not (self._closed and not self._waiting and not self._running):
            self._start_more()
            if self._running:
                self._finish(self._running[0])
            else:
                self._wake.wait(0.5)
                self._wake.clear()

    def _start_more(self) -> None:
        while len(self._running) < self.max_in_flight:
            with self._lock:
                if not self._waiting:
                    return
                entry = self._waiting.popleft()
                self._running.append(entry)
            if entry.ctx.cancelled:
                self._end(entry, JobCancelled(entry.job_id))
                continue
            entry.ctx.emit(JobStarted(entry.job_id, entry.job.bindings.seed))
            start = functools.partial(self.backend.start, entry.job, entry.ctx)
            ok, entry.handle = self._attempt(entry, start)
            if not ok:
                self._end(entry, None)

    def _finish(self, entry: _Entry) -> None:
        # finish() also handles a job cancelled while it waited behind another one.
        finish = functools.partial(self.backend.finish, entry.handle, entry.ctx)
        ok, outputs = self._attempt(entry, finish)
        self._end(entry, JobFinished(entry.job_id, tuple(outputs)) if ok else None)

    def _attempt(self, entry: _Entry, step: Callable[[], Any]) -> tuple[bool, Any]:
        """Run one back-end step; a failure becomes the job's final event."""
        try:
            return True, step()
        except CancelledByUser as exc:
            # The back end's text may say more than "Cancelled." (RunComfy's cancel answer).
            entry.ctx.emit(JobCancelled(entry.job_id, str(exc)))
        except ComfyRelayError as exc:
            entry.ctx.emit(
                JobFailed(
                    entry.job_id,
                    str(exc),
                    getattr(exc, "node_id", ""),
                    getattr(exc, "node_type", ""),
                    type(exc).__name__,
                )
            )
        except Exception as exc:  # a bug must end the job visibly, not kill the worker
            log.exception("job %s failed unexpectedly", entry.job_id)
            entry.ctx.emit(
                JobFailed(
                    entry.job_id,
                    f"Unexpected error: {type(exc).__name__}: {exc}",
                    error_type=type(exc).__name__,
                )
            )
        return False, None

    def _end(self, entry: _Entry, event: JobEvent | None) -> None:
        with self._lock:
            if entry in self._running:
                self._running.remove(entry)
        if event is not None:
            entry.ctx.emit(event)
