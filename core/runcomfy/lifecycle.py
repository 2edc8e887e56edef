"""A RunComfy machine's life: launch or reuse, wait until Ready, extend, stop, and the
ledger of launched machines kept right at each step (a machine in the ledger is one that
may still cost money).

Locking (the rule is in machine_state's docstring): no lock is held over a network call or
a ledger write. Launch, stop and extend of one machine take turns through its record; a
Stop makes the launch under way, and launches waiting for their turn, give up. Launches of
the same workflow by several back ends of this process take turns too (`_launch_turns`), so
the second one reuses the first one's machine from the ledger instead of paying for two.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..errors import CancelledByUser, ComfyRelayError, ConnectionFailed, ServerError, transient
from ..jobs.backend_api import Backend, JobContext
from ..jobs.events import JobProgress
from ..net.ratelimit import Cancelled, never
from .api import Machine, MachineFailed, RunComfyServer
from .delegate import SharedDelegate
from .ledger import Ledger, LedgerEntry
from .machine_options import MachineOptions, Timing
from .machine_state import TURN_POLL, MachineRecord, MachineState

log = logging.getLogger(__name__)

LaunchKey = tuple[str, str, str]  # API URL, user id, workflow version id


class _LaunchTurns:
    """Which workflows have a launch under way in this process. Any thread may call; the
    condition guards the set only: the launch itself runs without it."""

    def __init__(self) -> None:
        self._busy: set[LaunchKey] = set()
        self._changed = threading.Condition()

    @contextmanager
    def turn(self, key: LaunchKey, give_up: Cancelled) -> Iterator[None]:
        with self._changed:
            while key in self._busy:
                if give_up():
                    raise CancelledByUser()
                self._changed.wait(TURN_POLL)
            self._busy.add(key)
        try:
            yield
        finally:
            with self._changed:
                self._busy.discard(key)
                self._changed.notify_all()


_launch_turns = _LaunchTurns()


class _Held:
    """Which machine each back end of this process holds, so one that wants a machine of
    its own (MachineOptions.own_machine: a pool's machines) reuses none of them. Any thread
    may call; the lock guards the dict only."""

    def __init__(self) -> None:
        self._by_owner: dict[int, str] = {}  # id(MachineLifecycle) -> server_id
        self._lock = threading.Lock()

    def hold(self, owner: object, server_id: str) -> None:
        with self._lock:
            self._by_owner[id(owner)] = server_id

    def release(self, owner: object) -> None:
        with self._lock:
            self._by_owner.pop(id(owner), None)

    def by_others(self, owner: object) -> set[str]:
        with self._lock:
            return {sid for who, sid in self._by_owner.items() if who != id(owner)}


_held = _Held()


class MachineLifecycle:
    """Launch, wait, extend and stop one machine. Any thread may call (the runner, the
    Launch thread, the watchdog, a host's action thread); the operations take turns through
    the record, and the network calls run outside its lock."""

    def __init__(
        self,
        server: RunComfyServer,
        record: MachineRecord,
        ledger: Ledger,
        timing: Timing,
        comfy_factory: Callable[[str], Backend],
    ) -> None:
        self.server = server
        self.record = record
        self.ledger = ledger
        self.timing = timing
        self.comfy_factory = comfy_factory

    # ---- launch or reuse, wait Ready ----
    def ensure_ready(
        self, cancelled: Cancelled = never, ctx: JobContext | None = None
    ) -> SharedDelegate:
        """The machine's ComfyUI back end, counted as used (call done() on it), launching or
        reusing the machine first if needed and waiting until it is Ready."""
        rec = self.record
        with rec.lock:
            stops = rec.stops  # a Stop while this waits for its turn: give up, launch nothing
            rec.wait_turn(lambda: cancelled() or rec.stops != stops)
            if rec.delegate is not None:
                return rec.delegate.use()
            abort = rec.claim("launch")
            relaunch = not rec.server_id or rec.stopped_at is not None

        def give_up() -> bool:
            return cancelled() or abort.is_set()

        try:
            if give_up():
                raise CancelledByUser()
            if relaunch:
                self._launch_or_reuse(give_up)
            return self._became_ready(self._wait_ready(give_up, ctx))
        except MachineFailed as exc:
            with rec.lock:
                rec.set_state(MachineState.ERROR)
                rec.last_error = str(exc)
            raise
        finally:
            rec.release()

    def launch_or_reuse(self, cancelled: Cancelled = never) -> None:
        """Reuse a live machine of this workflow from the ledger, else launch one (once)."""
        rec = self.record
        with rec.lock:
            rec.wait_turn(cancelled)
            abort = rec.claim("launch")
        try:
            self._launch_or_reuse(lambda: cancelled() or abort.is_set())
        finally:
            rec.release()

    def _launch_or_reuse(self, give_up: Cancelled) -> None:
        with self.record.lock:
            options, server_id = self.record.options, self.record.server_id
        key = (self.server.api_url, self.server.user_id, options.workflow_version_id)
        with _launch_turns.turn(key, give_up):
            if not options.workflow_version_id:
                raise ComfyRelayError(
                    f"RunComfy machine {server_id} was stopped. Launch a new one (choose "
                    "a workflow version) or pick another running machine."
                )
            reused = self._reusable(options, give_up)
            if reused is not None:
                log.info("reusing RunComfy machine %s from the ledger", reused)
                self._adopt(reused, launched=False)
                return
            with self.record.lock:
                self.record.set_state(MachineState.LAUNCHING)
            machine = self._launch(options, give_up)
            self._adopt(machine.server_id, launched=True)
            self.ledger.add(
                LedgerEntry(
                    server_id=machine.server_id,
                    user_id=self.server.user_id,
                    workflow_version_id=options.workflow_version_id,
                    server_type=options.server_type,
                    launched_at=time.time(),
                    estimated_duration=options.duration,
                    status=machine.current_status or "Starting",
                    api_url=self.server.api_url,
                )
            )

    def _reusable(self, options: MachineOptions, give_up: Cancelled) -> str | None:
        """A machine in the ledger for this workflow that is still starting or Ready (with
        own_machine, one that no other back end of this process holds)."""
        taken = _held.by_others(self) if options.own_machine else set()
        for entry in self.ledger.entries():
            if entry.server_id in taken:
                continue
            if (entry.workflow_version_id != options.workflow_version_id
                    or entry.user_id != self.server.user_id
                    or (entry.api_url and entry.api_url != self.server.api_url)):
                continue
            machine = self.server.machine(entry.server_id, give_up)
            if machine is not None and not machine.failed:
                return entry.server_id
            if machine is None and time.time() - entry.launched_at < self.timing.not_found_grace:
                return entry.server_id  # the brief 404 right after a launch
            self.ledger.remove(entry.server_id)
        return None

    def _launch(self, options: MachineOptions, give_up: Cancelled) -> Machine:
        """Send the launch exactly once. If its answer is lost, look for the machine it made
        instead of sending it again."""
        before = {m.server_id for m in self.server.machines(give_up)}
        try:
            return self.server.launch(
                options.workflow_version_id, options.server_type, options.duration
            )
        except (ConnectionFailed, ServerError) as exc:
            if not transient(exc):
                raise
            log.info("launch answer lost (%s); looking for the new machine", type(exc).__name__)
            time.sleep(0.5)
            new = [m for m in self.server.machines(give_up) if m.server_id not in before]
            if len(new) == 1:
                return new[0]
            raise ComfyRelayError(
                f"The launch request's answer was lost ({exc}) and no new machine is listed. "
                "Check `comfyrelay machines list` before launching again, so you do not pay "
                "for two machines."
            ) from None

    def _adopt(self, server_id: str, *, launched: bool) -> None:
        with self.record.lock:
            rec = self.record
            rec.server_id = server_id
            rec.launched_here = launched
            _held.hold(self, server_id)  # inside the launch turn: no other adopts it meanwhile
            rec.machine = rec.ready_at = rec.stopped_at = rec.expected_stop = None
            rec.last_activity = time.monotonic()

    def _wait_ready(self, give_up: Cancelled, ctx: JobContext | None) -> Machine:
        rec = self.record
        with rec.lock:
            server_id = rec.server_id

        def seen(machine: Machine | None) -> None:
            status = (machine.current_status if machine else "") or "Starting"
            with rec.lock:
                changed = status != rec.shown
                if changed:
                    rec.set_state(MachineState.of(status), status)
            if changed:
                self.ledger.update(server_id, status=status)
                if ctx is not None:
                    ctx.emit(JobProgress(ctx.job_id, 0.0, message=f"RunComfy machine: {status}"))

        return self.server.wait_ready(
            server_id, cancelled=give_up, on_status=seen, **self.timing.wait_ready_args()
        )

    def _became_ready(self, machine: Machine) -> SharedDelegate:
        rec = self.record
        with rec.lock:
            server_id, duration = rec.server_id, rec.options.duration
        entry = self.ledger.get(server_id)
        ready_at = machine.ready_epoch() or time.time()
        estimated = machine.estimated_duration or (entry.estimated_duration if entry else 0)
        expected_stop = machine.stop_epoch() or (ready_at + estimated if estimated else None)
        delegate = SharedDelegate(self.comfy_factory(machine.main_service_url))
        with rec.lock:
            rec.machine, rec.ready_at, rec.expected_stop = machine, ready_at, expected_stop
            rec.set_state(MachineState.READY)  # with its stop time: Ready shows the time left
            rec.delegate = delegate
            rec.last_activity = time.monotonic()
            used = delegate.use()  # before anyone can retire it
        self.ledger.update(server_id, status="Ready", ready_at=ready_at,
                           expected_stop=expected_stop, estimated_duration=estimated or duration)
        return used

    def refresh(self) -> Machine | None:
        """Ask RunComfy for the machine's state now (the CLI; hosts use status())."""
        rec = self.record
        with rec.lock:
            server_id = rec.server_id
        machine = self.server.machine(server_id) if server_id else None
        if machine is None:
            return None
        entry = self.ledger.get(server_id)
        with rec.lock:
            if rec.server_id == server_id:
                rec.machine = machine
                rec.set_state(MachineState.of(machine.current_status), machine.current_status)
                rec.ready_at = machine.ready_epoch() or rec.ready_at
                rec.expected_stop = (
                    machine.stop_epoch() or (entry.expected_stop if entry else None)
                    or rec.expected_stop
                )
        return machine

    def let_go(self) -> None:
        """The back end is closed: its machine (left running, or stopped) is no longer held,
        so a later back end may reuse it."""
        _held.release(self)

    # ---- running time ----
    def extend(self, seconds: int | None = None) -> float | None:
        """Add `seconds` (default: the extension step) to the machine's running time; return
        the new time left."""
        rec = self.record
        with rec.lock:
            rec.wait_turn()
            rec.claim("extend")
            step = int(seconds or rec.options.extend_step)
        try:
            return self._extend(step)
        finally:
            rec.release()

    def extend_if_short(self) -> None:
        """Extend by one step if less than the margin is left (before and during jobs). The
        runner and the watchdog may both ask: one extends, the other finds enough time."""
        rec = self.record
        with rec.lock:
            left = rec.time_left()
            if rec.busy or left is None or left >= rec.options.extend_margin:
                return
            rec.claim("extend")
            step = rec.options.extend_step
        try:
            self._extend(step)
        finally:
            rec.release()

    def _extend(self, step: int) -> float | None:
        rec = self.record
        with rec.lock:
            server_id, machine, fallback = rec.server_id, rec.machine, rec.options.duration
        entry = self.ledger.get(server_id)
        current = (machine.estimated_duration if machine else None) or (
            entry.estimated_duration if entry else fallback
        )
        answer = self.server.set_duration(server_id, current + step)
        with rec.lock:
            if answer is not None and answer.stop_epoch() is not None:
                rec.machine, rec.expected_stop = answer, answer.stop_epoch()
            elif rec.expected_stop is not None:
                rec.expected_stop += step
            if rec.machine is not None:
                rec.machine = rec.machine.model_copy(
                    update={"estimated_duration": current + step}
                )
            expected_stop = rec.expected_stop
        self.ledger.update(server_id, estimated_duration=current + step,
                           expected_stop=expected_stop)
        log.info("extended RunComfy machine %s by %d s", server_id, step)
        return rec.time_left()

    # ---- stop ----
    def stop(self, reason: str = "asked", *, if_launched_here: bool = False) -> None:
        """Stop the machine now (billing ends when RunComfy confirms) and forget it. A launch
        under way gives up within a quarter second, and so do launches waiting to start.
        With if_launched_here, a machine reused from elsewhere is left running."""
        rec = self.record
        with rec.lock:
            rec.stops += 1
            rec.abort.set()
            rec.wait_turn()
            rec.claim("stop")
            wanted = rec.launched_here or not if_launched_here
        try:
            if wanted:
                self._stop(reason)
        finally:
            rec.release()

    def stop_if_idle(self) -> bool:
        """Stop the machine if no job has used it for the idle time (the watchdog). Never
        waits: with a launch, stop or extend under way it is not idle."""
        rec = self.record
        with rec.lock:
            idle_for, limit = rec.idle_for(), rec.options.idle_stop
            if rec.busy or idle_for is None or limit is None or idle_for < limit:
                return False
            rec.claim("stop")
        try:
            self._stop(f"idle for {idle_for:.0f} s")
            return True
        finally:
            rec.release()

    def _stop(self, reason: str) -> None:
        rec = self.record
        with rec.lock:
            server_id = rec.server_id
            if not server_id or rec.stopped_at is not None:
                return
        log.info("stopping RunComfy machine %s (%s)", server_id, reason)
        entry = self.ledger.get(server_id)
        # DELETE until RunComfy confirms, also through the brief 404 after a launch.
        until = entry.launched_at + self.timing.not_found_grace if entry else 0.0
        self.server.stop(server_id, not_found_until=until)
        self.ledger.remove(server_id)  # first: whoever sees Stopped finds the ledger right
        _held.release(self)
        with rec.lock:
            rec.stopped_at = time.time()
            rec.set_state(MachineState.STOPPED)
            delegate, rec.delegate = rec.delegate, None
        if delegate is not None:
            delegate.retire()  # a job still on it ends: "stopped during the job"

    def machine_lost(
        self, delegate: SharedDelegate, machine: Machine | None, reason: str
    ) -> None:
        """The watchdog saw the machine fail or go away during a job: the jobs on it end
        with `reason`, and the next job launches anew (or, after an Error, fails clearly
        until the user stops the machine)."""
        rec = self.record
        with rec.lock:
            if rec.delegate is not delegate:
                return  # stopped meanwhile, or another machine is Ready now
            server_id = rec.server_id
            status = machine.current_status if machine else ""
            rec.set_state(MachineState.of(status) if machine else MachineState.STOPPED, status)
            rec.last_error = reason
            gone = machine is None or machine.status != "error"
            if gone:
                rec.stopped_at = time.time()  # gone or going: nothing left to stop
            rec.delegate = None
        if gone:
            self.ledger.remove(server_id)
            _held.release(self)
        else:
            self.ledger.update(server_id, status=status)
        delegate.retire(reason, failed=True)
