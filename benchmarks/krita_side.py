"""Runs inside Krita (kritarunner): times the plugin's main-thread work. Host: benchmarks/krita.py.

The host passes a JSON file in COMFYRELAY_TEST_IN ({"out": path, ...}) and reads back what
`bench` wrote to "out" (figures, or the traceback): kritarunner's exit code says nothing.

The plugin is timed as shipped: its functions are wrapped here (class and module attributes
replaced before the docker is built), so the split between importing a result and the rest of
a pump needs no hooks in the plugin itself.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comfyrelay_krita import docker, pixels, results, sources
from comfyrelay_krita import panel as panel_module
from comfyrelay_krita.qt import WRITE_ONLY, QBuffer, QByteArray, QtGui
from krita import Krita
from krita_checks import KEEP, PAYLOAD, SLOT_ERRORS, reporting, spin_until

JOBS = itertools.count(1)  # numbers the jobs, to make each canvas unique


@dataclass
class Probe:
    """What the wrappers saw during one job (only while `recording`)."""

    recording: bool = False
    importing: float = 0.0  # ms spent turning results into layers in the current pump
    slices: list[tuple[float, float]] = field(default_factory=list)  # (pump ms, import ms)
    # ms per part, summed over the job: the Run press and its pixel read and PNG encode;
    # decoding the result file and making it a layer (both inside the import).
    parts: dict[str, float] = field(default_factory=dict)


PROBE = Probe()


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def adding(into: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a function so each call's time is added to PROBE.parts[into]."""

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                PROBE.parts[into] = PROBE.parts.get(into, 0.0) + ms_since(start)

        return timed

    return wrap


def instrument() -> None:
    """Replace the plugin's entry points with timed ones; the docker binds them at creation."""
    replace(panel_module.Panel, "pump", pump_slice)
    replace(panel_module.Panel, "run", run_press)
    replace(results.CanvasJobs, "_add_layer", result_import)
    # sources and results imported these by name: wrap their own references.
    # png_bytes runs on the runner's thread (InputFile.make): timed, but not a UI slice.
    # load_image runs on the decode thread: timed, not a UI slice either.
    for module, name, part in [(sources, "read_region", "read"), (sources, "png_bytes", "encode"),
                               (results, "load_image", "decode")]:
        replace(module, name, adding(part))


def replace(owner: Any, name: str, wrap: Callable[[Callable[..., Any]], Any]) -> None:
    """owner.name = wrap(owner.name), by name: mypy forbids assigning to a method."""
    setattr(owner, name, wrap(getattr(owner, name)))


def pump_slice(pump: Callable[[Any], None]) -> Callable[[Any], None]:
    """Each pump while recording is a slice: (its ms, the ms of result imports inside it)."""

    def timed_pump(self: Any) -> None:
        PROBE.importing = 0.0
        start = time.perf_counter()
        try:
            pump(self)
        finally:
            if PROBE.recording:
                PROBE.slices.append((ms_since(start), PROBE.importing))

    return timed_pump


def run_press(run: Callable[[Any], None]) -> Callable[[Any], None]:
    timed = adding("press")(run)

    def timed_run(self: Any) -> None:  # no *args: PyQt would pass clicked's `checked` on
        timed(self)

    return timed_run


def result_import(add_layer: Callable[..., None]) -> Callable[..., None]:
    """CanvasJobs._add_layer: the decoded result becomes a layer (pixels, add)."""

    def timed_add_layer(self: Any, *args: Any) -> None:
        start = time.perf_counter()
        try:
            add_layer(self, *args)
        finally:
            PROBE.importing += ms_since(start)

    return timed_add_layer


def canvas(width: int, height: int, raw: str) -> Any:
    """A document whose background holds the host's B, G, R, A bytes (gradient + noise)."""
    doc = Krita.instance().createDocument(width, height, "bench", "RGBA", "U8", "", 72.0)
    background = doc.rootNode().childNodes()[0]
    background.setPixelData(QByteArray(Path(raw).read_bytes()), 0, 0, width, height)
    doc.setActiveNode(background)
    doc.refreshProjection()
    doc.waitForDone()
    return doc


def docker_panel(holder: list[Any]) -> Any:
    """The real docker, set up as a user would, running on whatever document holder[0] is."""
    krita = Krita.instance()
    krita.setBatchmode(True)
    dock = docker.ComfyRelayDocker()
    KEEP.append(dock)
    panel = dock.panel
    panel.document = lambda: holder[0]  # kritarunner has no views, hence no active document
    editors: dict[str, Any] = panel.backend_box.editors  # QLineEdits for these fields
    editors["url"].setText(PAYLOAD["url"])
    panel.set_output_folder(PAYLOAD["results"])
    editors["token"].editingFinished.emit()  # stores the settings, builds the back end
    panel.load_workflow(PAYLOAD["workflow"])
    return panel


def one_job(panel: Any, doc: Any) -> dict[str, Any]:
    """Press Run, let the docker pump until the job has ended, then drop its layer again."""
    background = doc.rootNode().childNodes()[0]
    # A canvas sent before is a cache hit for ComfyUI (it hashes LoadImage's file): nothing
    # would run. One changed pixel per job makes every job a full one.
    mark = next(JOBS) % 256
    background.setPixelData(QByteArray(bytes([mark, 0, 0, 255])), 0, 0, 1, 1)
    doc.refreshProjection()
    doc.waitForDone()
    doc.setActiveNode(background)
    PROBE.slices, PROBE.parts, PROBE.recording = [], {}, True
    started = time.perf_counter()
    panel.run_button.click()
    if SLOT_ERRORS:
        raise RuntimeError(f"pressing Run:\n{SLOT_ERRORS[0]}")
    jobs = panel.jobs
    finished = spin_until(lambda: panel.run_button.isEnabled() and not jobs.busy,
                          PAYLOAD["job_timeout"], interval=0.005)
    PROBE.recording = False
    status, layers = panel.status.text(), list(jobs.layers)
    if not finished or not status.startswith("Done") or not layers:
        raise RuntimeError(f"job did not end with a layer: {status!r} finished={finished}")
    bounds = layers[0].bounds()
    if (bounds.width(), bounds.height()) != (doc.width(), doc.height()):
        raise RuntimeError(f"the result layer is {bounds.width()}×{bounds.height()}")
    for layer in layers:  # the next job starts from the same canvas and layer stack
        layer.remove()
    jobs.layers.clear()
    doc.waitForDone()
    return {"job_ms": ms_since(started), "slices": PROBE.slices, "parts": PROBE.parts}


def responsiveness() -> dict[str, Any]:
    """Jobs per canvas size; a small job first warms up imports, sockets and image codecs."""
    instrument()
    holder: list[Any] = [canvas(64, 64, PAYLOAD["warmup"])]
    panel = docker_panel(holder)
    one_job(panel, holder[0])
    jobs: dict[str, list[dict[str, Any]]] = {}
    for width, height, raw in PAYLOAD["sizes"]:
        holder[0] = canvas(width, height, raw)
        jobs[f"{width}x{height}"] = [one_job(panel, holder[0])
                                     for _ in range(PAYLOAD["repeats"])]
        holder[0].close()
    panel.close_session()
    return jobs


def encoded(image: Any, fmt: str, quality: int) -> bytes:
    """What QImage.save writes: the same path as the plugin's png_bytes, with a quality."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(WRITE_ONLY)
    if not image.save(buffer, fmt, quality):
        raise RuntimeError(f"Qt cannot write {fmt} here")
    buffer.close()
    return data.data()


def png_level_class(data: bytes) -> int:
    """FLEVEL of the first IDAT's zlib header: 0 (levels 0-1), 1 (2-5), 2 (6), 3 (7-9).

    Proves which zlib level Qt's PNG "quality" really chose."""
    at = data.index(b"IDAT") + 4
    return data[at + 1] >> 6


def encode_costs() -> dict[str, Any]:
    """Read the canvas and encode it in each format, `repeats` times; sizes from the last."""
    width, height, raw = PAYLOAD["encode_size"]
    doc = canvas(width, height, raw)
    rect = pixels.Rect(0, 0, width, height)
    read_ms: list[float] = []
    cases: list[dict[str, Any]] = []
    writable = {f.data().decode().upper() for f in QtGui.QImageWriter.supportedImageFormats()}
    for fmt, quality in PAYLOAD["formats"]:
        if fmt not in writable:  # e.g. WEBP needs Qt's optional imageformats plugin
            cases.append({"format": fmt, "quality": quality, "missing": True})
            continue
        times: list[float] = []
        for _ in range(PAYLOAD["repeats"]):
            start = time.perf_counter()
            image = pixels.read_region(doc, rect)
            read_ms.append(ms_since(start))
            data = encoded(image, fmt, quality)  # quality -1: Qt's default
            times.append(ms_since(start))
        level = png_level_class(data) if fmt == "PNG" else None
        cases.append({"format": fmt, "quality": quality, "ms": times, "bytes": len(data),
                      "flevel": level})
    doc.close()
    return {"size": [width, height], "read_ms": read_ms, "cases": cases,
            "plugin_quality": pixels.PNG_QUALITY}


@reporting
def bench() -> dict[str, Any]:
    return {"responsiveness": responsiveness(), "encode": encode_costs()}
