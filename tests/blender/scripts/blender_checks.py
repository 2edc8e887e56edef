"""Checks that run inside real bpy, one per process: `python blender_checks.py CHECK IN.json`.

Each check installs the built extension zip the way Blender's "Install from Disk" does (into
the BLENDER_USER_RESOURCES folder the test chose), enables it, does its work and writes a JSON
report to the "out" path of its input. Exceptions are reported, never left to kill the process
silently.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

# Typed as Any: these checks poke at the add-on's own classes and properties, which the
# bpy stubs cannot know; blender_addon/ itself is type-checked against the stubs.
bpy: Any = importlib.import_module("bpy")

W, H = 64, 48
Report = dict[str, Any]


# ---------------------------------------------------------------- set-up


def install(zip_path: str) -> str:
    """Install and enable the extension; return its module name (bl_ext.user_default.…)."""
    result = bpy.ops.extensions.package_install_files(
        repo="user_default", filepath=zip_path, enable_on_install=True
    )
    assert result == {"FINISHED"}, result
    prefs = bpy.context.preferences
    assert prefs is not None
    names = [a.module for a in prefs.addons if a.module.endswith(".comfyrelay")]
    assert names, [a.module for a in prefs.addons]
    return names[0]


def addon_module(name: str, module: str) -> Any:
    return importlib.import_module(f"{name}.{module}")


def configure(addon: str, payload: Report) -> None:
    prefs = bpy.context.preferences
    assert prefs is not None
    prefs.system.use_online_access = True
    ours = prefs.addons[addon].preferences
    ours.url = payload["url"]
    ours.output_dir = payload["output"]
    ours.token = payload.get("token", "")
    for name, value in payload.get("prefs", {}).items():  # another back end's fields
        setattr(ours, name, value)


def tiny_scene(frames: int = 1) -> bpy.types.Scene:
    """The default cube scene, rendered small and fast with Cycles on the CPU."""
    scene = bpy.context.scene
    assert scene is not None
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 4
    scene.cycles.use_denoising = False
    scene.render.resolution_x, scene.render.resolution_y = W, H
    scene.render.resolution_percentage = 100
    scene.frame_start, scene.frame_end = 1, frames
    cube = bpy.data.objects["Cube"]
    for frame in range(1, frames + 1):  # motion, so every frame differs
        cube.rotation_euler[2] = 0.4 * frame
        cube.keyframe_insert("rotation_euler", frame=frame)
    return scene


def use_workflow(scene: bpy.types.Scene, path: str) -> Any:
    settings = scene.comfyrelay
    settings.workflow_path = path
    assert not settings.workflow_error, settings.workflow_error
    return settings


def comfy() -> Any:
    return bpy.ops.comfyrelay


def press_button(session: Any, label: str) -> None:
    """A button of the chosen back end's box, by its label, as the panel draws it."""
    button = next(b for view in session.view.controls for b in view.buttons
                  if b.label == label)
    comfy().backend_action(kind=button.kind, action=button.action, target=button.target)


def image_bytes(image: bpy.types.Image) -> list[int]:
    """RGBA bytes, top row first (Blender stores the bottom row first)."""
    w, h = image.size
    flat = [round(v * 255) for v in image.pixels[:]]
    rows = [flat[y * w * 4 : (y + 1) * w * 4] for y in range(h)]
    return [v for row in reversed(rows) for v in row]


def session_state(addon: str) -> Report:
    pump = addon_module(addon, "pump")
    view = pump.SESSION.view
    return {
        "status": view.status,
        "progress_shown": view.progress_shown,
        "run_tip": view.run_tip,
        "error": view.error,
        "error_node": view.error_node,
        "busy": pump.SESSION.busy,
        "outputs": list(pump.SHOWN.outputs),
    }


def run_op(**kwargs: Any) -> str:
    """Run comfyrelay.run and return "" or the error Blender raised from its report."""
    try:
        comfy().run(**kwargs)
    except RuntimeError as exc:
        return str(exc)
    return ""


# ---------------------------------------------------------------- checks


class Layout:
    """Stands in for UILayout (bpy has no windows): records what draw() asks for."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Layout:
            text = kwargs.get("text")
            key = next((a for a in args if isinstance(a, str)), "")  # property or operator
            self.calls.append(f"{name}:{key}:{text or ''}")
            return self

        return call


def draw_panel(addon: str) -> list[str]:
    calls: list[str] = []
    fake = type("FakePanel", (), {"layout": Layout(calls)})()
    panel = addon_module(addon, "panel").ComfyRelayPanel
    for name in [n for n in vars(panel) if callable(getattr(panel, n))]:  # draw and its parts
        setattr(fake, name, getattr(panel, name).__get__(fake))
    fake.draw(bpy.context)
    return calls


def check_panel(payload: Report) -> Report:
    """Draw the panel and the preferences in a few states, with a stand-in layout."""
    addon = install(payload["zip"])
    configure(addon, payload)
    scene = tiny_scene()
    settings = use_workflow(scene, payload["workflow"])
    settings.source = "IMAGE"
    session = addon_module(addon, "pump").SESSION
    idle = draw_panel(addon)
    session.view = dataclasses.replace(
        session.view,
        error="Node 4 'Alpha' (ImageToMask) failed: " + "x" * 120,
        error_node="node 4 (ImageToMask)",
        node="Invert (2)",
        step="step 2/4",
        progress_shown=True,
        connection="Connected to ComfyUI 0.3.64 — ready.",
        connection_details="This server lacks job routes /api/jobs",
    )
    closed = draw_panel(addon)  # the connection's details folded
    settings.show_details = True
    failed = draw_panel(addon)
    prefs_calls: list[str] = []
    ours = bpy.context.preferences.addons[addon].preferences
    type(ours).draw(type("P", (), {"layout": Layout(prefs_calls), **_prefs_values(ours)})(), None)
    bpy.context.preferences.system.use_online_access = False
    offline = draw_panel(addon)
    return {"idle": idle, "closed": closed, "failed": failed, "offline": offline,
            "prefs": prefs_calls}


def _prefs_values(prefs: Any) -> dict[str, Any]:
    return {n: getattr(prefs, n) for n in type(prefs).__annotations__}


def check_install(payload: Report) -> Report:
    addon = install(payload["zip"])
    classes = ["COMFYRELAY_PT_view3d", "COMFYRELAY_PT_image", "COMFYRELAY_OT_run"]
    found = {name: hasattr(bpy.types, name) for name in classes}
    panel = bpy.types.COMFYRELAY_PT_view3d
    ops = [op for op in ("check", "run", "cancel", "load_workflow") if hasattr(comfy(), op)]
    prefs = bpy.context.preferences
    assert prefs is not None
    ours = prefs.addons[addon].preferences
    pydantic = importlib.import_module("pydantic")
    core = addon_module(addon, "comfyrelay")
    # Online access off (the bpy module's default): Run is refused, the panel says why.
    prefs.system.use_online_access = False
    offline_poll = comfy().run.poll()
    prefs.system.use_online_access = True
    site_packages = Path(str(pydantic.__file__)).parents[1]
    settings = addon_module(addon, "preferences").host_settings()  # every field, as drawn
    return {
        "bpy_version": bpy.app.version_string,
        "python": list(sys.version_info[:2]),
        "compiled": sorted(p.name for p in site_packages.glob("pydantic_core/_pydantic_core*")),
        "prefs_values": _prefs_values(ours),
        "accelerator_sent": settings.backend_settings("comfyicu").settings.accelerator,
        "addon": addon,
        "classes": found,
        "space": [panel.bl_space_type, panel.bl_region_type, panel.bl_category],
        "ops": ops,
        "prefs_class": type(ours).__name__,
        "url": ours.url,
        "core_file": core.__file__,
        "pydantic": pydantic.__file__,
        "offline_poll": offline_poll,
        "online_poll_no_workflow": comfy().run.poll(),
        "run_tip_no_workflow": addon_module(addon, "pump").SESSION.view.run_tip,
    }


def check_invert(payload: Report) -> Report:
    """Render, send the Render Result through the invert workflow, read the result back."""
    addon = install(payload["zip"])
    configure(addon, payload)
    scene = tiny_scene()
    settings = use_workflow(scene, payload["workflow"])
    settings.use_material = payload.get("material", False)
    if "prefix" in payload:  # an edited input field reaches the workflow
        settings.inputs["3.filename_prefix"].string_value = payload["prefix"]
    bpy.ops.render.render()
    reference = Path(payload["output"]) / "reference.png"
    bpy.data.images["Render Result"].save_render(str(reference))
    cube = bpy.data.objects["Cube"]
    if bpy.context.view_layer is not None:
        bpy.context.view_layer.objects.active = cube
    comfy().check()
    session = addon_module(addon, "pump").SESSION
    connection = session.view.connection
    configured: list[Any] = []  # each time the preferences are applied to the session
    given = session.configure

    def counted(*args: Any) -> None:
        configured.append(args)
        given(*args)

    session.configure = counted
    paths = []
    for _ in range(payload.get("runs", 1)):
        error = run_op()
        image = bpy.data.images.get("ComfyRelay Result")
        paths.append(image.filepath if image else "")
    report: Report = session_state(addon)  # before another back end clears what it said
    bpy.context.preferences.addons[addon].preferences.url = payload["url"] + "/"
    report.update({"run_error": error, "inputs": [i.name for i in settings.inputs],
                   "configured": len(configured)})
    report["connection"] = connection
    report["cleared"] = session_state(addon)
    report["result_paths"] = paths
    report["images"] = sorted(i.name for i in bpy.data.images)
    if image is not None:
        report.update(
            result=bytes(image_bytes(image)).hex(),
            size=list(image.size),
            filepath=image.filepath,
        )
    material = cube.active_material
    if material is not None and material.node_tree is not None:
        tree = material.node_tree
        texture = tree.nodes.get("ComfyRelay Texture")
        report["texture_image"] = texture.image.name if texture else None
        report["links"] = sorted(
            f"{link.from_node.name}.{link.from_socket.name}->"
            f"{link.to_node.bl_idname}.{link.to_socket.name}"
            for link in tree.links
        )
    # The token lives in the preferences only: save the .blend and look for it.
    blend = Path(payload["output"]) / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), compress=False)
    token = payload.get("token", "")
    report["token_in_blend"] = bool(token) and token.encode() in blend.read_bytes()
    return report


def check_animation(payload: Report) -> Report:
    addon = install(payload["zip"])
    configure(addon, payload)
    scene = tiny_scene(frames=payload["frames"])
    settings = use_workflow(scene, payload["workflow"])
    settings.animation = True
    settings.use_material = True
    bpy.context.view_layer.objects.active = bpy.data.objects["Cube"]
    filepath_before = scene.render.filepath
    error = run_op()
    report = {"run_error": error, "filepath_restored": scene.render.filepath == filepath_before}
    report.update(session_state(addon))
    sequences = [i for i in bpy.data.images if i.source == "SEQUENCE"]
    report["sequences"] = [(i.name, Path(bpy.path.abspath(i.filepath)).name) for i in sequences]
    if sequences:
        folder = Path(bpy.path.abspath(sequences[0].filepath)).parent
        report["files"] = sorted(p.name for p in folder.iterdir())
    texture = bpy.data.objects["Cube"].active_material.node_tree.nodes.get("ComfyRelay Texture")
    report["texture_frames"] = texture.image_user.frame_duration if texture else 0
    report["format_restored"] = scene.render.image_settings.file_format
    return report


def check_cancel(payload: Report) -> Report:
    """Start a slow run without waiting, cancel it, then run again: Blender stays usable."""
    addon = install(payload["zip"])
    configure(addon, payload)
    scene = tiny_scene()
    use_workflow(scene, payload["workflow"])
    bpy.ops.render.render()
    pump = addon_module(addon, "pump")
    error = run_op(wait=False)
    time.sleep(payload.get("cancel_after", 0.5))
    pump.pump()  # what the panel would show at that moment
    view = pump.SESSION.view
    progress = {"progress": view.progress, "node": view.node, "step": view.step}
    comfy().cancel()
    started = time.monotonic()
    pump.drive(timeout=30)
    report: Report = {"run_error": error, "cancel_seconds": time.monotonic() - started}
    report["after_cancel"] = session_state(addon)
    report["while_running"] = progress
    report["run_poll_after"] = comfy().run.poll()
    return report


def check_error(payload: Report) -> Report:
    """A failing node, then an HTTP error: both reported with what happened."""
    addon = install(payload["zip"])
    configure(addon, payload)
    scene = tiny_scene()
    use_workflow(scene, payload["workflow"])
    bpy.ops.render.render()
    error = run_op()
    report: Report = {"run_error": error, "state": session_state(addon)}
    report["run_poll_after"] = comfy().run.poll()
    if "other" in payload:  # another workflow: the failure was the old one's
        use_workflow(scene, payload["other"])
        report["after_switch"] = session_state(addon)
        report["panel_after_switch"] = draw_panel(addon)
    return report


def check_sources(payload: Report) -> Report:
    """An existing image goes as its file; the viewport needs a window, and says so."""
    addon = install(payload["zip"])
    configure(addon, payload)
    scene = tiny_scene()
    settings = use_workflow(scene, payload["workflow"])
    settings.source = "VIEWPORT"
    report: Report = {"viewport_error": run_op()}
    report["viewport_state"] = session_state(addon)
    settings.source = "IMAGE"
    settings.source_image = bpy.data.images.load(payload["image"])
    report["image_error"] = run_op()
    report["image_state"] = session_state(addon)
    result = bpy.data.images.get("ComfyRelay Result")
    report["result"] = bytes(image_bytes(result)).hex() if result else ""
    return report


def check_remove(payload: Report) -> Report:
    """Disable, then uninstall, as Preferences › Add-ons does."""
    addon = install(payload["zip"])
    pkg_id = addon.rpartition(".")[2]
    prefs = bpy.context.preferences
    assert prefs is not None
    (repo,) = [r for r in prefs.extensions.repos if r.module == "user_default"]
    repo_dir = Path(repo.directory)
    wheels_before = sorted(p.name for p in (repo_dir.parent / ".local").rglob("pydantic_core"))
    bpy.ops.preferences.addon_disable(module=addon)
    report: Report = {
        "enabled_after_disable": addon in {a.module for a in prefs.addons},
        "registered_after_disable": hasattr(bpy.types, "COMFYRELAY_PT_view3d"),
        "scene_prop_after": hasattr(bpy.types.Scene, "comfyrelay"),
        "wheels_before": wheels_before,
    }
    bpy.ops.extensions.package_uninstall(repo_directory=str(repo_dir), pkg_id=pkg_id)
    report["left"] = sorted(p.name for p in repo_dir.iterdir() if not p.name.startswith("."))
    report["wheels_after"] = sorted(
        p.name for p in (repo_dir.parent / ".local").rglob("pydantic_core")
    )
    return report


def check_machine(payload: Report) -> Report:
    """RunComfy machine from the panel: find and stop a leftover, Launch, Run, Stop."""
    import os

    os.environ["COMFYRELAY_CONFIG_DIR"] = payload["config"]  # ledger and credentials file
    addon = install(payload["zip"])
    configure(addon, payload)
    ours = bpy.context.preferences.addons[addon].preferences
    ours.backend = "runcomfy-machine"
    ours.rc_user_id, ours.rc_token1 = payload["user_id"], payload["rc_token"]
    ours.rc_api_url, ours.rc_workflow_version = payload["rc_url"], "ver-1"
    ours.rc_hourly_price = 3600.0  # one unit a second, so the cost shows at once
    # The test server answers at once: lift the client's ~1 request/s RunComfy limit.
    addon_module(addon, "comfyrelay.net.ratelimit").configure("runcomfy", 200.0, 50)
    pump = addon_module(addon, "pump")
    session = pump.SESSION
    pump.configure()
    report: Report = {"before": draw_panel(addon)}

    comfy().find_leftovers()
    found = [row for view in session.view.controls for row in view.found]
    report["leftovers"] = [row.target for row in found]
    report["leftover_panel"] = draw_panel(addon)
    for row in found:
        stop = next(b for b in row.buttons if b.label == "Stop")
        comfy().backend_action(kind=stop.kind, action=stop.action, target=stop.target)
    report["leftover_message"] = next(v.found_message for v in session.view.controls
                                      if v.found_title)

    backend = session.backend
    timing = addon_module(addon, "comfyrelay.runcomfy.machine").Timing
    backend.timing = timing(poll_first=0.05, poll_max=0.1, ready_timeout=20.0,
                            not_found_grace=5.0)
    press_button(session, "Launch")
    report["launched"] = backend.server_id
    ledger = addon_module(addon, "comfyrelay.runcomfy.ledger").Ledger()
    report["ledger_running"] = [e.server_id for e in ledger.entries()]
    time.sleep(1.1)
    report["ready_panel"] = draw_panel(addon)

    scene = tiny_scene()
    use_workflow(scene, payload["workflow"])
    bpy.ops.render.render()
    report["run_error"] = run_op()
    image = bpy.data.images.get("ComfyRelay Result")
    report["result"] = bytes(image_bytes(image)).hex() if image else ""
    reference = Path(payload["output"]) / "reference.png"
    bpy.data.images["Render Result"].save_render(str(reference))
    report["same_backend"] = session.backend is backend

    press_button(session, "Stop")
    report["stopped_status"] = backend.status().status
    report["machine_lines"] = [line for view in session.view.controls for line in view.lines]
    blend = Path(payload["output"]) / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), compress=False)
    report["token_in_blend"] = payload["rc_token"].encode() in blend.read_bytes()
    report.update(session_state(addon))
    return report


def check_serverless(payload: Report) -> Report:
    """RunComfy Serverless from the panel: a job RunComfy fails, one whose files come under
    `output`, then a cancel that RunComfy only takes note of."""
    addon = install(payload["zip"])
    configure(addon, payload)
    # The test server answers at once: lift the client's ~1 request/s RunComfy limit.
    addon_module(addon, "comfyrelay.net.ratelimit").configure("runcomfy", 200.0, 50)
    scene = tiny_scene()
    settings = use_workflow(scene, payload["workflow"])
    bpy.ops.render.render()
    bpy.data.images["Render Result"].save_render(str(Path(payload["output"]) / "reference.png"))
    pump = addon_module(addon, "pump")
    pump.configure()
    pump.SESSION.backend.poll_interval = 0.05  # RunComfy's own pace is 2 s
    prefix = settings.inputs["3.filename_prefix"]
    report: Report = {}

    prefix.string_value = "FAIL"  # the test server's node fails on it
    started = time.monotonic()
    report["failed_run_error"] = run_op()
    report["failed_seconds"] = time.monotonic() - started
    report["failed"] = session_state(addon)
    report["failed_panel"] = draw_panel(addon)

    prefix.string_value = "ComfyRelay"
    report["run_error"] = run_op()
    report["done"] = session_state(addon)
    image = bpy.data.images.get("ComfyRelay Result")
    if image is not None:
        report.update(result=bytes(image_bytes(image)).hex(), size=list(image.size),
                      filepath=image.filepath)

    report["cancel_run_error"] = run_op(wait=False)
    sent = time.monotonic() + 20  # cancel once RunComfy has the request
    while not pump.SESSION.view.status.startswith(("Queued", "Running")):
        assert time.monotonic() < sent, pump.SESSION.view.status
        pump.pump()
        time.sleep(0.02)
    comfy().cancel()
    pump.drive(timeout=30)
    report["cancelled"] = session_state(addon)
    report["cancelled_panel"] = draw_panel(addon)
    return report


def with_config(payload: Report) -> str:
    """Install into a fresh bpy with the config folder (app views, ledger) the test chose."""
    import os

    os.environ["COMFYRELAY_CONFIG_DIR"] = payload["config"]
    addon = install(payload["zip"])
    configure(addon, payload)
    return addon


def app_shown(settings: Any) -> list[list[str]]:
    """The app's inputs as the panel lists them: key and label, in order."""
    chosen = sorted((i for i in settings.inputs if i.in_app), key=lambda i: i.app_order)
    return [[i.name, i.shown_label] for i in chosen]


def check_typed(payload: Report) -> Report:
    """Fields typed from the server; values it would refuse are named and keep Run disabled;
    the default app, then the user's."""
    addon = with_config(payload)
    settings = use_workflow(bpy.context.scene, payload["workflow"])
    sampler = settings.inputs["3.sampler_name"]
    report: Report = {
        "sampler_field": sampler.field,
        "sampler_choices": json.loads(sampler.typed)["choices"],
        "steps_range": [json.loads(settings.inputs["3.steps"].typed)[k] for k in ("min", "max")],
        "panel": draw_panel(addon),
        "default_app": app_shown(settings),
        "flagged": session_state(addon),
    }
    settings.inputs["3.steps"].int_value = 0  # below the server's minimum
    report["twice_flagged"] = session_state(addon)
    report["refused"] = run_op()
    keys = [key for key, _ in payload["app"]]
    for item in settings.inputs:  # the user keeps three inputs, in this order
        item.in_app = item.name in keys
    for key, label in payload["app"]:
        settings.inputs[key].app_label = label
    settings.move_in_app(payload["app"][-1][0], -1)
    report["app_panel"] = draw_panel(addon)
    report.update(poll_configures(addon), followed=follow_scenes(addon, payload))
    return report


def poll_configures(addon: str) -> Report:
    """Polls (every redraw) read the session's view only: the preferences and credentials
    file are applied elsewhere."""
    pump = addon_module(addon, "pump")
    configured: list[int] = []
    real = pump.configure

    def counted() -> None:
        configured.append(1)
        real()

    pump.configure = counted
    try:
        polls = [comfy().run.poll() for _ in range(5)]
    finally:
        pump.configure = real
    return {"poll_configured": len(configured), "polls": polls}


def follow_scenes(addon: str, payload: Report) -> Report:
    """Another scene chooses another workflow; showing the first scene again brings its
    workflow back to the session (its status line and Run)."""
    first = bpy.context.scene
    other = bpy.data.scenes.new("Other")
    use_workflow(other, payload["other_workflow"])
    session = addon_module(addon, "pump").SESSION
    away = session.workflow_path
    importlib.import_module(addon).follow(first)
    return {"away": away, "back": session.workflow_path, **session_state(addon)}


def check_app_restored(payload: Report) -> Report:
    """A later Blender session: the app view comes back with the workflow."""
    addon = with_config(payload)
    settings = use_workflow(bpy.context.scene, payload["workflow"])
    chosen = sorted((i for i in settings.inputs if i.in_app), key=lambda i: i.app_order)
    report: Report = {"app": [[i.name, i.app_label] for i in chosen]}
    comfy().app_reset()  # Customize › Reset to Default
    report["reset"] = app_shown(settings)
    bpy.ops.wm.save_as_mainfile(filepath=str(Path(payload["output"]) / "app.blend"))
    stored_path = addon_module(addon, "operators").stored_path
    report["relative"] = stored_path(payload["workflow"], True)  # as the file browser keeps it
    report["absolute"] = stored_path(payload["workflow"], False)
    comfy().clear_workflow()  # the workflow field's ×
    session = addon_module(addon, "pump").SESSION
    report.update(cleared=session_state(addon), cleared_path=session.workflow_path,
                  cleared_inputs=len(settings.inputs))
    return report


def check_history(payload: Report) -> Report:
    """Run with a random seed, keep the history in the .blend, save it."""
    with_config(payload)
    scene = tiny_scene()
    settings = use_workflow(scene, payload["workflow"])
    settings.source = "IMAGE"
    settings.source_image = bpy.data.images.load(payload["image"])
    settings.inputs["2.seed"].control = "random"
    report: Report = {"run_error": run_op()}
    history = json.loads(settings.history)
    report["runs"] = history["runs"]
    report["field_seed"] = settings.inputs["2.seed"].int_value
    blend = Path(payload["output"]) / "history.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), compress=False)
    report["blend"] = str(blend)
    return report


def check_rerun(payload: Report) -> Report:
    """Open the saved .blend in a new session and Run Again its run."""
    addon = with_config(payload)
    bpy.ops.wm.open_mainfile(filepath=payload["blend"])
    configure(addon, payload)  # opening a file keeps the preferences; the server is new
    settings = bpy.context.scene.comfyrelay
    (run,) = json.loads(settings.history)["runs"]
    settings.inputs["2.seed"].int_value = 7  # the fields moved on since
    session = addon_module(addon, "pump").SESSION
    ready = session.view
    session.view = dataclasses.replace(ready, can_rerun=False,
                                       rerun_tip="A run is in progress: wait for it.")
    try:
        comfy().history(run_id=run["id"], action="RERUN")
        refused = ""
    except RuntimeError as exc:  # the operator's report, as Blender raises it to scripts
        refused = str(exc)
    session.view = ready
    comfy().history(run_id=run["id"], action="RERUN")
    runs = json.loads(settings.history)["runs"]
    return {"runs": runs, "field_seed": settings.inputs["2.seed"].int_value,
            "panel": draw_panel(addon), "refused": refused}


def check_video(payload: Report) -> Report:
    """The frame range sent as one video to a video workflow; the result a Movie Clip."""
    addon = install(payload["zip"])
    configure(addon, payload)
    scene = tiny_scene(frames=payload["frames"])
    settings = use_workflow(scene, payload["workflow"])
    settings.animation = True
    report: Report = {"run_error": run_op(), **session_state(addon)}
    report["clips"] = [
        {"name": c.name, "file": bpy.path.abspath(c.filepath), "frames": c.frame_duration}
        for c in bpy.data.movieclips
    ]
    report["sequences"] = [i.name for i in bpy.data.images if i.source == "SEQUENCE"]
    return report


def check_extra_kind(payload: Report) -> Report:
    """A back-end kind registered into the add-on's own core (its dependencies are set up
    once Blender has enabled it), then the add-on enabled again: its choice and fields in the
    preferences, and the session builds it (no add-on file knows it)."""
    addon = install(payload["zip"])
    core = importlib.import_module(f"{addon}.comfyrelay")  # the copy the add-on carries
    spec = importlib.util.spec_from_file_location("extra_kind", payload["extra_kind"])
    assert spec is not None and spec.loader is not None
    extra = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extra)
    core.KINDS.register(extra.make_kind(core))
    bpy.ops.preferences.addon_disable(module=addon)
    bpy.ops.preferences.addon_enable(module=addon)  # register() builds the preferences anew
    prefs = bpy.context.preferences
    assert prefs is not None
    prefs.system.use_online_access = True
    ours = prefs.addons[addon].preferences
    choices = [i.identifier for i in ours.bl_rna.properties["backend"].enum_items]
    ours.backend = extra.NAME  # its update applies the settings to the session
    setattr(ours, extra.FIELD, "blender")
    backend = addon_module(addon, "pump").SESSION.backend
    return {
        "choices": choices,
        "field": getattr(ours, extra.FIELD),
        "field_label": ours.bl_rna.properties[extra.FIELD].name,
        "backend": backend.check() if backend is not None else "",
        "prefs_drawn": draw_preferences(ours),
    }


# ---------------------------------------------------------------- render passes


def ortho_scene(width: int, height: int, scale: float) -> bpy.types.Scene:
    """No objects but an orthographic camera at z = 10 looking down -Z, `scale` wide."""
    scene = tiny_scene()
    for obj in list(scene.objects):
        if obj.type != "CAMERA":
            bpy.data.objects.remove(obj)
    camera = scene.camera
    camera.location, camera.rotation_euler = (0, 0, 10), (0, 0, 0)
    camera.data.type, camera.data.ortho_scale = "ORTHO", scale
    scene.render.resolution_x, scene.render.resolution_y = width, height
    return scene


def count_renders() -> list[int]:
    """A list that grows by one per render Blender starts."""
    renders: list[int] = []
    bpy.app.handlers.render_pre.append(lambda *_: renders.append(1))
    return renders


def scene_state(scene: bpy.types.Scene) -> Report:
    """The settings a run of passes changes, to compare before and after."""
    layer = bpy.context.view_layer
    return {
        "group": scene.compositing_node_group.name if scene.compositing_node_group else None,
        "groups": sorted(g.name for g in bpy.data.node_groups),
        "passes": [layer.use_pass_z, layer.use_pass_normal, layer.use_pass_mist,
                   layer.use_pass_object_index],
        "film_transparent": scene.render.film_transparent,
        "freestyle": scene.render.use_freestyle,
        "pass_index": {o.name: o.pass_index for o in scene.objects},
        "filepath": scene.render.filepath,
    }


def check_depth(payload: Report) -> Report:
    """Three planes 10, 12 and 14 units from the camera, side by side (a band across the
    middle of the frame, background above and below)."""
    addon = install(payload["zip"])
    configure(addon, payload)
    scene = ortho_scene(64, 48, 8.0)
    for x, z in ((-2.5, 0.0), (0.0, -2.0), (2.5, -4.0)):
        bpy.ops.mesh.primitive_plane_add(size=2.0, location=(x, 0.0, z))
    settings = use_workflow(scene, payload["workflow"])
    before = scene_state(scene)
    renders = count_renders()
    report: Report = {"sources": [(m.title, m.source) for m in settings.media]}
    report["run_error"] = run_op()
    report["renders"] = len(renders)
    report.update(session_state(addon))
    report["restored"] = scene_state(scene) == before
    return report


def check_normal(payload: Report) -> Report:
    """A smooth UV sphere of radius 1 facing an orthographic camera 2.4 units wide."""
    addon = install(payload["zip"])
    configure(addon, payload)
    scene = ortho_scene(64, 64, 2.4)
    bpy.ops.mesh.primitive_uv_sphere_add(segments=64, ring_count=32, radius=1.0)
    bpy.ops.object.shade_smooth()
    settings = use_workflow(scene, payload["workflow"])
    settings.normal_convention = payload.get("convention", "NORMALBAE")
    report: Report = {"sources": [(m.title, m.source) for m in settings.media]}
    report["run_error"] = run_op()
    report.update(session_state(addon))
    return report


def check_object_mask(payload: Report) -> Report:
    """The cube selected, a sphere beside it not: the mask against Blender's own Object Index
    pass of the same scene."""
    addon = install(payload["zip"])
    configure(addon, payload)
    scene = ortho_scene(64, 48, 8.0)
    bpy.ops.mesh.primitive_cube_add(size=2.0, location=(-1.0, 0.0, 0.0),
                                    rotation=(0.3, 0.5, 0.2))
    cube = bpy.context.active_object
    bpy.ops.mesh.primitive_uv_sphere_add(radius=1.0, location=(2.0, 0.5, 1.0))
    bpy.ops.object.select_all(action="DESELECT")
    cube.select_set(True)
    settings = use_workflow(scene, payload["workflow"])
    before = scene_state(scene)
    renders = count_renders()
    report: Report = {"sources": [(m.title, m.source) for m in settings.media]}
    report["run_error"] = run_op()
    report["renders"] = len(renders)
    report["restored"] = scene_state(scene) == before
    report.update(session_state(addon))
    report["reference"] = index_silhouette(scene, cube, Path(payload["output"]))
    return report


def index_silhouette(scene: bpy.types.Scene, obj: Any, folder: Path) -> list[int]:
    """Blender's Object Index pass for `obj` (index 9), top row first: 1 inside, 0 outside."""
    bpy.context.view_layer.use_pass_object_index = True
    obj.pass_index = 9
    group = bpy.data.node_groups.new("reference", "CompositorNodeTree")
    layers = group.nodes.new("CompositorNodeRLayers")
    out = group.nodes.new("CompositorNodeOutputFile")
    out.directory, out.file_name = str(folder) + "/", "index_"
    out.format.media_type, out.format.file_format = "IMAGE", "OPEN_EXR"
    out.format.color_depth = "32"
    out.file_output_items.new("FLOAT", "index")
    group.links.new(layers.outputs["Object Index"], out.inputs["index"])
    scene.compositing_node_group = group
    bpy.ops.render.render()
    image = bpy.data.images.load(str(folder / "index_index.exr"))
    w, h = image.size
    values = image.pixels[:]
    rows = [[int(abs(values[(y * w + x) * 4] - 9) < 0.5) for x in range(w)] for y in range(h)]
    return [v for row in reversed(rows) for v in row]


def check_two_loaders(payload: Report) -> Report:
    """Render and depth to two loaders in one run; then a workflow that previews its input."""
    addon = install(payload["zip"])
    configure(addon, payload)
    scene = tiny_scene()
    settings = use_workflow(scene, payload["workflow"])
    before = scene_state(scene)
    renders = count_renders()
    report: Report = {"sources": [(m.node, m.title, m.source) for m in settings.media]}
    settings.media[0].source = "RENDER"  # a fresh render for the image, its depth beside
    report["run_error"] = run_op()
    report["renders"] = len(renders)
    report["restored"] = scene_state(scene) == before
    report["two"] = session_state(addon)
    settings.media[1].source = "NORMAL"
    comfy().load_workflow(refresh=True)  # the same workflow read again: its choices kept
    report["after_reload"] = [m.source for m in settings.media]
    settings.workflow_path = payload["preview"]
    bpy.ops.render.render()
    report["preview_error"] = run_op()
    report["preview"] = session_state(addon)
    report["images"] = sorted(i.name for i in bpy.data.images)
    # The user picks the preview node's files instead (Customize › Results From): kept with
    # the app view, so they are still picked when the workflow is read again.
    report["output_nodes"] = [(o.node, o.title) for o in settings.outputs]
    settings.outputs["2"].wanted = True
    comfy().load_workflow(refresh=True)
    report["still_picked"] = [o.node for o in settings.outputs if o.wanted]
    report["picked_error"] = run_op()
    report["picked"] = session_state(addon)
    image = bpy.data.images.get(report["picked"]["outputs"][0]) if report["picked"][
        "outputs"] else None
    report["picked_pixels"] = bytes(image_bytes(image)).hex() if image else ""
    return report


def check_refusals(payload: Report) -> Report:
    """Bad choices are refused before anything renders or is queued."""
    addon = install(payload["zip"])
    configure(addon, payload)
    scene = tiny_scene()
    settings = use_workflow(scene, payload["workflow"])  # Render + Depth loaders
    renders = count_renders()
    report: Report = {}
    extra = settings.media.add()  # a script giving the render loader a second source
    extra.node, extra.title, extra.source = settings.media[0].node, "again", "VIEWPORT"
    report["two_sources"] = run_op()
    settings.media.remove(len(settings.media) - 1)
    scene.render.engine = "BLENDER_WORKBENCH"
    settings.media[1].source = "NORMAL"
    report["engine"] = run_op()
    scene.render.engine = "CYCLES"
    settings.workflow_path = payload["mask_workflow"]  # Render + Mask loaders
    settings.media[0].source = "IMAGE"
    settings.media[0].image = bpy.data.images.new("small", 32, 32)
    bpy.data.objects["Cube"].select_set(True)
    report["mask_size"] = run_op()
    report["sources"] = [(m.title, m.source) for m in settings.media]
    report["renders"] = len(renders)
    report.update(session_state(addon))
    return report


class Proxy:
    """Stands in for a bpy module or struct with some attributes replaced."""

    def __init__(self, real: Any, **replaced: Any) -> None:
        self._real, self._replaced = real, replaced

    def __getattr__(self, name: str) -> Any:
        return self._replaced[name] if name in self._replaced else getattr(self._real, name)


def check_restore(payload: Report) -> Report:
    """A render that fails, then one cancelled (Esc in the render window, as the UI's render
    job reports it): the scene is as it was after each."""
    addon = install(payload["zip"])
    configure(addon, payload)
    scene = tiny_scene()
    settings = use_workflow(scene, payload["workflow"])  # Render + Depth loaders
    settings.media[0].source = "RENDER"
    rendering = addon_module(addon, "rendering")
    before = scene_state(scene)

    def failing(*_args: Any, **_kwargs: Any) -> set[str]:
        raise RuntimeError("Error: the render failed")

    rendering.bpy = Proxy(bpy, ops=Proxy(bpy.ops, render=Proxy(bpy.ops.render, render=failing)))
    report: Report = {"failed_error": run_op(), "failed_restored": scene_state(scene) == before}
    started = Proxy(bpy.ops.render, render=lambda *_a, **_k: {"RUNNING_MODAL"})
    rendering.bpy = Proxy(bpy, ops=Proxy(bpy.ops, render=started),
                          app=Proxy(bpy.app, background=False))  # the UI's render job
    report["cancel_run_error"] = run_op(wait=False)
    report["changed_while_rendering"] = scene_state(scene) != before
    for handler in list(bpy.app.handlers.render_cancel):
        handler(scene)
    addon_module(addon, "pump").drive(timeout=30)
    report["cancel_restored"] = scene_state(scene) == before
    report["cancelled"] = session_state(addon)
    return report


def draw_preferences(ours: Any) -> list[str]:
    """What the preferences draw, with the stand-in layout."""
    calls: list[str] = []
    type(ours).draw(type("P", (), {"layout": Layout(calls), **_prefs_values(ours)})(), None)
    return calls


def main(checks: dict[str, Any] | None = None) -> None:
    """Run `check_<argv[1]>` of `checks` (this module's names by default; texturing_checks
    passes its own) on the payload in argv[2], and write its report."""
    check, in_path = sys.argv[1], sys.argv[2]
    payload = json.loads(Path(in_path).read_text())
    try:
        report = (checks or globals())[f"check_{check}"](payload)
    except Exception:
        report = {"exception": traceback.format_exc()}
    Path(payload["out"]).write_text(json.dumps(report))


if __name__ == "__main__":
    main()
