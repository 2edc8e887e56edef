"""Each back-end kind's own boxes, bound to the session's view: the chosen kind's box (a
machine's status and cost, Launch / Stop / +30 min) and what earlier sessions left running
(Stop, Reuse). Nothing here names a kind: lines and buttons come from the view.

Every action runs on the kind's own threads; refresh() only reads the view, so the docker's
timer can call it every tick without ever waiting for the network.
"""

from __future__ import annotations

from collections.abc import Callable

from .core import core
from .qt import QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

Act = Callable[[core.Button], None]


def _set_text(label: QLabel, text: str) -> None:
    if label.text() != text:
        label.setText(text)


def _ids(buttons: tuple[core.Button, ...]) -> list[tuple[str, str, str, str]]:
    """What a button does: rebuilt when this changes, only re-enabled when it does not."""
    return [(b.kind, b.action, b.target, b.label) for b in buttons]


def _button(button: core.Button, act: Act) -> QPushButton:
    widget = QPushButton(button.label)
    widget.setToolTip(button.tip)
    widget.setEnabled(button.enabled)
    widget.clicked.connect(lambda _=False: act(button))
    return widget


def _clear(layout: QGridLayout | QVBoxLayout) -> None:
    while layout.count():
        item = layout.takeAt(0)
        widget = item.widget() if item is not None else None
        if widget is not None:
            widget.deleteLater()


class KindBox(QGroupBox):
    """The chosen kind's box: its lines, its buttons two to a row (three side by side
    overflow a docker)."""

    def __init__(self, act: Act) -> None:
        super().__init__("")
        self.act = act
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.grid = QGridLayout()
        self.buttons: list[QPushButton] = []
        self.shown: tuple[core.Button, ...] = ()
        box = QVBoxLayout(self)
        box.addWidget(self.status)
        box.addLayout(self.grid)
        self.setVisible(False)

    def refresh(self, view: core.ControlsView) -> None:
        self.setTitle(view.title)
        _set_text(self.status, "\n".join(view.lines))
        if _ids(self.shown) != _ids(view.buttons):
            _clear(self.grid)
            self.buttons, self.shown = [], view.buttons
            for i, button in enumerate(view.buttons):
                self.buttons.append(_button(button, self.act))
                self.grid.addWidget(self.buttons[-1], i // 2, i % 2)
        for widget, button in zip(self.buttons, view.buttons, strict=False):
            widget.setEnabled(button.enabled)
        self.setVisible(bool(view.title))


class FoundBox(QGroupBox):
    """Shown while what earlier sessions left running is still there (and billing)."""

    def __init__(self, act: Act) -> None:
        super().__init__("")
        self.act = act
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.rows = QVBoxLayout()
        box = QVBoxLayout(self)
        box.addWidget(self.message)
        box.addLayout(self.rows)
        self.labels: dict[str, QLabel] = {}
        self.buttons: list[QPushButton] = []
        self.setVisible(False)

    def refresh(self, view: core.ControlsView) -> None:
        self.setTitle(view.found_title)
        if [row.target for row in view.found] != list(self.labels):
            self._rebuild(view.found)
        for row in view.found:
            _set_text(self.labels[row.target], row.line)
        enabled = [b.enabled for row in view.found for b in row.buttons]
        for widget, on in zip(self.buttons, enabled, strict=False):
            widget.setEnabled(on)
        _set_text(self.message, view.found_message)
        self.setVisible(bool(view.found or view.found_message))

    def _rebuild(self, rows: tuple[core.Found, ...]) -> None:
        _clear(self.rows)
        self.labels.clear()
        self.buttons.clear()
        for row in rows:
            self.rows.addWidget(self._row(row))

    def _row(self, row: core.Found) -> QWidget:
        """The thing's line, its buttons below it (beside it, they widen a docker)."""
        widget = QWidget()
        box = QVBoxLayout(widget)
        box.setContentsMargins(0, 0, 0, 0)
        label = self.labels[row.target] = QLabel(row.line)
        label.setWordWrap(True)
        line = QHBoxLayout()
        for button in row.buttons:
            self.buttons.append(_button(button, self.act))
            line.addWidget(self.buttons[-1])
        box.addWidget(label)
        box.addLayout(line)
        return widget


class ControlsBoxes(QWidget):
    """A KindBox and a FoundBox per kind that has controls, in the view's order."""

    def __init__(self, act: Act) -> None:
        super().__init__()
        self.act = act
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.boxes: list[tuple[KindBox, FoundBox]] = []

    def refresh(self, view: core.View) -> None:
        while len(self.boxes) < len(view.controls):
            pair = (KindBox(self.act), FoundBox(self.act))
            self.layout_.addWidget(pair[0])
            self.layout_.addWidget(pair[1])
            self.boxes.append(pair)
        for (kind_box, found_box), controls in zip(self.boxes, view.controls, strict=False):
            kind_box.refresh(controls)
            found_box.refresh(controls)

    @property
    def kind_shown(self) -> bool:
        """A chosen kind's box is shown."""
        return any(not box.isHidden() for box, _ in self.boxes)
