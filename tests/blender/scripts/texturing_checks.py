"""Texture from Cameras in real bpy: `python texturing_checks.py CHECK IN.json`, as
blender_checks.py (whose set-up helpers it uses) but for comfyrelay.project_texture.

Each test object gets an unlit (Emission) material showing a known image on its UV map and
the view transform is Standard, so a camera's render shows exactly the texture: projecting
with the identity workflow (LoadImage → SaveImage) must give that texture back.
"""

from __future__ import annotations

import importlib
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
checks: Any = importlib.import_module("blender_checks")
bpy: Any = importlib.import_module("bpy")

Report = dict[str, Any]


# ---------------------------------------------------------------- set-up


def known_texture(name: str, size: int, seed: int) -> Any:
    """A smooth colourful 8-bit sRGB image (few, broad waves: resampling keeps it)."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:size, 0:size] / size
    rgb = np.zeros((size, size, 3))
    for c in range(3):
        for _ in range(3):
            fu, fv, phase = rng.uniform(1, 4), rng.uniform(1, 4), rng.uniform(0, 6.3)
            rgb[..., c] += np.sin(2 * np.pi * (fu * u + fv * v) + phase)
    rgb = 0.5 + 0.4 * rgb / 3
    return image_of(name, rgb)


def flat_texture(name: str, colour: tuple[float, float, float], size: int = 64) -> Any:
    return image_of(name, np.broadcast_to(np.array(colour), (size, size, 3)))


def image_of(name: str, rgb: np.ndarray) -> Any:
    """An 8-bit sRGB image of `rgb` (rows bottom first, as Blender stores them)."""
    height, width = rgb.shape[:2]
    image = bpy.data.images.new(name, width, height, alpha=True)
    rgba = np.ones((height, width, 4))
    rgba[..., :3] = np.round(rgb * 255) / 255
    image.pixels.foreach_set(rgba.ravel().astype(np.float32))
    image.pack()
    return image


def unlit(obj: Any, image: Any) -> Any:
    """An Emission material showing `image` on the object's UV map."""
    material = bpy.data.materials.new(f"{obj.name} unlit")
    tree = material.node_tree
    tree.nodes.clear()
    texture = tree.nodes.new("ShaderNodeTexImage")
    texture.image = image
    texture.interpolation = "Closest"
    emission = tree.nodes.new("ShaderNodeEmission")
    output = tree.nodes.new("ShaderNodeOutputMaterial")
    tree.links.new(texture.outputs["Color"], emission.inputs["Color"])
    tree.links.new(emission.outputs["Emission"], output.inputs["Surface"])
    obj.data.materials.clear()
    obj.data.materials.append(material)
    return material


def empty_scene(size: int) -> Any:
    """No objects; Cycles on the CPU, a sharp pixel filter, Standard view: a render shows
    exactly what the unlit materials show."""
    scene = checks.tiny_scene()
    for obj in list(scene.objects):
        bpy.data.objects.remove(obj)
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.cycles.samples = 4
    scene.cycles.filter_width = 0.01
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure, scene.view_settings.gamma = 0.0, 1.0
    world = scene.world or bpy.data.worlds.new("World")
    scene.world = world
    world.color = (0.0, 0.0, 0.0)
    return scene


def add(kind: str, location: tuple[float, float, float] = (0, 0, 0), size: float = 2.0) -> Any:
    if kind == "suzanne":
        bpy.ops.mesh.primitive_monkey_add(size=size, location=location)
    elif kind == "cube":
        bpy.ops.mesh.primitive_cube_add(size=size, location=location)
    else:
        bpy.ops.mesh.primitive_plane_add(size=size, location=location)
    return bpy.context.active_object


def select(*objects: Any) -> None:
    bpy.ops.object.select_all(action="DESELECT")
    for obj in objects:
        obj.select_set(True)
    bpy.context.view_layer.objects.active = objects[0]


def uv_data(obj: Any) -> list[float]:
    layer = obj.data.uv_layers.active
    out = np.empty(len(layer.uv) * 2, np.float32)
    layer.uv.foreach_get("vector", out)
    return out.round(6).tolist()


def pixels_of(image: Any) -> np.ndarray:
    """(H, W, 4) floats, row 0 at the top."""
    width, height = image.size
    out = np.empty(width * height * 4, np.float32)
    image.pixels.foreach_get(out)
    return out.reshape(height, width, 4)[::-1]


def resampled(image: Any, size: int) -> np.ndarray:
    """The original texture at the baked texture's texel centres (nearest), row 0 top."""
    original = pixels_of(image)
    h, w = original.shape[:2]
    rows = ((np.arange(size) + 0.5) * h / size).astype(int)
    cols = ((np.arange(size) + 0.5) * w / size).astype(int)
    return original[rows][:, cols]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(1.0 / mse)


def file_state() -> Report:
    """What a refused call must leave as it was."""
    return {
        "images": sorted(i.name for i in bpy.data.images),
        "materials": sorted(m.name for m in bpy.data.materials),
        "objects": sorted(o.name for o in bpy.data.objects),
        "cameras": sorted(c.name for c in bpy.data.cameras),
        "uv_maps": {o.name: [u.name for u in o.data.uv_layers] for o in bpy.data.objects
                    if o.type == "MESH"},
        "slots": {o.name: [s.material.name if s.material else "" for s in o.material_slots]
                  for o in bpy.data.objects},
        "seeds": {i.name: i.value for i in bpy.context.scene.comfyrelay.inputs},
    }


def texture_op(**kwargs: Any) -> str:
    """Run comfyrelay.project_texture; "" or the error Blender raised from its report."""
    try:
        bpy.ops.comfyrelay.project_texture(**kwargs)
    except RuntimeError as exc:
        return str(exc)
    return ""


def start(payload: Report, size: int) -> tuple[str, Any]:
    addon = checks.install(payload["zip"])
    checks.configure(addon, payload)
    return addon, empty_scene(size)


def task_module(addon: str) -> Any:
    return checks.addon_module(addon, "texturing.task")


def object_report(addon: str, obj: Any, original: Any) -> Report:
    """How the baked texture of `obj` compares with its original, on the texels a view saw."""
    task = task_module(addon).LAST
    target = next(t for t in task.objects if t.name == obj.name)
    baked = bpy.data.images[obj["comfyrelay_texture"]]
    size = baked.size[0]
    seen = np.zeros(size * size, bool)
    surface = target.projection.surface
    seen[surface.texels] = target.projection.accumulator.painted
    ours = pixels_of(baked)[..., :3].reshape(-1, 3)
    reference = resampled(original, size)[..., :3].reshape(-1, 3)
    material = obj.material_slots[0].material
    links = [(link.from_node.bl_idname, link.to_socket.name) for link in material.node_tree.links]
    return {
        "psnr": psnr(ours[seen], reference[seen]),
        "seen": int(seen.sum()),
        "coverage": target.coverage,
        "filled": target.filled,
        "image": baked.name,
        "size": list(baked.size),
        "packed": baked.packed_file is not None,
        "colorspace": baked.colorspace_settings.name,
        "material": material.name,
        "links": links,
        "seconds": target.seconds,
    }


# ---------------------------------------------------------------- checks


def check_identity(payload: Report) -> Report:
    """Each object of payload["objects"] textured with the identity workflow from
    automatic cameras; the baked textures against the originals."""
    addon, scene = start(payload, payload.get("render", 256))
    objects, originals = [], []
    for n, kind in enumerate(payload["objects"]):
        size = payload.get("object_size", 2.0)
        obj = add(kind, location=(1.5 * size * n, 0, 0), size=size)
        original = known_texture(f"original {kind}", payload["size"], seed=n + 1)
        unlit(obj, original)
        objects.append(obj)
        originals.append(original)
    select(*objects)
    uvs = {o.name: uv_data(o) for o in objects}
    old = [o.material_slots[0].material.name for o in objects]
    checks.use_workflow(scene, payload["workflow"])
    started = time.monotonic()
    error = texture_op(cameras="AUTO", camera_count=payload["cameras"],
                       texture_size=payload["size"])
    report: Report = {"error": error, "seconds": time.monotonic() - started}
    report.update(checks.session_state(addon))
    task = task_module(addon).LAST
    report["lines"] = task.lines()
    report["views"] = [v.state for v in task.views]
    report["added"] = [v.added for v in task.views]
    report["objects"] = {o.name: object_report(addon, o, orig) for o, orig in
                         zip(objects, originals, strict=True)}
    report["uv_unchanged"] = all(uv_data(o) == uvs[o.name] for o in objects)
    report["old_kept"] = all(bpy.data.materials.get(name) is not None for name in old)
    report["cameras_left"] = [o.name for o in bpy.data.objects if o.type == "CAMERA"]
    return report


def check_occlusion(payload: Report) -> Report:
    """A green cube behind a red plane that hides its middle from the one selected camera:
    no texel the plane hides (a ray from the camera meets the plane first) turns red."""
    addon, scene = start(payload, 128)
    back = add("cube", location=(0, 0, 0), size=2.0)
    unlit(back, flat_texture("green", (0.0, 1.0, 0.0)))
    front = add("plane", location=(0, -2.5, 0), size=1.2)
    front.rotation_euler = (np.pi / 2, 0, 0)
    unlit(front, flat_texture("red", (1.0, 0.0, 0.0)))
    data = bpy.data.cameras.new("Front")
    camera = bpy.data.objects.new("Front", data)
    scene.collection.objects.link(camera)
    camera.location = (0.4, -8.0, 0.3)
    camera.rotation_euler = (np.pi / 2, 0, 0)
    select(back, front, camera)
    checks.use_workflow(scene, payload["workflow"])
    error = texture_op(cameras="SELECTED", texture_size=256)
    report: Report = {"error": error}
    report.update(checks.session_state(addon))
    task = task_module(addon).LAST
    target = next(t for t in task.objects if t.name == back.name)
    surface = target.projection.surface
    baked = pixels_of(bpy.data.images[back["comfyrelay_texture"]]).reshape(-1, 4)
    bpy.context.view_layer.update()
    depsgraph = bpy.context.evaluated_depsgraph_get()
    eye = np.array(camera.matrix_world.translation)
    hidden = []
    for texel, point in zip(surface.texels, surface.positions, strict=True):
        direction = point - eye
        distance = float(np.linalg.norm(direction))
        hit, _, _, _, obj, _ = scene.ray_cast(depsgraph, eye.tolist(),
                                              (direction / distance).tolist(),
                                              distance=distance - 1e-3)
        if hit and obj.name == front.name:
            hidden.append(texel)
    reds = baked[hidden, 0] - baked[hidden, 1]
    report["hidden"] = len(hidden)
    report["hidden_red_max"] = float(baked[hidden, 0].max()) if hidden else 0.0
    report["hidden_red_mean"] = float(baked[hidden, 0].mean()) if hidden else 0.0
    report["hidden_reddish"] = int((reds > 0).sum())
    report["lines"] = task.lines()
    return report


def check_sequential(payload: Report) -> Report:
    """The invert workflow on Uncovered, sequential: a view's result is the inverse of its
    mask, black where it sees what no earlier view painted; as a view paints only those
    texels, every painted texel ends black (a view that repainted old texels would bring
    white)."""
    addon, scene = start(payload, 128)
    obj = add("suzanne")
    unlit(obj, known_texture("original", 128, seed=3))
    select(obj)
    settings = checks.use_workflow(scene, payload["workflow"])
    settings.media[0].source = "UNCOVERED"
    renders = checks.count_renders()
    changes = record_changes(addon)
    error = texture_op(cameras="AUTO", camera_count=4, texture_size=256, sequential=True)
    report: Report = {"error": error, "renders": len(renders), "changes": changes}
    report.update(checks.session_state(addon))
    task = task_module(addon).LAST
    target = task.objects[0]
    baked = pixels_of(bpy.data.images[obj["comfyrelay_texture"]]).reshape(-1, 4)
    painted = target.projection.surface.texels[target.projection.accumulator.painted]
    report["painted"] = len(painted)
    report["painted_dark"] = float(np.mean(baked[painted, :3].max(axis=1) < 0.1))
    report["views"] = [v.state for v in task.views]
    report["lines"] = task.lines()
    return report


def record_changes(addon: str) -> list[Report]:
    """Per view added to an object: how many texels it newly painted, and how many texels
    painted before it changed colour."""
    projection = checks.addon_module(addon, "texturing.projection").ObjectProjection
    add = projection.add
    changes: list[Report] = []

    def recorded(self: Any, *args: Any, **kwargs: Any) -> None:
        before = self.accumulator.painted.copy()
        colours = self.accumulator.colors().copy()
        add(self, *args, **kwargs)
        after = self.accumulator.colors()
        moved = np.abs(after - colours).max(axis=1) > 1e-9
        changes.append({"new": int((self.accumulator.painted & ~before).sum()),
                        "old_changed": int((moved & before).sum())})

    projection.add = recorded
    return changes


def check_refusals(payload: Report) -> Report:
    """Bad input: a sentence each, and the file as it was."""
    addon, scene = start(payload, 64)
    cube = add("cube")
    unlit(cube, flat_texture("grey", (0.5, 0.5, 0.5)))
    checks.use_workflow(scene, payload["workflow"])  # its seed advances on each run
    scene.comfyrelay.inputs["2.seed"].control = "increment"
    before = file_state()
    report: Report = {}
    bpy.ops.object.select_all(action="DESELECT")
    report["no_mesh"] = texture_op()
    empty = bpy.data.objects.new("Empty mesh", bpy.data.meshes.new("Empty mesh"))
    scene.collection.objects.link(empty)
    select(empty)
    before_empty = file_state()
    report["no_faces"] = texture_op()
    report["no_faces_clean"] = file_state() == before_empty
    bpy.data.objects.remove(empty)
    data = bpy.data.cameras.new("Away")
    away = bpy.data.objects.new("Away", data)
    scene.collection.objects.link(away)
    away.location, away.rotation_euler = (0, 0, 10), (0, 0, 0)
    away.location = (0, -10, 0)  # looking down -Z: the cube is not in its frame
    select(cube, away)
    before_away = file_state()
    report["away"] = texture_op(cameras="SELECTED")
    report["away_clean"] = file_state() == before_away
    bpy.data.objects.remove(away)
    bpy.data.cameras.remove(data)
    data = bpy.data.cameras.new("Clipped")
    clipped = bpy.data.objects.new("Clipped", data)
    scene.collection.objects.link(clipped)
    clipped.location, clipped.rotation_euler = (0, -10, 0), (math.pi / 2, 0, 0)
    data.clip_end = 9.5  # the cube's front at 9 m is in, its back at 11 m cut away
    select(cube, clipped)
    before_clipped = file_state()
    report["clipped"] = texture_op(cameras="SELECTED")
    report["clipped_clean"] = file_state() == before_clipped
    data.clip_end = 100.0  # it sees the cube whole; the plane far to the side, not at all
    select(cube, clipped)
    data.type = "PANO"
    report["pano"] = texture_op(cameras="SELECTED")
    data.type = "PERSP"
    aside = add("plane", location=(100, 0, 0))
    select(cube, aside, clipped)
    before_unseen = file_state()
    report["unseen"] = texture_op(cameras="SELECTED")
    report["unseen_clean"] = file_state() == before_unseen
    bpy.data.objects.remove(aside)
    bpy.data.objects.remove(clipped)
    bpy.data.cameras.remove(data)
    select(cube)
    report["none_selected_cameras"] = texture_op(cameras="SELECTED")
    report["clean"] = file_state() == before
    # A failure once UV maps are made (here the placement) takes them back.
    while cube.data.uv_layers:
        cube.data.uv_layers.remove(cube.data.uv_layers[0])
    before_late = file_state()
    operator = checks.addon_module(addon, "texturing.operator")
    place = operator.projection.place

    def no_room(*args: Any) -> Any:
        raise MemoryError("no room")

    operator.projection.place = no_room
    report["late"] = texture_op()
    operator.projection.place = place
    report["late_clean"] = file_state() == before_late
    report["late_state"] = [before_late, file_state()]
    report["mode"] = cube.mode
    checks.use_workflow(scene, payload["no_image_workflow"])
    report["no_image"] = texture_op()
    report["busy"] = checks.session_state(addon)["busy"]
    return report


def check_partial(payload: Report) -> Report:
    """The back end fails on the third of four views (its job runs a failing workflow): the
    views done are baked, and the texture is named partial."""
    addon, scene = start(payload, 96)
    obj = add("suzanne")
    obj.name = "A Suzanne whose name is long enough to fill what Blender 4 keeps"
    unlit(obj, known_texture("original", 128, seed=4))
    select(obj)
    checks.use_workflow(scene, payload["workflow"])
    task = task_module(addon)
    failing = checks.addon_module(addon, "core").core.Workflow(payload["failing_graph"],
                                                               "failing")
    send = task.Task._send

    def send_failing_third(self: Any, view: Any) -> None:
        if view.number == 3:
            self.workflow, kept = failing, self.workflow
            send(self, view)
            self.workflow = kept
        else:
            send(self, view)

    task.Task._send = send_failing_third
    error = texture_op(cameras="AUTO", camera_count=4, texture_size=128, sequential=True)
    report: Report = {"error": error}
    report.update(checks.session_state(addon))
    report["views"] = [v.state for v in task.LAST.views]
    report["texture"] = obj.get("comfyrelay_texture", "")
    report["partial"] = obj.get("comfyrelay_partial", "")
    report["lines"] = task.LAST.lines()
    report["cameras_left"] = [o.name for o in bpy.data.objects if o.type == "CAMERA"]
    return report


def check_failures(payload: Report) -> Report:
    """The second view's result file cannot be read, and the cube is removed once the first
    view is projected: the run ends with sentences, the placed cameras are removed, the
    scene's camera is put back and the session is free for the next run."""
    addon, scene = start(payload, 64)
    suzanne, cube = add("suzanne"), add("cube", location=(3, 0, 0))
    for obj in (suzanne, cube):
        unlit(obj, known_texture(f"original {obj.name}", 64, seed=3))
    mine = bpy.data.objects.new("Mine", bpy.data.cameras.new("Mine"))
    scene.collection.objects.link(mine)
    scene.camera = mine
    select(suzanne, cube)
    checks.use_workflow(scene, payload["workflow"])
    task = task_module(addon)
    views = checks.addon_module(addon, "texturing.views")
    read, project = views.read, task.Task._project
    reads: list[Any] = []

    def unreadable_second(path: Any) -> Any:  # sequential: the second read is view 2's
        reads.append(path)
        if len(reads) == 2:
            raise OSError(f"{path}: cannot read")
        return read(path)

    def then_remove_cube(self: Any, view: Any, path: Any) -> None:
        project(self, view, path)
        if view.number == 1:
            bpy.data.objects.remove(bpy.data.objects["Cube"])

    views.read, task.Task._project = unreadable_second, then_remove_cube
    error = texture_op(cameras="AUTO", camera_count=4, texture_size=64, sequential=True)
    report: Report = {"error": error, "lines": task.LAST.lines(),
                      "views": [v.state for v in task.LAST.views],
                      "texture": suzanne.get("comfyrelay_texture", ""),
                      "camera": scene.camera.name if scene.camera else "",
                      "cameras_left": [o.name for o in bpy.data.objects if o.type == "CAMERA"]}
    report.update(checks.session_state(addon))
    views.read, task.Task._project = read, project
    select(suzanne)
    report["again"] = texture_op(cameras="AUTO", camera_count=2, texture_size=64)
    report["again_views"] = [v.state for v in task.LAST.views]
    report["again_partial"] = suzanne.get("comfyrelay_partial")
    return report


def check_scaled(payload: Report) -> Report:
    """A workflow whose result is twice the view's size: scaled back, and said. The cube has
    no UV map: it gets a Smart UV Project one."""
    addon, scene = start(payload, 64)
    obj = add("cube")
    unlit(obj, known_texture("original", 64, seed=5))
    while obj.data.uv_layers:
        obj.data.uv_layers.remove(obj.data.uv_layers[0])
    select(obj)
    checks.use_workflow(scene, payload["workflow"])
    error = texture_op(cameras="AUTO", camera_count=2, texture_size=128)
    report: Report = {"error": error, "lines": task_module(addon).LAST.lines()}
    report.update(checks.session_state(addon))
    report["texture"] = obj.get("comfyrelay_texture", "")
    report["uv_maps"] = [u.name for u in obj.data.uv_layers]
    report["mode"] = obj.mode
    return report


def check_projected(payload: Report) -> Report:
    """After the cube is textured from six views, Projected So Far from a new camera against
    Blender's own render of the original from there (the unlit material shows it as is)."""
    addon, scene = start(payload, 128)
    obj = add("cube")
    unlit(obj, known_texture("original", 512, seed=8))
    select(obj)
    checks.use_workflow(scene, payload["workflow"])
    error = texture_op(cameras="AUTO", camera_count=6, texture_size=512)
    task = task_module(addon).LAST
    operator = checks.addon_module(addon, "texturing.operator")
    projection = checks.addon_module(addon, "texturing.projection")
    views = checks.addon_module(addon, "texturing.views")
    geometry = checks.addon_module(addon, "texturing.geometry")
    lens = geometry.Camera.look_at((4.0, -5.0, 3.0), (0, 0, 0), 128, 128)
    camera = operator._camera_object(bpy.context, 99, lens)
    scene.camera = camera
    obj.material_slots[0].material = bpy.data.materials[f"{obj.name} unlit"]
    path = Path(payload["output"]) / "reference.png"
    scene.render.filepath = str(path)
    scene.render.image_settings.file_format = "PNG"
    bpy.ops.render.render(write_still=True)
    reference = views.read(path)[..., :3]
    picture, uncovered = projection.seen_so_far([t.projection for t in task.objects], lens,
                                                task.occluders)
    hit = picture[..., :3].max(axis=2) > 0
    inner = hit.copy()  # away from the silhouette, where a pixel is part background
    for shift in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        inner &= np.roll(hit, shift, axis=(0, 1))
    return {"error": error, "pixels": int(inner.sum()), "uncovered": float(uncovered[hit].mean()),
            "psnr": psnr(picture[..., :3][inner], reference[inner])}


def check_ui_render(payload: Report) -> Report:
    """The UI's way: each view's render started as Blender's render job (the call returns at
    once; its handlers say when it is done) and the task moved on by the pump's ticks. Here
    the job is Blender's blocking render whose handlers fire before the call returns, which
    the task may only notice on a later tick."""
    addon, scene = start(payload, 96)
    obj = add("cube")
    unlit(obj, known_texture("original", 128, seed=9))
    select(obj)
    checks.use_workflow(scene, payload["workflow"])
    rendering = checks.addon_module(addon, "rendering")
    real = bpy.ops.render.render
    calls: list[tuple[Any, ...]] = []

    def render_job(*args: Any, **kwargs: Any) -> set[str]:
        calls.append(args)  # ("INVOKE_DEFAULT",)
        real(**kwargs)
        return {"RUNNING_MODAL"}

    rendering.bpy = checks.Proxy(bpy, app=checks.Proxy(bpy.app, background=False),
                                 ops=checks.Proxy(bpy.ops, render=checks.Proxy(
                                     bpy.ops.render, render=render_job)))
    error = texture_op(cameras="AUTO", camera_count=3, texture_size=256)
    report: Report = {"error": error, "calls": [list(c) for c in calls]}
    report.update(checks.session_state(addon))
    task = task_module(addon).LAST
    report["views"] = [v.state for v in task.views]
    report["camera"] = scene.camera.name if scene.camera else ""
    report["objects"] = {obj.name: object_report(addon, obj, bpy.data.images["original"])}
    return report


def check_close_mid_render(payload: Report) -> Report:
    """The add-on's task is closed while a view's render job is under way: its camera and
    output settings stay until the job ends, then the camera is put back and the placed
    cameras removed."""
    addon, scene = start(payload, 64)
    obj = add("cube")
    select(obj)
    checks.use_workflow(scene, payload["workflow"])
    rendering = checks.addon_module(addon, "rendering")
    rendering.bpy = checks.Proxy(bpy, app=checks.Proxy(bpy.app, background=False),
                                 ops=checks.Proxy(bpy.ops, render=checks.Proxy(
                                     bpy.ops.render, render=lambda *a, **k: {"RUNNING_MODAL"})))
    path = scene.render.filepath
    error = texture_op(cameras="AUTO", camera_count=2, texture_size=64, wait=False)
    task = task_module(addon).LAST
    task.close()
    report: Report = {"error": error, "during": {
        "camera": scene.camera.name if scene.camera else "",
        "path_kept": scene.render.filepath != path,
        "cameras": sorted(o.name for o in bpy.data.objects if o.type == "CAMERA")}}
    for handler in list(bpy.app.handlers.render_cancel):  # the job is cancelled
        handler(scene)
    report["again"] = task.close_after_render()
    report["after"] = {
        "camera": scene.camera.name if scene.camera else "",
        "path_back": scene.render.filepath == path,
        "cameras": sorted(o.name for o in bpy.data.objects if o.type == "CAMERA")}
    return report


def check_cancel(payload: Report) -> Report:
    """Cancel pressed once the second of four views is projected: the two are baked (named
    partial), the others never rendered nor sent; the panel showed a line per view."""
    addon, scene = start(payload, 64)
    obj = add("suzanne")
    unlit(obj, known_texture("original", 64, seed=7))
    select(obj)
    checks.use_workflow(scene, payload["workflow"])
    task = task_module(addon)
    project = task.Task._project
    panels: list[list[str]] = []

    def then_cancel(self: Any, view: Any, path: Any) -> None:
        project(self, view, path)
        if view.number == 2:
            panels.append(checks.draw_panel(addon))
            bpy.ops.comfyrelay.cancel()

    task.Task._project = then_cancel
    renders = checks.count_renders()
    error = texture_op(cameras="AUTO", camera_count=4, texture_size=128, sequential=True)
    report: Report = {"error": error, "renders": len(renders), "panel": panels[0]}
    report.update(checks.session_state(addon))
    report["views"] = [v.state for v in task.LAST.views]
    report["texture"] = obj.get("comfyrelay_texture", "")
    report["lines"] = task.LAST.lines()
    report["cameras_left"] = [o.name for o in bpy.data.objects if o.type == "CAMERA"]
    return report


def check_benchmark(payload: Report) -> Report:
    """benchmarks/blender_texturing.py: Suzanne subdivided twice (as rendered: 15,744
    triangles), textured with the identity workflow for each (views, size) case; the
    Blender-side seconds of each run (set-up, projection, bake; not renders, not jobs)."""
    addon, scene = start(payload, payload["render"])
    obj = add("suzanne")
    obj.modifiers.new("Subdivision", "SUBSURF").levels = 2
    unlit(obj, known_texture("original", 512, seed=6))
    checks.use_workflow(scene, payload["workflow"])
    task = task_module(addon)
    runs: Report = {}
    for views, size in payload["cases"]:
        key = f"{views}x{size}"
        runs[key] = []
        for _ in range(payload["repeats"]):
            select(obj)
            error = texture_op(cameras="AUTO", camera_count=views, texture_size=size)
            if error:
                raise RuntimeError(error)
            done = task.LAST
            runs[key].append({"blender": done.blender_seconds(), "setup": done.setup_seconds,
                              "lines": done.lines()})
    return {"runs": runs}


if __name__ == "__main__":
    checks.main(globals())
