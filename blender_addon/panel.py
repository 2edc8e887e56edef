"""The ComfyRelay sidebar tab, in the 3D View and in the Image Editor."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import bpy

from . import preferences
from .operators import OFFLINE
from .props import settings
from .pump import SESSION, SHOWN

if TYPE_CHECKING:
    from bpy.stub_internal.rna_enums import IconItems

CATEGORY = "ComfyRelay"


def _wrapped(
    layout: bpy.types.UILayout, text: str, icon: IconItems = "NONE", width: int = 48
) -> None:
    """Long messages (errors) on several lines; a sidebar label does not wrap by itself."""
    for i, line in enumerate(textwrap.wrap(text, width) or [""]):
        layout.label(text=line, icon=icon if i == 0 else "BLANK1")


class ComfyRelayPanel:
    bl_category = CATEGORY
    bl_label = "ComfyRelay"

    def draw(self, context: bpy.types.Context) -> None:
        layout: bpy.types.UILayout = self.layout  # type: ignore[attr-defined]
        scene = context.scene
        if scene is None:
            return
        s = settings(scene)
        self._server(layout)
        self._machine(layout)
        self._workflow(layout, s)
        self._source(layout, s)
        self._run(layout)
        self._results(layout)

    def _server(self, layout: bpy.types.UILayout) -> None:
        box = layout.box()
        if not bpy.app.online_access:
            _wrapped(box, OFFLINE, "ERROR")
            return
        view = SESSION.view
        icon: IconItems = "QUESTION"
        if view.connected is not None:
            icon = "CHECKMARK" if view.connected else "ERROR"
        row = box.row()
        row.label(text="Server", icon="URL")
        row.operator("comfyrelay.check", text="Check", icon="FILE_REFRESH")
        if preferences.prefs().backend.startswith("runcomfy"):
            row.operator("comfyrelay.find_machines", text="", icon="VIEWZOOM")
        _wrapped(box, view.problem or view.connection, "ERROR" if view.problem else icon)

    def _machine(self, layout: bpy.types.UILayout) -> None:
        """RunComfy: the machine's state and cost, and machines left running earlier."""
        view = SESSION.view
        if view.machine:
            box = layout.box()
            box.label(text="RunComfy Machine", icon="WORLD")
            for line in view.machine_lines:
                _wrapped(box, line)
            row = box.row(align=True)
            buttons: list[tuple[str, str, IconItems, bool]] = [
                ("LAUNCH", "Launch", "PLAY", view.can_launch),
                ("STOP", "Stop", "PAUSE", view.can_stop),
                ("EXTEND", "+30 min", "TIME", view.can_extend),
            ]
            for action, label, icon, enabled in buttons:
                button = row.row(align=True)
                button.enabled = enabled
                op = button.operator("comfyrelay.machine", text=label, icon=icon)
                op.action = action  # type: ignore[union-attr]
        if not view.show_leftovers:
            return
        box = layout.box()
        box.label(text="Machines Still Running", icon="ERROR" if view.leftovers else "INFO")
        if view.leftover_message:
            _wrapped(box, view.leftover_message)
        for found in view.leftovers:
            row = box.row(align=True)
            row.label(text=found.line)
            stop = row.operator("comfyrelay.leftover", text="Stop", icon="PAUSE")
            stop.server_id, stop.action = found.server_id, "STOP"  # type: ignore[union-attr]
            reuse = row.operator("comfyrelay.leftover", text="Reuse", icon="LINKED")
            reuse.server_id, reuse.action = found.server_id, "REUSE"  # type: ignore[union-attr]

    def _workflow(self, layout: bpy.types.UILayout, s: bpy.types.PropertyGroup) -> None:
        box = layout.box()
        row = box.row(align=True)
        row.prop(s, "workflow_path", text="")
        row.operator("comfyrelay.load_workflow", text="", icon="FILE_REFRESH")
        if s.workflow_error:  # type: ignore[attr-defined]
            _wrapped(box, s.workflow_error, "ERROR")  # type: ignore[attr-defined]
        col = box.column()
        for item in s.inputs:  # type: ignore[attr-defined]
            if item.kind in ("image", "video"):
                col.prop(item, "receives_source", text=f"{item.label} ← source")
            elif item.kind == "seed":
                row = col.row(align=True)
                row.active = not s.random_seed  # type: ignore[attr-defined]
                row.prop(item, f"{item.value_type.lower()}_value", text=item.label)
                row.prop(s, "random_seed", text="", icon="FILE_REFRESH", toggle=True)
            else:
                field = "string_value" if item.value_type == "BIGINT" else None
                col.prop(item, field or f"{item.value_type.lower()}_value", text=item.label)

    def _source(self, layout: bpy.types.UILayout, s: bpy.types.PropertyGroup) -> None:
        box = layout.box()
        box.prop(s, "animation")
        if not s.animation:  # type: ignore[attr-defined]
            box.prop(s, "source")
            if s.source == "IMAGE":  # type: ignore[attr-defined]
                box.template_ID(s, "source_image", open="image.open")
        box.prop(s, "use_material")

    def _run(self, layout: bpy.types.UILayout) -> None:
        view = SESSION.view
        row = layout.row(align=True)
        row.scale_y = 1.4
        row.operator("comfyrelay.run", icon="PLAY")
        row.operator("comfyrelay.cancel", text="", icon="CANCEL")
        col = layout.column(align=True)
        col.progress(factor=view.progress, type="BAR", text=view.status)
        if view.node:
            col.label(text=f"{view.node} {view.step}".strip(), icon="NODE")
        if view.seed is not None:
            col.label(text=f"Seed {view.seed}")
        for error in (view.error, SHOWN.message):
            if error:
                _wrapped(layout.box(), error, "ERROR")
        if view.error_node:
            layout.label(text=f"Failed in {view.error_node}", icon="NODE")

    def _results(self, layout: bpy.types.UILayout) -> None:
        if SHOWN.outputs:
            col = layout.column(align=True)
            for name in SHOWN.outputs[:5]:
                col.label(text=name, icon="IMAGE_DATA")


class COMFYRELAY_PT_view3d(ComfyRelayPanel, bpy.types.Panel):
    bl_idname = "COMFYRELAY_PT_view3d"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"


class COMFYRELAY_PT_image(ComfyRelayPanel, bpy.types.Panel):
    bl_idname = "COMFYRELAY_PT_image"
    bl_space_type = "IMAGE_EDITOR"
    bl_region_type = "UI"


CLASSES = (COMFYRELAY_PT_view3d, COMFYRELAY_PT_image)
