"""RunComfy machine boxes: this docker's machine (status, cost, Launch / Stop / +30 min) and
machines left running by earlier sessions (Stop, Reuse).

Every action runs on the core MachinePanel's own thread; refresh() only reads memory, so the
docker's timer can call it every tick without ever waiting for the network.
"""

from __future__ import annotations

from collections.abc import Callable

from .core import (
    MachinePanel,
    RunComfyMachineBackend,
    RunComfyServer,
    RunningMachine,
    leftover_line,
    status_lines,
)
from .qt import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

EXTEND_MINUTES = 30


class MachineBox(QGroupBox):
    def __init__(self) -> None:
        super().__init__("RunComfy machine")
        self.actions = MachinePanel()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.launch_button = QPushButton("Launch")
        self.stop_button = QPushButton("Stop")
        self.extend_button = QPushButton(f"+{EXTEND_MINUTES} min")
        self.launch_button.setToolTip("Billing starts when the machine is Ready.")
        buttons = QHBoxLayout()
        for button in (self.launch_button, self.stop_button, self.extend_button):
            buttons.addWidget(button)
        box = QVBoxLayout(self)
        box.addWidget(self.status)
        box.addLayout(buttons)
        self.backend: RunComfyMachineBackend | None = None
        self.launch_button.clicked.connect(self.launch)
        self.stop_button.clicked.connect(self.stop)
        self.extend_button.clicked.connect(self.extend)

    def launch(self) -> None:
        if self.backend is not None:
            self.actions.launch(self.backend)

    def stop(self) -> None:
        if self.backend is not None:
            self.actions.stop(self.backend)

    def extend(self) -> None:
        if self.backend is not None:
            self.actions.extend(self.backend, EXTEND_MINUTES)

    def refresh(self, backend: RunComfyMachineBackend | None, problem: str = "") -> None:
        """Show `backend`'s machine, or why there is none (`problem`)."""
        self.backend = backend
        if backend is None:
            lines = [problem or "Set up the RunComfy machine above."]
            state = "none"
        else:
            status = backend.status()
            lines, state = status_lines(status), status.status.lower()
            if self.actions.message and self.actions.message not in lines:
                lines.append(self.actions.message)
        text = "\n".join(lines)
        if text != self.status.text():
            self.status.setText(text)
        free = backend is not None and not self.actions.working
        launching = backend is not None and backend.preparing
        self.launch_button.setEnabled(free and not launching
                                      and state in ("none", "stopped", "error"))
        self.stop_button.setEnabled(free and state not in ("none", "stopped"))  # also mid-launch
        self.extend_button.setEnabled(free and state == "ready")


class LeftoverBox(QGroupBox):
    """Shown while machines from earlier sessions are still running (and billing)."""

    def __init__(self, reuse: Callable[[str], None]) -> None:
        super().__init__("RunComfy machines still running")
        self.scanner = MachinePanel()
        self.reuse = reuse
        self.in_use = ""  # the machine this docker took over: no longer a leftover
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.rows = QVBoxLayout()
        box = QVBoxLayout(self)
        box.addWidget(self.message)
        box.addLayout(self.rows)
        self.labels: dict[str, QLabel] = {}
        self.stop_buttons: dict[str, QPushButton] = {}
        self.reuse_buttons: dict[str, QPushButton] = {}
        self.setVisible(False)

    def scan(self, server: RunComfyServer) -> None:
        """Ask RunComfy (and the ledger) in the background; rows appear when it answers."""
        self.scanner.scan(server)

    def release(self) -> None:
        self.scanner.close()

    def refresh(self) -> None:
        machines = [m for m in self.scanner.leftovers or []
                    if m.machine.server_id != self.in_use]
        if [m.machine.server_id for m in machines] != list(self.labels):
            self._rebuild(machines)
        for m in machines:
            self.labels[m.machine.server_id].setText(leftover_line(m))
        working = self.scanner.working
        for button in (*self.stop_buttons.values(), *self.reuse_buttons.values()):
            button.setEnabled(not working)
        if self.message.text() != self.scanner.message:
            self.message.setText(self.scanner.message)
        self.setVisible(bool(machines) or working or bool(self.scanner.message))  # errors too

    def _rebuild(self, machines: list[RunningMachine]) -> None:
        while self.rows.count():
            item = self.rows.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.labels.clear()
        self.stop_buttons.clear()
        self.reuse_buttons.clear()
        for m in machines:
            sid = m.machine.server_id
            row = QWidget()
            line = QHBoxLayout(row)
            line.setContentsMargins(0, 0, 0, 0)
            label = QLabel(leftover_line(m))
            label.setWordWrap(True)
            stop, reuse = QPushButton("Stop"), QPushButton("Reuse")
            stop.clicked.connect(lambda _=False, sid=sid: self._stop(sid))
            reuse.clicked.connect(lambda _=False, sid=sid: self.reuse(sid))
            line.addWidget(label, 1)
            line.addWidget(stop)
            line.addWidget(reuse)
            self.rows.addWidget(row)
            self.labels[sid], self.stop_buttons[sid], self.reuse_buttons[sid] = label, stop, reuse

    def _stop(self, server_id: str) -> None:
        if self.scanner.server is not None:
            self.scanner.stop_leftover(server_id)
