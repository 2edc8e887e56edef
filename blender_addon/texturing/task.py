"""One press of Texture from Cameras: its views, the objects it textures, and its steps.

A view is rendered (its loader sources, from its camera), sent as one job, and its result
projected onto every object's texture as soon as it comes back; the textures are baked
when the run ends, also when it failed or was cancelled (named partial then). Independent
views are rendered one after another while their jobs run, several in flight; in
sequential mode a view is rendered only once the one before it is projected, so it can be
given what is painted so far.

The session's pump drives it (pump.py calls step() every tick and hands it the run's
events); under `blender -b` a render blocks, so step() renders, sends and moves on.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bpy
import numpy as np

from .. import pixels
from ..core import core
from ..pump import SESSION
from ..rendering import FrameRender
from ..sources import Plan
from . import bake, projection, views
from .scene import remove_objects, remove_uv_map

LAST: Task | None = None  # the task shown in the panel: under way, or the last one


@dataclass
class View:
    number: int  # 1-based
    camera: str  # the camera object's name
    lens: Any  # engine Camera
    added: float | None = None  # the coverage an automatic camera adds, 0–1
    state: str = "waiting"  # rendering, sent, done, failed, cancelled
    files: views.Files = field(default_factory=dict)
    images: list[tuple[str, Path]] = field(default_factory=list)  # its job's: (node, file)
    render: FrameRender | None = None
    shown: projection.Screen | None = None  # what its camera shows, kept until projected
    note: str = ""  # e.g. its result was scaled

    def line(self) -> str:
        added = f", adds {self.added:.1%}" if self.added is not None else ""
        note = f"; {self.note}" if self.note else ""
        return f"View {self.number} ({self.camera}{added}): {self.state}{note}"


@dataclass
class Textured:
    """One object being textured."""

    name: str
    uv: str
    made_uv: bool
    projection: projection.ObjectProjection
    seconds: float = 0.0  # Blender-side time for this object (projection + bake)
    image: str = ""
    coverage: float = 0.0
    filled: int = 0


class Task:
    def __init__(self, scene: bpy.types.Scene, plan: Plan, workflow: core.Workflow,
                 bindings: core.Bindings, out_dir: Path, objects: list[Textured],
                 views_: list[View], occluders: np.ndarray, *, sequential: bool,
                 opengl_normals: bool, temporary_cameras: list[str]) -> None:
        self.scene_name = scene.name
        self.plan, self.workflow, self.bindings, self.out_dir = plan, workflow, bindings, out_dir
        self.objects, self.views, self.occluders = objects, views_, occluders
        self.sequential, self.opengl_normals = sequential, opengl_normals
        self.temporary_cameras = temporary_cameras
        self.folder = pixels.temp_dir() / f"texturing-{time.time_ns()}"
        self.folder.mkdir()
        self.run: core.Run | None = None
        self.current: View | None = None  # being rendered
        # The scene's camera while a view renders, by name ("": none): an object reference
        # would dangle if it were removed meanwhile.
        self._saved_camera: str | None = None
        self.report: list[str] = []  # the report once it ended
        self.problem = ""  # why views were left out (a render failed)
        self.failed = False
        self.ended = False
        self.setup_seconds = 0.0  # meshes, surfaces, the visible area, cameras placed
        self._first_sent: float | None = None  # the jobs' wall time: first sent...
        self._last_result = 0.0  # ... to last result back

    # ---- what the panel shows ----
    def lines(self) -> list[str]:
        return [v.line() for v in self.views] + self.report

    # ---- steps (main thread) ----
    def start(self) -> core.Run:
        self.run = SESSION.start_run(f"{self.workflow.name} (texture)", data=self, noun="view",
                                     feeding=True, bindings=self.bindings)
        return self.run

    def step(self) -> None:
        """Move on: finish a render that ended, send its view, start the next render. An
        exception would unregister the pump's timer and leave the run busy for ever: it ends
        the run instead, with a sentence."""
        try:
            self._step()
        except Exception as exc:  # any failure must end the run
            self._fail(self.current, exc)

    def _step(self) -> None:
        run = self.run
        if run is None or self.ended:
            return
        if self.current is not None:
            self._render_ended(self.current)
        if self.current is not None:
            return  # still rendering (the UI's render job)
        stopped = run.cancelled or run.failed
        waiting = [v for v in self.views if v.state == "waiting"]
        if stopped:
            for view in waiting:
                view.state = "cancelled"
            waiting = []
        in_flight = any(v.state == "sent" for v in self.views)
        if waiting and not (self.sequential and in_flight):
            self._begin(waiting[0])
        if not any(v.state in ("waiting", "rendering") for v in self.views):
            SESSION.end_feed(run)

    def _begin(self, view: View) -> None:
        """Render the view's sources from its camera (blocks under `blender -b`), or send it
        at once when nothing of it is rendered."""
        started = time.monotonic()
        self._own_sources(view)
        if not self.plan.rendered:
            self._send(view)
            return
        scene = bpy.data.scenes[self.scene_name]
        view.state, self.current = "rendering", view
        view.render = views.render(scene, self.plan, view.files.update, self.opengl_normals)
        self._saved_camera = scene.camera.name if scene.camera is not None else ""
        scene.camera = bpy.data.objects[view.camera]
        self._blender_time(time.monotonic() - started)
        try:
            view.render.start()
        except (RuntimeError, OSError) as exc:
            self._fail(view, exc, "could not be rendered")
            return
        self._render_ended(view)

    def _render_ended(self, view: View) -> None:
        render = view.render
        if render is None or not (render.done.is_set() or render.ended):
            return
        if not render.done.is_set():
            render.finish()  # restores the scene's output settings
        self._restore_camera()
        self.current = None
        if render.cancelled:  # Esc in the render window stops the texturing
            view.state = "cancelled"
            SESSION.cancel()
            return
        self._send(view)

    def _own_sources(self, view: View) -> None:
        """Projected so far and Uncovered, from what earlier views painted."""
        wanted = {e.source for e in self.plan.entries}
        if views.PROJECTED in wanted or views.UNCOVERED in wanted:
            started = time.monotonic()
            view.shown = projection.shown(view.lens, self.occluders)  # again in _project
            projected, uncovered = projection.seen_so_far(
                [o.projection for o in self.objects], view.lens, self.occluders, view.shown)
            folder, n = self.folder, view.number
            view.files[views.PROJECTED] = views.write(projected, folder / f"projected-{n}.png")
            view.files[views.UNCOVERED] = views.write(uncovered, folder / f"uncovered-{n}.png")
            self._blender_time(time.monotonic() - started)

    def _send(self, view: View) -> None:
        assert self.run is not None
        media = self.plan.media({}, view.files)
        job = core.Job(self.workflow, self.out_dir, self.bindings, label=f"view {view.number}",
                       media=media)
        view.state = "sent"
        if self._first_sent is None:
            self._first_sent = time.monotonic()
        if not SESSION.submit(self.run, job, view.number):
            view.state = "cancelled"

    def _restore_camera(self) -> None:
        """Put the scene's camera back (by name: None when it was removed meanwhile)."""
        scene = bpy.data.scenes.get(self.scene_name)
        if scene is not None and self._saved_camera is not None:
            scene.camera = bpy.data.objects.get(self._saved_camera)
        self._saved_camera = None

    def _fail(self, view: View | None, exc: BaseException, what: str = "failed") -> None:
        """A view could not be done (a render, its result file, the projection): the run is
        cancelled with a sentence; the views done are still baked."""
        render = self.current.render if self.current is not None else None
        if render is not None and not render.done.is_set():
            render.finish()  # its output settings back
        self._restore_camera()
        self.current = None
        if view is not None:
            view.state = "failed"
        self.failed = True
        where = f"View {view.number} {what}" if view is not None else "Texturing failed"
        self.problem = self.problem or f"{where}: {exc}"
        SESSION.cancel(self.problem)

    # ---- the run's events (pump.handle) ----
    def handle(self, event: core.HostEvent) -> None:
        """One event of the run; an exception ends the run (as in step())."""
        if isinstance(event, core.RunEnded):
            try:
                self._end()
            except Exception as exc:  # said, not raised from a timer
                self.failed = True
                self.problem = self.problem or f"Texturing failed: {exc}"
                self.report.append(self.problem)
            return
        run = self.run
        view = self._view(run.jobs.get(getattr(event, "job_id", ""))) if run else None
        if view is None:
            return
        try:
            self._job_event(view, event)
        except Exception as exc:  # e.g. an unreadable result file
            self._fail(view, exc)

    def _job_event(self, view: View, event: core.HostEvent) -> None:
        if isinstance(event, core.JobOutput) and event.kind == core.MediaKind.IMAGE:
            view.images.append((event.node_id, event.path))  # chosen once all are in
        elif isinstance(event, core.JobFinished) and view.state == "sent":
            # The core sent the files that are results (the picked nodes', else the saved
            # ones, previews only when nothing was saved): the first image is the view's.
            chosen = view.images[0] if view.images else None
            if chosen is None:
                view.state = "failed"
                view.note = "the workflow gave no image"
                SESSION.cancel(f"View {view.number}: the workflow gave no image.")
                return
            if len(view.images) > 1:
                view.note = (f"its job gave {len(view.images)} images; the one of node "
                             f"{chosen[0]} ({self.workflow.title(chosen[0])}) was used")
            self._project(view, chosen[1])
        elif isinstance(event, core.JobFailed | core.JobCancelled) and view.state == "sent":
            view.state = "failed" if isinstance(event, core.JobFailed) else "cancelled"
            self.failed = self.failed or isinstance(event, core.JobFailed)

    def _view(self, number: Any) -> View | None:
        return next((v for v in self.views if v.number == number), None)

    def _project(self, view: View, path: Path) -> None:
        self._last_result = time.monotonic()
        picture = views.read(path)
        lens = view.lens
        height, width = picture.shape[:2]
        if (width, height) != (lens.width, lens.height):
            picture = views.resized(picture, lens.width, lens.height)
            view.note = (f"its result was {width}×{height}, scaled to the view's "
                         f"{lens.width}×{lens.height}")
        started = time.monotonic()
        shown = view.shown or projection.shown(lens, self.occluders)
        view.shown = None
        self._blender_time(time.monotonic() - started)
        for target in self.objects:
            started = time.monotonic()
            target.projection.add(picture, lens, shown, only_new=self.sequential)
            target.seconds += time.monotonic() - started
        view.state = "done"  # sequential: the next pump's step() sends the next view

    # ---- the end ----
    def _end(self) -> None:
        if self.ended:
            return
        self.ended = True
        self._restore_camera()  # a render the run's end cut short
        done = [v for v in self.views if v.state == "done"]
        partial = len(done) < len(self.views)
        gone: list[str] = []
        try:
            for target in self.objects if done else []:
                if not self._bake(target, len(done) if partial else 0):
                    gone.append(target.name)
        finally:  # the placed cameras go, also when a bake failed
            self._cleanup()
            self.report = self._report(done, partial) + [
                f"{name}: removed or renamed during the run, not baked." for name in gone]

    def _bake(self, target: Textured, partial_views: int) -> bool:
        """Bake one object's texture; False when the object is no longer there."""
        obj = bpy.data.objects.get(target.name)
        if obj is None or obj.type != "MESH":
            return False
        started = time.monotonic()
        texture, target.filled = target.projection.texture()
        target.coverage = target.projection.coverage()
        name = f"{target.name} {bake.MATERIAL_SUFFIX}"
        if partial_views:  # never passed off as complete; "Partial" first: Blender 4.2–4.5
            # cut names at 63 characters, and the property says it whatever the name
            views_done = f"{partial_views} of {len(self.views)} views"
            name = f"Partial {name} ({views_done})"
            obj[bake.PARTIAL] = views_done
        elif bake.PARTIAL in obj:
            del obj[bake.PARTIAL]
        image = bake.image(name, texture)
        bake.material(obj, image, target.uv)
        target.image = image.name
        target.seconds += time.monotonic() - started
        return True

    def close(self) -> None:
        """The add-on is disabled mid-way: nothing is baked, what it made is removed. A render
        job still under way renders from the view's camera with the view's output settings:
        those stay until it ends (a timer waits for it)."""
        self.ended = True
        if self._rendering():
            bpy.app.timers.register(self.close_after_render, first_interval=0.2)
            return
        self._close_now()

    def _rendering(self) -> bool:
        render = self.current.render if self.current is not None else None
        return render is not None and not (render.done.is_set() or render.ended)

    def close_after_render(self) -> float | None:
        """The timer of close(): seconds until the next look, None once closed."""
        if self._rendering():
            return 0.2
        self._close_now()
        return None

    def _close_now(self) -> None:
        if self.current is not None and self.current.render is not None:
            self.current.render.finish()
        self._restore_camera()
        self.discard()

    def discard(self) -> None:
        """Nothing baked: remove what it made (its placed cameras, its folder, its UV
        maps)."""
        self.ended = True
        self._cleanup()
        for target in self.objects:
            if target.made_uv:
                remove_uv_map(target.name, target.uv)

    def _cleanup(self) -> None:
        for view in self.views:
            if view.render is not None:
                view.render.cleanup()
        shutil.rmtree(self.folder, ignore_errors=True)
        remove_objects(self.temporary_cameras)

    def _report(self, done: list[View], partial: bool) -> list[str]:
        # The jobs' wall time, first sent to last back: they overlap, so not their sum.
        jobs = (self._last_result - self._first_sent) if self._first_sent is not None else 0.0
        if not done:
            return ["No view came back: nothing was baked."] + (
                [self.problem] if self.problem else [])
        lines = []
        for t in self.objects:
            if not t.image:
                continue  # gone: said after the report
            uv = f", new UV map {t.uv!r}" if t.made_uv else ""
            lines.append(f"{t.name}: coverage {t.coverage:.1%}, {t.filled} texels filled from "
                         f"neighbours, {t.seconds:.1f} s in Blender{uv} → {t.image}")
        lines.append(f"{len(done)} of {len(self.views)} views, jobs {jobs:.1f} s; Blender "
                     f"{self.blender_seconds():.1f} s (set-up {self.setup_seconds:.1f} s)"
                     + (" (partial: the textures are named so)" if partial else ""))
        lines += [f"View {v.number}: {v.note}" for v in self.views if v.note]
        return lines + ([self.problem] if self.problem else [])

    def blender_seconds(self) -> float:
        """Time on Blender's side: set-up, projection and bake (not renders, not jobs)."""
        return self.setup_seconds + sum(t.seconds for t in self.objects)

    def _blender_time(self, seconds: float) -> None:
        """Time shared by every object (renders' set-up, the masks), split evenly."""
        for target in self.objects:
            target.seconds += seconds / len(self.objects)
