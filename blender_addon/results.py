"""Bringing results into Blender: images, image sequences, movie clips, material textures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy
import bpy.utils.previews

RESULT_IMAGE = "ComfyRelay Result"
PREVIEW_IMAGE = "ComfyRelay Preview"
TEXTURE_NODE = "ComfyRelay Texture"


def load_image(path: Path, name: str | None) -> bpy.types.Image:
    """Load `path`; with a name, update that image in place (users of it see the new pixels)."""
    image = bpy.data.images.get(name) if name else None
    if image is None or image.source not in ("FILE", "SEQUENCE"):
        image = bpy.data.images.load(str(path), check_existing=False)
        if name:
            image.name = name
    else:
        image.source = "FILE"
        image.filepath = str(path)
        image.reload()
    return image


def load_sequence(first: Path, name: str) -> bpy.types.Image:
    """Numbered files (name_0001.png, name_0002.png...) as one image sequence."""
    image = bpy.data.images.load(str(first), check_existing=False)
    image.source = "SEQUENCE"
    image.name = name
    return image


def load_preview(data: bytes, mime: str, folder: Path) -> bpy.types.Image:
    """Live previews replace the pixels of one image, so an open editor shows them as they come."""
    path = folder / ("preview.jpg" if "jpeg" in mime else "preview.png")
    path.write_bytes(data)
    return load_image(path, PREVIEW_IMAGE)


def load_movie(path: Path) -> bpy.types.MovieClip:
    return bpy.data.movieclips.load(str(path), check_existing=False)


def show(image: bpy.types.Image) -> bool:
    """Show the image in the first open Image Editor; False when none is open."""
    wm = bpy.context.window_manager
    for window in wm.windows if wm else []:
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                area.spaces.active.image = image  # type: ignore[union-attr]
                area.tag_redraw()
                return True
    return False


def set_texture(obj: bpy.types.Object, image: bpy.types.Image, frames: int = 0) -> str:
    """Wire the image as Base Color of the object's active material (created if missing).

    Returns the material's name. `frames` > 0 sets up an image sequence of that length.
    """
    if obj.type not in {"MESH", "CURVE", "SURFACE", "META", "FONT", "CURVES", "VOLUME"}:
        raise ValueError(f"{obj.name} ({obj.type.lower()}) cannot have a material.")
    material = obj.active_material
    if material is None:
        material = bpy.data.materials.new("ComfyRelay")
        if obj.material_slots:
            obj.material_slots[obj.active_material_index or 0].material = material
        else:
            obj.data.materials.append(material)  # type: ignore[union-attr]
    if not material.use_nodes:
        material.use_nodes = True  # always on (and deprecated) from Blender 5.0
    tree = material.node_tree
    assert tree is not None
    bsdf = _principled(tree)
    texture = tree.nodes.get(TEXTURE_NODE)
    if texture is None:
        texture = tree.nodes.new("ShaderNodeTexImage")
        texture.name = texture.label = TEXTURE_NODE
        texture.location = (bsdf.location.x - 320, bsdf.location.y)
    texture.image = image  # type: ignore[attr-defined]
    if frames:
        user = texture.image_user  # type: ignore[attr-defined]
        user.frame_duration = frames
        user.frame_start = bpy.context.scene.frame_start if bpy.context.scene else 1
        user.use_auto_refresh = True
    tree.links.new(texture.outputs["Color"], bsdf.inputs["Base Color"])
    return material.name


def _principled(tree: bpy.types.NodeTree) -> bpy.types.Node:
    """The material's Principled BSDF, or a new one wired to its output."""
    for node in tree.nodes:
        if node.type == "BSDF_PRINCIPLED":
            return node
    bsdf = tree.nodes.new("ShaderNodeBsdfPrincipled")
    output = next((n for n in tree.nodes if n.type == "OUTPUT_MATERIAL"), None)
    if output is None:
        output = tree.nodes.new("ShaderNodeOutputMaterial")
        output.location = (300, 0)
    tree.links.new(bsdf.outputs["BSDF"], output.inputs["Surface"])
    return bsdf


_thumbnails: Any = None  # bpy.utils.previews collection, made when first needed


_unreadable: set[str] = set()  # files found missing: not looked for again on every redraw


def thumbnail(path: str) -> int:
    """An icon of an image file for the history list (0 for none, or one not there)."""
    global _thumbnails
    found = _thumbnails.get(path) if _thumbnails is not None else None
    if found is not None:  # the panel draws often: no file access once loaded
        return int(found.icon_id)
    if not path or path in _unreadable:
        return 0
    if not Path(path).is_file():
        _unreadable.add(path)
        return 0
    if _thumbnails is None:
        _thumbnails = bpy.utils.previews.new()
    return int(_thumbnails.load(path, path, "IMAGE").icon_id)


def drop_thumbnails() -> None:
    global _thumbnails
    if _thumbnails is not None:
        bpy.utils.previews.remove(_thumbnails)
        _thumbnails = None
