"""Test-only plugin for a full Krita under Xvfb (tests/krita/screenshot.py): paints a
document, runs a workflow from the ComfyRelay docker (so its history has an entry), opens
another one typed by the server, grabs the docker as a PNG, measures whether it fits its
dock, writes JSON to COMFYRELAY_SHOT_OUT and exits."""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from typing import Any

from comfyrelay_krita.qt import QApplication, QByteArray, QtCore, QTimer, QtWidgets
from krita import Extension, Krita

W, H = 480, 320


def spin_until(done: Callable[[], bool], timeout: float = 60.0) -> bool:
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            return False
        QApplication.processEvents()
        time.sleep(0.01)
    return True


def settle(seconds: float = 0.5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.01)


def painting() -> Any:
    """A document with a soft colour gradient, shown in the window."""
    krita = Krita.instance()
    doc = krita.createDocument(W, H, "painting", "RGBA", "U8", "", 72.0)
    data = bytes(v for y in range(H) for x in range(W)
                 for v in (200 - y // 2, 120 + x // 8, 60 + x // 3, 255))  # B, G, R, A
    doc.rootNode().childNodes()[0].setPixelData(QByteArray(data), 0, 0, W, H)
    doc.refreshProjection()
    window = krita.activeWindow() or krita.windows()[0]
    view = window.addView(doc)
    window.activate()
    window.showView(view)
    QApplication.setActiveWindow(window.qwindow())  # no window manager under Xvfb
    doc.waitForDone()
    return doc


def our_dock() -> Any:
    """The docker, shown where Krita puts it, at its default width; the other dockers of
    its column are closed so it gets the column's height."""
    main = (Krita.instance().activeWindow() or Krita.instance().windows()[0]).qwindow()
    docks = main.findChildren(QtWidgets.QDockWidget)
    (dock,) = [d for d in docks if d.windowTitle() == "ComfyRelay"]
    main.setGeometry(main.screen().availableGeometry())  # no window manager maximizes it
    dock.show()
    area = main.dockWidgetArea(dock)
    for other in docks:
        if other is not dock and main.dockWidgetArea(other) == area:
            other.hide()
    dock.raise_()
    settle()
    return dock


def typed(panel: Any) -> bool:
    return spin_until(lambda: any(i.type for i in panel.form.inputs), 30)


def run_once(panel: Any, workflow: str) -> bool:
    panel.load_workflow(workflow)
    typed(panel)
    panel.run_button.click()
    return spin_until(lambda: panel.run_button.isEnabled() and not panel.jobs.busy, 60)


def fits(dock: Any) -> dict[str, Any]:
    """Whether the panel fits the dock's width: no sideways scrolling, nothing cut off."""
    scroll = dock.scroll
    widest = max(dock.panel.findChildren(QtWidgets.QWidget),
                 key=lambda w: w.minimumSizeHint().width() if w.isVisible() else 0)
    viewport = scroll.viewport().width()
    panel = dock.panel
    return {
        "dock_width": dock.width(),
        "viewport_width": viewport,
        "panel_width": panel.width(),
        "panel_min_width": panel.minimumSizeHint().width(),
        "h_scrollbar_visible": scroll.horizontalScrollBar().isVisible(),
        "h_scroll_range": scroll.horizontalScrollBar().maximum(),
        "dock_height": dock.height(),
        "floating": dock.isFloating(),
        "widest": f"{type(widest).__name__} {widest.minimumSizeHint().width()} "
                  f"{getattr(widest, 'text', lambda: '')()!r}",
    }


def grab(dock: Any, png: str) -> None:
    """The dock down to the end of the panel's contents (the column below is empty)."""
    box = dock.panel.history_box
    bottom = box.mapTo(dock, QtCore.QPoint(0, box.height())).y() + 12
    dock.grab(QtCore.QRect(0, 0, dock.width(), min(dock.height(), bottom))).save(png, "PNG")


def shoot(config: dict[str, Any]) -> dict[str, Any]:
    painting()
    dock = our_dock()
    panel = dock.panel
    panel.check_button.click()  # as a user does first; the history then has the version
    spin_until(lambda: panel.server_status.text().startswith(("Connected", "Cannot")), 30)
    ran = run_once(panel, config["run_first"])
    panel.load_workflow(config["workflow"])
    shown = typed(panel)
    settle()
    grab(dock, config["png"])
    return {"ran": ran, "typed": shown, "status": panel.status.text(),
            "history": panel.history_box.list.count(), **fits(dock),
            "min_widths": other_states(panel)}


def other_states(panel: Any) -> dict[str, int]:
    """The panel's minimum width with everything unfolded: it must fit the dock too."""
    widths = {}
    panel.form.open_all(True)
    settle(0.2)
    widths["all_inputs"] = panel.minimumSizeHint().width()
    panel.customize_button.click()
    settle(0.2)
    widths["customize"] = panel.minimumSizeHint().width()
    return widths


def shoot_and_exit() -> None:
    config = json.loads(os.environ["COMFYRELAY_SHOT"])
    try:
        result = shoot(config)
    except BaseException:
        result = {"error": traceback.format_exc()}
    with open(config["out"], "w") as f:
        json.dump(result, f)
    os._exit(0)  # the verdict and the picture are written; Krita's shutdown is not shown


class Screenshot(Extension):
    def setup(self) -> None:
        notifier = Krita.instance().notifier()
        notifier.windowCreated.connect(lambda: QTimer.singleShot(1000, shoot_and_exit))

    def createActions(self, window: Any) -> None:
        pass


Krita.instance().addExtension(Screenshot(Krita.instance()))
