"""Test-only plugin for a full Krita under Xvfb: what kritarunner cannot show.

kritarunner has no window, no views and no actions, so the active layer, Edit › Undo and
the Dockers menu are checked here. Writes JSON to COMFYRELAY_TEST_OUT, then exits.
"""

from __future__ import annotations

import importlib
import json
import os
import time
import traceback
from typing import Any

from comfyrelay_krita.layers import add_result_layer
from comfyrelay_krita.pixels import Rect
from comfyrelay_krita.qt import ARGB32, QApplication, QImage, QTimer, QtWidgets
from krita import Extension, Krita


def settle(doc: Any) -> None:
    for _ in range(30):
        doc.waitForDone()
        QApplication.processEvents()
        time.sleep(0.01)


def layer_names(doc: Any) -> list[str]:
    return [n.name() for n in reversed(doc.rootNode().childNodes())]


def check() -> dict[str, Any]:
    krita = Krita.instance()
    window = krita.activeWindow() or krita.windows()[0]
    doc = krita.createDocument(40, 30, "gui", "RGBA", "U8", "", 72.0)
    view = window.addView(doc)
    window.activate()
    window.showView(view)
    QApplication.setActiveWindow(window.qwindow())  # no window manager under Xvfb
    settle(doc)
    background = doc.rootNode().childNodes()[0]
    doc.rootNode().addChildNode(doc.createNode("Top", "paintlayer"), background)
    doc.setActiveNode(background)  # has no visible effect here: Background is active anyway
    settle(doc)
    image = QImage(8, 4, ARGB32)
    image.fill(0xFF336699)
    layer = add_result_layer(doc, image, "result", Rect(5, 6, 8, 4))
    add_result_layer(doc, image, "second", Rect(0, 0, 8, 4), above=layer)
    settle(doc)
    bounds = layer.bounds()
    result: dict[str, Any] = {
        "after_add": layer_names(doc),
        "bounds": [bounds.x(), bounds.y(), bounds.width(), bounds.height()],
    }
    result["after_undo"] = []
    for _ in range(2):  # Edit › Undo, twice
        krita.action("edit_undo").trigger()
        settle(doc)
        result["after_undo"].append(layer_names(doc))
    docks = window.qwindow().findChildren(QtWidgets.QDockWidget)
    ours = [d for d in docks if d.windowTitle() == "ComfyRelay"]
    result["docker"] = bool(ours)
    buttons = ours[0].findChildren(QtWidgets.QPushButton) if ours else []
    result["buttons"] = sorted(b.text() for b in buttons)
    doc.setModified(False)
    return result


def chosen_check() -> Any:
    """COMFYRELAY_TEST_CHECK="module:function" (a module on PYTHONPATH) runs that check
    instead; the default is check() above."""
    name = os.environ.get("COMFYRELAY_TEST_CHECK")
    if not name:
        return check
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)


def run_and_exit() -> None:
    try:
        result = chosen_check()()
    except BaseException:
        result = {"error": traceback.format_exc()}
    with open(os.environ["COMFYRELAY_TEST_OUT"], "w") as f:
        json.dump(result, f)
    os._exit(0)  # skip Krita's shutdown: the verdict is written, and teardown is not tested


class GuiCheck(Extension):
    def setup(self) -> None:
        notifier = Krita.instance().notifier()
        notifier.windowCreated.connect(lambda: QTimer.singleShot(1000, run_and_exit))

    def createActions(self, window: Any) -> None:
        pass


Krita.instance().addExtension(GuiCheck(Krita.instance()))
