"""Runs workflows on Krita documents: the canvas, layers and the selection go out, result
images come back as layers (masked by the selection when it went out as a mask).

No widgets here, so the docker and the headless tests drive the same code. Krita's API is
used on the Qt main thread only; encoding the canvas runs on the runner's thread and
decoding results on a decode thread, so a 4K job never freezes the canvas for long. The
session holds a job's final event until its results are layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .animation import (
    AnimatedLayer,
    Frames,
    Placement,
    add_frame_layers,
    can_animate,
    extract_frames,
    place_frame,
)
from .core import core
from .history import add_record
from .layers import add_result_layer, unique_name
from .pixels import Rect, apply_mask, load_fitted, scaled_note, source_rect
from .qt import QImage
from .sources import (
    ANIMATION,
    EACH_FRAME,
    Choice,
    check_choices,
    defaults,
    frame_png,
    placeholders,
    read_media,
    video_loaders,
)
from .timeline import FrameReader, apng_file, mp4_file, playback_range

SHOWN_KINDS = (core.MediaKind.IMAGE, core.MediaKind.VIDEO)  # become layers; the rest stay files


@dataclass
class Target:
    """Where one run's results go."""

    doc: Any
    rect: Rect
    from_selection: bool
    name: str
    seed: int | None = None
    last_layer: Any = None  # the next result goes above it, keeping results in order
    active_before: Any = None  # the layer active as an animated result began to go in
    mask: bytes | None = None  # the selection over `rect`: results are masked by it
    start_frame: int = 0  # an animated result's first frame: the current one at the start
    frames: range | None = None  # the frame range an animation run read
    each_frame: bool = False  # a job per frame, the results one animated layer
    frame_files: dict[int, Path] = field(default_factory=dict)  # frame -> placed result file
    held: list[str] = field(default_factory=list)  # jobs held until their layer is made
    expected: int | None = None  # frames to await: Each frame's range, a batch once ended
    # An animation run's image batch from one output node becomes its frames: (job, node).
    batch: tuple[str, str] | None = None
    batch_seen: int = 0

    @property
    def collecting(self) -> bool:
        """Results are being gathered into one animated layer."""
        return self.each_frame or self.batch is not None


class _BatchEnd:
    """Decoded after the last image of a batch (the decode thread keeps order): the batch is
    complete once this is placed."""

    scaled_from = None


@dataclass
class _Still:
    """A still result as its layer shows it; `scaled_from` its own size when scaled."""

    image: QImage
    scaled_from: tuple[int, int] | None


@dataclass
class _Placed:
    """A result as a canvas-sized frame file of an animated layer."""

    file: Path
    scaled_from: tuple[int, int] | None


@dataclass
class _Reading:
    """A run waiting for its document's frames (the Animation source), read a frame a pump;
    then its job goes out with them to each of `loaders`: an MP4 to those in `video`, an
    animated PNG to image loaders."""

    run: Any  # core's Run
    reader: FrameReader
    loaders: list[str]
    fps: float
    job: core.Job  # the other media, read when Run was pressed
    each_frame: bool = False  # a job per frame (a PNG each) rather than one file
    video: set[str] = field(default_factory=set)


@dataclass
class _Decoding:
    """A result file being decoded off the main thread, to become a layer of `target`."""

    job_id: str
    target: Target
    path: Path
    image: Future[Any]  # a _Still, a video's Frames, or a frame's _Placed file
    frame: int | None = None  # Each frame: the frame the result is for


class CanvasJobs:
    """Sends documents through the session and turns image results into layers.
    Owned by the Qt main thread."""

    def __init__(self, session: core.HostSession) -> None:
        self.session = session
        self.layers: list[Any] = []  # every layer added, newest last
        self.errors: list[str] = []  # results that could not become layers
        self.notes: list[str] = []  # the last run's, beside its status (a result scaled)
        # QImage decoding is thread-safe and takes ~0.3 s for a 4K PNG: one thread, in order.
        self._decoder = ThreadPoolExecutor(1, thread_name_prefix="comfyrelay-decode")
        self._decoding: list[_Decoding] = []
        # A frame a pump; the jobs whose results it holds are released when it is done.
        self._assembling: tuple[_Decoding, AnimatedLayer, list[str]] | None = None
        self._reading: _Reading | None = None
        self.slices: list[float] = []  # seconds each frame read held the main thread
        # The newest result: its document, the layer active just before it went in, itself.
        self._newest: tuple[Any, Any, Any] | None = None

    def run(self, doc: Any, workflow: core.Workflow, bindings: core.Bindings,
            use_selection: bool, out_dir: Path, workflow_path: str = "",
            sources: Sequence[Choice] | None = None,
            frames: tuple[int, int] | None = None) -> str:
        """Send the canvas (or the selection's bounds and a margin) through `workflow`, each
        loader fed from its source (None: the defaults); return the job id.

        Animation and Each frame read the playback range (or `frames`, first and last, as a
        history entry kept) a frame a pump; the job, or a job per frame, goes out after.
        Result files are kept in out_dir: the layers hold the pixels, the files are the backup.
        Raises WorkflowError or InvalidValues, before any pixel is read, for sources or values
        that cannot work. The run's history entry goes into `doc` (with `workflow_path`).
        """
        choices = list(defaults(workflow) if sources is None else sources)
        check_choices(doc, workflow, choices)
        self.notes.clear()
        self.session.check_values(workflow, bindings, placeholders(workflow, choices))
        rect = source_rect(doc, use_selection)
        sent = read_media(doc, choices, rect)  # Krita's API: on this thread
        whole = rect == Rect(0, 0, doc.width(), doc.height())
        animation = [nid for nid, source in choices if source == ANIMATION]
        each = [nid for nid, source in choices if source == EACH_FRAME]
        times = range(frames[0], frames[1] + 1) if frames else playback_range(doc)
        reads = bool(animation or each)
        collect = bool(each) and can_animate(doc)  # headless: a layer per frame's result
        target = Target(doc, rect, not whole, workflow.name, mask=sent.mask,
                        start_frame=times.start if reads else doc.currentTime(),
                        frames=times if reads else None, each_frame=collect,
                        expected=len(times) if collect else None,
                        last_layer=self._stacked_on(doc))
        run = self.session.start_run(workflow.name, data=target, workflow_path=workflow_path,
                                     bindings=bindings, feeding=reads,
                                     noun="frame" if each else "")
        job = core.Job(workflow, out_dir, bindings, label=workflow.name,
                       media=tuple(sent.media))
        if not reads:
            return self.session.submit(run, job)
        reader = FrameReader(doc, rect, times, is_open)
        self._reading = _Reading(run, reader, animation or each, float(doc.framesPerSecond()),
                                 job, each_frame=bool(each), video=video_loaders(workflow))
        return ""  # sent once its frames are read (see _read_frames)

    def pump(self, handle: Any = None) -> None:
        """Read a frame or place what was decoded, then let the session hand out what
        arrived."""
        self._read_frames()
        self._place_decoded()

        def on_event(event: core.HostEvent) -> None:
            self.handle(event)
            if handle is not None:
                handle(event)

        self.session.pump(on_event)

    def handle(self, event: core.HostEvent) -> None:
        if isinstance(event, core.RunEnded):
            self._record(event)
            return
        run = self.session.run
        target = run.data if run is not None else None
        if not isinstance(target, Target):
            return
        if isinstance(event, core.JobStarted):
            target.seed = event.seed if target.seed is None else target.seed
        elif isinstance(event, core.FINAL_EVENTS) and target.batch is not None \
                and event.job_id == target.batch[0]:
            self._batch_ended(event, target)
        elif isinstance(event, core.FINAL_EVENTS) and target.each_frame:
            self._check_frame_ended(event, target, run)
        elif isinstance(event, core.JobOutput) and event.kind in SHOWN_KINDS:
            if target.each_frame and self._take_frame(event, target, run):
                return
            if self._take_batch(event, target):
                return
            work: Future[Any]
            if event.kind == core.MediaKind.VIDEO or event.animated:  # frames, off this thread
                folder = event.path.with_name(f"{event.path.stem}_frames")
                placed = _placement(target)
                work = self._decoder.submit(extract_frames, event.path, folder, placed)
            else:
                work = self._decoder.submit(_decode, event.path, target.rect, target.mask)
            self.session.hold(event.job_id)
            self._decoding.append(_Decoding(event.job_id, target, event.path, work))

    def _read_frames(self) -> None:
        """One more frame of an Animation source; with the last, the job goes out."""
        reading = self._reading
        if reading is None:
            return
        if reading.run.cancelled:
            self._reading = None
            self.session.end_feed(reading.run)
            return
        if not reading.reader.step():
            return
        self._reading = None
        self.slices.extend(reading.reader.slices)
        if reading.reader.error:  # said by the session's view, as a refused Run is
            self.session.refuse(reading.reader.error, reading.run)
            return
        if reading.each_frame:
            self._submit_each(reading)
        else:
            # Each made once, and only when a loader reads it (the runner's thread).
            images, fps = reading.reader.images, reading.fps
            files = {True: mp4_file(images, fps), False: apng_file(images, fps)}
            media = tuple(core.MediaInput(nid, files[nid in reading.video])
                          for nid in reading.loaders)
            job = reading.job
            job.media = job.media + media
            self.session.submit(reading.run, job)
        self.session.end_feed(reading.run)

    def _submit_each(self, reading: _Reading) -> None:
        """A job per frame, tagged with its frame, the frame's canvas to each loader."""
        base = reading.job
        for time, image in zip(reading.reader.times, reading.reader.images, strict=True):
            png = frame_png(image)
            media = base.media + tuple(core.MediaInput(nid, png) for nid in reading.loaders)
            job = core.Job(base.workflow, base.out_dir, base.bindings,
                           label=f"{base.label} · frame {time}", media=media)
            self.session.submit(reading.run, job, tag=time)

    def _take_frame(self, event: core.JobOutput, target: Target, run: Any) -> bool:
        """An Each frame result, placed on a canvas-sized file to become its frame of one
        animated layer; False when it is not one (a second output, a video, no window)."""
        frame = run.jobs.get(event.job_id)
        taken = {d.frame for d in self._decoding if d.target is target}
        if (event.kind != core.MediaKind.IMAGE or not isinstance(frame, int)
                or frame in target.frame_files or frame in taken or not can_animate(target.doc)):
            return False
        doc = target.doc
        work = self._decoder.submit(_placed_frame, event.path, target, doc.width(),
                                    doc.height())
        self.session.hold(event.job_id)
        target.held.append(event.job_id)
        self._decoding.append(_Decoding(event.job_id, target, event.path, work, frame))
        return True

    def _take_batch(self, event: core.JobOutput, target: Target) -> bool:
        """An animation run's image batch from one output node: each image a frame of one
        animated layer, from the run's first frame on; False for anything else."""
        if (target.frames is None or target.each_frame or event.kind != core.MediaKind.IMAGE
                or event.animated or not can_animate(target.doc)):
            return False
        target.batch = target.batch or (event.job_id, event.node_id)
        if target.batch != (event.job_id, event.node_id):
            return False  # another node's images stay layers
        frame = target.start_frame + target.batch_seen
        target.batch_seen += 1
        doc = target.doc
        work = self._decoder.submit(_placed_frame, event.path, target, doc.width(),
                                    doc.height())
        self._decoding.append(_Decoding(event.job_id, target, event.path, work, frame))
        return True

    def _batch_ended(self, event: Any, target: Target) -> None:
        """The batch's job ended: held until its frames are one layer, or dropped."""
        if not isinstance(event, core.JobFinished):
            self._drop_frames(target, "its job did not finish")
            target.batch = None
            return
        self.session.hold(event.job_id)
        target.held.append(event.job_id)
        path = Path(event.outputs[0]) if event.outputs else Path(".")
        end = self._decoder.submit(_BatchEnd)
        self._decoding.append(_Decoding(event.job_id, target, path, end, -1))

    def _check_frame_ended(self, event: Any, target: Target, run: Any) -> None:
        """A frame's job ended: without an image for its frame, Each frame cannot be whole
        (its held jobs end only once the layer is made, so they never come here)."""
        frame = run.jobs.get(event.job_id)
        if event.job_id in target.held:
            return
        if isinstance(event, core.JobFinished) and (
                frame in target.frame_files
                or any(d.frame == frame for d in self._decoding if d.target is target)):
            return
        why = "gave no image" if isinstance(event, core.JobFinished) else "did not finish"
        self._drop_frames(target, f"frame {frame} {why}")

    def _drop_frames(self, target: Target, why: str) -> None:
        """Each frame cannot be complete: its frames stay files, said once."""
        for job_id in target.held:
            self.session.release(job_id)
        target.held.clear()
        self.errors.append(f"{target.name}: {why}, so no animated layer was made; the "
                           f"results are in the output folder.")
        target.frame_files.clear()
        target.each_frame = False

    def _record(self, ended: core.RunEnded) -> None:
        """The run's history entry goes into the document its results went to."""
        target = ended.run.data
        if ended.record is None or not isinstance(target, Target):
            return
        if not is_open(target.doc):
            self.errors.append(f"{ended.run.label}: its document was closed, so this run is "
                               f"not in its history; the files are in the output folder.")
            return
        record = ended.record
        if target.frames is not None:  # Run Again reads the same range
            record = record.model_copy(update={"frames": [target.frames.start,
                                                           target.frames[-1]]})
        add_record(target.doc, record)

    @property
    def busy(self) -> bool:
        return (self.session.busy or bool(self._decoding) or self._assembling is not None
                or self._reading is not None)

    def close(self) -> None:
        self.session.close()
        self._decoder.shutdown(wait=False, cancel_futures=True)

    def _place_decoded(self) -> None:
        """Results decoded so far become layers, in the order they arrived; an animated
        layer gets one frame per call, so Krita's events run between its frames."""
        if self._assembling is not None and not self._assemble():
            return
        while self._decoding and self._decoding[0].image.done():
            done = self._decoding.pop(0)
            try:
                image = done.image.result()
            except ValueError as exc:
                self.session.release(done.job_id)
                self.errors.append(str(exc))
                continue
            if image.scaled_from and is_open(done.target.doc):
                self._note_scaled(done.target, image.scaled_from)
            if done.frame is not None:
                if self._frame_placed(done, image):
                    return
                continue
            if isinstance(image, Frames) and image.animated and is_open(done.target.doc):
                self._begin_animated(done, image)
                return
            self.session.release(done.job_id)
            self._add_layer(done.target, done.path, image)

    def _note_scaled(self, target: Target, own: tuple[int, int]) -> None:
        """Said once per size: a batch of 48 scaled frames is one sentence."""
        note = scaled_note(own, target.rect, not target.from_selection)
        if note not in self.notes:
            self.notes.append(note)

    def _frame_placed(self, done: _Decoding, placed: _Placed | _BatchEnd) -> bool:
        """A frame's result is ready (or a batch's end); once every frame is, the layer is
        begun (True)."""
        target = done.target
        if not target.collecting:  # dropped meanwhile
            return False
        assert done.frame is not None
        if isinstance(placed, _BatchEnd):
            target.expected = target.batch_seen
        else:
            target.frame_files[done.frame] = placed.file
        if target.expected is None or len(target.frame_files) < target.expected:
            return False
        files = [target.frame_files[t] for t in sorted(target.frame_files)]
        held, target.held = target.held, []
        self._begin_animated(done, Frames([], 0, files, None, animated=True), held)
        return True

    def _stacked_on(self, doc: Any) -> Any:
        """The newest result, when a new run's results go above it: it is in `doc` and the
        user has picked no other layer since. (Krita itself makes a new layer active once
        its window knows it; until then, or in a window that does not, the layer active
        before stays so.) None: above the active layer."""
        if self._newest is None:
            return None
        placed_in, active_then, layer = self._newest
        if not (placed_in == doc and is_open(doc)) or layer.parentNode() is None:
            return None
        active = doc.activeNode()
        return layer if active is not None and active in (active_then, layer) else None

    def _placed(self, target: Target, active_before: Any) -> None:
        self._newest = (target.doc, active_before, target.last_layer)

    def _begin_animated(self, done: _Decoding, frames: Frames,
                        held: list[str] | None = None) -> None:
        target = done.target
        target.active_before = target.doc.activeNode()
        base = target.name if target.seed is None else f"{target.name} · seed {target.seed}"
        layer = AnimatedLayer(target.doc, frames.files, target.start_frame,
                              unique_name(target.doc, base), target.last_layer, frames.fps)
        self._assembling = (done, layer, held if held is not None else [done.job_id])
        self._assemble()

    def _assemble(self) -> bool:
        """One more frame of the animated layer; True once it is complete (or failed)."""
        assert self._assembling is not None
        done, layer, held = self._assembling
        if not is_open(done.target.doc):
            layer.error = (f"{done.path.name}: its document was closed; the file is in "
                           f"{done.path.parent}.")
        elif not layer.step():
            return False
        self._assembling = None
        for job_id in held:
            self.session.release(job_id)
        if layer.error:
            self.errors.append(layer.error)
        else:
            done.target.last_layer = layer.layer
            self._placed(done.target, done.target.active_before)
            self.layers.append(layer.layer)
        return True

    def _add_layer(self, target: Target, path: Path, decoded: Any) -> None:
        """A decoded image becomes a layer; a video's frames a group of layers."""
        if not is_open(target.doc):
            self.errors.append(f"{path.name}: its document was closed; the file is in "
                               f"{path.parent}.")
            return
        base = target.name if target.seed is None else f"{target.name} · seed {target.seed}"
        name = unique_name(target.doc, base)
        active_before = target.doc.activeNode()
        if isinstance(decoded, Frames):
            at = Rect(target.rect.x, target.rect.y, 0, 0)
            target.last_layer = add_frame_layers(target.doc, decoded, name, at,
                                                 target.last_layer)
            if decoded.more:
                self.errors.append(f"{path.name}: {decoded.more} more frame(s) are in the "
                                   f"file only, in {path.parent}.")
        else:
            at = Rect(target.rect.x, target.rect.y, target.rect.width, target.rect.height)
            target.last_layer = add_result_layer(target.doc, decoded.image, name, at,
                                                 target.last_layer)
        self._placed(target, active_before)
        self.layers.append(target.last_layer)


def _placement(target: Target) -> Placement:
    """Where a clip's frames go: the run's region, on a canvas-sized file each when this
    Krita can make an animated layer (headless: the frames become a group of layers)."""
    doc = target.doc
    canvas = (doc.width(), doc.height()) if can_animate(doc) else None
    return Placement(target.rect, canvas)


def _placed_frame(path: Path, target: Target, width: int, height: int) -> _Placed:
    """A result as its frame of the animated layer (decode thread): scaled and masked as a
    still result, drawn at the region's corner on a canvas-sized PNG."""
    still = _decode(path, target.rect, target.mask)
    folder = path.with_name(f"{path.stem}_frame")  # beside the result, not among them
    folder.mkdir(exist_ok=True)
    placed = place_frame(still.image, folder / "placed.png", target.rect, (width, height))
    return _Placed(placed, still.scaled_from)


def _decode(path: Path, rect: Rect, mask: bytes | None) -> _Still:
    """A result as the layer shows it: scaled to the region it replaces (a workflow may
    scale or upscale; the layer must cover what went out, no more), masked by the selection
    when it went out as a mask."""
    image, own = load_fitted(path, (rect.width, rect.height))
    return _Still(image if mask is None else apply_mask(image, mask), own)


def is_open(doc: Any) -> bool:
    try:
        from krita import Krita  # only inside Krita

        return any(d == doc for d in Krita.instance().documents())
    except ImportError:
        return True
