"""Operators: check the server, (re)load the workflow, Run and Cancel, a back end's own
actions (a machine's Launch / Stop, what earlier sessions left running).

Operator ids are fixed ("comfyrelay.run"): Blender wants "category.name" there, so the
extension's package path (__package__) is used only where Blender looks add-ons up.
Each operator asks the session; its view decides which are enabled (poll).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bpy

from . import pixels, preferences, pump, sources
from .core import core
from .props import settings
from .pump import SESSION, Target
from .rendering import FrameRender

if TYPE_CHECKING:
    from bpy.stub_internal.rna_enums import OperatorReturnItems, WmReportItems

OFFLINE = "Online access is off: enable it in Preferences › System › Network"


def _online(cls: type[bpy.types.Operator]) -> bool:
    if not bpy.app.online_access:
        cls.poll_message_set(OFFLINE)
        return False
    return True


def _act(op: bpy.types.Operator, action: Callable[[], object]) -> set[OperatorReturnItems]:
    """Do `action` on the configured session; a problem is reported, not raised."""
    try:
        pump.configure()
        action()
    except (core.ComfyRelayError, ValueError) as exc:  # pydantic errors are ValueErrors
        op.report({"ERROR"}, str(exc))
        return {"CANCELLED"}
    pump.wake()
    return {"FINISHED"}


class COMFYRELAY_OT_check(bpy.types.Operator):
    """Check that the server answers"""

    bl_idname = "comfyrelay.check"
    bl_label = "Check Connection"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _online(cls) and SESSION.view.can_check

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        result = _act(self, SESSION.check)  # applies the settings (and file) if they changed
        if bpy.app.background:
            pump.drive(timeout=60)
            view = SESSION.view
            level: WmReportItems = "INFO" if view.connected else "ERROR"
            self.report({level}, view.problem or view.connection)
        return result


class COMFYRELAY_OT_choose_workflow(bpy.types.Operator):
    """Choose the ComfyUI workflow: API or UI format (.json), or an image ComfyUI saved"""

    bl_idname = "comfyrelay.choose_workflow"
    bl_label = "Choose Workflow"

    filepath: bpy.props.StringProperty(subtype="FILE_PATH")  # type: ignore[valid-type]
    filter_glob: bpy.props.StringProperty(  # type: ignore[valid-type]
        default="*.json;*.png;*.webp", options={"HIDDEN"})
    # The file browser's own "Relative Path" option, as the path field had: a saved .blend
    # keeps "//"-relative paths, so it opens on another computer with its workflow beside it.
    relative_path: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Relative Path", description="Keep the path relative to the .blend file",
        default=True)

    @classmethod
    def description(cls, context: bpy.types.Context, properties: Any) -> str:
        """The workflow's whole path, on hover (the panel shows its file name)."""
        s = settings(context.scene) if context.scene else None
        return s.workflow_file() if s is not None and s.workflow_path else (cls.__doc__ or "")

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[
            OperatorReturnItems]:
        assert context.scene is not None and context.window_manager is not None
        self.filepath = settings(context.scene).workflow_file()
        if context.preferences is not None:
            self.relative_path = context.preferences.filepaths.use_relative_paths
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        assert context.scene is not None
        settings(context.scene).workflow_path = stored_path(self.filepath, self.relative_path)
        return {"FINISHED"}  # the update lists its inputs


def stored_path(path: str, relative: bool) -> str:
    """`path` as the scene keeps it: "//"-relative to a saved .blend when asked (not across
    drives on Windows, where no relative path exists)."""
    if not (relative and bpy.data.filepath and path):
        return path
    try:
        return bpy.path.relpath(path)
    except ValueError:
        return path


class COMFYRELAY_OT_clear_workflow(bpy.types.Operator):
    """No workflow: empty the fields, the status line and Run"""

    bl_idname = "comfyrelay.clear_workflow"
    bl_label = "Clear Workflow"

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        assert context.scene is not None
        settings(context.scene).workflow_path = ""  # the update closes it in the session
        return {"FINISHED"}


class COMFYRELAY_OT_load_workflow(bpy.types.Operator):
    """Read the workflow file again and ask the server for its inputs' choices and ranges"""

    bl_idname = "comfyrelay.load_workflow"
    bl_label = "Reload Workflow"

    refresh: bpy.props.BoolProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        assert context.scene is not None
        s = settings(context.scene)
        s.load_inputs(refresh=self.refresh)
        if s.workflow_error:
            self.report({"ERROR"}, s.workflow_error)
            return {"CANCELLED"}
        return {"FINISHED"}


class COMFYRELAY_OT_run(bpy.types.Operator):
    """Send the source image (or every frame) through the workflow and load the results"""

    bl_idname = "comfyrelay.run"
    bl_label = "Run"

    wait: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Wait",
        description="Under blender -b: return only when the run has ended",
        default=True,
        options={"SKIP_SAVE"},
    )
    timeout: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Timeout",
        description="Under blender -b with Wait: cancel after this many seconds (0: never)",
        default=0.0,
        options={"SKIP_SAVE"},
    )

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        # Only the session's view: poll runs on every redraw. The preferences reach the
        # session from their update callbacks, file loads and actions (pump.configure).
        if context.scene is None or not _online(cls):
            return False
        tip = SESSION.view.run_tip
        if tip:
            cls.poll_message_set(tip)
        return not tip

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        return run_scene(self, context, self.wait, self.timeout)


def run_scene(op: bpy.types.Operator, context: bpy.types.Context, wait: bool = True,
              timeout: float = 0.0) -> set[OperatorReturnItems]:
    """Run the scene's workflow with its fields (Run, and Run Again once it filled them);
    a problem is reported, not raised. Under `blender -b` with `wait`: until it ends."""
    scene = context.scene
    assert scene is not None
    try:
        pump.configure()
        _start(context, scene)
    except (core.ComfyRelayError, pixels.SourceError, OSError, RuntimeError,
            ValueError) as exc:
        if SESSION.run is None:
            SESSION.refuse(str(exc))
        op.report({"ERROR"}, str(exc))
        return {"CANCELLED"}
    if bpy.app.background and wait:
        pump.drive(timeout or None)
        return _report(op)
    return {"FINISHED"}


def _start(context: bpy.types.Context, scene: bpy.types.Scene) -> None:
    s = settings(scene)
    if not s.workflow_path:
        raise core.WorkflowError("Choose a workflow file: a ComfyUI workflow .json or image.")
    workflow = SESSION.workflow(s.workflow_file())
    if workflow is None:  # a UI-format file not converted yet: the server converts it
        s.load_inputs()
        # WorkflowError while it is being converted; converted at once under `blender -b`
        workflow = SESSION.workflow(s.workflow_file())
    if workflow is None:
        raise core.WorkflowError(s.workflow_error or "The workflow could not be opened.")
    plan = sources.plan(scene, s, workflow)  # a bad choice stops here, nothing rendered
    s.next_seeds()
    bindings = s.bindings()
    SESSION.check_values(workflow, bindings, plan.placeholders())  # fail before rendering
    out_dir = preferences.output_dir()
    if plan.frame_range:
        out_dir = out_dir / f"{workflow.name}_{time.strftime('%Y%m%d-%H%M%S')}"
    obj = context.active_object if s.use_material else None
    target = Target(workflow, out_dir, obj.name if obj else None, plan.frame_range,
                    scene.name)
    SESSION.require_runner()
    if plan.frame_range or (plan.single and plan.rendered):
        _frames(scene, target, bindings, plan)
        pump.start(target, bindings, None, s.workflow_file())
    elif plan.single:  # one loader, one picture: as it always went
        image = _source_image(context, scene, plan.entries[0])
        pump.start(target, bindings, image, s.workflow_file())
    elif plan.rendered:
        _passes(scene, s, target, bindings, plan, context)
        pump.start(target, bindings, None, s.workflow_file())
    else:
        pictures = _pictures(context, scene, plan)
        target.temp_files += [p for p in pictures.values() if p.parent == pixels.temp_dir()]
        media = plan.media(pictures, {})
        pump.start(target, bindings, None, s.workflow_file(), media=media)


def _frames(scene: bpy.types.Scene, target: Target, bindings: core.Bindings,
            plan: sources.Plan) -> None:
    """A fresh render of the one loader's frame, or of the range, fed in frame by frame."""

    def sink(frame: int, path: Path) -> None:
        if SESSION.run is not None:
            pump.submit(SESSION.run, bindings, frame, path)

    workflow = target.workflow
    loader = workflow.image_node(plan.entries[0].node)
    video = plan.frame_range and workflow.loader_kind(loader) == "video"  # one clip
    target.render = FrameRender(scene, sink, animation=plan.frame_range, video=video)


def _passes(scene: bpy.types.Scene, s: Any, target: Target, bindings: core.Bindings,
            plan: sources.Plan, context: bpy.types.Context) -> None:
    """One render makes the image and every pass; they go when it completes."""
    pictures = _pictures(context, scene, plan)  # before the render replaces them
    target.temp_files += [p for p in pictures.values() if p.parent == pixels.temp_dir()]

    def sink(files: dict[str, Path]) -> None:
        if SESSION.run is not None:
            pump.submit_media(SESSION.run, bindings, plan.media(pictures, files))

    target.render = FrameRender(
        scene, lambda _frame, _path: None, animation=False, passes=plan.passes(),
        on_passes=sink, opengl_normals=s.normal_convention == "OPENGL",
    )


def _pictures(context: bpy.types.Context, scene: bpy.types.Scene,
              plan: sources.Plan) -> dict[str, Path]:
    """Each loader's picture that needs no render (Render Result, Viewport, Image)."""
    fresh = {"RENDER_RESULT"} if plan.rendered else set()  # the fresh render serves it
    return {e.node: _source_image(context, scene, e) for e in plan.entries
            if e.source in sources.PICTURES - fresh}


def _source_image(context: bpy.types.Context, scene: bpy.types.Scene,
                  entry: sources.Entry) -> Path:
    if entry.source == "VIEWPORT":
        return pixels.viewport(context)
    if entry.source == "IMAGE":
        return pixels.existing_image(entry.image, scene)
    return pixels.render_result(scene)


def _report(op: bpy.types.Operator) -> set[OperatorReturnItems]:
    view = SESSION.view
    if view.error:
        where = f" ({view.error_node})" if view.error_node else ""
        op.report({"ERROR"}, f"{view.error}{where}")
        return {"CANCELLED"}
    op.report({"INFO"}, view.status)
    return {"FINISHED"}


class COMFYRELAY_OT_cancel(bpy.types.Operator):
    """Stop the run: remove queued frames and interrupt the one running on the server"""

    bl_idname = "comfyrelay.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if SESSION.run is not None and SESSION.view.cancel_tip:
            cls.poll_message_set(SESSION.view.cancel_tip)
        return SESSION.view.can_cancel

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        run = SESSION.run
        render = run.data.render if run is not None and isinstance(run.data, Target) else None
        rendering = render is not None and not render.done.is_set()
        # Blender offers no call to stop its render job; no further frame is sent.
        SESSION.cancel("Esc stops the render" if rendering else "")
        return {"FINISHED"}


class COMFYRELAY_OT_backend_action(bpy.types.Operator):
    """A button of the back end's own box: a machine's Launch, Stop or +30 min, or Stop and
    Reuse for what an earlier session left running"""

    bl_idname = "comfyrelay.backend_action"
    bl_label = "Back-End Action"

    kind: bpy.props.StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]
    action: bpy.props.StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]
    target: bpy.props.StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]

    @classmethod
    def description(cls, context: bpy.types.Context, properties: Any) -> str:
        """The button's own tooltip, from the core."""
        return next((b.tip for b in _buttons() if (b.kind, b.action, b.target) == (
            properties.kind, properties.action, properties.target)), "")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _online(cls)

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        result = _act(self, self._act)
        if bpy.app.background:  # scripts: return when it is done
            SESSION.slot.wait(60)
            pump.pump()
            lines = [line for view in SESSION.view.controls for line in view.lines]
            self.report({"INFO"}, "\n".join(lines) or "Done.")
        return result

    def _act(self) -> None:
        chosen = SESSION.act(self.kind, self.action, self.target)
        if chosen:  # e.g. Reuse: that kind becomes the chosen back end (its update configures)
            preferences.prefs().backend = chosen


def _buttons() -> list[core.Button]:
    view = SESSION.view
    return [b for c in view.controls for b in (*c.buttons, *(b for f in c.found
                                                             for b in f.buttons))]


class COMFYRELAY_OT_find_leftovers(bpy.types.Operator):
    """Look for what earlier sessions left running (machines that cost money)"""

    bl_idname = "comfyrelay.find_leftovers"
    bl_label = "Find What Is Still Running"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _online(cls)

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        return find_leftovers(self)


def find_leftovers(op: bpy.types.Operator | None = None) -> set[OperatorReturnItems]:
    """Look for what earlier sessions left running (also at start-up), in the background."""
    try:
        SESSION.scan_leftovers(preferences.host_settings())
    except core.ComfyRelayError as exc:
        if op is not None:
            op.report({"ERROR"}, str(exc))
        return {"CANCELLED"}
    pump.wake()
    if bpy.app.background:
        SESSION.slot.wait(60)
        pump.pump()
    return {"FINISHED"}


class COMFYRELAY_OT_input_help(bpy.types.Operator):
    """What this input does"""

    bl_idname = "comfyrelay.input_help"
    bl_label = "About This Input"

    key: bpy.props.StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]

    @classmethod
    def description(cls, context: bpy.types.Context, properties: Any) -> str:
        """The raw input and its node, and the node's own tooltip, shown on hover."""
        item = settings(context.scene).inputs.get(properties.key) if context.scene else None
        if item is None:
            return ""
        tooltip = (item.input.tooltip or "") if item.typed else ""
        return "\n\n".join(t for t in (item.tip, tooltip) if t)

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        return {"FINISHED"}


class COMFYRELAY_OT_app_move(bpy.types.Operator):
    """Move this input up or down in the workflow's app view"""

    bl_idname = "comfyrelay.app_move"
    bl_label = "Move Input"

    key: bpy.props.StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]
    offset: bpy.props.IntProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        assert context.scene is not None
        settings(context.scene).move_in_app(self.key, self.offset)
        return {"FINISHED"}


class COMFYRELAY_OT_app_reset(bpy.types.Operator):
    """Forget this workflow's app view: the default app comes back"""

    bl_idname = "comfyrelay.app_reset"
    bl_label = "Reset to Default"

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        assert context.scene is not None
        s = settings(context.scene)
        if s.workflow_path:
            core.save_app(s.workflow_file(), core.AppView())
            s.load_inputs()  # the default app's inputs, the values kept
        return {"FINISHED"}


class COMFYRELAY_OT_history(bpy.types.Operator):
    """Run a past run again, use its settings, or show its files"""

    bl_idname = "comfyrelay.history"
    bl_label = "Past Run"

    run_id: bpy.props.StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]
    action: bpy.props.EnumProperty(  # type: ignore[valid-type]
        items=[("RERUN", "Run Again", "Run it again with the same values and seed"),
               ("APPLY", "Use These Settings", "Put its values and seed into the fields"),
               ("SHOW", "Show Files", "Open the folder of its result files")],
        options={"SKIP_SAVE"},
    )

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        assert context.scene is not None
        s = settings(context.scene)
        record = core.history_from_json(s.history).find(self.run_id)
        if record is None:
            self.report({"ERROR"}, "That run is no longer in this file's history.")
            return {"CANCELLED"}
        if self.action == "SHOW":
            folder = Path(record.outputs[0]).parent if record.outputs else None
            if folder is None or not folder.is_dir():
                self.report({"ERROR"}, f"The result files are gone: {folder}")
                return {"CANCELLED"}
            bpy.ops.wm.path_open(filepath=str(folder))
            return {"FINISHED"}
        if self.action == "RERUN" and not _can_rerun(self):
            return {"CANCELLED"}
        if record.workflow_path and s.workflow_file() != record.workflow_path:
            s.workflow_path = record.workflow_path  # lists its inputs
        s.apply(core.bindings_for_rerun(record))
        if self.action == "RERUN":  # its own values: the fields' flags do not stop it
            return run_scene(self, context)
        return {"FINISHED"}


def _can_rerun(op: bpy.types.Operator) -> bool:
    """The session allows Run Again (the same rule as Krita's); else the report says why."""
    try:
        pump.configure()
    except (core.ComfyRelayError, ValueError) as exc:
        op.report({"ERROR"}, str(exc))
        return False
    if not SESSION.view.can_rerun:
        op.report({"ERROR"}, SESSION.view.rerun_tip)
    return SESSION.view.can_rerun


CLASSES = (
    COMFYRELAY_OT_check,
    COMFYRELAY_OT_choose_workflow,
    COMFYRELAY_OT_load_workflow,
    COMFYRELAY_OT_run,
    COMFYRELAY_OT_cancel,
    COMFYRELAY_OT_backend_action,
    COMFYRELAY_OT_find_leftovers,
    COMFYRELAY_OT_input_help,
    COMFYRELAY_OT_app_move,
    COMFYRELAY_OT_app_reset,
    COMFYRELAY_OT_clear_workflow,
    COMFYRELAY_OT_history,
)
