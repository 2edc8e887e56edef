"""Builds the docker's panel outside Krita under one Qt binding: `python qt_widgets.py
PYKRITA BINDING OUT.json`. BINDING is PyQt6 or PyQt5; the other is blocked, so qt.py must
work with the one given. Krita's own API is a stand-in: the panel only reads and writes
settings and asks for the active document."""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any


class StandInKrita:
    """What the panel uses of Krita.instance(): settings and the active document."""

    def __init__(self) -> None:
        self.settings: dict[tuple[str, str], str] = {}

    def readSetting(self, group: str, name: str, default: str) -> str:
        return self.settings.get((group, name), default)

    def writeSetting(self, group: str, name: str, value: str) -> None:
        self.settings[(group, name)] = value

    def activeDocument(self) -> None:
        return None


def check(binding: str) -> dict[str, Any]:
    from comfyrelay_krita import qt
    from comfyrelay_krita.panel import Panel

    app = qt.QApplication.instance() or qt.QApplication([])
    krita = StandInKrita()
    panel = Panel(krita)
    panel.resize(300, 900)
    panel.show()
    app.processEvents()
    buttons = sorted(b.text() for b in panel.findChildren(qt.QPushButton))
    shown_fields = sorted(n for n, row in panel.backend_box.rows.items() if row.isVisible())
    panel.backend_box.choose("comfyicu")  # the user picks another back end
    app.processEvents()
    icu_fields = sorted(n for n, row in panel.backend_box.rows.items() if row.isVisible())
    panel.run_button.click()  # no document open
    app.processEvents()
    result = {
        "qt6": qt.QT6,
        "binding": qt.QtCore.__name__.split(".")[0],
        "buttons": buttons,
        "fields": shown_fields,
        "icu_fields": icu_fields,
        "problem": panel.server_status.text(),
        "status": panel.status.text(),
        "stored_backend": krita.settings.get(("ComfyRelay", "backend")),
    }
    panel.close_session()
    return result


def main() -> None:
    pykrita, binding, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    other = "PyQt5" if binding == "PyQt6" else "PyQt6"
    sys.modules[other] = None  # type: ignore[assignment]  # blocked: import fails
    sys.path.insert(0, pykrita)
    try:
        result = check(binding)
    except BaseException:
        result = {"error": traceback.format_exc()}
    out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
