"""A RunComfy dedicated machine as a back end: jobs run on the machine's ComfyUI, which is
launched (or reused) for the first job or by a host's Launch button.

The parts live beside this module: the options (machine_options), what is known about the
machine and the locking rule (machine_state), launch/wait/extend/stop with the ledger
(lifecycle), the idle stop and the checks during a job (watchdog), and the shared ComfyUI
back end (delegate). Names other modules import from here are re-exported below.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..comfyui.server_backend import ComfyUIBackend
from ..errors import ComfyRelayError, ConnectionFailed, ServerError
from ..jobs.backend_api import Backend, Capabilities, ComfyUIServer, JobContext
from ..jobs.job import Job
from ..net.ratelimit import Cancelled, never
from .api import Machine, RunComfyServer
from .delegate import SharedDelegate, WatchedContext
from .ledger import Ledger
from .leftovers import RunningMachine, find_running
from .lifecycle import MachineLifecycle
from .machine_options import MachineOptions, Timing
from .machine_state import MachineRecord, MachineState, MachineStatus, describe
from .watchdog import Watchdog

__all__ = [
    "MachineOptions",
    "MachineState",
    "MachineStatus",
    "RunComfyMachineBackend",
    "RunningMachine",
    "Timing",
    "describe",
    "find_running",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Started:
    """start()'s handle: the job's handle on the machine's ComfyUI, and that back end. Made
    and used on the runner's thread."""

    delegate: SharedDelegate
    handle: Any


class RunComfyMachineBackend(Backend):
    """start() and finish() run on the runner's worker thread, check() on its check thread.
    prepare(), stop(), extend(), tune(), status(), close() and the properties may be called
    from any thread (a host's UI thread or its action threads); status(), tune(), prepare()
    and the properties never wait for the network, so a UI thread may call them."""

    name = "runcomfy-machine"
    capabilities = Capabilities()  # a machine's ComfyUI can do everything

    def __init__(
        self,
        server: RunComfyServer,
        options: MachineOptions | None = None,
        *,
        server_id: str = "",
        ledger: Ledger | None = None,
        timing: Timing | None = None,
        comfy_factory: Callable[[str], Backend] = ComfyUIBackend,
    ) -> None:
        options = options or MachineOptions()
        if not options.workflow_version_id and not server_id:
            raise ComfyRelayError(
                "Choose a RunComfy workflow version to launch (its version_id, see "
                "`comfyrelay workflows`) or a running machine's server_id to reuse."
            )
        self.server = server
        self.ledger = ledger or Ledger()
        self._record = MachineRecord(options, server_id)
        self._lifecycle = MachineLifecycle(
            server, self._record, self.ledger, timing or Timing(), comfy_factory
        )
        self._watchdog = Watchdog(self._lifecycle)
        self._closed = threading.Event()  # the Launch thread gives up

    # ---- Backend ----
    def comfyui_server(self) -> ComfyUIServer | None:
        """The machine's ComfyUI, once the machine is Ready."""
        delegate = self._record.use_delegate()
        if delegate is None:
            return None
        try:
            return delegate.backend.comfyui_server()
        finally:
            delegate.done()

    @property
    def server_version(self) -> str:
        """The version of the machine's ComfyUI, once the machine is Ready."""
        delegate = self._record.use_delegate()
        if delegate is None:
            return ""
        try:
            return delegate.backend.server_version
        finally:
            delegate.done()

    def check(self) -> str:
        server_id = self.server_id
        delegate = self._record.use_delegate()
        if delegate is not None:
            try:
                return f"RunComfy machine {server_id}: " + delegate.backend.check()
            finally:
                delegate.done()
        if server_id:
            machine = self.server.machine(server_id)
            state = machine.current_status if machine else "not found"
            return f"RunComfy machine {server_id}: {state}"
        count = len(self.server.machines())
        return (f"RunComfy account reachable ({count} machine(s) running); a machine is "
                "launched for the first job.")

    def start(self, job: Job, ctx: JobContext) -> _Started:
        ctx.raise_if_cancelled()
        self._record.job_began()
        try:
            delegate = self._ready(ctx.is_cancelled, ctx)
        except BaseException:
            self._job_done(None)
            raise
        try:
            try:
                self._lifecycle.extend_if_short()
            except (ConnectionFailed, ServerError) as exc:  # the watchdog tries again
                log.warning("could not extend the RunComfy machine before the job: %s", exc)
            handle = self._watching(delegate, ctx, lambda w: delegate.backend.start(job, w))
            return _Started(delegate, handle)
        except BaseException:
            self._job_done(delegate)
            raise

    def finish(self, handle: _Started, ctx: JobContext) -> list[Path]:
        delegate = handle.delegate
        try:
            if delegate.stopped_by_us:  # no machine left to ask: end at once
                raise delegate.error()
            result: list[Path] = self._watching(
                delegate, ctx, lambda w: delegate.backend.finish(handle.handle, w)
            )
            return result
        finally:
            self._job_done(delegate)

    def close(self) -> None:
        self._closed.set()
        self._watchdog.close()
        if self.options.stop_on_close:
            try:
                self._lifecycle.stop("the app closed", if_launched_here=True)
            except ComfyRelayError as exc:
                log.warning("could not stop the RunComfy machine on close: %s", exc)
        delegate = self._record.take_delegate()
        if delegate is not None:
            delegate.retire("This RunComfy machine back end was closed.")
        self._lifecycle.let_go()
        self.server.close()

    def _watching(
        self, delegate: SharedDelegate, ctx: JobContext, step: Callable[[JobContext], Any]
    ) -> Any:
        """Run a step of the machine's ComfyUI back end; if the watchdog saw the machine
        fail or stop meanwhile, the job ends with that reason instead of a lost contact."""
        try:
            return step(WatchedContext(ctx, delegate))
        except ComfyRelayError:
            if delegate.lost and not ctx.cancelled:
                raise delegate.error() from None
            raise

    def _job_done(self, delegate: SharedDelegate | None) -> None:
        self._record.job_ended()
        if delegate is not None:
            delegate.done()  # closes it if the machine was let go meanwhile

    def _ready(self, cancelled: Cancelled, ctx: JobContext | None) -> SharedDelegate:
        try:
            return self._lifecycle.ensure_ready(cancelled, ctx)
        finally:
            self._watch()

    def _watch(self) -> None:
        """Start the watchdog once a machine is known: it may cost money from now on, also
        when the wait for Ready failed."""
        if self.server_id:
            self._watchdog.start()

    # ---- the machine ----
    def prepare(self) -> None:
        """Launch or reuse the machine in the background (a host's Launch button). Calling it
        again while it works, or a double click, does nothing more."""
        with self._record.lock:
            if self._record.preparing is not None and self._record.preparing.is_alive():
                return
            self._record.preparing = threading.Thread(
                target=self._prepare, name="comfyrelay-machine", daemon=True
            )
            self._record.preparing.start()

    def _prepare(self) -> None:
        try:
            self.ensure_ready(self._closed.is_set)
        except ComfyRelayError as exc:
            with self._record.lock:
                self._record.last_error = str(exc)
            log.warning("RunComfy machine not ready: %s", exc)

    def wait_prepared(self, timeout: float) -> None:
        """Wait up to `timeout` for a Launch under way (scripts and tests; never a UI)."""
        with self._record.lock:
            thread = self._record.preparing
        if thread is not None:
            thread.join(timeout)

    @property
    def preparing(self) -> bool:
        """A Launch (prepare()) is under way: hosts grey out Launch and Stop stays live."""
        with self._record.lock:
            return self._record.preparing is not None and self._record.preparing.is_alive()

    def ensure_ready(self, cancelled: Cancelled = never, ctx: JobContext | None = None) -> Backend:
        """The machine's ComfyUI back end, launching or reusing the machine first if needed.
        For a look only: jobs go through start(), which keeps it open while they use it."""
        delegate = self._ready(cancelled, ctx)
        delegate.done()
        return delegate.backend

    def launch_or_reuse(self, cancelled: Cancelled = never) -> None:
        """Reuse a live machine of this workflow from the ledger, else launch one (once)."""
        try:
            self._lifecycle.launch_or_reuse(cancelled)
        finally:
            self._watch()

    def refresh(self) -> Machine | None:
        """Ask RunComfy for the machine's state now (the CLI; hosts use status())."""
        return self._lifecycle.refresh()

    def extend(self, seconds: int | None = None) -> float | None:
        """Add `seconds` (default: the extension step) to the machine's running time; return
        the new time left."""
        return self._lifecycle.extend(seconds)

    def stop(self, reason: str = "asked") -> None:
        """Stop the machine now (billing ends when RunComfy confirms) and forget it. A launch
        being waited for gives up within a quarter second."""
        self._lifecycle.stop(reason)

    def tune(self, *, hourly_price: float | None, idle_stop: float | None,
             duration: int) -> None:
        """Change the live settings (a host's fields): the price for the cost shown, the idle
        time before the auto-stop (None: never), and the next launch's running time."""
        self._record.tune(hourly_price=hourly_price, idle_stop=idle_stop, duration=duration)

    # ---- state, from memory ----
    def status(self) -> MachineStatus:
        """The machine's state for a host's panel (no network)."""
        return self._record.status()

    def time_left(self) -> float | None:
        return self._record.time_left()

    @property
    def options(self) -> MachineOptions:
        with self._record.lock:
            return self._record.options

    @property
    def timing(self) -> Timing:
        return self._lifecycle.timing

    @timing.setter
    def timing(self, timing: Timing) -> None:
        """Replace the timing before the first job (tests and scripts shorten it)."""
        self._lifecycle.timing = timing

    @property
    def server_id(self) -> str:
        with self._record.lock:
            return self._record.server_id

    @property
    def launched_here(self) -> bool:
        with self._record.lock:
            return self._record.launched_here
