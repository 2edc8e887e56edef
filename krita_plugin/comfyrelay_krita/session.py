"""Runs workflows on Krita documents: the canvas goes out, result images come back as layers.

No widgets here, so the docker and the headless tests drive the same code. Krita's API is
used on the Qt main thread only; the network, encoding the canvas (the runner's thread) and
decoding results (a decode thread) run elsewhere, so a 4K job never freezes the canvas for
long. A job's final event reaches the UI once its results are layers.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core import (
    Bindings,
    Event,
    InputFile,
    Job,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobOutput,
    JobRunner,
    JobStarted,
    Workflow,
)
from .layers import add_result_layer, unique_name
from .pixels import Rect, load_image, png_bytes, read_region, source_rect


@dataclass
class _Run:
    """What one job needs when its results arrive."""

    doc: Any
    rect: Rect
    from_selection: bool
    name: str
    out_dir: Path
    seed: int | None = None
    last_layer: Any = None  # the next output goes above it, keeping outputs in order


@dataclass
class _Decoding:
    """A result file being decoded off the main thread, to become a layer of `run`."""

    job_id: str
    run: _Run
    path: Path
    image: Future[Any]


class Session:
    """Submits jobs for documents and turns their image outputs into layers."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner
        self._runs: dict[str, _Run] = {}
        self.layers: list[Any] = []  # every layer added, newest last
        self.errors: list[str] = []  # results that could not become layers
        # QImage decoding is thread-safe and takes ~0.3 s for a 4K PNG: one thread, in order.
        self._decoder = ThreadPoolExecutor(1, thread_name_prefix="comfyrelay-decode")
        self._decoding: list[_Decoding] = []
        self._held: list[Event] = []  # final events of jobs whose results are not layers yet

    def run(self, doc: Any, workflow: Workflow, bindings: Bindings, use_selection: bool,
            out_dir: Path) -> str:
        """Send the canvas (or the selection's bounds) through `workflow`; return the job id.

        Result files are kept in out_dir: the layers hold the pixels, the files are the backup.
        """
        rect = source_rect(doc, use_selection)
        image = None  # a text-to-image workflow: nothing to upload
        if workflow.image_nodes() or workflow.media_nodes():
            pixels = read_region(doc, rect)  # Krita's API: on this thread
            # Encoding takes seconds at 4K: the runner's thread does it when it sends the job.
            image = InputFile("krita.png", make=lambda: png_bytes(pixels))
        job = Job(workflow, out_dir, bindings, image, label=workflow.name)
        job_id = self.runner.submit(job)
        from_selection = rect != Rect(0, 0, doc.width(), doc.height())
        self._runs[job_id] = _Run(doc, rect, from_selection, workflow.name, out_dir)
        return job_id

    def poll(self) -> list[Event]:
        """Handle what the runner reported; return the events for the UI."""
        events = self.runner.poll()
        for event in events:
            self._handle(event)
        self._place_decoded()
        self._held += [e for e in events if isinstance(e, FINAL)]
        pending = {d.job_id for d in self._decoding}
        ready = [e for e in self._held if getattr(e, "job_id", "") not in pending]
        self._held = [e for e in self._held if e not in ready]
        return [e for e in events if not isinstance(e, FINAL)] + ready

    def cancel(self, job_id: str | None = None) -> None:
        self.runner.cancel(job_id)

    @property
    def busy(self) -> bool:
        return self.runner.busy or bool(self._decoding or self._held)

    def close(self) -> None:
        self.runner.close()
        self._decoder.shutdown(wait=False, cancel_futures=True)
        self._runs.clear()

    def _handle(self, event: Event) -> None:
        run = self._runs.get(getattr(event, "job_id", ""))
        if run is None:
            return
        if isinstance(event, JobStarted):
            run.seed = event.seed
        elif isinstance(event, JobOutput) and event.kind == "image":
            # A selection's result is fitted to it; a whole-canvas result keeps its own size.
            size = (run.rect.width, run.rect.height) if run.from_selection else None
            image = self._decoder.submit(load_image, event.path, size)
            self._decoding.append(_Decoding(event.job_id, run, event.path, image))
        elif isinstance(event, FINAL):
            self._runs.pop(event.job_id)

    def _place_decoded(self) -> None:
        """Results decoded so far become layers, in the order they arrived."""
        while self._decoding and self._decoding[0].image.done():
            done = self._decoding.pop(0)
            try:
                image = done.image.result()
            except ValueError as exc:
                self.errors.append(str(exc))
                continue
            self._add_layer(done.run, done.path, image)

    def _add_layer(self, run: _Run, path: Path, image: Any) -> None:
        if not is_open(run.doc):
            self.errors.append(f"{path.name}: its document was closed; the file is in "
                               f"{path.parent}.")
            return
        at = run.rect
        at = Rect(at.x, at.y, image.width(), image.height())
        base = run.name if run.seed is None else f"{run.name} · seed {run.seed}"
        name = unique_name(run.doc, base)
        run.last_layer = add_result_layer(run.doc, image, name, at, run.last_layer)
        self.layers.append(run.last_layer)


FINAL = (JobFinished, JobFailed, JobCancelled)


def is_open(doc: Any) -> bool:
    try:
        from krita import Krita  # only inside Krita

        return any(d == doc for d in Krita.instance().documents())
    except ImportError:
        return True
