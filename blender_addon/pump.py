"""The add-on's host session, and the timer that pumps its events into Blender.

The core's HostSession does the bookkeeping and the status the panel shows; this module
turns its events into Blender data (images, sequences, clips, textures). Everything here
runs on Blender's main thread: from a bpy.app.timers callback in the UI, or from drive()
under `blender -b`, where timers never fire and operators wait for their jobs instead.
Only submit() is called from the render thread.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import bpy

from . import pixels, preferences, results
from .core import core
from .rendering import FrameRender

INTERVAL = 0.1  # seconds between pumps while something runs
SESSION = core.HostSession(max_in_flight=2)  # the next frame uploads while one runs


@dataclass
class Target:
    """Where one press of Run puts its results (main thread)."""

    workflow: core.Workflow
    out_dir: Path
    object_name: str | None  # receives the texture, when asked for
    animation: bool
    scene_name: str = ""  # its history goes there
    frames: dict[int, Path] = field(default_factory=dict)  # frame -> its result
    outputs: list[str] = field(default_factory=list)  # names of loaded images and clips
    render: FrameRender | None = None
    temp_files: list[Path] = field(default_factory=list)  # saves of ours a job may not read


@runtime_checkable
class Driven(Protocol):
    """A run that drives itself (Texture from Cameras, texturing/task.py): stepped on every
    pump, handed its run's events."""

    def step(self) -> None: ...

    def handle(self, event: core.HostEvent) -> None: ...

    def close(self) -> None: ...


@dataclass
class Shown:
    """What the panel shows beside the session's view."""

    outputs: list[str] = field(default_factory=list)  # the last run's images and clips
    message: str = ""  # a problem placing results (a texture that cannot be set)

    def clear(self) -> None:
        """Another workflow: the last run's results and problems were the old one's."""
        self.outputs, self.message = [], ""


SHOWN = Shown()
_timer_on = False
_applied: tuple[Any, ...] | None = None  # the settings and credentials the session has


def configure() -> None:
    """Apply the preferences (and the credentials file) to the session when they differ
    from what it has: once per change, not on every action. Called when a back-end
    preference changes (its update callback) and before an action needs the back end (the
    preferences cannot be read while the add-on registers; the file may have changed)."""
    global _applied
    settings = preferences.host_settings()
    given = (settings.backend_settings(), settings.credentials())
    if given != _applied:
        SESSION.configure(*given)
        SHOWN.message = ""  # said of the old back end's run
        _applied = given


def start(target: Target, bindings: core.Bindings, image: Path | None,
          workflow_path: str = "", media: tuple[core.MediaInput, ...] | None = None) -> None:
    """Submit the one job (an image, `media` for several loaders, or none), or start the
    render that feeds frames (or a still and its passes) in."""
    one_clip = target.render is not None and target.render.video  # the range as one video
    noun = "frame" if target.animation and not one_clip else ""
    run = SESSION.start_run(target.workflow.name, data=target, noun=noun,
                            feeding=target.render is not None, bindings=bindings,
                            workflow_path=workflow_path)
    SHOWN.message = ""
    wake()
    try:
        if target.render is not None:
            target.render.start()  # blocks until the render ends under `blender -b`
            if target.render.done.is_set():
                SESSION.end_feed(run)
        elif media is not None:
            submit_media(run, bindings, media)
        else:
            submit(run, bindings, 0, image)
    except (RuntimeError, OSError) as exc:
        SESSION.refuse(str(exc), run)  # nothing more is sent; Run is available again
        raise


def submit(run: core.Run, bindings: core.Bindings, frame: int, image: Path | None) -> None:
    """Queue one job; called on the render thread for frames, so it touches no bpy data."""
    target: Target = run.data
    data = None
    if image is not None:  # read on the runner's thread: a 4K PNG is tens of MB
        temporary = image.parent == pixels.temp_dir()  # our save, not the user's file
        data = core.InputFile.from_path(image, read_now=False, temporary=temporary)
        if temporary:
            target.temp_files.append(image)
    label = f"frame {frame}" if target.animation else target.workflow.name
    SESSION.submit(run, core.Job(target.workflow, target.out_dir, bindings, data, label), frame)


def submit_media(run: core.Run, bindings: core.Bindings,
                 media: tuple[core.MediaInput, ...]) -> None:
    """Queue the one job of a run with a file per loader; called on the render thread when a
    render made them, so it touches no bpy data."""
    target: Target = run.data
    job = core.Job(target.workflow, target.out_dir, bindings, label=target.workflow.name,
                   media=media)
    SESSION.submit(run, job, 0)


# ---- the pump ----
def wake() -> None:
    global _timer_on
    if bpy.app.background or _timer_on:
        return
    _timer_on = True
    bpy.app.timers.register(_tick, first_interval=0.05, persistent=True)


def pump() -> bool:
    """Apply every event that arrived; True while there is more to wait for."""
    handled = False

    def note(event: core.HostEvent) -> None:
        nonlocal handled
        handled = True
        handle(event)

    SESSION.pump(note)
    run = SESSION.run
    target = run.data if run is not None else None
    if isinstance(target, Driven):
        target.step()
    render = target.render if isinstance(target, Target) else None
    if run is not None and render is not None and render.ended and not render.done.is_set():
        render.finish()  # restore the scene's output settings
        SESSION.end_feed(run)
        if render.cancelled:  # Esc in the render window stops the whole run
            SESSION.cancel()
    _redraw(handled)
    return SESSION.active


def drive(timeout: float | None = None, until: Callable[[], bool] | None = None) -> None:
    """Pump until idle (or `until`): the blocking mode for `blender -b` and scripts."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while pump() and (not until() if until else SESSION.busy):
        if deadline is not None and time.monotonic() > deadline:
            SESSION.cancel()
            deadline = None  # one more round for the cancellation to land
        time.sleep(0.02)


def handle(event: core.HostEvent) -> None:
    """One event from the session, in order (main thread)."""
    if isinstance(event, core.RunEnded):
        if isinstance(event.run.data, Driven):
            event.run.data.handle(event)
        else:
            _end(event.run.data, event.record)
        return
    if isinstance(event, core.WorkflowOpened):  # typed (or converted): list its inputs
        for scene in bpy.data.scenes:
            chosen = scene.comfyrelay  # type: ignore[attr-defined]
            if chosen.workflow_path and chosen.workflow_file() == event.path:
                chosen.show(event.workflow, event.error, event.inputs or None)
        return
    run = SESSION.run
    target = run.data if run is not None else None
    if isinstance(target, Driven):
        target.handle(event)
        return
    if not isinstance(target, Target) or run is None:
        return
    if isinstance(event, core.JobPreview) and not target.animation:
        results.show(results.load_preview(event.data, event.mime, pixels.temp_dir()))
    elif isinstance(event, core.JobOutput):
        _output(target, run.jobs.get(event.job_id, 0), event)


def _output(target: Target, frame: int, event: core.JobOutput) -> None:
    if event.kind == core.MediaKind.VIDEO:
        target.outputs.append(results.load_movie(event.path).name)
    elif event.kind != core.MediaKind.IMAGE:
        target.outputs.append(event.path.name)  # saved in the output folder; nothing to load
    elif target.animation:
        if frame not in target.frames:  # the first image of each frame makes the sequence
            numbered = f"{target.workflow.name}_{frame:04d}{event.path.suffix}"
            target.frames[frame] = event.path.replace(event.path.with_name(numbered))
    else:
        _image_result(target, event.path)


def _image_result(target: Target, path: Path) -> None:
    first = not any(name.startswith(results.RESULT_IMAGE) for name in target.outputs)
    name = None
    if preferences.prefs().result_mode == "REPLACE":
        name = results.RESULT_IMAGE if first else f"{results.RESULT_IMAGE} {len(target.outputs)}"
    image = results.load_image(path, name)
    target.outputs.append(image.name)
    results.show(image)
    if first:
        _texture(target, image)


def _texture(target: Target, image: bpy.types.Image, frames: int = 0) -> None:
    obj = bpy.data.objects.get(target.object_name) if target.object_name else None
    if obj is None:
        return
    try:
        results.set_texture(obj, image, frames)
    except ValueError as exc:
        SHOWN.message = str(exc)


def _end(target: Target, record: core.RunRecord | None) -> None:
    if target.render is not None:
        target.render.cleanup()
    for path in target.temp_files:  # a cancelled job never read (and deleted) its input
        path.unlink(missing_ok=True)
    if target.animation and target.frames:
        first = target.frames[min(target.frames)]
        image = results.load_sequence(first, f"ComfyRelay {target.workflow.name}")
        target.outputs.insert(0, image.name)
        results.show(image)
        _texture(target, image, frames=len(target.frames))
    SHOWN.outputs = target.outputs
    scene = bpy.data.scenes.get(target.scene_name)
    if record is not None and scene is not None:  # kept in the .blend, for Run Again
        history = scene.comfyrelay
        history.history = core.record_run(history.history, record)


_drawn: tuple[Any, ...] = ()  # what the panels showed at their last redraw


def _redraw(handled: bool) -> None:
    """Redraw the panels' areas when what they show changed: the timer ticks ten times a
    second, and a redraw draws the whole panel again."""
    global _drawn
    shown = (SESSION.view, tuple(SHOWN.outputs), SHOWN.message)
    if shown == _drawn and not handled:
        return
    _drawn = shown
    wm = bpy.context.window_manager
    for window in wm.windows if wm else []:
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "IMAGE_EDITOR"}:
                area.tag_redraw()


def _tick() -> float | None:
    """The bpy.app.timers callback: pump, and keep ticking only while something runs."""
    global _timer_on
    _timer_on = pump()
    if not _timer_on:
        return None
    return INTERVAL if SESSION.busy else 1.0  # a running machine's time left, once a second


def shutdown() -> None:
    """On unregister: stop the timer and the runner, end any run."""
    global _timer_on
    with contextlib.suppress(ValueError):
        if bpy.app.timers.is_registered(_tick):
            bpy.app.timers.unregister(_tick)
    _timer_on = False
    run = SESSION.run
    if run is not None and isinstance(run.data, Target) and run.data.render is not None:
        run.data.render.finish()
    if run is not None and isinstance(run.data, Driven):
        run.data.close()
    SESSION.close()
    global _applied
    _applied = None  # a session enabled again applies the settings anew
    results.drop_thumbnails()
