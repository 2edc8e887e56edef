"""The thread that keeps a RunComfy machine's bill in check while the app runs: it stops the
machine after the idle time, extends it before the time runs out during a job, and asks
RunComfy during a job whether the machine is still up, so a failed or stopped machine ends
the job at once instead of after a long "lost contact" wait.

It only looks at the record under its lock; the stop, the extension and the state request
run outside it (see machine_state for the locking rule).
"""

from __future__ import annotations

import logging
import threading
import time

from ..errors import ComfyRelayError
from .delegate import SharedDelegate
from .lifecycle import MachineLifecycle

log = logging.getLogger(__name__)


class Watchdog:
    """Owns one daemon thread, started with the first launch and ended by close(); start()
    and close() may be called from any thread. The other fields belong to that thread."""

    def __init__(self, lifecycle: MachineLifecycle) -> None:
        self._lifecycle = lifecycle
        self._record = lifecycle.record
        self._closed = threading.Event()
        self._guard = threading.Lock()  # two start() calls make one thread
        self._thread: threading.Thread | None = None
        self._checked_at = 0.0  # monotonic: the last state request
        self._missing = 0  # requests in a row where RunComfy did not know the machine
        self._watched: SharedDelegate | None = None  # the Ready machine those counts are for

    def start(self) -> None:
        with self._guard:
            if self._closed.is_set() or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(
                target=self._run, name="comfyrelay-machine-watchdog", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        self._closed.set()

    def _run(self) -> None:
        while not self._closed.wait(self._lifecycle.timing.watch_interval):
            try:
                self._look()
            except ComfyRelayError as exc:
                log.warning("RunComfy machine watchdog: %s", exc)

    def _look(self) -> None:
        rec = self._record
        with rec.lock:
            if rec.stopped_at is not None or not rec.server_id:
                return  # nothing to watch until the next launch
            idle = rec.idle_for() is not None
        if idle:
            self._lifecycle.stop_if_idle()
            return
        self._check_state()
        self._lifecycle.extend_if_short()

    def _check_state(self) -> None:
        """While a job runs, ask RunComfy (every state_interval) whether the machine is still
        up; a failure or stop status ends the job at once with that status."""
        now = time.monotonic()
        with self._record.lock:
            delegate, server_id = self._record.delegate, self._record.server_id
            stopping = self._record.busy == "stop"  # our own stop: not a failure
        if (delegate is None or delegate.lost or stopping
                or now - self._checked_at < self._lifecycle.timing.state_interval):
            return
        if delegate is not self._watched:
            self._watched, self._missing = delegate, 0
        self._checked_at = now
        machine = self._lifecycle.server.machine(server_id)
        if machine is not None and not machine.failed:
            self._missing = 0
            return
        if machine is None:
            self._missing += 1
            if self._missing < 2:  # once could be a hiccup: ask again next time
                return
            reason = (
                f"RunComfy no longer knows machine {server_id}: it was stopped (on the "
                "dashboard, or its running time ran out) during the job, and the job's result "
                "is lost. Run the job again."
            )
        else:
            reason = (
                f"RunComfy machine {server_id} went to '{machine.current_status}' during the "
                "job, so the job cannot finish there. Run it again (a new machine is "
                "launched), and look at this machine on the RunComfy dashboard."
            )
        log.warning("%s", reason)
        self._lifecycle.machine_lost(delegate, machine, reason)
