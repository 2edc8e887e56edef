"""The scene as the texturing engine reads it: evaluated meshes (modifiers applied as
rendered) in world space, cameras as matrices, and each object's UV map.

Everything here reads Blender data on the main thread into numpy arrays (`foreach_get`,
never Python loops over vertices), so the engine itself never touches bpy.
"""

from __future__ import annotations

from collections.abc import Iterable

import bpy
import numpy as np

from .geometry import Camera, Mesh


def uv_map(obj: bpy.types.Object) -> str:
    """The UV map the texture is baked into: the one rendered (else the active one); ""
    when the mesh has none."""
    layers = obj.data.uv_layers  # type: ignore[union-attr]
    chosen = next((layer for layer in layers if layer.active_render), layers.active)
    return chosen.name if chosen is not None else ""


def ensure_uv_map(obj: bpy.types.Object) -> tuple[str, bool]:
    """The object's UV map, or a new Smart UV Project one when it has none (True). The
    active object and Object Mode are put back, also when the unwrap fails."""
    name = uv_map(obj)
    if name:
        return name, False
    context = bpy.context
    assert context.view_layer is not None
    layers = context.view_layer.objects
    active, mode_objects = layers.active, [obj]
    layers.active = obj
    with context.temp_override(active_object=obj, object=obj, selected_objects=mode_objects,
                               selected_editable_objects=mode_objects):
        try:
            bpy.ops.object.mode_set(mode="EDIT")
            bpy.ops.mesh.select_all(action="SELECT")
            bpy.ops.uv.smart_project()
        finally:
            if obj.mode != "OBJECT":
                bpy.ops.object.mode_set(mode="OBJECT")
            layers.active = active
    return uv_map(obj), True


def remove_uv_map(object_name: str, uv: str) -> None:
    """Take back a UV map the texturing made (the object may be gone meanwhile)."""
    obj = bpy.data.objects.get(object_name)
    if obj is None or not isinstance(obj.data, bpy.types.Mesh):
        return
    layer = obj.data.uv_layers.get(uv)
    if layer is not None:
        obj.data.uv_layers.remove(layer)


def remove_objects(names: Iterable[str]) -> None:
    """Remove temporary objects (placed cameras) and their data when nothing else uses it."""
    for name in names:
        obj = bpy.data.objects.get(name)
        if obj is not None:
            data = obj.data
            bpy.data.objects.remove(obj)
            if isinstance(data, bpy.types.Camera) and not data.users:
                bpy.data.cameras.remove(data)


def mesh(obj: bpy.types.Object, depsgraph: bpy.types.Depsgraph, uv_name: str = "") -> Mesh:
    """The evaluated mesh in world space: triangles, per-corner UVs (of `uv_name`, zeros
    without one) and per-corner normals (smooth and sharp edges as rendered)."""
    evaluated = obj.evaluated_get(depsgraph)
    data = evaluated.to_mesh()
    assert data is not None  # a mesh object always has one
    try:
        data.calc_loop_triangles()
        tris = data.loop_triangles
        count = len(tris)
        corners = _ints(tris, "vertices", count * 3)
        loops = _ints(tris, "loops", count * 3)
        local = _floats(data.vertices, "co", len(data.vertices) * 3).reshape(-1, 3)
        normals = _floats(data.corner_normals, "vector", len(data.loops) * 3).reshape(-1, 3)
        uvs = np.zeros((len(data.loops), 2), np.float32)
        layer = data.uv_layers.get(uv_name) if uv_name else None
        if layer is not None:
            uvs = _floats(layer.uv, "vector", len(data.loops) * 2).reshape(-1, 2)
        matrix = np.array(evaluated.matrix_world, np.float64)
    finally:
        evaluated.to_mesh_clear()
    positions = local.astype(np.float64) @ matrix[:3, :3].T + matrix[:3, 3]
    normal_matrix = np.linalg.inv(matrix[:3, :3]).T  # normals follow the inverse transpose
    world_normals = normals[loops].astype(np.float64) @ normal_matrix.T
    world_normals /= np.maximum(np.linalg.norm(world_normals, axis=1, keepdims=True), 1e-12)
    return Mesh(
        positions=positions,
        triangles=corners.reshape(-1, 3).astype(np.int64),
        uvs=uvs[loops].reshape(-1, 3, 2).astype(np.float64),
        normals=world_normals.reshape(-1, 3, 3),
    )


def face_count(obj: bpy.types.Object, depsgraph: bpy.types.Depsgraph) -> int:
    """Faces of the evaluated mesh (what renders)."""
    evaluated = obj.evaluated_get(depsgraph)
    data = evaluated.to_mesh()
    try:
        return len(data.polygons) if data is not None else 0
    finally:
        evaluated.to_mesh_clear()


def occluders(objects: Iterable[bpy.types.Object], depsgraph: bpy.types.Depsgraph) -> np.ndarray:
    """World-space triangles (T, 3, 3) of every object that hides others from a camera."""
    parts = [mesh(o, depsgraph).corners() for o in objects]
    return np.concatenate(parts) if parts else np.zeros((0, 3, 3))


def visible_meshes(scene: bpy.types.Scene) -> list[bpy.types.Object]:
    """The meshes a render shows: they all hide what is behind them."""
    return [o for o in scene.objects if o.type == "MESH" and not o.hide_render
            and o.visible_get()]


def camera(obj: bpy.types.Object, depsgraph: bpy.types.Depsgraph,
           size: tuple[int, int]) -> Camera:
    """`obj` seen as the engine's Camera, for renders of `size` (width, height)."""
    width, height = size
    scene = depsgraph.scene
    assert scene is not None
    aspect = (scene.render.pixel_aspect_x, scene.render.pixel_aspect_y)
    projection = obj.calc_matrix_camera(depsgraph, x=width, y=height,
                                        scale_x=aspect[0], scale_y=aspect[1])
    location, rotation, _ = obj.matrix_world.decompose()  # a render ignores its scale
    placed = rotation.to_matrix().to_4x4()
    placed.translation = location
    return Camera(world_to_view=np.array(placed.inverted(), np.float64),
                  projection=np.array(projection, np.float64), width=width, height=height)


def _ints(collection: object, attribute: str, count: int) -> np.ndarray:
    out = np.empty(count, np.int32)
    collection.foreach_get(attribute, out)  # type: ignore[attr-defined]
    return out


def _floats(collection: object, attribute: str, count: int) -> np.ndarray:
    out = np.empty(count, np.float32)
    collection.foreach_get(attribute, out)  # type: ignore[attr-defined]
    return out
