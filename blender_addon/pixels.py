"""Getting pixels out of Blender as PNG files the core can upload.

Render Result pixels cannot be read from Python, so they are written with save_render(),
which applies the scene's colour management: ComfyUI gets what the artist sees. PNG
compression is turned down while saving because the main thread waits for it.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import bpy

PASS_THROUGH = {".png", ".jpg", ".jpeg", ".webp"}  # files ComfyUI's LoadImage reads as they are
FAST_PNG = 15  # percent; 1920×1080 saves in a fraction of the default 15-90 % time


class SourceError(Exception):
    """The chosen source has no pixels to send; the message says what to do."""


def temp_dir() -> Path:
    path = Path(tempfile.gettempdir()) / "comfyrelay-blender"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def png_output(scene: bpy.types.Scene, compression: int = FAST_PNG) -> Iterator[None]:
    """Temporarily make the scene's output an 8-bit RGBA PNG; restore every setting after."""
    fmt = scene.render.image_settings
    names = ["media_type", "file_format", "color_mode", "color_depth", "compression"]
    saved = {n: getattr(fmt, n) for n in names if hasattr(fmt, n)}  # media_type: 5.0+
    try:
        if "media_type" in saved:
            fmt.media_type = "IMAGE"
        fmt.file_format = "PNG"
        fmt.color_mode = "RGBA"
        fmt.color_depth = "8"
        fmt.compression = compression
        yield
    finally:
        for name, value in saved.items():
            with contextlib.suppress(TypeError, ValueError, AttributeError):
                setattr(fmt, name, value)


@contextlib.contextmanager
def video_output(scene: bpy.types.Scene) -> Iterator[None]:
    """Temporarily make the scene's output an H.264 MP4 without sound (what ComfyUI's
    LoadVideo reads); restore every setting after."""
    fmt, ffmpeg = scene.render.image_settings, scene.render.ffmpeg
    wanted = [(fmt, "media_type", "VIDEO"), (fmt, "file_format", "FFMPEG"),
              (ffmpeg, "format", "MPEG4"), (ffmpeg, "codec", "H264"),
              (ffmpeg, "constant_rate_factor", "HIGH"), (ffmpeg, "audio_codec", "NONE")]
    wanted = [w for w in wanted if hasattr(w[0], w[1])]  # media_type: 5.0+
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in wanted]
    try:
        for owner, name, value in wanted:
            setattr(owner, name, value)
        yield
    finally:
        for owner, name, value in reversed(saved):
            with contextlib.suppress(TypeError, ValueError, AttributeError):
                setattr(owner, name, value)


def save_render(image: bpy.types.Image, scene: bpy.types.Scene, path: Path) -> Path:
    with png_output(scene):
        image.save_render(str(path), scene=scene)
    return path


def render_result(scene: bpy.types.Scene) -> Path:
    """The Render Result as a PNG (after F12, a viewport render or a fresh render)."""
    image = bpy.data.images.get("Render Result")
    if image is None:
        raise SourceError("There is no render yet: render with F12, or choose Fresh Render.")
    path = temp_dir() / f"render-{time.time_ns()}.png"
    try:
        save_render(image, scene, path)
    except RuntimeError as exc:
        raise SourceError(
            f"The Render Result has no pixels ({exc}). Render with F12, or choose Fresh Render."
        ) from None
    return path


def existing_image(image: bpy.types.Image | None, scene: bpy.types.Scene) -> Path:
    """An image datablock: its file as it is when untouched, else its pixels saved as PNG."""
    if image is None:
        raise SourceError("Choose the image to send.")
    if image.type == "RENDER_RESULT":
        return render_result(scene)
    on_disk = Path(bpy.path.abspath(image.filepath)) if image.filepath else None
    if (
        image.source == "FILE"
        and on_disk is not None
        and on_disk.is_file()
        and on_disk.suffix.lower() in PASS_THROUGH
        and not image.is_dirty
        and image.packed_file is None
    ):
        return on_disk  # no re-encoding: no main-thread time and no colour change
    path = temp_dir() / f"image-{time.time_ns()}.png"
    try:
        save_render(image, scene, path)
    except RuntimeError as exc:
        raise SourceError(f"Image {image.name!r} has no pixels to send ({exc}).") from None
    return path


def viewport(context: bpy.types.Context) -> Path:
    """An OpenGL render of the 3D View the operator runs in (or the scene camera)."""
    scene = context.scene
    assert scene is not None
    view = context.area is not None and context.area.type == "VIEW_3D"
    try:
        bpy.ops.render.opengl(write_still=False, view_context=view)
    except RuntimeError as exc:
        raise SourceError(f"Viewport render failed: {exc}") from None
    return render_result(scene)
