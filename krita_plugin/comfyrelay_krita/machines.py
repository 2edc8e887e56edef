"""RunComfy machine boxes, bound to the session's view: this docker's machine (status, cost,
Launch / Stop / +30 min) and machines left running by earlier sessions (Stop, Reuse).

Every action runs on the session's machine threads; refresh() only reads the view, so the
docker's timer can call it every tick without ever waiting for the network.
"""

from __future__ import annotations

from collections.abc import Callable

from .core import core
from .qt import QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


def _set_text(label: QLabel, text: str) -> None:
    if label.text() != text:
        label.setText(text)


class MachineBox(QGroupBox):
    def __init__(self, act: Callable[[Callable[[], None]], None],
                 session: core.HostSession) -> None:
        super().__init__("RunComfy machine")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.launch_button = QPushButton("Launch")
        self.stop_button = QPushButton("Stop")
        self.extend_button = QPushButton(f"+{core.EXTEND_MINUTES} min")
        self.launch_button.setToolTip("Billing starts when the machine is Ready.")
        buttons = QGridLayout()  # two rows: three buttons side by side overflow a docker
        buttons.addWidget(self.launch_button, 0, 0)
        buttons.addWidget(self.stop_button, 0, 1)
        buttons.addWidget(self.extend_button, 1, 0)
        box = QVBoxLayout(self)
        box.addWidget(self.status)
        box.addLayout(buttons)
        self.launch_button.clicked.connect(lambda: act(session.launch))
        self.stop_button.clicked.connect(lambda: act(session.stop))
        self.extend_button.clicked.connect(lambda: act(lambda: session.extend(core.EXTEND_MINUTES)))

    def refresh(self, view: core.View) -> None:
        self.setVisible(view.machine)
        _set_text(self.status, "\n".join(view.machine_lines))
        self.launch_button.setEnabled(view.can_launch)
        self.stop_button.setEnabled(view.can_stop)
        self.extend_button.setEnabled(view.can_extend)


class LeftoverBox(QGroupBox):
    """Shown while machines from earlier sessions are still running (and billing)."""

    def __init__(self, stop: Callable[[str], None], reuse: Callable[[str], None]) -> None:
        super().__init__("RunComfy machines still running")
        self.stop, self.reuse = stop, reuse
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.rows = QVBoxLayout()
        box = QVBoxLayout(self)
        box.addWidget(self.message)
        box.addLayout(self.rows)
        self.labels: dict[str, QLabel] = {}
        self.buttons: list[QPushButton] = []
        self.setVisible(False)

    def refresh(self, view: core.View) -> None:
        if [row.server_id for row in view.leftovers] != list(self.labels):
            self._rebuild(view.leftovers)
        for row in view.leftovers:
            _set_text(self.labels[row.server_id], row.line)
        for button in self.buttons:
            button.setEnabled(view.can_act_on_leftovers)
        _set_text(self.message, view.leftover_message)
        self.setVisible(view.show_leftovers)

    def _rebuild(self, rows: tuple[core.LeftoverRow, ...]) -> None:
        while self.rows.count():
            item = self.rows.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.labels.clear()
        self.buttons.clear()
        for row in rows:
            self.rows.addWidget(self._row(row))

    def _row(self, row: core.LeftoverRow) -> QWidget:
        """The machine's line, its buttons below it (beside it, they widen a docker)."""
        sid = row.server_id
        widget = QWidget()
        box = QVBoxLayout(widget)
        box.setContentsMargins(0, 0, 0, 0)
        label = self.labels[sid] = QLabel(row.line)
        label.setWordWrap(True)
        stop, reuse = QPushButton("Stop"), QPushButton("Reuse")
        stop.clicked.connect(lambda _=False, sid=sid: self.stop(sid))
        reuse.clicked.connect(lambda _=False, sid=sid: self.reuse(sid))
        line = QHBoxLayout()
        line.addWidget(stop)
        line.addWidget(reuse)
        box.addWidget(label)
        box.addLayout(line)
        self.buttons += [stop, reuse]
        return widget
