"""Builds the docker's panel outside Krita under one Qt binding: `python qt_widgets.py
PYKRITA BINDING OUT.json`. BINDING is PyQt6 or PyQt5; the other is blocked, so qt.py must
work with the one given. Krita's own API is a stand-in: the panel only reads and writes
settings and asks for the active document."""

from __future__ import annotations

import importlib.util
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

    app = qt.QApplication.instance() or qt.QApplication([])  # before any widget
    extra = register_extra_kind()
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
    panel.backend_box.choose("runcomfy-machine")  # its box: lines and buttons from the core
    app.processEvents()
    kind_buttons = sorted(b.text() for b in panel.controls_boxes.findChildren(qt.QPushButton)
                          if b.isVisibleTo(panel))
    panel.backend_box.choose(extra.NAME)  # the kind the test suite registered
    app.processEvents()
    extra_fields = sorted(n for n, row in panel.backend_box.rows.items() if row.isVisible())
    extra_backend = panel.session.backend.check() if panel.session.backend else ""
    panel.backend_box.choose("comfyicu")
    app.processEvents()
    panel.run_button.click()  # no workflow chosen: disabled, nothing happens
    app.processEvents()
    result = {
        "qt6": qt.QT6,
        "binding": qt.QtCore.__name__.split(".")[0],
        "buttons": buttons,
        "fields": shown_fields,
        "icu_fields": icu_fields,
        "kind_buttons": kind_buttons,
        "extra_fields": extra_fields,
        "extra_backend": extra_backend,
        "kinds": [panel.backend_box.kind.itemData(i)
                  for i in range(panel.backend_box.kind.count())],
        "problem": panel.server_status.text(),
        "status": panel.status.text(),
        "run_enabled": panel.run_button.isEnabled(),
        "run_tip": panel.run_button.toolTip(),
        "stored_backend": krita.settings.get(("ComfyRelay", "backend")),
        **typed_form(panel, app),
        **sources_form(panel, app),
    }
    panel.close_session()
    return result


def register_extra_kind() -> Any:
    """The test suite's own back-end kind, registered into the plugin's copy of the core
    before the docker is built: no plugin file knows it."""
    from comfyrelay_krita.core import core

    path = Path(__file__).resolve().parents[2] / "extra_kind.py"
    spec = importlib.util.spec_from_file_location("extra_kind", path)
    assert spec is not None and spec.loader is not None
    extra = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extra)
    core.KINDS.register(extra.make_kind(core))
    return extra


TYPES: dict[str, dict[str, Any]] = {
    "seed": {"type": "INT", "min": 0, "max": 2**64 - 1, "control": True},
    "steps": {"type": "INT", "min": 1, "max": 10000},
    "denoise": {"type": "FLOAT", "min": 0.0, "max": 1.0, "step": 0.01},
    "sampler_name": {"type": "COMBO", "choices": ["euler", "dpmpp_2m"]},
    "tiled": {"type": "BOOLEAN"},
    "notes": {"type": "STRING", "multiline": True},
}


def typed_form(panel: Any, app: Any) -> dict[str, Any]:
    """The form's typed fields, flags, slider, seed control and Customize, on this binding."""
    from comfyrelay_krita.core import core

    inputs = {"seed": 5, "steps": 0, "denoise": 0.5, "sampler_name": "eulr", "tiled": True,
              "notes": "a\nb"}
    graph = {"1": {"class_type": "Node", "inputs": inputs},
             "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
             "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}
    workflow = core.Workflow(graph, "typed")
    typed = [i.model_copy(update=TYPES[i.name]) for i in workflow.inputs()]
    form = panel.form
    form.set_workflow(workflow, str(Path(os.environ["COMFYRELAY_CONFIG_DIR"]) / "typed.json"),
                      typed)
    app.processEvents()
    form.fields["1.denoise"].slider.setValue(80)  # the slider moves the spin box
    form.seed_field.set_control("increment")
    bindings = form.bindings(for_run=True)
    default_labels = form.shown_labels()
    panel.customize_button.click()
    form.editor.rows["1.steps"].check.click()
    app.processEvents()
    output_boxes = sorted(form.editor.outputs)
    form.editor.outputs["3"].click()  # Results from: only the SaveImage's files
    app.processEvents()
    return {
        "output_boxes": output_boxes,
        "picked_outputs": form.bindings().outputs,
        "saved_outputs": core.load_app(form.path).outputs,
        "classes": {k: type(f).__name__ for k, f in form.fields.items()},
        "flagged": sorted(k for k, f in form.fields.items() if f.problem),
        "denoise": form.fields["1.denoise"].value(),
        "next_seed": bindings.seed,
        "default_labels": default_labels,
        "app_labels": form.shown_labels(),
    }


def sources_form(panel: Any, app: Any) -> dict[str, Any]:
    """A combo per loader, labelled with its title, with its defaults; the region's combo."""
    from comfyrelay_krita.core import core

    graph = {
        "1": {"class_type": "LoadImage", "_meta": {"title": "Picture"},
              "inputs": {"image": "a.png"}},
        "2": {"class_type": "LoadImageMask", "_meta": {"title": "Area"},
              "inputs": {"image": "m.png", "channel": "red"}},
        "3": {"class_type": "LoadAudio", "_meta": {"title": "Sound"},
              "inputs": {"audio": "a.wav"}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}},
    }
    box = panel.sources
    box.set_workflow(core.Workflow(graph, "loaders"), {"1": "active"})
    app.processEvents()
    return {
        "source_labels": box.labels(),
        "source_shown": [combo.currentText() for combo in box.combos.values()],
        "source_items": [combo.count() for combo in box.combos.values()],
        "region_items": [box.region.itemText(i) for i in range(box.region.count())],
        "region_visible": box.region.isVisibleTo(panel),
    }


def main() -> None:
    pykrita, binding, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ["COMFYRELAY_CONFIG_DIR"] = str(out.parent / "comfyrelay")  # the app views
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
