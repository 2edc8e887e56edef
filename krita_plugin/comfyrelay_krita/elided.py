"""A label and a dropdown that fit a narrow docker: on one line, cut with "…" where their
text is wider than they are (never mid-letter), and shown whole on hover."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .qt import (
    COMBO_CONTROL,
    COMBO_FIELD,
    COMBO_LABEL,
    ELIDE_RIGHT,
    TOOLTIP_EVENT,
    QComboBox,
    QLabel,
    QPainter,
    QSize,
    QStyleOptionComboBox,
    QStylePainter,
    Qt,
    QToolTip,
    QWidget,
)

MIN_WIDTH = 24  # what an elided text keeps at least: its first letters and "…"


def _whole_on_hover(widget: QWidget, event: Any, shown: Callable[[], str], whole: str) -> bool:
    """A tool tip with the whole text first when it is cut; False: Qt's own tool tip (or
    another event). `shown` is asked only for a tool tip: eliding costs on every event."""
    if event.type() != TOOLTIP_EVENT or shown() == whole:
        return False
    tip = "\n\n".join(t for t in (whole, widget.toolTip()) if t)
    QToolTip.showText(event.globalPos(), tip, widget)
    return True


class ElidedLabel(QLabel):
    """A label on one line; text() stays whole, what is drawn is cut to the width (at its
    end, or at its start for a path whose end matters most)."""

    def __init__(self, text: str = "", elide: Qt.TextElideMode = ELIDE_RIGHT) -> None:
        super().__init__(text)
        self.elide = elide

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        return QSize(min(hint.width(), MIN_WIDTH), hint.height())

    def shown_text(self) -> str:
        return self.fontMetrics().elidedText(self.text(), self.elide,
                                             self.contentsRect().width())

    def paintEvent(self, event: Any) -> None:  # Qt calls it
        style = self.style()
        if style is None:  # never in a shown widget; PyQt6's stubs allow it
            return
        painter = QPainter(self)
        style.drawItemText(painter, self.contentsRect(), int(self.alignment()), self.palette(),
                           self.isEnabled(), self.shown_text(), self.foregroundRole())

    def event(self, event: Any) -> bool:
        if _whole_on_hover(self, event, self.shown_text, self.text()):
            return True
        return bool(super().event(event))


class ElidedCombo(QComboBox):
    """A dropdown whose chosen item is cut with "…" to the box (Qt clips it mid-letter)."""

    def shown_text(self) -> str:
        style = self.style()
        if style is None:
            return self.currentText()
        field = style.subControlRect(COMBO_CONTROL, self._option(), COMBO_FIELD, self)
        return self.fontMetrics().elidedText(self.currentText(), ELIDE_RIGHT, field.width())

    def _option(self) -> QStyleOptionComboBox:
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        return option

    def paintEvent(self, event: Any) -> None:  # Qt calls it
        painter = QStylePainter(self)
        option = self._option()
        painter.drawComplexControl(COMBO_CONTROL, option)
        option.currentText = self.shown_text()
        painter.drawControl(COMBO_LABEL, option)

    def event(self, event: Any) -> bool:
        if _whole_on_hover(self, event, self.shown_text, self.currentText()):
            return True
        return bool(super().event(event))
