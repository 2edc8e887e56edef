"""Each view's inputs: the loader sources rendered from that view's camera, and the two
the texturing adds (Projected so far, Uncovered), as PNG files; a view's result read back.

Renders go through the add-on's own render path (rendering.FrameRender with passes.py's
compositor set-up), with the scene's camera switched to the view's for the render only.
Pictures are read and written with Blender's own image code: the bpy process has numpy
but no imaging library.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import bpy
import numpy as np

from ..core import core
from ..rendering import FrameRender
from ..sources import Plan

PROJECTED, UNCOVERED = "PROJECTED", "UNCOVERED"  # the texturing's own sources
Files = dict[str, Path]  # source ("RENDER", "DEPTH", ...) -> its file
IMAGE_OUTPUT = re.compile(r"Image|WEBP", re.IGNORECASE)  # SaveImage, PreviewImage, ...


def image_nodes(workflow: core.Workflow, picked: Sequence[str]) -> list[str]:
    """The nodes a view's image can come from: the output nodes picked, else every output
    node; those of them that give images. Which of their files come back is the core's
    rule on every back end (jobs/outputs.py: the picked nodes', else the saved ones,
    previews only when nothing is saved)."""
    nodes = [workflow.node_id(ref) for ref in picked] or workflow.output_nodes()
    return [n for n in nodes if IMAGE_OUTPUT.search(workflow.graph[n]["class_type"])]


def render(scene: bpy.types.Scene, plan: Plan, on_files: Callable[[Files], None],
           opengl_normals: bool) -> FrameRender:
    """A render of the plan's image and passes (not started): `on_files` gets them once it
    completes."""
    wanted = plan.passes()
    if wanted:
        return FrameRender(scene, lambda _frame, _path: None, animation=False, passes=wanted,
                           on_passes=on_files, opengl_normals=opengl_normals)
    return FrameRender(scene, lambda _frame, path: on_files({"RENDER": path}), animation=False)


def read(path: Path) -> np.ndarray:
    """An image file as floats 0–1, (H, W, 4), row 0 = the top: the file's values as they
    are (an 8-bit sRGB PNG gives byte / 255, no colour conversion)."""
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        colour = image.colorspace_settings
        assert colour is not None
        # The file's values as they are: a 16-bit or EXR result would otherwise be
        # linearised (8-bit files are read as bytes / 255 either way).
        colour.name = "Non-Color"  # type: ignore[assignment]  # the stubs list only "NONE"
        size: Any = image.size  # the stubs do not know its two items
        width, height = size
        if width == 0 or height == 0:
            raise OSError(f"{path.name} holds no picture Blender can read")
        pixels = np.empty(width * height * 4, np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    return pixels.reshape(height, width, 4)[::-1].copy()


def write(picture: np.ndarray, path: Path) -> Path:
    """Floats 0–1, (H, W) or (H, W, 3|4), row 0 = the top, as an 8-bit PNG of those values."""
    height, width = picture.shape[:2]
    rgba = np.ones((height, width, 4), np.float32)
    if picture.ndim == 2:
        rgba[..., :3] = picture[..., None]
    else:
        rgba[..., : min(picture.shape[2], 4)] = picture[..., :4]
    image = bpy.data.images.new(path.stem, width, height, alpha=True)
    try:
        image.pixels.foreach_set(np.clip(rgba, 0, 1)[::-1].ravel())  # type: ignore[arg-type]
        image.filepath_raw = str(path)
        image.file_format = "PNG"
        image.save()
    finally:
        bpy.data.images.remove(image)
    return path


def resized(picture: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resampling to width × height (pixel centres aligned)."""
    h, w = picture.shape[:2]
    ys = np.clip((np.arange(height) + 0.5) * h / height - 0.5, 0, h - 1)
    xs = np.clip((np.arange(width) + 0.5) * w / width - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = picture[y0][:, x0] * (1 - fx) + picture[y0][:, x1] * fx
    bottom = picture[y1][:, x0] * (1 - fx) + picture[y1][:, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)
