"""Render passes (depth, normals, mist, line art, the selection's mask, alpha) made by the
same render as the image, and written by Blender's own render job.

The compositor turns each pass into what ControlNet-style loaders read (docs/WIRE.md
"Render passes") and File Output nodes write them as PNGs while the render job runs, so
pressing Run costs the main thread only the set-up below. Every setting changed here
(view-layer passes, film transparency, Freestyle, objects' pass index, the compositor's
node group) is restored when the render ends, is cancelled or fails (PassSetup.close).

Blender 5.0 made the compositor a node group of its own (`scene.compositing_node_group`);
that is what is built here: the artist's own group is copied, never edited.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bpy

PASS_SOURCES = ("DEPTH", "NORMAL", "MIST", "LINEART", "OBJECT_MASK", "ALPHA")
MASKS = {"OBJECT_MASK", "ALPHA"}  # white = selected / covered: sent as masks
_CYCLES, _EEVEE, _WORKBENCH = "CYCLES", "BLENDER_EEVEE", "BLENDER_WORKBENCH"
# The engines that make each pass (Blender's Render Layers node shows no socket otherwise).
ENGINES = {
    "DEPTH": {_CYCLES, _EEVEE, "BLENDER_EEVEE_NEXT", _WORKBENCH},
    "NORMAL": {_CYCLES, _EEVEE, "BLENDER_EEVEE_NEXT"},
    "MIST": {_CYCLES, _EEVEE, "BLENDER_EEVEE_NEXT"},
    "LINEART": {_CYCLES, _EEVEE, "BLENDER_EEVEE_NEXT"},
    "OBJECT_MASK": {_CYCLES},
    "ALPHA": {_CYCLES, _EEVEE, "BLENDER_EEVEE_NEXT", _WORKBENCH},
}
_NAMES = {"DEPTH": "Depth", "NORMAL": "Normal", "MIST": "Mist", "LINEART": "Line Art",
          "OBJECT_MASK": "Object Mask", "ALPHA": "Alpha"}
_GIVEN_BY = {"NORMAL": "Cycles or EEVEE", "MIST": "Cycles or EEVEE",
             "LINEART": "Cycles or EEVEE (Freestyle)", "OBJECT_MASK": "Cycles (its Object "
             "Index pass)", "DEPTH": "Cycles, EEVEE or Workbench", "ALPHA": "any engine"}


def engine_problem(scene: bpy.types.Scene, source: str) -> str | None:
    """Why the scene's render engine cannot make `source`, and which one can; None if it can."""
    engine = scene.render.engine
    if engine in ENGINES[source]:
        return None
    return (f"The {_NAMES[source]} pass cannot be made by the render engine {engine!r}: "
            f"switch the engine (Render Properties) to {_GIVEN_BY[source]}.")


def selection_problem(scene: bpy.types.Scene, sources: list[str]) -> str | None:
    if "OBJECT_MASK" in sources and not selected(scene):
        return "Object Mask: select the objects to mask first."
    if bpy.app.version < (5, 0, 0):
        return ("Render passes (Depth, Normal, Mist, Line Art, Object Mask, Alpha) need "
                "Blender 5.0 or newer.")
    if scene.camera is None:
        return "The scene has no camera to render the passes from."
    return None


def selected(scene: bpy.types.Scene) -> list[bpy.types.Object]:
    return [o for o in scene.objects if o.select_get()]


@dataclass
class PassSetup:
    """The scene set up to write `sources` into `folder`; files() says where each went."""

    scene_name: str
    sources: list[str]
    folder: Path
    opengl_normals: bool = False

    def files(self) -> dict[str, Path]:
        return {s: self.folder / f"pass_{s.lower()}.png" for s in self.sources}

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Change the scene for the render; put everything back after (main thread)."""
        scene = bpy.data.scenes[self.scene_name]
        with contextlib.ExitStack() as undo:
            _settings(scene, self.sources, undo)
            index = _mask_index(scene, undo) if "OBJECT_MASK" in self.sources else 0
            group = _node_group(scene, undo)
            layers = group.nodes.new("CompositorNodeRLayers")
            layers.scene = scene
            layers.layer = bpy.context.view_layer.name if bpy.context.view_layer else ""
            for source in self.sources:
                _write(group, _converted(group, layers, source, scene, index,
                                         self.opengl_normals), self.folder, source)
            yield


def _settings(scene: bpy.types.Scene, sources: list[str], undo: contextlib.ExitStack) -> None:
    layer = bpy.context.view_layer or scene.view_layers[0]
    wanted: list[tuple[Any, str, Any]] = [(scene.render, "use_compositing", True)]
    flags = {"DEPTH": "use_pass_z", "NORMAL": "use_pass_normal", "MIST": "use_pass_mist",
             "OBJECT_MASK": "use_pass_object_index"}
    wanted += [(layer, flags[s], True) for s in sources if s in flags]
    if "ALPHA" in sources:
        wanted.append((scene.render, "film_transparent", True))
    if "LINEART" in sources:
        wanted += [(scene.render, "use_freestyle", True), (layer, "use_freestyle", True),
                   (layer.freestyle_settings, "as_render_pass", True)]
    for owner, name, value in wanted:
        undo.enter_context(_changed(owner, name, value))


@contextlib.contextmanager
def _changed(owner: Any, name: str, value: Any) -> Iterator[None]:
    saved = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        with contextlib.suppress(ReferenceError, AttributeError, TypeError):
            setattr(owner, name, saved)


def _mask_index(scene: bpy.types.Scene, undo: contextlib.ExitStack) -> int:
    """A pass index no other object has, given to the selected objects for the render."""
    index = max((o.pass_index for o in scene.objects), default=0) + 1
    for obj in selected(scene):
        undo.enter_context(_changed(obj, "pass_index", index))
    return index


def _node_group(scene: bpy.types.Scene, undo: contextlib.ExitStack) -> Any:
    """A copy of the scene's compositor (or a plain one passing the image through), set as
    the scene's for the render and removed after."""
    own = scene.compositing_node_group
    group: Any  # the stubs type node_groups.new() as optional and its sockets loosely
    if own is not None:
        group = own.copy()
    else:
        group = bpy.data.node_groups.new("ComfyRelay Passes", "CompositorNodeTree")
        group.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
        layers = group.nodes.new("CompositorNodeRLayers")
        out = group.nodes.new("NodeGroupOutput")
        group.links.new(layers.outputs["Image"], out.inputs[0])
    undo.callback(_remove_group, group.name)
    undo.enter_context(_changed(scene, "compositing_node_group", group))
    return group


def _remove_group(name: str) -> None:
    group = bpy.data.node_groups.get(name)
    if group is not None:
        bpy.data.node_groups.remove(group)


def _math(group: Any, operation: str, a: Any, b: float | Any, c: float | None = None) -> Any:
    """A Math node on `a` (a socket) and `b` (a socket or a number); its output socket."""
    node = group.nodes.new("ShaderNodeMath")
    node.operation = operation
    node.use_clamp = True
    group.links.new(a, node.inputs[0])
    if isinstance(b, float):
        node.inputs[1].default_value = b
    else:
        group.links.new(b, node.inputs[1])
    if c is not None:
        node.inputs[2].default_value = c
    return node.outputs[0]


def _inverted(group: Any, socket: Any) -> Any:
    """1 − value, clamped to 0–1."""
    node = group.nodes.new("ShaderNodeMath")
    node.operation, node.use_clamp = "SUBTRACT", True
    node.inputs[0].default_value = 1.0
    group.links.new(socket, node.inputs[1])
    return node.outputs[0]


def _converted(group: Any, layers: Any, source: str, scene: bpy.types.Scene, index: int,
               opengl: bool) -> Any:
    """The socket holding `source` as it is sent (docs/WIRE.md "Render passes")."""
    if source == "DEPTH":
        # Normalize spans the visible geometry (it skips the background's 1e10); near is
        # white; the background, far beyond 1 once normalised, clamps to black.
        normalize = group.nodes.new("CompositorNodeNormalize")
        group.links.new(layers.outputs["Depth"], normalize.inputs[0])
        return _inverted(group, normalize.outputs[0])
    if source == "NORMAL":
        return _camera_normals(group, layers.outputs["Normal"], scene, opengl)
    if source == "MIST":
        return _inverted(group, layers.outputs["Mist"])
    if source == "LINEART":
        separate = group.nodes.new("CompositorNodeSeparateColor")
        group.links.new(layers.outputs["Freestyle"], separate.inputs[0])
        return separate.outputs["Alpha"]  # the strokes' coverage: white lines on black
    if source == "OBJECT_MASK":
        mask = group.nodes.new("CompositorNodeIDMask")
        group.links.new(layers.outputs["Object Index"], mask.inputs["ID value"])
        mask.inputs["Index"].default_value = index
        mask.inputs["Anti-Alias"].default_value = False  # a hard silhouette, like the pass
        return mask.outputs[0]
    return layers.outputs["Alpha"]


def _camera_normals(group: Any, normal: Any, scene: bpy.types.Scene, opengl: bool) -> Any:
    """World-space normals (Cycles' and EEVEE's pass) turned to the camera's axes and coloured
    0.5 + 0.5·n: x along the camera's right (NormalBae: its left), y up, z toward it."""
    assert scene.camera is not None
    axes = scene.camera.matrix_world.to_3x3().normalized().transposed()  # rows: x, y, z
    combine = group.nodes.new("ShaderNodeCombineXYZ")
    for n in range(3):
        axis = axes[n]
        dot = group.nodes.new("ShaderNodeVectorMath")
        dot.operation = "DOT_PRODUCT"
        group.links.new(normal, dot.inputs[0])
        dot.inputs[1].default_value = axis
        sign = -0.5 if n == 0 and not opengl else 0.5
        group.links.new(_math(group, "MULTIPLY_ADD", dot.outputs["Value"], sign, 0.5),
                        combine.inputs[n])
    return combine.outputs[0]


def _write(group: Any, socket: Any, folder: Path, source: str) -> None:
    """A File Output node writing `socket` as an 8-bit PNG, values as they are (no view
    transform: a depth of 0.5 is 128)."""
    node = group.nodes.new("CompositorNodeOutputFile")
    node.directory = str(folder) + "/"
    node.file_name = "pass_"
    fmt = node.format
    fmt.media_type = "IMAGE"
    fmt.file_format = "PNG"
    fmt.color_mode = "RGB" if source == "NORMAL" else "BW"
    fmt.color_depth = "8"
    fmt.compression = 15
    fmt.color_management = "OVERRIDE"
    fmt.view_settings.view_transform = "Raw"
    kind = "RGBA" if source == "NORMAL" else "FLOAT"
    node.file_output_items.new(kind, source.lower())
    group.links.new(socket, node.inputs[source.lower()])
