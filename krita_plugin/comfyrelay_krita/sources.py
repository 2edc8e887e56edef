"""What each loader of a workflow gets from the document: the canvas, the selection as an
inpaint mask, the active layer, a named layer or group, or nothing (the workflow's own file).

No widgets here (source_box.py shows the choices) and no `krita` import: the document is
handed in. Everything is checked before a pixel is read, and pixels are read on the Qt main
thread (Krita's API) but converted and encoded on the runner's thread when the job is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .core import core
from .pixels import Rect, mask_pixels, png_bytes, read_node, read_region, selection_mask, to_pixels
from .qt import QImage
from .timeline import animation_name, check_animation, check_frames

CANVAS = "canvas"
CANVAS_MASK = "canvas+mask"  # the canvas, with the selection as its mask (one LoadImage)
SELECTION = "selection"  # the selection as a mask, white = change
ACTIVE = "active"
KEEP = "keep"
ANIMATION = "animation"  # the playback range: one MP4, or one animated PNG (timeline.py)
EACH_FRAME = "each-frame"  # a run per frame of the playback range, each frame's canvas
LAYER = "layer:"  # followed by the layer's or group's name
LABELS = {
    CANVAS: "Canvas",
    CANVAS_MASK: "Canvas, selection as mask",
    SELECTION: "Selection as mask",
    ACTIVE: "Active layer",
    KEEP: "Keep (the workflow's file)",
    ANIMATION: "Animation (the playback range)",
    EACH_FRAME: "Each frame (a run per frame)",
}
# Loaders that read a mask as 1 − alpha of the image they load: the canvas and its mask can
# go to one of them together (ComfyUI's inpaint set-up).
IMAGE_AND_MASK = ("LoadImage", "LoadImageOutput")
NO_SELECTION = "Selection as mask needs a selection: select the area to change."

Choice = tuple[str, str]  # (loader node id, source)


def label(source: str) -> str:
    if source.startswith(LAYER):
        return f"Layer: {source[len(LAYER):]}"
    return LABELS.get(source, source)


def choices_for(loader: core.Loader) -> list[str]:
    """The fixed sources offered to `loader` (named layers come on top of these)."""
    if loader.kind == "audio":
        return [KEEP]
    if loader.kind == "video":
        return [CANVAS, ANIMATION, KEEP]
    both = [CANVAS_MASK] if loader.class_type in IMAGE_AND_MASK else []
    frames = [] if loader.kind == "mask" else [ANIMATION, EACH_FRAME]
    return [CANVAS, *both, SELECTION, ACTIVE, *frames, KEEP]


def default_source(workflow: core.Workflow, loader: core.Loader) -> str:
    """A mask loader gets the selection; a LoadImage whose image and mask both feed the
    graph (an inpaint) the canvas with its mask; audio keeps its file; the rest the canvas."""
    if loader.kind == "audio":
        return KEEP
    if loader.kind == "video":
        return CANVAS
    if loader.class_type in IMAGE_AND_MASK and _uses(workflow, loader.node_id, 0) \
            and _uses(workflow, loader.node_id, 1):
        return CANVAS_MASK
    if loader.role is core.Role.MASK or loader.kind == "mask":
        return SELECTION
    return CANVAS


def _uses(workflow: core.Workflow, nid: str, slot: int) -> bool:
    """Some node reads output `slot` of node `nid`."""
    return any(isinstance(v, list) and len(v) == 2 and str(v[0]) == nid and v[1] == slot
               for node in workflow.graph.values() for v in node["inputs"].values())


def defaults(workflow: core.Workflow) -> list[Choice]:
    return [(loader.node_id, default_source(workflow, loader))
            for loader in core.workflow_loaders(workflow)]


@dataclass
class Sent:
    """A run's media as the document gave them, and the selection to mask its results by
    (an inpaint: nothing outside the selection may change)."""

    media: list[core.MediaInput]
    mask: bytes | None  # the selection over the region, a byte a pixel


def check_choices(doc: Any, workflow: core.Workflow, choices: Sequence[Choice]) -> None:
    """Raise WorkflowError, reading no pixel, for a loader given two sources, a loader the
    workflow lacks, a layer that is gone, or a selection mask with no selection."""
    loaders = {loader.node_id: loader for loader in core.workflow_loaders(workflow)}
    seen: set[str] = set()
    for nid, source in choices:
        if nid not in loaders:
            raise core.WorkflowError(f"Workflow {workflow.name!r} has no loader {nid}: choose "
                                     "the sources again.")
        where = f"loader {nid} ({loaders[nid].title})"
        if nid in seen:
            raise core.WorkflowError(f"Two sources are set for {where}: give it one.")
        seen.add(nid)
        if source in (SELECTION, CANVAS_MASK) and selection_mask_size(doc) is None:
            raise core.WorkflowError(NO_SELECTION)
        if source.startswith(LAYER) and doc.nodeByName(source[len(LAYER):]) is None:
            raise core.WorkflowError(
                f"The layer {source[len(LAYER):]!r} for {where} no longer exists: choose "
                "another source.")
        if source == ANIMATION:
            check_animation(doc, workflow, nid, where, loaders[nid].kind == "video")
        if source == EACH_FRAME:
            check_frames(doc)
        if source == ACTIVE and active_layer(doc) is None:
            raise core.WorkflowError(f"There is no active layer for {where}: click a layer.")
    used = {source for _, source in choices}
    if ANIMATION in used and EACH_FRAME in used:
        raise core.WorkflowError("Animation and Each frame cannot go together: one sends the "
                                 "range once, the other runs once per frame. Choose one.")


def selection_mask_size(doc: Any) -> tuple[int, int] | None:
    selection = doc.selection()
    if selection is None or selection.width() <= 0 or selection.height() <= 0:
        return None
    return selection.width(), selection.height()


def active_layer(doc: Any) -> Any:
    """The active layer; a mask's layer when a mask is active."""
    node = doc.activeNode()
    while node is not None and node.type().endswith("mask"):
        node = node.parentNode()
    return node


def placeholders(workflow: core.Workflow, choices: Sequence[Choice]) -> list[core.MediaInput]:
    """The media as file names only, for the core's checks before any pixel is read."""
    media = []
    video = video_loaders(workflow)
    for nid, source in choices:
        if source == KEEP:
            continue
        if source == ANIMATION:
            media.append(core.MediaInput(nid, core.InputFile(animation_name(nid in video))))
        elif source == EACH_FRAME:
            media.append(core.MediaInput(nid, core.InputFile("krita-frame.png")))
        elif source != SELECTION:
            media.append(core.MediaInput(nid, core.InputFile(_name(source))))
        if source in (SELECTION, CANVAS_MASK):
            media.append(core.MediaInput(nid, core.InputFile("krita-selection.png"), mask=True))
    return media


def video_loaders(workflow: core.Workflow) -> set[str]:
    """The loaders that read a video (an Animation goes to them as an MP4)."""
    return {loader.node_id for loader in core.workflow_loaders(workflow)
            if loader.kind == "video"}


def read_media(doc: Any, choices: Sequence[Choice], rect: Rect) -> Sent:
    """Each loader's pixels within `rect` (this thread: Krita's API), to be encoded on the
    runner's thread; an Animation's frames are read later (timeline.FrameReader). Call
    check_choices() first."""
    media: list[core.MediaInput] = []
    masked = any(source in (SELECTION, CANVAS_MASK) for _, source in choices)
    mask = selection_mask(doc, rect) if masked else None
    for nid, source in choices:
        if source in (KEEP, ANIMATION, EACH_FRAME):
            continue
        if source != SELECTION:
            image = _image(doc, source, rect)
            if source == CANVAS_MASK:  # the core merges the mask into the image's alpha
                _check_size(nid, image, rect)
                media.append(core.MediaInput(nid, _raw(_name(source), image)))
            else:
                media.append(core.MediaInput(nid, _png(_name(source), image)))
        if source in (SELECTION, CANVAS_MASK) and mask is not None:
            gray = core.InputFile.from_pixels("krita-selection.png", mask_pixels(mask, rect))
            media.append(core.MediaInput(nid, gray, mask=True))
    return Sent(media, mask)


def _check_size(nid: str, image: QImage, rect: Rect) -> None:
    """The core would refuse the job on its thread; say it here, before it is queued."""
    if (image.width(), image.height()) != (rect.width, rect.height):
        raise core.WorkflowError(
            f"The mask for loader {nid} is {rect.width}×{rect.height} but its image is "
            f"{image.width()}×{image.height()}: they must be the same size.")


def _image(doc: Any, source: str, rect: Rect) -> QImage:
    if source in (CANVAS, CANVAS_MASK):
        return read_region(doc, rect)
    node = active_layer(doc) if source == ACTIVE else doc.nodeByName(source[len(LAYER):])
    return read_node(doc, node, rect)


def _name(source: str) -> str:
    """The file's name (the core adds a hash of its content)."""
    if source in (CANVAS, CANVAS_MASK):
        return "krita.png"
    return "krita-active.png" if source == ACTIVE else "krita-layer.png"


def frame_png(image: QImage) -> core.InputFile:
    """One frame of Each frame, encoded when its job is sent."""
    return _png("krita-frame.png", image)


def _png(name: str, image: QImage) -> core.InputFile:
    """Encoded by Qt on the runner's thread: seconds at 4K, too long for Krita's."""
    return core.InputFile(name, make=lambda: png_bytes(image))


def _raw(name: str, image: QImage) -> core.InputFile:
    return core.InputFile.from_pixels(name, lambda: to_pixels(image))
