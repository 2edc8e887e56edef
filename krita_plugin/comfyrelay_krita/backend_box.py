"""The back-end choice and its fields, built from the core's field table; only the fields of
the chosen back end are shown. Nothing here names a kind: the registry lists them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from .core import core
from .elided import ElidedCombo
from .qt import (
    PASSWORD,
    SHORT_COMBO,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from .settings import Settings

Editor: TypeAlias = "QLineEdit | QComboBox | QSpinBox | QDoubleSpinBox"


COMBO_CHARS = 6  # a docker is narrow: long choices are elided rather than widening it


def _combo(items: list[tuple[str, str]] | tuple[tuple[str, str], ...], current: str) -> QComboBox:
    combo = ElidedCombo()
    combo.setSizeAdjustPolicy(SHORT_COMBO)
    combo.setMinimumContentsLength(COMBO_CHARS)
    for key, label in items:
        combo.addItem(label, key)
    combo.setCurrentIndex(max(0, combo.findData(current)))
    return combo


def _editor(field: core.Setting, value: Any) -> Editor:
    if field.choices:
        return _combo(field.choices, str(value))
    if isinstance(value, (int, float)):
        box: QSpinBox | QDoubleSpinBox
        if isinstance(value, int):
            box = QSpinBox()
            box.setRange(int(field.low), 24 * 60)  # minutes: a day at most
            box.setValue(value)
        else:
            box = QDoubleSpinBox()
            box.setRange(field.low, 1000.0)
            box.setValue(value)
        box.setSpecialValueText(field.special)
        box.setToolTip(field.hint)
        return box
    edit = QLineEdit(str(value))
    edit.setPlaceholderText(field.hint)
    if field.secret:
        edit.setEchoMode(PASSWORD)
    return edit


def _value(editor: Editor) -> Any:
    if isinstance(editor, QComboBox):
        return str(editor.currentData() or "")
    if isinstance(editor, (QSpinBox, QDoubleSpinBox)):
        return editor.value()
    return editor.text().strip()


class BackendBox(QWidget):
    """Calls `changed` when the user has finished an edit, so the panel saves and applies."""

    def __init__(self, s: Settings, changed: Callable[[], None]) -> None:
        super().__init__()
        self.kind = _combo(list(core.KINDS.labels().items()), s.backend)
        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        self.kind.setToolTip("Where workflows run: your ComfyUI, or a cloud service")
        kind_row = QHBoxLayout()
        kind_row.addWidget(QLabel("Service"))  # every control has a label
        kind_row.addWidget(self.kind, 1)
        root.addLayout(kind_row)
        self.editors: dict[str, Editor] = {}
        self.rows: dict[str, QWidget] = {}
        for name, field in core.KINDS.fields().items():
            editor = self.editors[name] = _editor(field, getattr(s, name))
            row = self.rows[name] = QWidget()
            line = QHBoxLayout(row)
            line.setContentsMargins(0, 0, 0, 0)
            label = QLabel(field.label)
            label.setWordWrap(True)  # long labels wrap instead of widening the docker
            line.addWidget(label)
            line.addWidget(editor, 1)
            root.addWidget(row)
            signal = (editor.currentIndexChanged if isinstance(editor, QComboBox)
                      else editor.editingFinished)
            signal.connect(changed)
        self.show_kind()
        self.kind.currentIndexChanged.connect(self.show_kind)
        self.kind.currentIndexChanged.connect(changed)

    @property
    def chosen(self) -> str:
        return str(self.kind.currentData())

    def show_kind(self) -> None:
        shown = set(core.KINDS.kind_fields(self.chosen)) if self.chosen in core.KINDS else set()
        for name, row in self.rows.items():
            row.setVisible(name in shown)

    def choose(self, kind: str) -> None:
        self.kind.setCurrentIndex(max(0, self.kind.findData(kind)))

    def read_into(self, s: Settings) -> None:
        s.backend = self.chosen
        for name, editor in self.editors.items():
            setattr(s, name, _value(editor))
