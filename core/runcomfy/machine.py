"""A RunComfy dedicated machine as a back end: launch or reuse, wait Ready, run jobs on its
ComfyUI, and keep the bill in check (ledger, idle auto-stop, duration extension).

Once Ready, a machine's main_service_url is a plain ComfyUI, so jobs go through ComfyUIBackend.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..comfyui.backend import ComfyUIBackend
from ..errors import ComfyRelayError, ConnectionFailed, JobCancelled, ServerError
from ..jobs.backend import Backend, Capabilities, JobContext
from ..jobs.events import JobProgress
from ..jobs.job import Job
from ..net.ratelimit import Cancelled, never
from .api import Machine, MachineFailed, RunComfyServer
from .ledger import Ledger, LedgerEntry

log = logging.getLogger(__name__)

_launch_locks: dict[tuple[str, str, str], threading.Lock] = {}
_launch_locks_guard = threading.Lock()


def _launch_lock(key: tuple[str, str, str]) -> threading.Lock:
    """One lock per (API, user, workflow version) in the process: launches never overlap."""
    with _launch_locks_guard:
        return _launch_locks.setdefault(key, threading.Lock())


@dataclass(frozen=True)
class MachineStatus:
    """What a host shows about the machine; all from memory, so cheap to ask every second."""

    server_id: str = ""
    status: str = "none"  # none, Launching, Starting..., Ready, Stopped, Error
    server_type: str = ""
    time_left: float | None = None  # seconds until RunComfy stops it
    billed_seconds: float = 0.0  # since Ready, as far as this session knows
    cost: float | None = None  # billed time x the user's hourly price, if set
    idle_seconds: float = 0.0
    auto_stop_in: float | None = None
    message: str = ""


@dataclass(frozen=True)
class RunningMachine:
    """A machine found running at start-up: ours (in the ledger) or not."""

    machine: Machine
    entry: LedgerEntry | None

    @property
    def in_ledger(self) -> bool:
        return self.entry is not None

    def time_left(self, now: float | None = None) -> float | None:
        stop = self.machine.stop_epoch() or (self.entry.expected_stop if self.entry else None)
        return None if stop is None else max(0.0, stop - (time.time() if now is None else now))


def find_running(
    server: RunComfyServer, ledger: Ledger, *, grace: float = 120.0
) -> list[RunningMachine]:
    """Machines still running from earlier sessions, so the user can stop or reuse them.

    Ledger entries RunComfy no longer knows are dropped (stopped at their end time, or on
    the dashboard); machines RunComfy lists that the ledger lacks are reported too.
    """
    listed = {m.server_id: m for m in server.machines()}
    found: list[RunningMachine] = []
    for entry in ledger.entries():
        if entry.api_url and entry.api_url != server.api_url:
            continue
        machine = listed.pop(entry.server_id, None) or server.machine(entry.server_id)
        if machine is None or machine.status in ("stopped", "deleted", "terminated"):
            if time.time() - entry.launched_at > grace:  # not the brief 404 after launch
                ledger.remove(entry.server_id)
            continue
        found.append(RunningMachine(machine, entry))
    found += [RunningMachine(m, None) for m in listed.values() if not m.failed]
    return found


class _Guarded:
    """A RunComfyServer used from the runner and the watchdog thread, one call at a time."""

    def __init__(self, server: RunComfyServer) -> None:
        self.server = server
        self.lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.server, name)
        if not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                return method(*args, **kwargs)

        return call


class _WatchedContext(JobContext):
    """The job's context as the machine's ComfyUI back end sees it: it also counts as
    cancelled when the machine failed or stopped, so the job ends at once."""

    def __init__(self, ctx: JobContext, lost: threading.Event) -> None:
        super().__init__(ctx.job_id, ctx.emit, ctx.idle)
        self._outer = ctx
        self._lost = lost

    def request_cancel(self) -> None:
        self._outer.request_cancel()

    @property
    def cancelled(self) -> bool:
        return self._outer.cancelled or self._lost.is_set()

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise JobCancelled("Cancelled.")


class RunComfyMachineBackend(Backend):
    name = "runcomfy-machine"
    capabilities = Capabilities()  # a machine's ComfyUI can do everything

    def __init__(
        self,
        server: RunComfyServer,
        *,
        workflow_version_id: str = "",
        server_id: str = "",
        server_type: str = "medium",
        duration: int = 3600,
        idle_stop: float | None = 900.0,
        extend_margin: float = 600.0,
        extend_step: int = 1800,
        stop_on_close: bool = True,
        hourly_price: float | None = None,
        ledger: Ledger | None = None,
        poll_first: float = 2.0,
        poll_max: float = 15.0,
        ready_timeout: float = 1200.0,
        not_found_grace: float = 60.0,
        unreachable_grace: float = 60.0,
        watch_interval: float = 5.0,
        state_interval: float = 10.0,
        comfy_factory: Callable[[str], Backend] = ComfyUIBackend,
    ) -> None:
        if not workflow_version_id and not server_id:
            raise ComfyRelayError(
                "Choose a RunComfy workflow version to launch (its version_id, see "
                "`comfyrelay workflows`) or a running machine's server_id to reuse."
            )
        self.api = _Guarded(server)
        self.server = server
        self.ledger = ledger or Ledger()
        self.workflow_version_id = workflow_version_id
        self.server_type = server_type
        self.duration = int(duration)
        self.idle_stop = idle_stop  # None: never stop for idleness
        self.extend_margin = extend_margin
        self.extend_step = int(extend_step)
        self.stop_on_close = stop_on_close
        self.hourly_price = hourly_price
        self.poll = {"first_delay": poll_first, "max_delay": poll_max, "timeout": ready_timeout,
                     "not_found_grace": not_found_grace, "unreachable_grace": unreachable_grace}
        self.watch_interval = watch_interval
        self.state_interval = state_interval  # ask RunComfy for the state this often in a job
        self.comfy_factory = comfy_factory
        self.server_id = server_id
        self.machine: Machine | None = None
        self.launched_here = False
        self._delegate: Backend | None = None
        self._lock = threading.RLock()
        self._active = 0
        self._last_activity = time.monotonic()
        self._ready_at: float | None = None  # epoch
        self._stopped_at: float | None = None
        self._expected_stop: float | None = None
        self._state = "none"
        self._closed = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._preparing: threading.Thread | None = None
        self._prepare_lock = threading.Lock()  # never held for long: prepare() is a UI call
        self._abort = threading.Event()  # stop() asks a launch wait to give up the lock
        self._lost = threading.Event()  # the machine failed or stopped while Ready
        self._lost_reason = ""
        self._missing = 0  # polls in a row where RunComfy did not know the machine
        self._state_checked = 0.0
        self.last_error = ""

    # ---- Backend ----
    def check(self) -> str:
        if self._delegate is not None:
            return f"RunComfy machine {self.server_id}: " + self._delegate.check()
        if self.server_id:
            machine = self.api.machine(self.server_id)
            state = machine.current_status if machine else "not found"
            return f"RunComfy machine {self.server_id}: {state}"
        count = len(self.api.machines())
        return (f"RunComfy account reachable ({count} machine(s) running); a machine is "
                "launched for the first job.")

    def start(self, job: Job, ctx: JobContext) -> Any:
        ctx.raise_if_cancelled()
        with self._lock:
            self._active += 1
        try:
            delegate = self.ensure_ready(lambda: ctx.cancelled, ctx)
            try:
                self._extend_if_short()
            except (ConnectionFailed, ServerError) as exc:  # the watchdog tries again
                log.warning("could not extend the RunComfy machine before the job: %s", exc)
            return self._watching(ctx, lambda watched: delegate.start(job, watched))
        except BaseException:
            self._job_done()
            raise

    def finish(self, handle: Any, ctx: JobContext) -> list[Path]:
        try:
            delegate = self._delegate
            if delegate is None:
                if self._lost.is_set():
                    raise MachineFailed(self._lost_reason)
                raise ComfyRelayError("The RunComfy machine was stopped during the job.")
            result: list[Path] = self._watching(
                ctx, lambda watched: delegate.finish(handle, watched)
            )
            return result
        finally:
            self._job_done()
            if self._lost.is_set() and self._active == 0:
                self._drop_delegate()

    def _watching(self, ctx: JobContext, step: Callable[[JobContext], Any]) -> Any:
        """Run a step of the machine's ComfyUI back end; if the watchdog saw the machine
        fail or stop meanwhile, the job ends with that reason instead of a lost contact."""
        try:
            return step(_WatchedContext(ctx, self._lost))
        except ComfyRelayError:
            if self._lost.is_set() and not ctx.cancelled:
                raise MachineFailed(self._lost_reason) from None
            raise

    def close(self) -> None:
        self._closed.set()
        if self.stop_on_close and self.launched_here and self._stopped_at is None:
            try:
                self.stop(reason="the app closed")
            except ComfyRelayError as exc:
                log.warning("could not stop the RunComfy machine on close: %s", exc)
        self._drop_delegate()
        self.server.close()

    # ---- the machine ----
    def prepare(self) -> None:
        """Launch or reuse the machine in the background (a host's Launch button). Calling it
        again while it works, or a double click, does nothing more."""
        with self._prepare_lock:
            if self._preparing is not None and self._preparing.is_alive():
                return
            self._preparing = threading.Thread(
                target=self._prepare, name="comfyrelay-machine", daemon=True
            )
            self._preparing.start()

    def _prepare(self) -> None:
        try:
            self.ensure_ready(self._closed.is_set)
        except ComfyRelayError as exc:
            self.last_error = str(exc)
            log.warning("RunComfy machine not ready: %s", exc)

    def ensure_ready(self, cancelled: Cancelled = never, ctx: JobContext | None = None) -> Backend:
        """The machine's ComfyUI back end, launching or reusing the machine first if needed."""
        def give_up() -> bool:
            return cancelled() or self._abort.is_set()

        while not self._lock.acquire(timeout=0.25):  # another caller is launching: wait for it
            if give_up():
                raise JobCancelled("Cancelled.")
        try:
            if self._delegate is not None:
                return self._delegate
            if not self.server_id or self._stopped_at is not None:
                self.launch_or_reuse(give_up)
            machine = self._wait_ready(give_up, ctx)
            self._became_ready(machine)
            assert self._delegate is not None
            return self._delegate
        except MachineFailed as exc:
            self._state = "Error"
            self.last_error = str(exc)
            raise
        finally:
            self._lock.release()

    def launch_or_reuse(self, cancelled: Cancelled = never) -> None:
        """Reuse a live machine of this workflow from the ledger, else launch one (once)."""
        key = (self.server.api_url, self.server.user_id, self.workflow_version_id)
        lock = _launch_lock(key)
        while not lock.acquire(timeout=0.25):
            if cancelled():
                raise JobCancelled("Cancelled.")
        try:
            if not self.workflow_version_id:
                raise ComfyRelayError(
                    f"RunComfy machine {self.server_id} was stopped. Launch a new one (choose "
                    "a workflow version) or pick another running machine."
                )
            reused = self._reusable(cancelled)
            if reused is not None:
                log.info("reusing RunComfy machine %s from the ledger", reused)
                self._adopt(reused, launched=False)
                return
            self._state = "Launching"
            machine = self._launch(cancelled)
            self._adopt(machine.server_id, launched=True)
            self.ledger.add(
                LedgerEntry(
                    server_id=machine.server_id,
                    user_id=self.server.user_id,
                    workflow_version_id=self.workflow_version_id,
                    server_type=self.server_type,
                    launched_at=time.time(),
                    estimated_duration=self.duration,
                    status=machine.current_status or "Starting",
                    api_url=self.server.api_url,
                )
            )
        finally:
            lock.release()

    def _reusable(self, cancelled: Cancelled) -> str | None:
        """A machine in the ledger for this workflow that is still starting or Ready."""
        grace = float(self.poll["not_found_grace"])
        for entry in self.ledger.entries():
            if (entry.workflow_version_id != self.workflow_version_id
                    or entry.user_id != self.server.user_id
                    or (entry.api_url and entry.api_url != self.server.api_url)):
                continue
            machine = self.api.machine(entry.server_id, cancelled)
            if machine is not None and not machine.failed:
                return entry.server_id
            if machine is None and time.time() - entry.launched_at < grace:
                return entry.server_id  # the brief 404 right after a launch
            self.ledger.remove(entry.server_id)
        return None

    def _launch(self, cancelled: Cancelled) -> Machine:
        """Send the launch exactly once. If its answer is lost, look for the machine it made
        instead of sending it again."""
        before = {m.server_id for m in self.api.machines(cancelled)}
        try:
            return self.api.launch(self.workflow_version_id, self.server_type, self.duration)
        except (ConnectionFailed, ServerError) as exc:
            if isinstance(exc, ServerError) and (exc.status or 500) < 500:
                raise
            log.info("launch answer lost (%s); looking for the new machine", type(exc).__name__)
            time.sleep(0.5)
            new = [m for m in self.api.machines(cancelled) if m.server_id not in before]
            if len(new) == 1:
                return new[0]
            raise ComfyRelayError(
                f"The launch request's answer was lost ({exc}) and no new machine is listed. "
                "Check `comfyrelay machines list` before launching again, so you do not pay "
                "for two machines."
            ) from None

    def _adopt(self, server_id: str, *, launched: bool) -> None:
        self.server_id = server_id
        self.launched_here = launched
        self._stopped_at = None
        self._ready_at = None
        self._last_activity = time.monotonic()
        self._start_watchdog()

    def _wait_ready(self, cancelled: Cancelled, ctx: JobContext | None) -> Machine:
        def seen(machine: Machine | None) -> None:
            status = machine.current_status if machine else "Starting"
            if status != self._state:
                self._state = status
                self.ledger.update(self.server_id, status=status)
                if ctx is not None:
                    ctx.emit(JobProgress(ctx.job_id, 0.0,
                                         message=f"RunComfy machine: {status}"))

        return self.api.wait_ready(
            self.server_id, cancelled=cancelled, on_status=seen, **self.poll
        )

    def _became_ready(self, machine: Machine) -> None:
        self.machine = machine
        self._ready_at = machine.ready_epoch() or time.time()
        entry = self.ledger.get(self.server_id)
        duration = machine.estimated_duration or (entry.estimated_duration if entry else 0)
        self._expected_stop = machine.stop_epoch() or (
            self._ready_at + duration if duration else None
        )
        self._state = "Ready"  # after the stop time: a panel showing Ready shows time left
        self.ledger.update(self.server_id, status="Ready", ready_at=self._ready_at,
                           expected_stop=self._expected_stop,
                           estimated_duration=duration or self.duration)
        self._lost.clear()
        self._missing = 0
        self._delegate = self.comfy_factory(machine.main_service_url)
        self._last_activity = time.monotonic()
        self._start_watchdog()

    def refresh(self) -> Machine | None:
        """Ask RunComfy for the machine's state now (the CLI; hosts use status())."""
        machine = self.api.machine(self.server_id) if self.server_id else None
        if machine is not None:
            entry = self.ledger.get(self.server_id)
            self.machine = machine
            self._state = machine.current_status
            self._ready_at = machine.ready_epoch() or self._ready_at
            self._expected_stop = (
                machine.stop_epoch() or (entry.expected_stop if entry else None)
                or self._expected_stop
            )
        return machine

    # ---- cost safety ----
    def time_left(self) -> float | None:
        if self._expected_stop is None:
            return None
        return max(0.0, self._expected_stop - time.time())

    def extend(self, seconds: int | None = None) -> float | None:
        """Add `seconds` (default: the extension step) to the machine's running time; return
        the new time left."""
        with self._lock:  # the runner and the watchdog may both decide to extend
            return self._extend(int(seconds or self.extend_step))

    def _extend(self, step: int) -> float | None:
        entry = self.ledger.get(self.server_id)
        current = (self.machine.estimated_duration if self.machine else None) or (
            entry.estimated_duration if entry else self.duration
        )
        machine = self.api.set_duration(self.server_id, current + step)
        if machine is not None and machine.stop_epoch() is not None:
            self.machine = machine
            self._expected_stop = machine.stop_epoch()
        elif self._expected_stop is not None:
            self._expected_stop += step
        if self.machine is not None:
            self.machine = self.machine.model_copy(update={"estimated_duration": current + step})
        self.ledger.update(self.server_id, estimated_duration=current + step,
                           expected_stop=self._expected_stop)
        log.info("extended RunComfy machine %s by %d s", self.server_id, step)
        return self.time_left()

    def _extend_if_short(self) -> None:
        with self._lock:
            left = self.time_left()
            if left is not None and left < self.extend_margin:
                self.extend()

    def stop(self, reason: str = "asked") -> None:
        """Stop the machine now (billing ends when RunComfy confirms) and forget it. A launch
        being waited for gives up within a quarter second."""
        self._abort.set()
        try:
            self._stop(reason)
        finally:
            self._abort.clear()

    def _stop(self, reason: str) -> None:
        with self._lock:
            if not self.server_id or self._stopped_at is not None:
                return
            log.info("stopping RunComfy machine %s (%s)", self.server_id, reason)
            self._delete()
            self._stopped_at = time.time()
            self.ledger.remove(self.server_id)
            self._state = "Stopped"
            self._drop_delegate()

    def _delete(self) -> None:
        """DELETE until RunComfy confirms, also through the brief 404 after a launch."""
        entry = self.ledger.get(self.server_id)
        until = entry.launched_at + float(self.poll["not_found_grace"]) if entry else 0.0
        self.api.stop(self.server_id, not_found_until=until)

    def _drop_delegate(self) -> None:
        delegate, self._delegate = self._delegate, None
        if delegate is not None:
            delegate.close()

    def _job_done(self) -> None:
        with self._lock:
            self._active = max(0, self._active - 1)
            self._last_activity = time.monotonic()

    def _start_watchdog(self) -> None:
        if self._watchdog is None or not self._watchdog.is_alive():
            self._watchdog = threading.Thread(
                target=self._watch, name="comfyrelay-machine-watchdog", daemon=True
            )
            self._watchdog.start()

    def _watch(self) -> None:
        """Stop the machine after the idle time; extend it while a job would outrun it."""
        while not self._closed.wait(self.watch_interval):
            if self._stopped_at is not None or not self.server_id:
                continue  # nothing to watch until the next launch
            try:
                self._watch_once()
            except ComfyRelayError as exc:
                log.warning("RunComfy machine watchdog: %s", exc)

    def _watch_once(self) -> None:
        with self._lock:
            idle = self._active == 0 and (self._preparing is None
                                          or not self._preparing.is_alive())
            idle_for = time.monotonic() - self._last_activity
            if idle and self.idle_stop is not None and idle_for >= self.idle_stop:
                self.stop(reason=f"idle for {idle_for:.0f} s")
                return
        if not idle:
            self._check_state()
            self._extend_if_short()

    def _check_state(self) -> None:
        """While a job runs, ask RunComfy (every state_interval) whether the machine is still
        up; a failure or stop status ends the job at once with that status."""
        now = time.monotonic()
        if self._delegate is None or self._lost.is_set() or (
            now - self._state_checked < self.state_interval
        ):
            return
        self._state_checked = now
        sid = self.server_id
        machine = self.api.machine(sid)
        if machine is not None and not machine.failed:
            self._missing = 0
            return
        if machine is None:
            self._missing += 1
            if self._missing < 2:  # once could be a hiccup: ask again next time
                return
            reason = (
                f"RunComfy no longer knows machine {sid}: it was stopped (on the dashboard, "
                "or its running time ran out) during the job, and the job's result is lost. "
                "Run the job again."
            )
        else:
            reason = (
                f"RunComfy machine {sid} went to '{machine.current_status}' during the job, so "
                "the job cannot finish there. Run it again (a new machine is launched), and "
                "look at this machine on the RunComfy dashboard."
            )
        log.warning("%s", reason)
        with self._lock:
            self._state = machine.current_status if machine else "Stopped"
            self.last_error = reason
            self._lost_reason = reason
            if machine is None or machine.status != "error":
                self._stopped_at = time.time()  # gone or going: the next job launches anew
                self.ledger.remove(sid)
            else:
                self.ledger.update(sid, status=machine.current_status)
        self._lost.set()

    @property
    def preparing(self) -> bool:
        """A Launch (prepare()) is under way: hosts grey out Launch and Stop stays live."""
        return self._preparing is not None and self._preparing.is_alive()

    def status(self) -> MachineStatus:
        """The machine's state for a host's panel (no network)."""
        now = time.time()
        billed = 0.0
        if self._ready_at is not None:
            billed = max(0.0, (self._stopped_at or now) - self._ready_at)
        idle_for = 0.0 if self._active else time.monotonic() - self._last_activity
        auto_stop_in = None
        if self.idle_stop is not None and self._stopped_at is None and self.server_id:
            auto_stop_in = None if self._active else max(0.0, self.idle_stop - idle_for)
        cost = billed / 3600 * self.hourly_price if self.hourly_price is not None else None
        return MachineStatus(
            server_id=self.server_id,
            status=self._state,
            server_type=self.server_type,
            time_left=None if self._stopped_at else self.time_left(),
            billed_seconds=billed,
            cost=cost,
            idle_seconds=idle_for,
            auto_stop_in=auto_stop_in,
            message=self.last_error,
        )


def describe(seconds: float | None) -> str:
    """'1 h 05 min', '4 min', or '?' for hosts and the CLI."""
    if seconds is None:
        return "?"
    minutes = int(seconds // 60)
    if minutes >= 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes} min" if minutes else f"{int(seconds)} s"

