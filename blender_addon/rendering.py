"""Fresh renders (one frame or the whole range) whose frames are handed over as files.

Blender writes each frame to a temporary folder; a render_write handler passes it on at
once, so frame 1 is uploaded while frame 2 renders. For a workflow that takes a video, the
range is rendered as one MP4 instead, handed over when the render completes. In the UI the
render runs as Blender's own render job (the window stays responsive, Esc stops it); under
`blender -b` it blocks.
Handlers may run on the render thread, so they touch no bpy data: the frame number comes
from the file name, and the scene's settings are restored on the main thread.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bpy
from bpy.app.handlers import persistent

from . import pixels
from .passes import PassSetup

FrameSink = Callable[[int, Path], None]
PassSink = Callable[[dict[str, Path]], None]  # "RENDER" and each pass -> its file
_FRAME = re.compile(r"(\d+)\.png$")


class FrameRender:
    """One render of a frame or a range; `done` is set once Blender finished or cancelled."""

    def __init__(self, scene: bpy.types.Scene, on_frame: FrameSink, animation: bool,
                 video: bool = False, passes: list[str] | None = None,
                 on_passes: PassSink | None = None, opengl_normals: bool = False) -> None:
        self.scene_name = scene.name
        self.on_frame = on_frame
        self.animation = animation
        self.video = video  # one movie file of the range, not a file per frame
        self.first_frame = scene.frame_start
        self.folder = pixels.temp_dir() / f"frames-{time.time_ns()}"
        self.folder.mkdir()
        self.seen: set[str] = set()
        self.done = threading.Event()
        self.cancelled = False
        self._lock = threading.Lock()
        self._restore: contextlib.ExitStack | None = None
        # One still with its passes, handed over together once the render completes.
        self.passes = PassSetup(scene.name, passes, self.folder, opengl_normals) if (
            passes and on_passes) else None
        self.on_passes = on_passes

    # ---- main thread ----
    def start(self) -> None:
        scene = bpy.data.scenes[self.scene_name]
        self._restore = contextlib.ExitStack()
        output = pixels.video_output(scene) if self.video else pixels.png_output(scene)
        self._restore.enter_context(output)
        self._restore.enter_context(_render_path(scene, str(self.folder / "frame_")))
        try:
            if self.passes is not None:
                self._restore.enter_context(self.passes.applied())
        except BaseException:
            self.finish()
            raise
        for handlers in self._handler_lists():
            handlers.append(self._handler_for(handlers))
        blocking = bpy.app.background
        try:
            if blocking:
                bpy.ops.render.render(animation=self.animation, write_still=not self.animation)
            else:
                # The render job; the handlers below report its frames and its end.
                result = bpy.ops.render.render(
                    "INVOKE_DEFAULT", animation=self.animation, write_still=not self.animation
                )
                if "CANCELLED" in result:
                    raise RuntimeError("Blender did not start the render (is one running?)")
        except BaseException:
            self.finish()
            raise
        if blocking:
            self.complete = True
            self._collect()
            self.finish()

    def finish(self) -> None:
        """Restore the scene's output settings and remove the handlers (main thread)."""
        for handlers in self._handler_lists():
            for handler in list(handlers):
                if getattr(handler, "_comfyrelay_owner", None) is self:
                    handlers.remove(handler)
        if self._restore is not None:
            self._restore.close()
            self._restore = None
        self.done.set()

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    # ---- any thread ----
    def _handler_lists(self) -> list[list[Any]]:
        h = bpy.app.handlers
        return [h.render_write, h.render_complete, h.render_cancel]

    def _handler_for(self, handlers: list[Any]) -> Callable[..., None]:
        h = bpy.app.handlers
        if handlers is h.render_write:
            action = self._collect
        elif handlers is h.render_cancel:
            action = self._cancelled
        else:
            action = self._ended

        @persistent
        def handler(*_args: Any) -> None:
            action()

        handler._comfyrelay_owner = self
        return handler

    def _collect(self) -> None:
        """Hand over every frame file written since the last call, in frame order; the
        movie only once it is complete."""
        if (self.video or self.passes is not None) and not self.complete:
            return
        if self.passes is not None:
            self._hand_over_passes()
            return
        with self._lock:
            written = self.folder.glob("*.mp4" if self.video else "*.png")
            fresh = sorted(p for p in written if p.name not in self.seen)
            self.seen.update(p.name for p in fresh)
        for path in fresh:
            match = _FRAME.search(path.name)
            frame = self.first_frame if self.video else int(match.group(1)) if match else 0
            self.on_frame(frame, path)

    def _hand_over_passes(self) -> None:
        """The still and its passes, once: the files Blender wrote for this render."""
        assert self.passes is not None and self.on_passes is not None
        with self._lock:
            if "passes" in self.seen:
                return
            self.seen.add("passes")
        still = sorted(self.folder.glob("frame_*.png"))
        files = {s: p for s, p in self.passes.files().items() if p.is_file()}
        if still:
            files["RENDER"] = still[0]
        self.on_passes(files)

    def _ended(self) -> None:
        self.complete = True
        self._collect()
        self.ended = True

    def _cancelled(self) -> None:
        self.cancelled = True
        self.ended = True

    ended = False  # set from the handlers; the pump calls finish() on the main thread
    complete = False  # the render finished: a movie file is whole


@contextlib.contextmanager
def _render_path(scene: bpy.types.Scene, path: str) -> Any:
    saved = scene.render.filepath, scene.render.use_file_extension
    scene.render.filepath = path
    scene.render.use_file_extension = True
    try:
        yield
    finally:
        scene.render.filepath, scene.render.use_file_extension = saved
