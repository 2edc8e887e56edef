"""The RunComfy machine kind's Controls: the machine box both hosts show (state, cost,
Launch / Stop / +30 min) and the machines earlier sessions left running (Stop / Reuse).

Launch, stop, extend and the start-up scan touch the network, so each runs on a short-lived
thread and a click on the UI thread returns at once; reading the state never blocks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path

from ..config import Credentials
from ..errors import ComfyRelayError
from ..jobs.backend_api import Backend
from ..jobs.backend_kind import After, Button, Controls, ControlsView, Found, KindSettings
from .account import USER_ID, machine_api, tokens
from .api import RunComfyServer
from .ledger import Ledger
from .machine import MachineState, MachineStatus, RunComfyMachineBackend, RunningMachine, describe
from .machine import find_running as _find_running

log = logging.getLogger(__name__)
EXTEND_MINUTES = 30  # what one press of "+30 min" adds, in both hosts


IDLE = (MachineState.NONE, MachineState.STOPPED)  # nothing to stop, nothing billed


class MachineAction(str, Enum):
    """The actions a host's buttons ask for (HostSession.act)."""

    LAUNCH = "launch"
    STOP = "stop"
    EXTEND = "extend"
    STOP_FOUND = "stop-found"  # a machine an earlier session left running
    REUSE = "reuse"  # send the next jobs to it


class MachineActions:
    """Machine actions on short-lived threads: one at a time, outcome kept in `message`.
    Started from the UI thread; `message` and `leftovers` are written by the action's
    thread and read whole (no lock needed for a reference swap)."""

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


class MachineControls(Controls):
    """The machine box and the machines found running, for one host session (UI thread)."""

    def __init__(self, kind: str, config: Path | None = None,
                 account_kinds: frozenset[str] = frozenset()) -> None:
        self.kind = kind
        self.ledger = Ledger.in_folder(config)
        self.account_kinds = account_kinds | {kind}  # kinds of a RunComfy account
        self.actions = MachineActions()  # on the back end's machine
        self.found = MachineActions()  # the start-up scan and its Stop buttons
        self._backend: RunComfyMachineBackend | None = None
        self._chosen = ""
        self._problem = ""
        self._reuse_id = ""  # a machine found running that the user chose to reuse
        self._attach = False  # attach to it once its back end is bound

    # ---- the session ----
    def bind(self, backend: Backend | None, chosen: str, problem: str) -> None:
        machine = backend if isinstance(backend, RunComfyMachineBackend) else None
        self._backend, self._chosen, self._problem = machine, chosen, problem
        if self._attach and machine is not None:
            self.actions.launch(machine)  # attach to the machine chosen for reuse
        if backend is not None:
            self._attach = False  # only the back end built for the Reuse attaches

    def adjust(self, settings: KindSettings) -> KindSettings:
        if not self._reuse_id:
            return settings
        return settings.model_copy(update={"server_id": self._reuse_id})

    @property
    def working(self) -> bool:
        machine = self._backend
        return self.actions.working or bool(machine and machine.preparing)

    @property
    def active(self) -> bool:
        machine = self._backend
        running = machine is not None and machine.status().state not in IDLE
        return running or self.working or self.found.working

    def cost(self) -> float | None:
        return self._backend.status().cost if self._backend is not None else None

    def scan(self, settings: KindSettings, credentials: Credentials) -> bool:
        if not (credentials[USER_ID.name] and tokens(credentials)):
            return False
        self.found.scan(machine_api(credentials, getattr(settings, "api_url", "")),
                        self.ledger)
        return True

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self.actions.wait(timeout)
        self.found.wait(max(0.0, deadline - time.monotonic()))
        if self._backend is not None:
            self._backend.wait_prepared(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self.found.close()

    # ---- the buttons ----
    def act(self, action: str, target: str = "", *, busy: bool = False) -> After:
        chosen = MachineAction(action)
        if chosen is MachineAction.STOP_FOUND:
            self.found.stop_leftover(target, self.ledger)
            return After.NOTHING
        if chosen is MachineAction.REUSE:
            if busy or self.working:
                raise ComfyRelayError("Wait for the current job or machine action to end.")
            self._reuse_id, self._attach = target, True
            return After.CHOOSE
        machine = self._require()
        if chosen is MachineAction.LAUNCH:
            self.actions.launch(machine)
        elif chosen is MachineAction.EXTEND:
            self.actions.extend(machine, EXTEND_MINUTES)
        else:
            self.actions.stop(machine)
            if self._reuse_id:  # a stopped machine cannot run jobs again: launch our own
                self._reuse_id = ""
                return After.REBUILD
        return After.NOTHING

    def _require(self) -> RunComfyMachineBackend:
        if self._backend is None:
            raise ComfyRelayError(self._problem or "Choose the RunComfy machine back end.")
        return self._backend

    # ---- what the host shows ----
    def view(self) -> ControlsView:
        chosen = self._chosen == self.kind
        lines, buttons = self._box() if chosen else ((), ())
        in_use = self._backend.server_id if self._backend is not None else ""
        can_act = not self.found.working
        found = tuple(
            Found(m.machine.server_id, leftover_line(m), (
                self._button(MachineAction.STOP_FOUND, "Stop", can_act, "Stop it now; billing "
                             "ends", m.machine.server_id),
                self._button(MachineAction.REUSE, "Reuse", can_act, "Run the next jobs on it",
                             m.machine.server_id),
            ))
            for m in self.found.leftovers or [] if m.machine.server_id != in_use
        )
        return ControlsView(
            title="RunComfy machine" if chosen else "", lines=lines, buttons=buttons,
            found_title="RunComfy machines still running", found=found,
            found_message=self.found.message,
            scan_tip=("Look for RunComfy machines still running from earlier sessions (they "
                      "cost money)") if self._chosen in self.account_kinds else "",
        )

    def _box(self) -> tuple[tuple[str, ...], tuple[Button, ...]]:
        machine = self._backend
        if machine is None:  # the buttons stay in place, greyed out, until it is set up
            problem = self._problem or "Set up the RunComfy machine in the settings."
            return (problem,), self._buttons(MachineState.NONE, free=False, launching=False)
        status = machine.status()
        lines = status_lines(status)
        if self.actions.message and self.actions.message not in lines:
            lines.append(self.actions.message)
        return tuple(lines), self._buttons(status.state, not self.actions.working,
                                           machine.preparing)

    def _buttons(self, state: MachineState, free: bool,
                 launching: bool) -> tuple[Button, ...]:
        return (
            self._button(MachineAction.LAUNCH, "Launch",
                         free and not launching and state in (*IDLE, MachineState.ERROR),
                         "Launch the machine; billing starts when it is Ready"),
            self._button(MachineAction.STOP, "Stop", free and state not in IDLE,  # also launching
                         "Stop the machine now; billing ends"),
            self._button(MachineAction.EXTEND, f"+{EXTEND_MINUTES} min",
                         free and state is MachineState.READY,
                         f"Add {EXTEND_MINUTES} minutes to the machine's running time"),
        )

    def _button(self, action: MachineAction, label: str, enabled: bool, tip: str,
                target: str = "") -> Button:
        return Button(self.kind, action.value, label, tip, enabled, target)
