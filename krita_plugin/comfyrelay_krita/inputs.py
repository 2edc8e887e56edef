"""A form with one widget per bindable workflow input, read back as the core's Bindings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .core import core
from .qt import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QWidget,
)

INT_LIMIT = 2**31 - 1  # QSpinBox holds a C int
MAX_SEED = 2**53 - 1


class InputForm(QWidget):
    """Rebuilt for each workflow; the image loader itself is fed by the canvas."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layout_ = QFormLayout(self)
        self.workflow: core.Workflow | None = None
        self.readers: dict[str, Callable[[], Any]] = {}  # input key -> current value
        self.image_node: QComboBox | None = None
        self.seed_key = ""
        self.random_seed = QCheckBox("random")

    def set_workflow(self, workflow: core.Workflow | None) -> None:
        while self.layout_.rowCount():
            self.layout_.removeRow(0)
        self.readers.clear()
        self.image_node, self.seed_key = None, ""
        self.random_seed = QCheckBox("random")
        self.workflow = workflow
        if workflow is None:
            return
        loaders = workflow.image_nodes() or workflow.media_nodes()
        if len(loaders) > 1:  # the user picks which loader receives the canvas
            self.image_node = QComboBox()
            for nid in loaders:
                self.image_node.addItem(f"{nid} · {workflow.title(nid)}", nid)
            self.layout_.addRow("Canvas goes to", self.image_node)
        for item in workflow.inputs():
            self._add(item)

    def bindings(self) -> core.Bindings:
        values = {key: read() for key, read in self.readers.items()}
        seed = values.pop(self.seed_key, None) if self.seed_key else None
        random_seed = bool(self.seed_key) and self.random_seed.isChecked()
        return core.Bindings(
            image_node=self.image_node.currentData() if self.image_node else None,
            seed=None if random_seed else seed,
            random_seed=random_seed,
            values=values,
        )

    def _add(self, item: core.WorkflowInput) -> None:
        label = f"{item.node_title} · {item.name}"
        if item.kind in ("image", "video"):
            return
        if item.kind == "seed":
            if self.seed_key:
                return  # one seed field sets every seed input (the core binds them all)
            self.seed_key = item.key
            box, read = _int_box(item.value, 0, MAX_SEED)
            row = QWidget()
            line = QHBoxLayout(row)
            line.setContentsMargins(0, 0, 0, 0)
            line.addWidget(box)
            line.addWidget(self.random_seed)
            self.layout_.addRow("Seed", row)
            self.readers[item.key] = read
            return
        widget, read = _editor(item)
        self.layout_.addRow(label, widget)
        self.readers[item.key] = read


def _editor(item: core.WorkflowInput) -> tuple[QWidget, Callable[[], Any]]:
    value = item.value
    if item.kind == "prompt":
        text = QPlainTextEdit(str(value))
        text.setMaximumHeight(80)
        return text, text.toPlainText
    if item.kind == "boolean":
        check = QCheckBox()
        check.setChecked(bool(value))
        return check, check.isChecked
    if item.kind == "denoise" or (item.kind == "number" and isinstance(value, float)):
        box = QDoubleSpinBox()
        box.setDecimals(3)
        box.setRange(*((0.0, 1.0) if item.kind == "denoise" else (-1e9, 1e9)))
        box.setSingleStep(0.05)
        box.setValue(float(value))
        return box, box.value
    if item.kind == "number":
        return _int_box(int(value), -INT_LIMIT, INT_LIMIT)
    line = QLineEdit(str(value))
    return line, line.text


def _int_box(value: int, low: int, high: int) -> tuple[QWidget, Callable[[], int]]:
    """A QSpinBox for ints that fit a C int, a whole-number QDoubleSpinBox beyond (seeds)."""
    if high <= INT_LIMIT:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setValue(value)
        return spin, spin.value
    box = QDoubleSpinBox()  # a double holds every seed up to 2**53 exactly
    box.setDecimals(0)
    box.setRange(low, high)
    box.setValue(value)
    return box, lambda: int(box.value())
