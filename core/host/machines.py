"""What a host's RunComfy machine box shows and does, the same in Blender and Krita.

Launch, stop, extend and the start-up scan touch the network, so each runs on a short-lived
thread and a click on the UI thread returns at once; reading the state never blocks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..errors import ComfyRelayError
from ..runcomfy.api import RunComfyServer
from ..runcomfy.ledger import Ledger
from ..runcomfy.machine import MachineStatus, RunComfyMachineBackend, RunningMachine, describe
from ..runcomfy.machine import find_running as _find_running

log = logging.getLogger(__name__)
EXTEND_MINUTES = 30  # what one press of "+30 min" adds, in both hosts


class MachinePanel:
    """Machine actions for a host UI: one at a time, outcome kept in `message`."""

    def __init__(self) -> None:
        self._task: threading.Thread | None = None
        self.message = ""  # the last action's outcome or error, for the panel
        self.leftovers: list[RunningMachine] | None = None  # None until a scan has ended
        self.server: RunComfyServer | None = None  # what the last scan asked; stops go there

    @property
    def working(self) -> bool:
        """An action is under way: hosts grey out the buttons."""
        return self._task is not None and self._task.is_alive()

    def launch(self, backend: RunComfyMachineBackend) -> None:
        """Launch or reuse the machine; a second click while it starts does nothing more."""
        backend.prepare()
        self.message = ""  # the status lines say Launching, Starting, Ready

    def stop(self, backend: RunComfyMachineBackend) -> None:
        sid = backend.server_id or "the machine"
        self._run(f"Stopping {sid}…", backend.stop, f"Stopped {sid}; billing has ended.")

    def extend(self, backend: RunComfyMachineBackend, minutes: int) -> None:
        def act() -> None:
            left = backend.extend(minutes * 60)
            self.message = f"Extended by {minutes} min; {describe(left)} left."

        self._run(f"Adding {minutes} min…", act)

    def scan(self, server: RunComfyServer, ledger: Ledger | None = None) -> None:
        """Look for machines left running (ledger or RunComfy's list), e.g. at start-up."""
        if self.working:
            return
        if self.server is not None and self.server is not server:
            self.server.close()
        self.server = server

        def act() -> None:
            self.leftovers = _find_running(server, ledger or Ledger())
            count = len(self.leftovers)
            self.message = f"{count} machine(s) still running." if count else ""

        self._run("Looking for running machines…", act)

    def stop_leftover(self, server_id: str, ledger: Ledger | None = None) -> None:
        """Stop a machine the last scan found."""
        server = self.server
        if server is None:
            raise ComfyRelayError("Look for running machines first.")

        def act() -> None:
            server.stop(server_id)
            (ledger or Ledger()).remove(server_id)
            self.leftovers = [m for m in self.leftovers or [] if m.machine.server_id != server_id]
            self.message = f"Stopped {server_id}; billing has ended."

        self._run(f"Stopping {server_id}…", act)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the action under way (tests and batch scripts; never from a UI)."""
        if self._task is not None:
            self._task.join(timeout)

    def _run(self, doing: str, act: Callable[[], object], done: str = "") -> None:
        if self.working:
            return  # a double click
        self.message = doing

        def body() -> None:
            try:
                act()
                if done:
                    self.message = done
            except ComfyRelayError as exc:
                self.message = str(exc)
                log.warning("RunComfy machine action failed: %s", exc)

        self._task = threading.Thread(target=body, name="comfyrelay-machine-action", daemon=True)
        self._task.start()


def leftover_line(found: RunningMachine) -> str:
    """One machine left running, for a host's list."""
    origin = "" if found.in_ledger else ", not launched by ComfyRelay"
    left = found.time_left()
    until = f", {describe(left)} left" if left is not None else ""
    return f"{found.machine.server_id}: {found.machine.current_status or '?'}{until}{origin}"


def status_lines(status: MachineStatus) -> list[str]:
    """The machine's state as short lines for a panel."""
    if status.status == "none":
        return ["No machine yet: Launch, or Run launches one."]
    lines = [f"{status.server_id or 'new machine'}: {status.status} ({status.server_type})"]
    if status.time_left is not None:
        lines.append(f"{describe(status.time_left)} left before RunComfy stops it")
    if status.billed_seconds:
        cost = (f", about {status.cost:.2f} so far" if status.cost is not None
                else " (set the hourly price to see the cost)")
        lines.append(f"Running for {describe(status.billed_seconds)}{cost}")
    if status.auto_stop_in is not None:
        lines.append(f"Auto-stop in {describe(status.auto_stop_in)} without jobs")
    if status.message:
        lines.append(status.message)
    return lines
