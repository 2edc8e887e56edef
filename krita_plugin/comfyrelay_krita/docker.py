"""The ComfyRelay docker (Settings › Dockers › ComfyRelay): the panel in a scroll area that
scrolls up and down only; the panel's rows wrap to the dock's width instead."""

from __future__ import annotations

from typing import Any

from krita import DockWidget, Krita

from .panel import Panel
from .qt import SCROLL_OFF, QApplication, QScrollArea


class ComfyRelayDocker(DockWidget):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("ComfyRelay")
        self.panel = Panel(Krita.instance())
        scroll = QScrollArea()  # the back-end fields make the panel taller than most dockers
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(SCROLL_OFF)
        scroll.setWidget(self.panel)
        self.scroll = scroll
        self.setWidget(scroll)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.panel.close_session)

    def canvasChanged(self, canvas: Any) -> None:
        # Run reads the active document itself; the history shown follows it.
        self.panel.follow_document()
