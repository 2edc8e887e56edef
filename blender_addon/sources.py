"""What each loader of the workflow gets when Run is pressed: the plan of one run.

The plan is made, and checked, before anything renders or is queued: two sources for one
loader, a pass the render engine cannot make, a mask of another size than the image it goes
with are refused with a sentence that says what to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bpy

from . import passes
from .core import core

PICTURES = {"RENDER_RESULT", "VIEWPORT", "IMAGE"}  # need no render of ours
RENDERED = {"RENDER", *passes.PASS_SOURCES}  # made by one fresh render
# Texture from Cameras' own sources, made from what earlier views painted (texturing/).
PAINTED = {"PROJECTED", "UNCOVERED"}
MASKS = passes.MASKS | {"UNCOVERED"}  # white = change: sent as masks
_LABELS = {"RENDER_RESULT": "Render Result", "RENDER": "Fresh Render", "VIEWPORT": "Viewport",
           "IMAGE": "Image", "FRAME_RANGE": "Frame Range", "PROJECTED": "Projected So Far",
           "UNCOVERED": "Uncovered"}


@dataclass(frozen=True)
class Entry:
    """One loader's source, read from the panel's entry."""

    node: str
    title: str
    source: str
    image: Any = None  # bpy.types.Image for IMAGE


@dataclass
class Plan:
    entries: list[Entry]  # the loaders that get something (not Keep)
    rendered: bool = False  # a fresh render makes some of them
    frame_range: bool = False
    render_size: tuple[int, int] = (0, 0)
    opengl_normals: bool = False
    names: dict[str, str] = field(default_factory=dict)  # node -> placeholder file name

    @property
    def single(self) -> bool:
        """One loader getting one picture: the run goes as before per-loader sources."""
        return len(self.entries) == 1 and self.entries[0].source not in passes.PASS_SOURCES

    def passes(self) -> list[str]:
        return sorted({e.source for e in self.entries if e.source in passes.PASS_SOURCES})

    def placeholders(self) -> list[core.MediaInput]:
        """The run's media with no bytes: what the core checks before anything is made."""
        return [core.MediaInput(e.node, core.InputFile(self.names.get(e.node, "render.png")),
                                mask=e.source in MASKS) for e in self.entries]

    def media(self, pictures: Mapping[str, Path],
              files: Mapping[str, Path]) -> tuple[core.MediaInput, ...]:
        """Each loader's file: its picture, or what the render wrote for its source (the
        Render Result is the fresh render when the run renders)."""
        sent = []
        for e in self.entries:
            key = "RENDER" if e.source == "RENDER_RESULT" else e.source
            path = pictures.get(e.node) or files.get(key) or Path(f"{key.lower()}-missing.png")
            sent.append(core.MediaInput(e.node, core.InputFile.from_path(path, read_now=False),
                                        mask=e.source in MASKS))
        return tuple(sent)


def plan(scene: bpy.types.Scene, settings: Any, workflow: core.Workflow,
         texturing: bool = False) -> Plan:
    """The run's sources from the panel, checked; raises WorkflowError with what to change.
    `texturing`: for Texture from Cameras, where each view renders its own (the Render
    Result is that view's fresh render)."""
    loaders = {loader.node_id: loader for loader in core.workflow_loaders(workflow)}
    entries = [Entry(m.node, m.title, m.source, m.image) for m in settings.media
               if m.source != "KEEP"]
    _one_each(entries, loaders, workflow)
    problem = _texturing_problem(entries, texturing)
    if problem:
        raise core.WorkflowError(problem)
    fresh = RENDERED | {"RENDER_RESULT"} if texturing else RENDERED
    rendered = any(e.source in fresh for e in entries)
    result = Plan(entries, rendered=rendered,
                  frame_range=any(e.source == "FRAME_RANGE" for e in entries),
                  render_size=_render_size(scene),
                  opengl_normals=settings.normal_convention == "OPENGL")
    result.names = {e.node: _name(e, loaders) for e in entries}
    problem = (_frame_range_problem(result) or _pass_problem(scene, result)
               or _size_problem(result))
    if problem:
        raise core.WorkflowError(problem)
    if not entries and workflow.media_nodes() and not settings.media:
        raise core.WorkflowError("Reload the workflow: its loaders are not listed yet.")
    return result


def _one_each(entries: list[Entry], loaders: Mapping[str, core.Loader],
              workflow: core.Workflow) -> None:
    seen: dict[str, Entry] = {}
    for e in entries:
        if e.node not in loaders:
            raise core.WorkflowError(
                f"Workflow {workflow.name!r} has no loader {e.node!r}: reload the workflow."
            )
        if e.node in seen:
            both = f"{_label(seen[e.node].source)} and {_label(e.source)}"
            raise core.WorkflowError(
                f"Loader {e.node} ({loaders[e.node].title}) has two sources ({both}): give "
                "it one."
            )
        seen[e.node] = e


def _texturing_problem(entries: list[Entry], texturing: bool) -> str | None:
    for e in entries:
        if not texturing and e.source in PAINTED:
            return (f"{_label(e.source)} (loader {e.node}, {e.title}) is for Texture from "
                    "Cameras only: choose another source for Run.")
        if texturing and e.source in {"VIEWPORT", "FRAME_RANGE"}:
            return (f"{_label(e.source)} (loader {e.node}, {e.title}) cannot be made per "
                    "camera: choose Fresh Render (or a pass) for Texture from Cameras.")
    return None


def _label(source: str) -> str:
    return _LABELS.get(source) or passes._NAMES.get(source, source)


def _name(entry: Entry, loaders: Mapping[str, core.Loader]) -> str:
    if entry.source == "FRAME_RANGE" and loaders[entry.node].kind == "video":
        return "frames.mp4"
    return f"{entry.source.lower()}.png"


def _frame_range_problem(p: Plan) -> str | None:
    if p.frame_range and len(p.entries) > 1:
        return ("Frame Range goes to one loader only: set the other loaders to Keep (passes "
                "and images per frame are not supported yet).")
    return None


def _pass_problem(scene: bpy.types.Scene, p: Plan) -> str | None:
    wanted = p.passes()
    for source in wanted:
        problem = passes.engine_problem(scene, source)
        if problem:
            return problem
    return passes.selection_problem(scene, wanted) if wanted else None


def _size_problem(p: Plan) -> str | None:
    """A mask is the render's size: an image sent beside it must be too (ComfyUI composites
    them pixel for pixel)."""
    if not any(e.source in MASKS for e in p.entries):
        return None
    width, height = p.render_size
    for e in p.entries:
        if e.source == "IMAGE" and e.image is not None and tuple(e.image.size) != p.render_size:
            w, h = e.image.size
            return (f"The mask is {width}×{height} (the render's size) but image "
                    f"{e.image.name!r} for loader {e.node} ({e.title}) is {w}×{h}: they must "
                    "be the same size; change the output resolution or the image.")
    return None


def _render_size(scene: bpy.types.Scene) -> tuple[int, int]:
    r = scene.render
    scale = r.resolution_percentage / 100
    return int(r.resolution_x * scale), int(r.resolution_y * scale)
