"""Texture from Cameras (`comfyrelay.project_texture`): the selected meshes textured by the
panel's workflow, one view per camera, baked into each object's UV map.

Everything is checked before anything changes: no mesh selected, a mesh without faces, a
camera that sees none of the objects, a workflow with no image output are refused with a
sentence and leave the .blend as it was. Then the task (task.py) runs on the session's
pump; under `blender -b` the operator returns when it has ended, as comfyrelay.run does.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import bpy
import mathutils
import numpy as np

from .. import pixels, preferences, pump, sources
from ..core import core
from ..props import CAMERA_MODES, settings
from ..pump import SESSION
from . import projection, scene, task, views

if TYPE_CHECKING:
    from bpy.stub_internal.rna_enums import OperatorReturnItems

class Refused(Exception):
    """Bad input: the message says what to change; nothing was changed."""


class COMFYRELAY_OT_project_texture(bpy.types.Operator):
    """Texture the selected meshes: render each camera's view, send it through the workflow and
    project the results into each object's UV map"""

    bl_idname = "comfyrelay.project_texture"
    bl_label = "Texture from Cameras"

    cameras: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Cameras", items=CAMERA_MODES, default="AUTO", options={"SKIP_SAVE"})
    camera_count: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Cameras", default=6, min=1, max=64, options={"SKIP_SAVE"})
    texture_size: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Texture Size", default=1024, min=64, max=8192, options={"SKIP_SAVE"})
    sequential: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Sequential", default=False, options={"SKIP_SAVE"})
    wait: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Wait", description="Under blender -b: return only when the texturing has ended",
        default=True, options={"SKIP_SAVE"})
    timeout: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Timeout", description="Under blender -b with Wait: cancel after this many "
        "seconds (0: never); the views done are kept", default=0.0, options={"SKIP_SAVE"})

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if not SESSION.view.can_run:  # no workflow, a flagged value, a run under way...
            cls.poll_message_set(SESSION.view.run_tip)
            return False
        if not bpy.app.online_access:
            cls.poll_message_set("Online access is off: enable it in Preferences › System › "
                                 "Network")
            return False
        return context.scene is not None

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        started = time.monotonic()
        try:
            pump.configure()
            made = self._task(context)
        except (Refused, core.ComfyRelayError, pixels.SourceError, OSError, RuntimeError,
                ValueError, MemoryError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        made.setup_seconds = time.monotonic() - started
        try:
            made.start()
        except core.ComfyRelayError as exc:
            made.discard()  # its cameras, and its UV maps: nothing changed
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        task.LAST = made
        pump.wake()
        made.step()  # begins the first view; the pump's ticks begin the others
        if bpy.app.background and self.wait:
            pump.drive(self.timeout or None)
            return self._report(made)
        return {"FINISHED"}

    # ---- checks, then the task ----
    def _task(self, context: bpy.types.Context) -> task.Task:
        s_scene = context.scene
        assert s_scene is not None
        s = settings(s_scene)
        workflow = _workflow(s)
        plan = sources.plan(s_scene, s, workflow, texturing=True)
        meshes = _meshes(context)
        SESSION.check_values(workflow, s.bindings(), plan.placeholders())
        SESSION.require_runner()
        depsgraph = context.evaluated_depsgraph_get()
        size = plan.render_size
        chosen = _selected_cameras(context) if self.cameras == "SELECTED" else []
        for obj in chosen:
            if obj.data.type == "PANO":  # type: ignore[union-attr]
                raise Refused(f"Camera {obj.name!r} is panoramic: textures are projected from "
                              "perspective or orthographic cameras; deselect it.")
        lenses = [scene.camera(c, depsgraph, size) for c in chosen]
        geometry = [scene.mesh(o, depsgraph) for o in meshes]
        for obj, lens in zip(chosen, lenses, strict=True):
            if not any(projection.sees(lens, m) for m in geometry):
                raise Refused(f"Camera {obj.name!r} sees none of the selected objects: aim it "
                              "at them, or deselect it.")
            if _clips(lens, geometry):
                raise Refused(f"Camera {obj.name!r} cuts the selected objects with its clip "
                              "range: adjust its Clip Start/End.")
        for obj, shape in zip(meshes, geometry, strict=True):
            if chosen and not any(projection.sees(lens, shape) for lens in lenses):
                raise Refused(f"No selected camera sees {obj.name!r}: it would be baked black. "
                              "Aim a camera at it, or deselect it.")
        out_dir = preferences.output_dir()
        # Checked: from here on the file changes (UV maps where missing, cameras placed);
        # a failure takes back what was made.
        made_uvs: list[tuple[str, str]] = []
        try:
            made = self._made(context, s, plan, workflow, meshes, chosen, lenses, out_dir,
                              made_uvs)
        except BaseException:
            for name, uv in made_uvs:
                scene.remove_uv_map(name, uv)
            raise
        s.next_seeds()  # the run goes ahead: the fields show the seeds it uses
        made.bindings = s.bindings()
        return made

    def _made(self, context: bpy.types.Context, s: Any, plan: sources.Plan,
              workflow: core.Workflow, meshes: list[bpy.types.Object],
              chosen: list[bpy.types.Object], lenses: list[Any], out_dir: Any,
              made_uvs: list[tuple[str, str]]) -> task.Task:
        """The task, with its UV maps made where missing (listed in `made_uvs` as they are
        made) and its cameras placed."""
        s_scene = context.scene
        assert s_scene is not None
        uvs = []
        for obj in meshes:
            uv, new = scene.ensure_uv_map(obj)
            uvs.append((uv, new))
            if new:
                made_uvs.append((obj.name, uv))
        depsgraph = context.evaluated_depsgraph_get()
        depsgraph.update()
        objects, offset = [], 0
        for obj, (uv, new) in zip(meshes, uvs, strict=True):
            shape = scene.mesh(obj, depsgraph, uv)
            objects.append(task.Textured(obj.name, uv, new, projection.ObjectProjection(
                shape, self.texture_size, offset)))
            offset += len(shape.triangles)
        # The textured objects' triangles first (their offsets above), then what else hides.
        others = [o for o in scene.visible_meshes(s_scene) if o not in meshes]
        occluders = np.concatenate([*(t.projection.mesh.corners() for t in objects),
                                    scene.occluders(others, depsgraph)])
        projection.measure_visible([t.projection for t in objects], occluders)
        views, temporary = self._views(context, chosen, lenses, objects, occluders,
                                       plan.render_size)
        sequential = self.sequential or any(e.source in sources.PAINTED for e in plan.entries)
        try:
            return task.Task(s_scene, plan, workflow, s.bindings(), out_dir, objects, views,
                             occluders, sequential=sequential,
                             opengl_normals=s.normal_convention == "OPENGL",
                             temporary_cameras=temporary)
        except BaseException:
            scene.remove_objects(temporary)
            raise

    def _views(self, context: bpy.types.Context, chosen: list[bpy.types.Object],
               lenses: list[Any], objects: list[task.Textured], occluders: np.ndarray,
               size: tuple[int, int]) -> tuple[list[task.View], list[str]]:
        if self.cameras == "SELECTED":
            return [task.View(n + 1, c.name, lens) for n, (c, lens) in
                    enumerate(zip(chosen, lenses, strict=True))], []
        placed = projection.place([t.projection for t in objects], occluders,
                                  self.camera_count, *size)
        made: list[bpy.types.Object] = []
        try:
            for n, p in enumerate(placed):
                made.append(_camera_object(context, n + 1, p.camera))
            depsgraph = context.evaluated_depsgraph_get()
            depsgraph.update()
            return [task.View(n + 1, obj.name, scene.camera(obj, depsgraph, size),
                              p.added_coverage)
                    for n, (obj, p) in enumerate(zip(made, placed, strict=True))], [
                        o.name for o in made]
        except BaseException:
            scene.remove_objects([o.name for o in made])
            raise

    def _report(self, made: task.Task) -> set[OperatorReturnItems]:
        view = SESSION.view
        lines = "\n".join(made.report)
        if view.error or made.failed:
            where = f" ({view.error_node})" if view.error_node else ""
            self.report({"ERROR"}, f"{view.error}{where}\n{lines}".strip())
            return {"CANCELLED"}
        self.report({"INFO"}, lines or view.status)
        return {"FINISHED"}


def _workflow(s: Any) -> core.Workflow:
    if not s.workflow_path:
        raise Refused("Choose a workflow file: a ComfyUI workflow .json or image.")
    workflow = SESSION.workflow(s.workflow_file())
    if workflow is None:
        s.load_inputs()
        workflow = SESSION.workflow(s.workflow_file())
    if workflow is None:
        raise Refused(s.workflow_error or "The workflow could not be opened.")
    picked = s.bindings().outputs
    images = views.image_nodes(workflow, picked)
    if picked:  # the view's image comes from the nodes picked: they must give one
        for node in (workflow.node_id(ref) for ref in picked):
            if node not in images:
                raise Refused(f"Output node {node} ({workflow.title(node)}) gives no image: "
                              "pick the node whose image is each view's texture.")
    elif not images:
        raise Refused(f"Workflow {workflow.name!r} has no image output (SaveImage or "
                      "PreviewImage): each view needs an image back to project.")
    return workflow


def _meshes(context: bpy.types.Context) -> list[bpy.types.Object]:
    meshes = [o for o in context.selected_objects if o.type == "MESH"]
    if not meshes:
        raise Refused("Select the mesh objects to texture: no mesh is selected.")
    depsgraph = context.evaluated_depsgraph_get()
    for obj in meshes:
        if scene.face_count(obj, depsgraph) == 0:
            raise Refused(f"Mesh {obj.name!r} has no faces to texture: deselect it.")
    return meshes


def _selected_cameras(context: bpy.types.Context) -> list[bpy.types.Object]:
    cameras = [o for o in context.selected_objects if o.type == "CAMERA"]
    if not cameras:
        raise Refused("Select the cameras to project from (with the meshes), or choose "
                      "Automatic cameras.")
    return cameras


def _clips(lens: Any, meshes: list[Any]) -> bool:
    """Some of the objects in the camera's frame lies nearer than its Clip Start or beyond
    its Clip End: the render would show them cut."""
    near, far = lens.clip_range()
    for mesh in meshes:
        xy, depth = lens.project(mesh.positions)
        framed = ((xy >= 0) & (xy < (lens.width, lens.height))).all(axis=1) & (depth > 0)
        if ((depth[framed] < near) | (depth[framed] > far)).any():
            return True
    return False


def _camera_object(context: bpy.types.Context, number: int, lens: Any) -> bpy.types.Object:
    """A temporary camera where the placement put one (removed when the task ends): the
    engine's cameras are Blender's default 50 mm on a 36 mm sensor, fit AUTO."""
    data = bpy.data.cameras.new(f"ComfyRelay View {number}")
    data.lens, data.sensor_width, data.sensor_fit = 50.0, 36.0, "AUTO"
    data.clip_start, data.clip_end = lens.clip_range()  # near enough for a small object
    obj = bpy.data.objects.new(f"ComfyRelay View {number}", data)
    obj.matrix_world = mathutils.Matrix(np.linalg.inv(lens.world_to_view).tolist())
    assert context.scene is not None
    context.scene.collection.objects.link(obj)
    return obj


CLASSES = (COMFYRELAY_OT_project_texture,)
