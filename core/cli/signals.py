"""How the command line stops: Ctrl-C (SIGINT), SIGTERM and SIGHUP.

The command installs its own handlers instead of relying on Python's default SIGINT handler,
because a process started as a background job of a non-interactive shell inherits SIGINT
ignored (Python then leaves SIG_IGN and Ctrl-C would do nothing), and because SIGTERM and
SIGHUP (a closed terminal, a pipeline's timeout) would otherwise end the process without
cancelling the job it started on a server that bills.

The first signal raises `Signalled` in the main thread: the command cancels what it started
and exits 128 + the signal's number (130, 143, 129). Any signal after that (a second
Ctrl-C while the cancel waits for the server), or one that comes while the command is
already closing, raises `Abandoned`: the command leaves at once and says what may go on.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any, TextIO

from ..jobs.backend_api import Backend
from ..runcomfy.machine import MachineState, RunComfyMachineBackend, describe

# SIGHUP does not exist on Windows.
HANDLED = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
_WHY = {"SIGINT": "Ctrl-C", "SIGTERM": "SIGTERM", "SIGHUP": "SIGHUP: the terminal closed"}


class Stop(KeyboardInterrupt):
    """A signal stopped the command. A KeyboardInterrupt, so code that already cleans up
    after Ctrl-C does the same for SIGTERM and SIGHUP."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def why(self) -> str:
        """"Ctrl-C", "SIGTERM" or "SIGHUP: the terminal closed", for messages."""
        return _WHY.get(self.name, self.name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130, 143, 129


class Signalled(Stop):
    """The first signal: cancel what the command started, then exit."""


class Abandoned(Stop):
    """A signal while cancelling or closing: leave at once. The exit code is the first
    signal's, which is what stopped the command."""

    def __init__(self, signum: int, first: Signalled | None) -> None:
        super().__init__(signum)
        self.first = first

    @property
    def exit_code(self) -> int:
        return self.first.exit_code if self.first is not None else super().exit_code


class Guard:
    """Installs the handlers for the `with` block and restores the previous ones after.

    Only in the main thread (Python allows signal handlers nowhere else; a host or a test
    calling the CLI from another thread keeps its own). Guards nest: an inner one takes the
    signals while it is active.

    Outside `polled()` blocks a signal raises at once, interrupting whatever the main thread
    does (a conversion, a machine's launch), as Python's KeyboardInterrupt would. Inside
    them the signal is only recorded and `check()` raises it, so a wait loop never loses an
    event it had taken from the runner half-way through handling it.
    """

    def __init__(self) -> None:
        self.first: Signalled | None = None
        self._closing = False
        self._polled = False
        self._pending: Stop | None = None
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> Guard:
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED:
                self._saved[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, previous in self._saved.items():
            # None: the previous handler was not set from Python; the default is closest.
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._saved.clear()

    def closing(self) -> None:
        """The job has ended and the command releases what it holds: from now on a signal
        means "leave now", not "cancel"."""
        self._closing = True

    def polled(self) -> _Polled:
        """A block whose loop calls check() often: signals wait for it there."""
        return _Polled(self)

    def check(self) -> None:
        """Raise the signal that came since the last check, if any."""
        stop, self._pending = self._pending, None
        if stop is not None:
            raise stop

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        stop: Stop
        if self.first is None and not self._closing:
            stop = self.first = Signalled(signum)
        else:
            stop = Abandoned(signum, self.first)
        if not self._polled:
            raise stop
        if not isinstance(self._pending, Abandoned):  # leaving wins over cancelling
            self._pending = stop


class _Polled:
    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    def __enter__(self) -> None:
        self.guard._polled = True

    def __exit__(self, *exc: object) -> None:
        self.guard._polled = False


def write(stream: TextIO, text: str) -> None:
    """Write and flush, ignoring a stream that is gone: after SIGHUP the terminal refuses
    writes (EIO), and the job must still be cancelled and the machine still stopped."""
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):  # ValueError: the stream was closed
        pass


def cancelling_note(stop: Signalled) -> str:
    """The line said when a signal starts the cancel."""
    return "Cancelling…" if stop.name == "SIGINT" else f"Cancelling… ({stop.why})"


def machine_note(backend: Backend, *, say_stopped: bool = True) -> str:
    """What a RunComfy machine back end leaves behind, once it is closed (or not, when the
    user left at once): stopped, or running and billing, with how to stop it. The idle stop
    runs inside this process, so after it exits only RunComfy's running time ends the
    machine. Empty for other back ends, when no machine was launched or reused, and for a
    stopped one unless `say_stopped`. A pool's machines are each named."""
    members = backend.members()
    if members != [backend]:  # a pool: each of its machines is named
        notes = [machine_note(m, say_stopped=say_stopped) for m in members]
        return "\n".join(n for n in notes if n)
    if not isinstance(backend, RunComfyMachineBackend):
        return ""
    status = backend.status()
    server_id = status.server_id
    if not server_id:
        return ""
    if status.state is MachineState.STOPPED:
        if not say_stopped:
            return ""
        return f"RunComfy machine {server_id} is stopped; its billing has ended."
    if status.time_left is not None:
        ends = f"RunComfy stops it in {describe(status.time_left)}, when its running time ends"
    else:
        ends = (f"RunComfy stops it {describe(backend.options.duration)} after it became "
                "Ready, when its running time ends")
    return (f"RunComfy machine {server_id} is still running and billing ({status.status}): "
            f"stop it with `comfyrelay machines stop {server_id}`; otherwise {ends}.")
