"""Runs inside Krita (kritarunner): drives the installed plugin and reports back as JSON.

The test passes a JSON file in COMFYRELAY_TEST_IN ({"out": path, ...}); each function writes
its findings (or the traceback) to "out". kritarunner's exit code says nothing, so the
result file is the only verdict.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from comfyrelay_krita.core import core
from comfyrelay_krita.qt import QApplication, QByteArray
from comfyrelay_krita.results import CanvasJobs
from krita import Krita, Selection

PAYLOAD: dict[str, Any] = {}
KEEP: list[Any] = []
SLOT_ERRORS: list[str] = []  # tracebacks from Qt slots (see catch_slot_errors)


def reporting(check: Callable[[], dict[str, Any]]) -> Callable[..., None]:
    """kritarunner calls function(args); run the check and always write a verdict."""

    def run(args: Any = None) -> None:
        PAYLOAD.update(json.loads(Path(os.environ["COMFYRELAY_TEST_IN"]).read_text()))
        catch_slot_errors()
        try:
            result = check()
        except BaseException:
            result = {"error": traceback.format_exc()}
        with open(PAYLOAD["out"], "w") as f:
            json.dump(result, f)

    return run


def catch_slot_errors() -> None:
    """An exception in a Qt slot would open Krita's error dialog and wait for a click forever:
    keep it instead, and fail the check at the next spin."""

    def keep(kind: type[BaseException], error: BaseException, tb: Any) -> None:
        SLOT_ERRORS.append("".join(traceback.format_exception(kind, error, tb)))

    sys.excepthook = keep


def spin_until(done: Callable[[], bool], timeout: float = 60.0, interval: float = 0.01) -> bool:
    """Let Qt run (timers, the docker's poll) until `done` or the timeout."""
    end = time.monotonic() + timeout
    while not done():
        if SLOT_ERRORS:
            raise RuntimeError(f"in a Qt slot:\n{SLOT_ERRORS[0]}")
        if time.monotonic() > end:
            return False
        QApplication.processEvents()
        time.sleep(interval)
    return True


def pattern(x: int, y: int) -> tuple[int, int, int, int]:
    """An opaque B, G, R, A pixel that differs everywhere, so misplacement shows."""
    return (x * 4) % 256, (y * 4) % 256, (x * 7 + y * 3) % 256, 255


def painted_document() -> Any:
    width, height = PAYLOAD["width"], PAYLOAD["height"]
    doc = Krita.instance().createDocument(width, height, "test", "RGBA", "U8", "", 72.0)
    data = bytes(v for y in range(height) for x in range(width) for v in pattern(x, y))
    background = doc.rootNode().childNodes()[0]
    background.setPixelData(QByteArray(data), 0, 0, width, height)
    for name, (x, y, w, h, bgra) in PAYLOAD.get("layers", {}).items():
        layer = doc.createNode(name, "paintlayer")  # a solid patch, above the background
        layer.setPixelData(QByteArray(bytes(bgra) * (w * h)), x, y, w, h)
        doc.rootNode().addChildNode(layer, None)
    if PAYLOAD.get("selection"):
        selection = Selection()
        selection.select(*PAYLOAD["selection"], 255)
        if PAYLOAD.get("feather"):
            selection.feather(PAYLOAD["feather"])
        doc.setSelection(selection)
    doc.setActiveNode(background)  # as a painter has it: the selection made, a layer active
    doc.refreshProjection()
    doc.waitForDone()
    return doc


def describe(doc: Any) -> dict[str, Any]:
    """Layer stack top-down, and the newest layer's pixels over the whole canvas."""
    doc.waitForDone()
    nodes = [n for n in doc.rootNode().childNodes() if not n.type().endswith("mask")]
    top = nodes[-1]
    if top.type() == "grouplayer":  # a video's frames: the first frame's layer
        top = top.childNodes()[-1]
    bounds = top.bounds()
    pixels = bytes(top.pixelData(0, 0, doc.width(), doc.height()))
    return {
        "children": [n.name() for n in reversed(nodes[-1].childNodes())],  # a video's frames
        "layers": [n.name() for n in reversed(nodes)],
        "active": doc.activeNode().name() if doc.activeNode() else None,
        "bounds": [bounds.x(), bounds.y(), bounds.width(), bounds.height()],
        "pixels": base64.b64encode(pixels).decode(),
    }


@reporting
def flow() -> dict[str, Any]:
    """The plugin's session without widgets: canvas or selection in, a layer out."""
    doc = painted_document()
    settings = core.HostSettings(url=PAYLOAD["url"])
    session = core.HostSession()
    session.configure(settings.backend_settings(), settings.credentials())
    jobs = CanvasJobs(session)
    events: list[str] = []
    workflow = core.Workflow.load(PAYLOAD["workflow"])
    out_dir = Path(PAYLOAD["out"]).parent / "results"
    if PAYLOAD.get("narrow_canvas"):  # as if the canvas came out a pixel narrower
        from comfyrelay_krita import sources

        read = sources.read_region

        def narrower(doc: Any, rect: Any) -> Any:
            return read(doc, rect).copy(0, 0, rect.width - 1, rect.height)

        sources.read_region = narrower
    try:
        jobs.run(doc, workflow, core.Bindings(), PAYLOAD.get("region") == "selection", out_dir,
                 sources=[tuple(c) for c in PAYLOAD["sources"]] if "sources" in PAYLOAD
                 else None)
    except core.ComfyRelayError as exc:  # bad input: said, nothing sent
        jobs.close()
        return {"raised": str(exc), "busy": jobs.busy, **describe(doc)}

    failures: list[str] = []

    def record(event: Any) -> None:
        events.append(type(event).__name__)
        failures.extend([event.message] if type(event).__name__ == "JobFailed" else [])

    def idle() -> bool:
        jobs.pump(record)
        return not jobs.busy

    finished = spin_until(idle)
    jobs.close()
    pydantic = sys.modules["pydantic"].__file__
    errors = jobs.errors + failures
    kept = sorted(p.name for p in out_dir.glob("*.png"))
    result = {"finished": finished, "events": events, "errors": errors, "kept": kept,
              **describe(doc), **canvas(doc)}
    result["added"] = [{"name": layer.name(), "pixels": b64(layer.pixelData(0, 0, doc.width(),
                                                                            doc.height()))}
                       for layer in jobs.layers]
    return {**result, "pydantic": pydantic}


def b64(data: Any) -> str:
    return base64.b64encode(bytes(data)).decode()


def canvas(doc: Any) -> dict[str, Any]:
    """What the user sees (all layers merged) and the selection, over the whole canvas."""
    doc.refreshProjection()
    doc.waitForDone()
    selection = doc.selection()
    mask = selection.pixelData(0, 0, doc.width(), doc.height()) if selection else b""
    return {"projection": b64(doc.pixelData(0, 0, doc.width(), doc.height())),
            "selection_mask": b64(mask)}


@reporting
def scaled_result() -> dict[str, Any]:
    """A result of another size is fitted to the selection (no workflow needed)."""
    from comfyrelay_krita.layers import add_result_layer
    from comfyrelay_krita.pixels import Rect, load_image

    doc = painted_document()
    x, y, w, h = PAYLOAD["selection"]
    image = load_image(PAYLOAD["image"], (w, h))
    add_result_layer(doc, image, "scaled", Rect(x, y, w, h))
    return describe(doc)


@reporting
def docker() -> dict[str, Any]:
    """Drive the docker's widgets like a user: settings, Check, Run, maybe Cancel."""
    from comfyrelay_krita.docker import ComfyRelayDocker

    krita = Krita.instance()
    krita.setBatchmode(True)  # no dialogs when saving the .kra below
    doc = painted_document()
    dock = ComfyRelayDocker()
    panel = dock.panel
    panel.document = lambda: doc  # kritarunner has no views, hence no active document
    events: list[str] = []
    handle = panel.on_event

    def record(event: Any) -> None:
        events.append(type(event).__name__)
        handle(event)

    panel.on_event = record  # type: ignore[method-assign]  # watch what the docker sees

    editors: dict[str, Any] = panel.backend_box.editors  # QLineEdits for these fields
    editors["url"].setText(PAYLOAD["url"])
    editors["token"].setText(PAYLOAD.get("token", ""))
    panel.set_output_folder(str(Path(PAYLOAD["out"]).parent / "results"))
    editors["token"].editingFinished.emit()
    panel.sources.region.setCurrentIndex(panel.sources.region.findData(
        PAYLOAD.get("region", "canvas")))
    panel.load_workflow(PAYLOAD["workflow"])
    spin_until(lambda: panel.workflow is not None, 30)  # a UI-format one is converted first
    shown = {nid: combo.source() for nid, combo in panel.sources.combos.items()}
    for nid, source in PAYLOAD.get("sources", {}).items():  # picked as a user would
        combo = panel.sources.combos[nid]
        combo.showPopup()  # lists the document's layers
        combo.hidePopup()
        combo.setCurrentIndex(combo.findData(source))
    panel.check_button.click()
    spin_until(lambda: panel.server_status.text().startswith(("Connected", "Cannot")), 30)

    panel.run_button.click()
    running = not panel.run_button.isEnabled() and panel.cancel_button.isEnabled()
    if PAYLOAD.get("cancel"):  # once the server works on it
        spin_until(lambda: "JobProgress" in events or "JobQueued" in events, 30)
        panel.cancel_button.click()
    finished = spin_until(lambda: panel.run_button.isEnabled() and not panel.jobs.busy)

    kra = PAYLOAD["out"] + ".kra"
    doc.saveAs(kra)
    return {
        "finished": finished,
        "running": running,
        "events": events,
        "status": panel.status.text(),
        "status_style": panel.status.styleSheet(),
        "server_status": panel.server_status.text(),
        "progress": panel.progress.value(),
        "cancel_enabled": panel.cancel_button.isEnabled(),
        "inputs": sorted(panel.form.fields),
        "source_labels": panel.sources.labels(),
        "source_defaults": shown,
        "source_items": {nid: [combo.itemText(i) for i in range(combo.count())]
                         for nid, combo in panel.sources.combos.items()},
        "stored_sources": krita.readSetting("ComfyRelay", "loader_sources", ""),
        "stored_url": krita.readSetting("ComfyRelay", "url", ""),
        "stored_token": krita.readSetting("ComfyRelay", "token", ""),
        "kra": kra,
        **describe(doc),
        **canvas(doc),
    }


def docker_with_settings() -> tuple[Any, Any]:
    """A docker created after PAYLOAD["settings"] were saved in kritarc, as on a later start."""
    from comfyrelay_krita.docker import ComfyRelayDocker

    krita = Krita.instance()
    krita.setBatchmode(True)  # no dialogs when saving the .kra
    for key, value in PAYLOAD["settings"].items():
        krita.writeSetting("ComfyRelay", key, str(value))
    doc = painted_document()
    dock = ComfyRelayDocker()
    KEEP.append(dock)  # the docker owns the panel's widgets: it must outlive the check
    panel = dock.panel
    panel.document = lambda: doc  # kritarunner has no views, hence no active document
    return doc, panel


def job_ended(panel: Any, timeout: float = 30) -> bool:
    """After Run: wait until the docker is ready for the next one."""
    return spin_until(lambda: panel.run_button.isEnabled() and not panel.jobs.busy, timeout)


@reporting
def machine_docker() -> dict[str, Any]:
    """RunComfy machine from the docker: leftover shown and stopped, Launch, Ready, Run, Stop."""
    from comfyrelay_krita.comfyrelay.net import ratelimit

    # The test servers answer at once: lift the core's ~1 request/s RunComfy limit.
    ratelimit.configure("runcomfy", 200.0, 50)
    doc, panel = docker_with_settings()

    # The machine kind's boxes: scanned in the background at creation.
    kind_box, leftovers = panel.controls_boxes.boxes[0]
    seen = spin_until(lambda: bool(leftovers.labels), 15)
    rows = {sid: label.text() for sid, label in leftovers.labels.items()}
    for left in range(len(rows) - 1, -1, -1):
        leftovers.buttons[0].click()  # the first row's Stop

        def dropped(left: int = left) -> bool:  # the docker's timer drops the row
            return len(leftovers.labels) == left

        spin_until(dropped, 15)
    left_after = sorted(leftovers.labels)

    backend = panel.session.backend
    from comfyrelay_krita.comfyrelay.runcomfy.machine import Timing

    backend.timing = Timing(poll_first=0.05, poll_max=0.1, ready_timeout=15.0,
                            not_found_grace=5.0)
    box = kind_box
    buttons = {b.text(): b for b in box.buttons}
    started = time.monotonic()
    buttons["Launch"].click()
    click_seconds = time.monotonic() - started
    ready = spin_until(lambda: ": Ready (" in box.status.text(), 20)
    status_ready = box.status.text()

    panel.run_button.click()
    finished = job_ended(panel)
    time.sleep(0.05)
    QApplication.processEvents()
    status_after_job = box.status.text()
    server_id = backend.server_id

    buttons["Stop"].click()
    stopped = spin_until(lambda: ": Stopped (" in box.status.text()
                         and not panel.session.slot.working, 15)
    kra = PAYLOAD["out"] + ".kra"
    doc.saveAs(kra)
    result = {
        "seen": seen, "rows": rows, "left_after": left_after, "click_seconds": click_seconds,
        "ready": ready, "status_ready": status_ready, "finished": finished,
        "status": panel.status.text(), "status_after_job": status_after_job,
        "server_id": server_id, "stopped": stopped, "status_stopped": box.status.text(),
        "kra": kra, **describe(doc),
    }
    panel.close_session()
    return result


@reporting
def serverless_docker() -> dict[str, Any]:
    """RunComfy Serverless from the docker: a job RunComfy fails, one whose files come under
    `output`, then a cancel that RunComfy only takes note of."""
    from comfyrelay_krita.comfyrelay.net import ratelimit

    ratelimit.configure("runcomfy", 200.0, 50)  # the test server answers at once
    doc, panel = docker_with_settings()
    spin_until(lambda: panel.workflow is not None and panel.session.backend is not None, 30)
    panel.session.backend.poll_interval = 0.05  # RunComfy's own pace is 2 s
    prefix = panel.form.fields["3.filename_prefix"]
    report: dict[str, Any] = {}

    prefix.set_value("FAIL")  # the test server's node fails on it
    started = time.monotonic()
    panel.run_button.click()
    report["failed_finished"] = job_ended(panel)
    report["failed_seconds"] = time.monotonic() - started
    report["failed_status"] = panel.status.text()
    report["failed_style"] = panel.status.styleSheet()

    prefix.set_value("ComfyRelay")
    panel.run_button.click()
    report["finished"] = job_ended(panel)
    report["status"] = panel.status.text()
    report.update(describe(doc))

    panel.run_button.click()
    report["sent"] = spin_until(  # cancel once RunComfy has the request
        lambda: panel.status.text().startswith(("Queued", "Running")), 20)
    panel.cancel_button.click()
    report["cancel_finished"] = job_ended(panel)
    report["cancel_status"] = panel.status.text()
    report["cancel_style"] = panel.status.styleSheet()
    report["layers_after_cancel"] = describe(doc)["layers"]
    panel.close_session()
    return report


@reporting
def docker_run() -> dict[str, Any]:
    """The docker as the saved settings left it (back end, workflow): Run once, save the .kra."""
    doc, panel = docker_with_settings()
    spin_until(lambda: panel.workflow is not None, 30)
    panel.run_button.click()
    cancel_enabled = panel.cancel_button.isEnabled()
    finished = job_ended(panel)
    kra = PAYLOAD["out"] + ".kra"
    doc.saveAs(kra)
    result = {
        "finished": finished, "cancel_enabled": cancel_enabled,
        "status": panel.status.text(), "status_style": panel.status.styleSheet(),
        "preview_hidden": panel.preview.isHidden(), "kra": kra,
        "machine_box_hidden": not panel.controls_boxes.kind_shown, **describe(doc),
    }
    panel.close_session()
    return result
