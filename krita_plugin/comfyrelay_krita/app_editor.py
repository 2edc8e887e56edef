"""Customize: which inputs a workflow's app shows, in what order, under which labels, and
which output nodes' files come back.

One row per input the form can show: a checkbox (in the app), the label (its own, or the
default as a placeholder) and ↑ / ↓ to move it within the app; then, for a workflow with
several output nodes, a checkbox per node ("Results from"; none ticked: every saved file, or
the previews when it saves none). Every change is handed to `changed` as a new AppView ("Reset
to default": an empty one); the form saves it and rebuilds (this editor included).
"""

from __future__ import annotations

from collections.abc import Callable

from .core import core
from .qt import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

MARGIN = 2


class AppEditor(QWidget):
    def __init__(self, app: core.AppView, layout: core.AppLayout,
                 changed: Callable[[core.AppView], None],
                 outputs: list[tuple[str, str]] | None = None) -> None:
        super().__init__()
        self.app, self.changed = app, changed
        self.rows: dict[str, AppRow] = {}
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        hint = QLabel("Tick the inputs to show on top, rename them, and order them with ↑ ↓.")
        hint.setWordWrap(True)
        box.addWidget(hint)
        self.reset_button = QPushButton("Reset to default")
        self.reset_button.setToolTip("Forget this workflow's changes: the default app again")
        self.reset_button.setEnabled(app.custom or bool(app.outputs))
        self.reset_button.clicked.connect(lambda _=False: self.changed(core.AppView()))
        box.addWidget(self.reset_button)
        shown = {entry.input.key for entry in layout.shown}
        for entry in [*layout.shown, *layout.others]:
            key = entry.input.key
            label = next((f.label for f in app.fields if f.key == key), "")
            self.rows[key] = AppRow(self, entry, key in shown, label)
            box.addWidget(self.rows[key])
        self.outputs: dict[str, QCheckBox] = {}
        if outputs and len(outputs) > 1:
            box.addWidget(QLabel("Results from (none ticked: every saved file):"))
            for node, title in outputs:
                check = self.outputs[node] = QCheckBox(f"{title} ({node})")
                check.setChecked(node in app.outputs)
                check.toggled.connect(lambda _on: self.pick_outputs())
                box.addWidget(check)

    def pick_outputs(self) -> None:
        self.changed(self.app.with_outputs([n for n, c in self.outputs.items() if c.isChecked()]))

    def toggle(self, key: str, shown: bool) -> None:
        label = self.rows[key].label.text().strip()
        self.changed(self.app.with_field(key, label) if shown else self.app.without(key))

    def relabel(self, key: str, label: str) -> None:
        """Also called when the edit merely loses focus: only a new label is a change."""
        old = next((f.label for f in self.app.fields if f.key == key), None)
        if old is not None and old != label.strip():
            self.app = self.app.with_field(key, label.strip())
            self.reset_button.setEnabled(True)  # the user's now; this editor stays
            self.changed(self.app)

    def move_field(self, key: str, offset: int) -> None:
        self.changed(self.app.moved(key, offset))


class AppRow(QWidget):
    """The input's raw name (node id and input, its node), then: [✓] [label] [↑] [↓]."""

    def __init__(self, editor: AppEditor, entry: core.LabelledInput, shown: bool,
                 label: str) -> None:
        super().__init__()
        key = entry.input.key
        box = QVBoxLayout(self)
        box.setContentsMargins(0, MARGIN, 0, MARGIN)
        name = QLabel(entry.tip or key)
        name.setWordWrap(True)  # a long node title must not widen the docker
        box.addWidget(name)
        line = QHBoxLayout()
        self.check = QCheckBox()
        self.check.setChecked(shown)
        self.check.setToolTip("Show this input in the app, above “All inputs”")
        self.label = QLineEdit(label)
        self.label.setPlaceholderText(entry.label)  # the label in words
        self.label.setEnabled(shown)
        self.up, self.down = QToolButton(), QToolButton()
        self.up.setText("↑")
        self.down.setText("↓")
        for widget in (self.check, self.label, self.up, self.down):
            line.addWidget(widget, 1 if widget is self.label else 0)
        for button in (self.up, self.down):
            button.setEnabled(shown)
        box.addLayout(line)
        self.check.toggled.connect(lambda on: editor.toggle(key, on))
        self.label.editingFinished.connect(lambda: editor.relabel(key, self.label.text()))
        self.up.clicked.connect(lambda _=False: editor.move_field(key, -1))
        self.down.clicked.connect(lambda _=False: editor.move_field(key, 1))
