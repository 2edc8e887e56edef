"""The baked texture into the .blend: an image packed into the file, wired as Base Color of
a new material on the object's UV map, and named on the object (`comfyrelay_texture`;
`comfyrelay_partial` says "2 of 6 views" while it is partial).

Colour management: the views are 8-bit sRGB pictures (what the workflow returned, as
ComfyUI saved them), so the texture is an 8-bit image in the sRGB colour space holding
those values unchanged; Blender decodes sRGB to linear when it shades, so an unlit
material under the Standard view transform shows exactly what the views showed
(docs/WIRE.md §6.1).
"""

from __future__ import annotations

import bpy
import numpy as np

from .. import results

PROPERTY = "comfyrelay_texture"  # on the object: its texture image's name
PARTIAL = "comfyrelay_partial"  # on the object while its texture is partial: "2 of 6 views"
MATERIAL_SUFFIX = "ComfyRelay Texture"


def image(name: str, texture: np.ndarray) -> bpy.types.Image:
    """A packed 8-bit sRGB image of `texture` ((N, N, 3 or 4) floats 0–1, row 0 = the top,
    v = 1). An earlier image of that name is kept: Blender numbers the new one."""
    size = texture.shape[0]
    made = bpy.data.images.new(name, size, size, alpha=True, float_buffer=False)
    colour = made.colorspace_settings
    assert colour is not None
    colour.name = "sRGB"  # type: ignore[assignment]  # the stubs list only "NONE"
    rgba = np.ones((size, size, 4), np.float32)
    rgba[..., : min(texture.shape[2], 3)] = np.clip(texture[..., :3], 0.0, 1.0)
    made.pixels.foreach_set(rgba[::-1].ravel())  # type: ignore[arg-type]  # numpy is faster  # Blender stores the bottom row (v = 0) first
    made.update()
    made.pack()  # a generated image is packed as PNG: it travels with the .blend
    return made


def material(obj: bpy.types.Object, texture: bpy.types.Image, uv_name: str) -> bpy.types.Material:
    """A new material with `texture` (on `uv_name`) as Base Color, given to each of the
    object's slots; the materials it replaces keep a fake user, so they stay in the file."""
    made = bpy.data.materials.new(f"{obj.name} {MATERIAL_SUFFIX}")
    made.use_nodes = True  # always on (and deprecated) from Blender 5.0
    tree = made.node_tree
    assert tree is not None
    bsdf = results._principled(tree)
    node = tree.nodes.new("ShaderNodeTexImage")
    node.name = node.label = results.TEXTURE_NODE
    node.image = texture  # type: ignore[attr-defined]
    node.location = (bsdf.location.x - 320, bsdf.location.y)
    uv = tree.nodes.new("ShaderNodeUVMap")
    uv.uv_map = uv_name  # type: ignore[attr-defined]
    uv.location = (node.location.x - 220, node.location.y)
    tree.links.new(uv.outputs["UV"], node.inputs["Vector"])
    tree.links.new(node.outputs["Color"], bsdf.inputs["Base Color"])
    slots = obj.material_slots
    if not slots:
        obj.data.materials.append(made)  # type: ignore[union-attr]
    for slot in slots:
        if slot.material is not None:
            slot.material.use_fake_user = True
        slot.material = made
    obj[PROPERTY] = texture.name
    return made
