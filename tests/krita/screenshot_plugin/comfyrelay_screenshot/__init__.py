"""Test-only plugin for a full Krita under Xvfb (tests/krita/screenshot.py): paints a
document, runs a workflow from the ComfyRelay docker (so its history has an entry), opens
another one typed by the server, grabs the docker's first screen and its whole panel as
PNGs, reads what the first screen says and measures whether it fits its dock, writes JSON
to the file COMFYRELAY_SHOT names and exits."""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from typing import Any

from comfyrelay_krita.elided import ElidedCombo, ElidedLabel
from comfyrelay_krita.qt import QApplication, QByteArray, QtCore, QtGui, QTimer, QtWidgets
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


def grab(dock: Any, png: str, full_png: str) -> None:
    """The dock as Krita shows it (the first screen), and the whole panel scrolled through."""
    dock.grab().save(png, "PNG")
    dock.panel.grab().save(full_png, "PNG")


def in_view(dock: Any, widget: Any) -> bool:
    """Shown whole on the first screen, without scrolling."""
    viewport = dock.scroll.viewport()
    top = widget.mapTo(viewport, QtCore.QPoint(0, 0)).y()
    return widget.isVisibleTo(dock.panel) and top >= 0 and \
        top + widget.height() <= viewport.height()


def first_screen(dock: Any) -> dict[str, Any]:
    """What the first screen says, as a user reads it."""
    panel = dock.panel
    form = panel.form
    labels: list[ElidedLabel] = [*form.labels.values(), *panel.sources.titles,
                                 panel.sources.region_label, panel.workflow_name]
    cut = [w.text() for w in labels if w.shown_text() != w.text()]
    values = {label.text(): form.fields[key].widget for key, label in form.labels.items()}
    return {
        "labels_in_view": [label.text() for label in form.labels.values()
                           if in_view(dock, label) and in_view(dock, values[label.text()])],
        "tips": {label.text(): label.toolTip() for label in form.labels.values()},
        "labels_cut": cut,
        "combos_cut": [c.currentText() for c in panel.findChildren(ElidedCombo)
                       if c.isVisibleTo(panel) and c.shown_text() != c.currentText()],
        "status_in_view": in_view(dock, panel.status),
        "status": panel.status.text(),
        "connection": panel.server_status.text(),
        "details_toggle": panel.details_toggle.isVisibleTo(panel),
        "details_shown": panel.details.isVisibleTo(panel),
        "details": panel.details.text(),
        "region_label": panel.sources.region_label.text(),
        "region_label_in_view": in_view(dock, panel.sources.region_label),
        "workflow_name": panel.workflow_name.text(),
        "workflow_tip": panel.workflow_name.toolTip(),
        "progress_text": panel.progress.isTextVisible(),
        "progress_value": panel.progress.value(),
        "run_enabled": panel.run_button.isEnabled(),
        "run_tip": panel.run_button.toolTip(),
        "checkpoint": checkpoint(form.fields["4.ckpt_name"].widget),
        "run_again_enabled": panel.history_box.run_again_button.isEnabled(),
    }


def checkpoint(combo: ElidedCombo) -> dict[str, str]:
    """The checkpoint's value as drawn, and the tool tip a hover over it shows."""
    at = QtCore.QPoint(5, 5)
    hover = QtGui.QHelpEvent(QtCore.QEvent.Type.ToolTip, at, combo.mapToGlobal(at))
    QApplication.sendEvent(combo, hover)
    settle(0.2)
    return {"value": combo.currentText(), "shown": combo.shown_text(),
            "hover": QtWidgets.QToolTip.text()}


def shoot(config: dict[str, Any]) -> dict[str, Any]:
    painting()
    dock = our_dock()
    panel = dock.panel
    panel.check_button.click()  # as a user does first; the history then has the version
    spin_until(lambda: panel.server_status.text().startswith(("Connected", "Cannot")), 30)
    ran = run_once(panel, config["run_first"])
    panel.load_workflow(config["workflow"])
    shown = typed(panel)
    dock.scroll.verticalScrollBar().setValue(0)
    settle()
    grab(dock, config["png"], config["full_png"])
    return {"ran": ran, "typed": shown, "status": panel.status.text(),
            "history": panel.history_box.list.count(), "first_screen": first_screen(dock),
            **fits(dock), "min_widths": other_states(panel)}


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
