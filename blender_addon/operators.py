"""Operators: check the server, (re)load the workflow, Run and Cancel.

Operator ids are fixed ("comfyrelay.run"): Blender wants "category.name" there, so the
extension's package path (__package__) is used only where Blender looks add-ons up.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import bpy

from . import core, pixels, preferences
from .props import settings
from .pump import SESSION, Run
from .rendering import FrameRender

if TYPE_CHECKING:
    from bpy.stub_internal.rna_enums import OperatorReturnItems, WmReportItems

OFFLINE = "Online access is off: enable it in Preferences › System › Network"


def _online(cls: type[bpy.types.Operator]) -> bool:
    if not bpy.app.online_access:
        cls.poll_message_set(OFFLINE)
        return False
    return True


class COMFYRELAY_OT_check(bpy.types.Operator):
    """Check that the ComfyUI server answers"""

    bl_idname = "comfyrelay.check"
    bl_label = "Check Connection"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _online(cls)

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        SESSION.check()
        if bpy.app.background:
            SESSION.drive(timeout=60)
            level: WmReportItems = "INFO" if SESSION.connected else "ERROR"
            self.report({level}, SESSION.connection)
        return {"FINISHED"}


class COMFYRELAY_OT_load_workflow(bpy.types.Operator):
    """Read the workflow file again and list its inputs"""

    bl_idname = "comfyrelay.load_workflow"
    bl_label = "Reload Workflow"

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        assert context.scene is not None
        s = settings(context.scene)
        s.load_inputs()
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
        if SESSION.run is not None:
            cls.poll_message_set("A run is in progress")
            return False
        return context.scene is not None and _online(cls)

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        scene = context.scene
        assert scene is not None
        try:
            run, image, render = self._prepare(context, scene)
        except (core.ComfyRelayError, pixels.SourceError, OSError) as exc:
            SESSION.error, SESSION.error_node, SESSION.status = str(exc), "", "Not started"
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        try:
            SESSION.start(run, image, render)
        except (RuntimeError, OSError) as exc:
            SESSION.error, SESSION.status = str(exc), "Not started"
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if bpy.app.background and self.wait:
            SESSION.drive(self.timeout or None)
            return self._report()
        return {"FINISHED"}

    def _prepare(
        self, context: bpy.types.Context, scene: bpy.types.Scene
    ) -> tuple[Run, Path | None, FrameRender | None]:
        s = settings(scene)
        if not s.workflow_path:
            raise core.WorkflowError("Choose a workflow file (ComfyUI: Workflow › Export (API)).")
        workflow = core.Workflow.load(s.workflow_file())
        bindings = s.bindings()
        needs_image = bool(workflow.media_nodes())
        workflow.bind(bindings, "check.png" if needs_image else None)  # fail before rendering
        out_dir = preferences.output_dir()
        if s.animation:
            if not needs_image:
                raise core.WorkflowError(
                    f"Workflow {workflow.name!r} has no image loader to receive the frames."
                )
            out_dir = out_dir / f"{workflow.name}_{time.strftime('%Y%m%d-%H%M%S')}"
        obj = context.active_object if s.use_material else None
        run = Run(workflow, bindings, out_dir, scene.name, obj.name if obj else None, s.animation)
        SESSION.ensure_runner()
        if not needs_image:
            return run, None, None
        if s.animation or s.source == "RENDER":

            def sink(frame: int, path: Path) -> None:
                SESSION.submit(run, frame, path)

            return run, None, FrameRender(scene, sink, animation=s.animation)
        started = time.perf_counter()
        image = self._source_image(context, scene)
        SESSION.capture_times.append(time.perf_counter() - started)
        return run, image, None

    def _source_image(self, context: bpy.types.Context, scene: bpy.types.Scene) -> Path:
        source = settings(scene).source
        if source == "VIEWPORT":
            return pixels.viewport(context)
        if source == "IMAGE":
            return pixels.existing_image(settings(scene).source_image, scene)
        return pixels.render_result(scene)

    def _report(self) -> set[OperatorReturnItems]:
        if SESSION.error:
            where = f" (node {SESSION.error_node})" if SESSION.error_node else ""
            self.report({"ERROR"}, f"{SESSION.error}{where}")
            return {"CANCELLED"}
        self.report({"INFO"}, SESSION.status)
        return {"FINISHED"}


class COMFYRELAY_OT_cancel(bpy.types.Operator):
    """Stop the run: remove queued frames and interrupt the one running on the server"""

    bl_idname = "comfyrelay.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return SESSION.run is not None

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        SESSION.cancel()
        return {"FINISHED"}


class MachineOperator(bpy.types.Operator):
    """Shared by the RunComfy machine buttons: act on the chosen machine back end."""

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if preferences.prefs().backend != "runcomfy-machine":
            cls.poll_message_set("Choose the RunComfy Machine back end in the preferences")
            return False
        if SESSION.machine.working:
            cls.poll_message_set("A machine action is under way")
            return False
        return _online(cls)

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        try:
            SESSION.ensure_runner()
        except core.ComfyRelayError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        backend = SESSION.machine_backend()
        assert backend is not None
        self.act(backend)
        SESSION._wake()
        if bpy.app.background:  # scripts: return when the action is done
            SESSION.machine.wait(60)
            while backend.preparing:
                time.sleep(0.05)
            self.report({"INFO"}, "\n".join(core.status_lines(backend.status())))
        return {"FINISHED"}

    def act(self, backend: core.RunComfyMachineBackend) -> None:
        raise NotImplementedError


class COMFYRELAY_OT_machine_launch(MachineOperator):
    """Launch the RunComfy machine (or reuse a running one); billing starts when it is Ready"""

    bl_idname = "comfyrelay.machine_launch"
    bl_label = "Launch"

    def act(self, backend: core.RunComfyMachineBackend) -> None:
        SESSION.machine.launch(backend)


class COMFYRELAY_OT_machine_stop(MachineOperator):
    """Stop the RunComfy machine now; billing ends"""

    bl_idname = "comfyrelay.machine_stop"
    bl_label = "Stop"

    def act(self, backend: core.RunComfyMachineBackend) -> None:
        SESSION.machine.stop(backend)


class COMFYRELAY_OT_machine_extend(MachineOperator):
    """Add 30 minutes to the machine's running time"""

    bl_idname = "comfyrelay.machine_extend"
    bl_label = "+30 min"

    def act(self, backend: core.RunComfyMachineBackend) -> None:
        SESSION.machine.extend(backend, 30)


class COMFYRELAY_OT_find_machines(bpy.types.Operator):
    """Look for RunComfy machines still running from earlier sessions (they cost money)"""

    bl_idname = "comfyrelay.find_machines"
    bl_label = "Find Running Machines"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return not SESSION.leftovers.working and _online(cls)

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        try:
            SESSION.find_machines()
        except core.ComfyRelayError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if bpy.app.background:
            SESSION.leftovers.wait(60)
        return {"FINISHED"}


class COMFYRELAY_OT_leftover(bpy.types.Operator):
    """Stop a machine left running, or reuse it for the next runs"""

    bl_idname = "comfyrelay.leftover"
    bl_label = "Running Machine"

    server_id: bpy.props.StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]
    action: bpy.props.EnumProperty(  # type: ignore[valid-type]
        items=[("STOP", "Stop", "Stop it now; billing ends"),
               ("REUSE", "Reuse", "Run the next jobs on it")],
        options={"SKIP_SAVE"},
    )

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return not SESSION.leftovers.working and _online(cls)

    def execute(self, context: bpy.types.Context) -> set[OperatorReturnItems]:
        if self.action == "REUSE":
            p = preferences.prefs()
            p.backend, p.server_id = "runcomfy-machine", self.server_id
            return {"FINISHED"}
        try:
            SESSION.leftovers.stop_leftover(self.server_id)
        except core.ComfyRelayError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        SESSION._wake()
        if bpy.app.background:
            SESSION.leftovers.wait(60)
        return {"FINISHED"}


CLASSES = (
    COMFYRELAY_OT_check,
    COMFYRELAY_OT_load_workflow,
    COMFYRELAY_OT_run,
    COMFYRELAY_OT_cancel,
    COMFYRELAY_OT_machine_launch,
    COMFYRELAY_OT_machine_stop,
    COMFYRELAY_OT_machine_extend,
    COMFYRELAY_OT_find_machines,
    COMFYRELAY_OT_leftover,
)
