"""One editor per workflow input, typed from the server's node definitions where it has them:
a dropdown of the server's choices, a number with its range and step (and a slider where the
range is short), a checkbox, one or several lines of text, a seed with its control.

Without a server the input is untyped and gets a plain editor, as the workflow's value says.
A value the server would refuse is flagged where it is (red border, the reason on hover).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

from .core import core
from .elided import ElidedCombo
from .qt import (
    HORIZONTAL,
    SHORT_COMBO,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QSlider,
    QWidget,
)

MAX_SEED = 2**53 - 1  # a double holds every whole number up to here exactly
FLOAT_LIMIT = 1e15  # beyond, a spin box's text no longer fits a docker
SLIDER_STEPS = 100  # a range of at most this many steps also gets a slider
SPIN_WIDTH = 72  # a spin box's own minimum follows its range's text: 2**53 is too wide
SLIDER_WIDTH = 80  # a shorter slider is no use: the row wraps its label above instead
COMBO_CHARS = 8  # what a dropdown needs at least: long model names are elided, not widening
TEXT_LINES_HEIGHT = 60  # three lines: two prompts and the rest fit a first screen
ERROR_COLOUR = "#d04040"
SEED_TIP = ("fixed: the same seed each run · random: a new one each run · increment: one "
            "more each run. The field shows the seed the last run used.")


class Field:
    """An input's editor. `widget` goes in the form; `editor` is what gets flagged."""

    widget: QWidget
    editor: QWidget

    def __init__(self, item: core.WorkflowInput) -> None:
        self.item = item
        self.problem: str | None = None

    def value(self) -> Any:
        raise NotImplementedError

    def set_value(self, value: Any) -> None:
        raise NotImplementedError

    def on_change(self, callback: Callable[[], object]) -> None:
        raise NotImplementedError

    def check(self) -> str | None:
        """Flag the value if the server would refuse it (only typed inputs are judged)."""
        self.show_problem(core.field_problem(self.item, self.value()))
        return self.problem

    def show_problem(self, problem: str | None) -> None:
        self.problem = problem
        # Scoped to the editor's class, so its inner line edit keeps its own look.
        style = f"{type(self.editor).__name__} {{ border: 1px solid {ERROR_COLOUR}; }}"
        style = style if problem else ""
        if self.editor.styleSheet() != style:
            self.editor.setStyleSheet(style)
        self.editor.setToolTip("\n\n".join(t for t in (problem, self.item.tooltip) if t))


class ChoiceField(Field):
    """The server's list; a value it does not list stays selectable, flagged."""

    def __init__(self, item: core.WorkflowInput) -> None:
        super().__init__(item)
        self.widget = self.editor = self.combo = short_combo()
        for choice in item.choices or []:
            self.combo.addItem(str(choice), choice)
        self.set_value(item.value)

    def value(self) -> Any:
        return self.combo.currentData()

    def set_value(self, value: Any) -> None:
        index = next((i for i in range(self.combo.count()) if self.combo.itemData(i) == value),
                     -1)
        if index < 0:  # not the server's: kept as it is, so the check can say what is close
            self.combo.addItem(str(value), value)
            index = self.combo.count() - 1
        self.combo.setCurrentIndex(index)

    def on_change(self, callback: Callable[[], object]) -> None:
        self.combo.currentIndexChanged.connect(lambda _=0: callback())


class BoolField(Field):
    def __init__(self, item: core.WorkflowInput) -> None:
        super().__init__(item)
        self.widget = self.editor = self.box = QCheckBox()
        self.set_value(item.value)

    def value(self) -> bool:
        return self.box.isChecked()

    def set_value(self, value: Any) -> None:
        self.box.setChecked(bool(value))

    def on_change(self, callback: Callable[[], object]) -> None:
        self.box.toggled.connect(lambda _=False: callback())


class TextField(Field):
    def __init__(self, item: core.WorkflowInput, multiline: bool) -> None:
        super().__init__(item)
        self.multiline = multiline
        self.text: QPlainTextEdit | QLineEdit = QPlainTextEdit() if multiline else QLineEdit()
        if isinstance(self.text, QPlainTextEdit):
            self.text.setMaximumHeight(TEXT_LINES_HEIGHT)
        self.widget = self.editor = self.text
        self.set_value(item.value)

    def value(self) -> str:
        text = self.text
        return text.toPlainText() if isinstance(text, QPlainTextEdit) else text.text()

    def set_value(self, value: Any) -> None:
        if isinstance(self.text, QPlainTextEdit):
            self.text.setPlainText(str(value))
        else:
            self.text.setText(str(value))

    def on_change(self, callback: Callable[[], object]) -> None:
        self.text.textChanged.connect(lambda *_: callback())


class NumberField(Field):
    """A spin box with the server's range and step; a slider beside it for short ranges.
    The range also holds the value given, so a value out of range shows as it is, flagged."""

    def __init__(self, item: core.WorkflowInput, value: int | float, integer: bool) -> None:
        super().__init__(item)
        self.integer = integer
        self.low, self.high = limits(item, integer)
        self.step = item.step or (1 if integer else 0.05)
        self.spin = number_box(integer, decimals(self.step, value))
        self.spin.setSingleStep(self.step)
        self.editor = self.spin
        self.slider = self._slider()
        self.widget = row(self.slider, self.spin) if self.slider is not None else self.spin
        self.set_value(value)

    def _slider(self) -> QSlider | None:
        item = self.item
        if item.min is None or item.max is None or self.step <= 0:
            return None
        steps = (item.max - item.min) / self.step
        if not 0 < steps <= SLIDER_STEPS:
            return None
        slider = QSlider(HORIZONTAL)
        slider.setMinimumWidth(SLIDER_WIDTH)
        slider.setRange(0, round(steps))
        slider.valueChanged.connect(self._slid)
        self.spin.valueChanged.connect(self._spun)
        return slider

    def _slid(self, position: int) -> None:
        value = (self.item.min or 0) + position * self.step
        if round(self._position(self.spin.value())) != position:  # not an echo of _spun
            self.spin.setValue(value)

    def _spun(self, value: float) -> None:
        if self.slider is not None:
            self.slider.blockSignals(True)  # the spin box holds the truth, off-grid included
            self.slider.setValue(round(self._position(value)))
            self.slider.blockSignals(False)

    def _position(self, value: float) -> float:
        return (value - (self.item.min or 0)) / self.step

    def value(self) -> int | float:
        value = self.spin.value()
        return round(value) if self.integer else float(value)

    def set_value(self, value: Any) -> None:
        number = to_number(value, self.integer)
        if number is None:
            return
        # Widen, never clamp: a workflow's or a history's value is shown as it is.
        self.spin.setRange(min(self.low, number), max(self.high, number))
        self.spin.setValue(number)
        self._spun(number)

    def on_change(self, callback: Callable[[], object]) -> None:
        self.spin.valueChanged.connect(lambda *_: callback())


class SeedField(NumberField):
    """A whole number with fixed / random / increment, applied before each run."""

    def __init__(self, item: core.WorkflowInput, value: int) -> None:
        super().__init__(item, value, integer=True)
        self.control = short_combo(chars=5)
        for control in core.SEED_CONTROLS:
            self.control.addItem(control, control)
        self.control.setToolTip(SEED_TIP)
        self.widget = row(self.spin, self.control)

    def next_seed(self) -> int:
        """The seed the next run uses, by the control (the field shows it once sent)."""
        control = cast("core.SeedControl", str(self.control.currentData()))
        return core.seed_for_run(self.value(), control, maximum=self.item.max)

    def set_control(self, control: str) -> None:
        self.control.setCurrentIndex(max(0, self.control.findData(control)))

    def on_change(self, callback: Callable[[], object]) -> None:
        super().on_change(callback)
        self.control.currentIndexChanged.connect(lambda _=0: callback())


def make_field(item: core.WorkflowInput) -> Field:
    """The editor the input's type calls for; an untyped input's follows its value."""
    value, kind = item.value, item.type or item.kind
    if item.choices is not None:
        return ChoiceField(item)
    if kind in ("BOOLEAN", "boolean"):
        return BoolField(item)
    integer = kind in ("INT", "seed") or (kind == "number" and isinstance(value, int))
    number = to_number(value, integer)
    if kind in ("INT", "FLOAT", "seed", "denoise", "number") and number is not None:
        if integer and item.has_seed_control:
            return SeedField(item, int(number))
        return NumberField(item, number, integer)
    multiline = item.multiline if item.multiline is not None else item.kind == "prompt"
    return TextField(item, multiline)  # also a number the file spells as text: flagged


def limits(item: core.WorkflowInput, integer: bool) -> tuple[float, float]:
    """The server's range, else what the kind allows, within what a spin box can show."""
    top = MAX_SEED if integer else FLOAT_LIMIT
    if item.kind == "denoise" and item.min is None and item.max is None:
        return 0.0, 1.0
    if item.kind == "seed" and item.min is None:
        return 0, top
    low = item.min if item.min is not None else -top
    high = item.max if item.max is not None else top
    return max(low, -top), min(high, top)


def to_number(value: Any, integer: bool) -> int | float | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if integer and abs(number) > MAX_SEED:
        return None  # no spin box shows it exactly: a text field does, flagged if refused
    return number if math.isfinite(number) else None


def decimals(step: float, value: float) -> int:
    """Enough decimals for the step and for the value itself, so nothing is rounded away."""
    places = [len(f"{x:.10g}".partition(".")[2]) for x in (step, value)
              if isinstance(x, float) and "e" not in f"{x:.10g}"]
    return min(6, max(places, default=0))


def number_box(integer: bool, places: int) -> QDoubleSpinBox:
    """A QSpinBox holds a C int only and would clamp seeds: a whole-number QDoubleSpinBox
    holds every one up to 2**53. Its range is set by the field."""
    box = QDoubleSpinBox()
    box.setDecimals(0 if integer else max(1, places))
    box.setMinimumWidth(SPIN_WIDTH)
    return box


def short_combo(chars: int = COMBO_CHARS) -> QComboBox:
    """A dropdown whose width does not follow its longest choice (a docker is narrow): the
    choice is cut with "…", whole on hover."""
    combo = ElidedCombo()
    combo.setSizeAdjustPolicy(SHORT_COMBO)
    combo.setMinimumContentsLength(chars)
    return combo


def row(first: QWidget, second: QWidget) -> QWidget:
    """Two editors side by side, the first taking the room left."""
    widget = QWidget()
    line = QHBoxLayout(widget)
    line.setContentsMargins(0, 0, 0, 0)
    line.addWidget(first, 1)
    line.addWidget(second)
    return widget
