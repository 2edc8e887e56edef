"""Runs inside a full Krita window under Xvfb (the gui_plugin driver calls one function by
COMFYRELAY_TEST_CHECK): what needs Krita's main window, such as importAnimation.

Each function returns its findings as a dict; the driver writes it and exits Krita."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from comfyrelay_krita.animation import AnimatedLayer, can_animate, set_playback_range
from comfyrelay_krita.core import core
from comfyrelay_krita.history import read_history
from comfyrelay_krita.qt import ARGB32, QApplication, QImage, QPainter, QtGui
from comfyrelay_krita.results import CanvasJobs
from krita import Krita

PAYLOAD: dict[str, Any] = {}
QColor = QtGui.QColor
QLinearGradient = QtGui.QLinearGradient


def load_payload() -> None:
    PAYLOAD.update(json.loads(Path(os.environ["COMFYRELAY_TEST_IN"]).read_text()))


def settle(doc: Any) -> None:
    for _ in range(5):
        doc.waitForDone()
        QApplication.processEvents()
        time.sleep(0.005)


def shown_document(width: int, height: int) -> Any:
    """A new document in a view of Krita's window, as a painter has one."""
    krita = Krita.instance()
    window = krita.activeWindow() or krita.windows()[0]
    doc = krita.createDocument(width, height, "anim", "RGBA", "U8", "", 72.0)
    view = window.addView(doc)
    window.activate()
    window.showView(view)
    QApplication.setActiveWindow(window.qwindow())  # no window manager under Xvfb
    settle(doc)
    return doc


def frame_colour(n: int) -> tuple[int, int, int]:
    """A B, G, R colour for frame n that differs from its neighbours'."""
    return (n * 10) % 256, (255 - n * 7) % 256, (n * 37 + 50) % 256


def solid_frames(folder: Path, count: int, width: int, height: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for n in range(count):
        image = QImage(width, height, ARGB32)
        b, g, r = frame_colour(n)
        image.fill(0xFF000000 | r << 16 | g << 8 | b)
        path = folder / f"frame_{n:05d}.png"
        image.save(str(path), "PNG")
        files.append(path)
    return files


def keyframe_colours(doc: Any, layer: Any, times: range) -> list[list[int] | None]:
    """Each time's pixel (0, 0) as B, G, R, A, None where the layer has no keyframe."""
    seen: list[list[int] | None] = []
    for t in times:
        data = bytes(layer.pixelDataAtTime(0, 0, 1, 1, t))
        seen.append(list(data) if data else None)
    return seen


def repeated_import() -> dict[str, Any]:
    """A `frames`-frame result made into an animated layer `times` times in a row."""
    load_payload()
    width, height, count = 64, 48, PAYLOAD["frames"]
    doc = shown_document(width, height)
    files = solid_frames(Path(PAYLOAD["out"]).parent / "frames", count, width, height)
    want = [[*frame_colour(n), 255] for n in range(count)]
    good, bad, layers = 0, [], []
    started = time.monotonic()
    for run in range(PAYLOAD["times"]):
        doc.setCurrentTime(0)
        assembly = AnimatedLayer(doc, files, 0, f"result {run + 1}", fps=12.0)
        while not assembly.step():
            QApplication.processEvents()  # as the docker's timer does between frames
        settle(doc)
        if assembly.error:
            bad.append(assembly.error)
            continue
        seen = keyframe_colours(doc, assembly.layer, range(count + 1))
        if seen[:count] == want and seen[count] is None:
            good += 1
        else:
            bad.append(f"run {run + 1}: {seen}")
        layers.append(assembly.layer.name())
    doc.setModified(False)
    return {
        "can_animate": can_animate(doc),
        "good": good, "bad": bad[:3],
        "layers": [n.name() for n in reversed(doc.rootNode().childNodes())],
        "animated": [n.animated() for n in reversed(doc.rootNode().childNodes())],
        "seconds": time.monotonic() - started,
        "fps": doc.framesPerSecond(),
        "clip_end": doc.fullClipRangeEndTime(),
        "krita": Krita.instance().version(),
    }


def animated_document(width: int, height: int, count: int) -> Any:
    """A shown document whose one paint layer has `count` keyframes of solid colours
    (frame_colour), its playback range exactly those frames."""
    doc = shown_document(width, height)
    files = solid_frames(Path(PAYLOAD["out"]).parent / "source", count, width, height)
    painted = AnimatedLayer(doc, files, 0, "painted")
    while not painted.step():
        QApplication.processEvents()
    doc.setFullClipRangeStartTime(0)
    doc.setFullClipRangeEndTime(count - 1)
    set_playback_range(doc, 0, count - 1)
    doc.setCurrentTime(0)
    settle(doc)
    return doc


def run_jobs(doc: Any, sources: list[tuple[str, str]],
             frames: tuple[int, int] | None = None) -> tuple[CanvasJobs, list[str]]:
    """PAYLOAD's workflow through the plugin's session on `doc`, pumped as the docker does."""
    session = core.HostSession()
    settings = core.HostSettings(url=PAYLOAD["url"])
    session.configure(settings.backend_settings(), settings.credentials())
    jobs = CanvasJobs(session)
    events: list[str] = []
    workflow = core.Workflow.load(PAYLOAD["workflow"])
    out_dir = Path(PAYLOAD["out"]).parent / "results"
    jobs.run(doc, workflow, core.Bindings(), False, out_dir, sources=sources, frames=frames)
    end = time.monotonic() + 120
    while (jobs.busy or "RunEnded" not in events) and time.monotonic() < end:
        jobs.pump(lambda e: events.append(type(e).__name__))
        QApplication.processEvents()
        time.sleep(0.01)
    return jobs, events


def animation_round_trip() -> dict[str, Any]:
    """A 4-frame animation out as an MP4 (the Animation source), back as one layer."""
    load_payload()
    count = PAYLOAD["frames"]
    doc = animated_document(64, 48, count)
    before = [n.name() for n in reversed(doc.rootNode().childNodes())]
    span = [doc.playBackStartTime(), doc.playBackEndTime(), doc.fullClipRangeStartTime(),
            doc.fullClipRangeEndTime()]
    jobs, events = run_jobs(doc, [("1", "animation")])
    settle(doc)
    layers = jobs.layers
    result = layers[-1] if layers else None
    doc.setModified(False)
    return {
        "before": before,
        "span": span,
        "events": events,
        "errors": jobs.errors,
        "added": len(layers),
        "layers": [n.name() for n in reversed(doc.rootNode().childNodes())],
        "animated": bool(result and result.animated()),
        "type": result.type() if result else None,
        "colours": keyframe_colours(doc, result, range(count + 1)) if result else [],
        "centre": [list(bytes(result.pixelDataAtTime(32, 24, 1, 1, t))) for t in
                   range(count)] if result else [],
        "slices_ms": [s * 1000 for s in jobs.slices],
        "notes": jobs.notes,
        "bounds": _bounds(result) if result else None,
        "time": doc.currentTime(),
        "krita": Krita.instance().version(),
    }


def _bounds(layer: Any) -> list[int]:
    rect = layer.bounds()
    return [rect.x(), rect.y(), rect.width(), rect.height()]


def noisy_frames(folder: Path, count: int, width: int, height: int) -> list[Path]:
    """`count` frames that differ: a gradient shifted per frame, so nothing is cached."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for n in range(count):
        image = QImage(width, height, ARGB32)
        painter = QPainter(image)
        gradient = QLinearGradient(n * 20, 0, width, height)
        gradient.setColorAt(0, QColor(*frame_colour(n)))
        gradient.setColorAt(1, QColor(*frame_colour(n + 7)))
        painter.fillRect(0, 0, width, height, gradient)
        painter.end()
        path = folder / f"frame_{n:05d}.png"
        image.save(str(path), "PNG", 80)
        files.append(path)
    return files


def read_and_send_bench() -> dict[str, Any]:
    """Every main-thread slice while a `frames`-frame range is read and sent: the Run press,
    then each pump of the docker's timer until the job is handed to the runner."""
    load_payload()
    width, height, count = PAYLOAD["width"], PAYLOAD["height"], PAYLOAD["frames"]
    doc = shown_document(width, height)
    files = noisy_frames(Path(PAYLOAD["out"]).parent / "bench", count, width, height)
    painted = AnimatedLayer(doc, files, 0, "painted")
    while not painted.step():
        QApplication.processEvents()
    set_playback_range(doc, 0, count - 1)
    settle(doc)
    session = core.HostSession()
    settings = core.HostSettings(url=PAYLOAD["url"])
    session.configure(settings.backend_settings(), settings.credentials())
    jobs = CanvasJobs(session)
    workflow = core.Workflow.load(PAYLOAD["workflow"])
    started = time.perf_counter()
    jobs.run(doc, workflow, core.Bindings(), False, Path(PAYLOAD["out"]).parent / "results",
             sources=[("1", "animation")])
    press = time.perf_counter() - started
    pumps: list[float] = []
    gaps: list[float] = []  # between pumps: what Qt did meanwhile (painting, input)
    while jobs._reading is not None:
        before = time.perf_counter()
        jobs.pump()
        after = time.perf_counter()
        pumps.append(after - before)
        QApplication.processEvents()
        gaps.append(time.perf_counter() - after)
    total = time.perf_counter() - started
    session.cancel()
    return {"press_ms": press * 1000, "pump_ms": [p * 1000 for p in pumps],
            "read_ms": [s * 1000 for s in jobs.slices], "total_s": total,
            "frames": len(jobs.slices), "krita": Krita.instance().version()}


def each_frame() -> dict[str, Any]:
    """Each frame on a `frames`-frame document: a run per frame, one animated layer; then
    Run Again's range (the history entry's) with the playback range since shortened."""
    load_payload()
    count = PAYLOAD["frames"]
    doc = animated_document(64, 48, count)
    jobs, events = run_jobs(doc, [("1", "each-frame")])
    settle(doc)
    first = jobs.layers[-1] if jobs.layers else None
    record = read_history(doc).runs[-1] if read_history(doc).runs else None
    found: dict[str, Any] = {
        "events": events, "errors": list(jobs.errors), "added": len(jobs.layers),
        "layers": [n.name() for n in reversed(doc.rootNode().childNodes())],
        "animated": bool(first and first.animated()),
        "colours": keyframe_colours(doc, first, range(count + 1)) if first else [],
        "frames": record.frames if record else None,
    }
    set_playback_range(doc, 0, 1)  # Run Again must read the run's range, not this one
    if first is not None:
        first.setVisible(False)  # the painted frames again, not their inverse
        settle(doc)
    again, _ = run_jobs(doc, [("1", "each-frame")],
                        frames=(record.frames[0], record.frames[-1]) if record else None)
    settle(doc)
    second = again.layers[-1] if again.layers else None
    found["again_errors"] = again.errors
    found["again"] = keyframe_colours(doc, second, range(count + 1)) if second else []
    doc.setModified(False)
    return found


def animation_refusals() -> dict[str, Any]:
    """Animation where it cannot go: a loader capped below the range; the document closed
    while its frames are read."""
    load_payload()
    doc = animated_document(64, 48, 4)
    session = core.HostSession()
    settings = core.HostSettings(url=PAYLOAD["url"])
    session.configure(settings.backend_settings(), settings.credentials())
    jobs = CanvasJobs(session)
    out_dir = Path(PAYLOAD["out"]).parent / "results"
    found: dict[str, Any] = {}
    capped = core.Workflow.load(PAYLOAD["capped"])
    try:
        jobs.run(doc, capped, core.Bindings(), False, out_dir, sources=[("1", "animation")])
    except core.ComfyRelayError as exc:
        found["capped"] = str(exc)
    found["busy_after_capped"] = jobs.busy
    workflow = session.open_workflow(PAYLOAD["workflow"])  # as the docker opens it
    assert workflow is not None
    jobs.run(doc, workflow, core.Bindings(), False, out_dir, sources=[("1", "animation")])
    jobs.pump()  # one frame read
    doc.setModified(False)
    doc.close()
    events: list[str] = []

    def note(event: Any) -> None:
        if not isinstance(event, core.WorkflowOpened):  # the run's events only
            events.append(type(event).__name__)

    end = time.monotonic() + 30
    while jobs.busy and time.monotonic() < end:
        jobs.pump(note)
        QApplication.processEvents()
        time.sleep(0.01)
    found.update({"errors": jobs.errors, "busy": jobs.busy, "events": events,
                  "status": session.view.status, "view_error": session.view.error,
                  "layers": len(jobs.layers)})
    return found


def video_into_still_document() -> dict[str, Any]:
    """A clip result on a document without animation, the current frame `at`: one animated
    layer from there, the frame range widened, the clip's frame rate taken."""
    load_payload()
    doc = shown_document(PAYLOAD["width"], PAYLOAD["height"])
    doc.setCurrentTime(PAYLOAD["at"])
    settle(doc)
    jobs, events = run_jobs(doc, [("1", "keep")])
    settle(doc)
    layer = jobs.layers[-1] if jobs.layers else None
    doc.setModified(False)
    return {
        "events": events, "errors": jobs.errors, "added": len(jobs.layers),
        "layers": [n.name() for n in reversed(doc.rootNode().childNodes())],
        "animated": bool(layer and layer.animated()),
        "colours": keyframe_colours(doc, layer, range(PAYLOAD["at"] + 6)) if layer else [],
        "fps": doc.framesPerSecond(), "clip_end": doc.fullClipRangeEndTime(),
        "playback_end": doc.playBackEndTime(),
    }
