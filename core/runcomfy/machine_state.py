"""What this session knows about its RunComfy machine: the state, the status a host shows,
and the record that every thread reads and writes.

Locking rule: `MachineRecord.lock` guards the record's fields and nothing else. It is held
only to read or change them, never over a network call, a ledger write or a back end's
close. Code that needs the network takes a snapshot under the lock, lets go, calls, and
takes the lock again to record the answer.

Launch, stop and extend must also not overlap. They take turns through the record's `busy`
field: `wait_turn()` waits on the lock's condition (which lets go of the lock meanwhile)
until no operation is under way, `claim()` marks one, `release()` ends it. So the thread
doing an operation holds a turn, not the lock: status(), tune() and the watchdog's looks
never wait for the network, and a waiter can give up (cancel, Stop) within a quarter second.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from enum import Enum

from ..errors import CancelledByUser
from ..net.ratelimit import Cancelled, never
from .api import Machine
from .delegate import SharedDelegate
from .machine_options import MachineOptions

TURN_POLL = 0.25  # a waiter for the turn checks whether it should give up this often


class MachineState(Enum):
    """Where the machine is in its life. The value is what a host shows when RunComfy's own
    word for the state is not known."""

    NONE = "none"  # no machine yet
    LAUNCHING = "Launching"
    STARTING = "Starting"  # launched, not Ready yet
    READY = "Ready"
    STOPPING = "Stopping"  # RunComfy is stopping it (the dashboard, or its time ran out)
    STOPPED = "Stopped"
    ERROR = "Error"

    @classmethod
    def of(cls, status: str) -> MachineState:
        """The state for a status RunComfy reports ('Ready', 'Initializing', 'Error'...)."""
        status = status.strip().lower()
        if status == "ready":
            return cls.READY
        if status in ("error", "failed"):
            return cls.ERROR
        if status in ("stopping", "deleting"):
            return cls.STOPPING
        if status in ("stopped", "deleted", "terminated"):
            return cls.STOPPED
        return cls.STARTING


@dataclass(frozen=True)
class MachineStatus:
    """What a host shows about the machine; all from memory, so cheap to ask every second.
    A frozen snapshot: any thread may read it."""

    server_id: str = ""
    status: str = "none"  # for display: none, Launching, Starting..., Ready, Stopped, Error
    server_type: str = ""
    time_left: float | None = None  # seconds until RunComfy stops it
    billed_seconds: float = 0.0  # since Ready, as far as this session knows
    cost: float | None = None  # billed time x the user's hourly price, if set
    idle_seconds: float = 0.0
    auto_stop_in: float | None = None
    message: str = ""
    state: MachineState = MachineState.NONE  # for comparisons; `status` is for display


def describe(seconds: float | None) -> str:
    """'1 h 05 min', '4 min', or '?' for hosts and the CLI."""
    if seconds is None:
        return "?"
    minutes = int(seconds // 60)
    if minutes >= 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes} min" if minutes else f"{int(seconds)} s"


class MachineRecord:
    """One session's knowledge of its machine. Any thread may call (the runner, the Launch
    thread, the watchdog, a host's UI and action threads); every field is read and written
    under `lock`, which is re-entrant, so the methods below may also run under it."""

    def __init__(self, options: MachineOptions, server_id: str = "") -> None:
        self.lock = threading.Condition()  # notified when an operation ends (see release())
        self.options = options
        self.server_id = server_id
        self.launched_here = False
        self.state = MachineState.NONE
        self.detail = ""  # RunComfy's own word for the state, shown instead of it when set
        self.machine: Machine | None = None  # the last answer about it
        self.ready_at: float | None = None  # epoch: billing started
        self.stopped_at: float | None = None  # epoch: stopped, or found gone
        self.expected_stop: float | None = None  # epoch: RunComfy stops it then
        self.active = 0  # jobs between start() and the end of finish()
        self.last_activity = time.monotonic()
        self.last_error = ""
        self.delegate: SharedDelegate | None = None  # the machine's ComfyUI, once Ready
        self.preparing: threading.Thread | None = None  # the Launch button's thread
        self.busy = ""  # the operation under way: "launch", "stop", "extend" or ""
        self.abort = threading.Event()  # set by stop(): the launch under way gives up
        self.stops = 0  # Stop requests so far: a launch waiting for its turn gives up on one

    # ---- taking turns (call these with the lock held) ----
    def wait_turn(self, give_up: Cancelled = never) -> None:
        """Wait until no operation is under way; raise CancelledByUser if `give_up` says so."""
        while self.busy:
            if give_up():
                raise CancelledByUser()
            self.lock.wait(TURN_POLL)

    def claim(self, operation: str) -> threading.Event:
        """Mark `operation` under way (after wait_turn()); return the flag stop() sets."""
        self.busy = operation
        self.abort = threading.Event()
        return self.abort

    def release(self) -> None:
        with self.lock:
            self.busy = ""
            self.lock.notify_all()

    # ---- small reads and writes ----
    def set_state(self, state: MachineState, detail: str = "") -> None:
        self.state, self.detail = state, detail

    @property
    def shown(self) -> str:
        """The state as a host shows it."""
        return self.detail or self.state.value

    def time_left(self) -> float | None:
        with self.lock:
            if self.expected_stop is None:
                return None
            return max(0.0, self.expected_stop - time.time())

    def idle_for(self) -> float | None:
        """Seconds without a job, or None while a job or a Launch is under way."""
        with self.lock:
            if self.active or (self.preparing is not None and self.preparing.is_alive()):
                return None
            return time.monotonic() - self.last_activity

    def tune(self, *, hourly_price: float | None, idle_stop: float | None,
             duration: int) -> None:
        with self.lock:
            self.options = replace(self.options, hourly_price=hourly_price,
                                   idle_stop=idle_stop, duration=int(duration))

    def job_began(self) -> None:
        with self.lock:
            self.active += 1

    def job_ended(self) -> None:
        with self.lock:
            self.active = max(0, self.active - 1)
            self.last_activity = time.monotonic()

    def use_delegate(self) -> SharedDelegate | None:
        """The machine's ComfyUI back end, counted as used (call done() on it), or None."""
        with self.lock:
            return self.delegate.use() if self.delegate is not None else None

    def take_delegate(self) -> SharedDelegate | None:
        """Let go of the machine's ComfyUI back end; the caller retires it, outside the lock."""
        with self.lock:
            delegate, self.delegate = self.delegate, None
            return delegate

    def status(self) -> MachineStatus:
        with self.lock:
            now = time.time()
            billed = 0.0
            if self.ready_at is not None:
                billed = max(0.0, (self.stopped_at or now) - self.ready_at)
            idle_for = 0.0 if self.active else time.monotonic() - self.last_activity
            idle_stop, price = self.options.idle_stop, self.options.hourly_price
            auto_stop_in = None
            if idle_stop is not None and self.stopped_at is None and self.server_id:
                auto_stop_in = None if self.active else max(0.0, idle_stop - idle_for)
            return MachineStatus(
                server_id=self.server_id,
                status=self.shown,
                server_type=self.options.server_type,
                time_left=None if self.stopped_at else self.time_left(),
                billed_seconds=billed,
                cost=billed / 3600 * price if price is not None else None,
                idle_seconds=idle_for,
                auto_stop_in=auto_stop_in,
                message=self.last_error,
                state=self.state,
            )
