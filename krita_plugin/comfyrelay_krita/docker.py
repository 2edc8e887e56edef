"""The ComfyRelay docker (Settings › Dockers › ComfyRelay): the panel in a scroll area."""

from __future__ import annotations

from typing import Any

from krita import DockWidget, Krita

from .panel import Panel
from .qt import QApplication, QScrollArea


class ComfyRelayDocker(DockWidget):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("ComfyRelay")
        self.panel = Panel(Krita.instance())
        scroll = QScrollArea()  # the back-end fields make the panel taller than most dockers
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.panel)
        self.setWidget(scroll)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.panel.close_session)

    def canvasChanged(self, canvas: Any) -> None:
        pass  # Run always reads the active document
