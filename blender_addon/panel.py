"""The ComfyRelay sidebar tab, in the 3D View and in the Image Editor."""

from __future__ import annotations

import functools
import re
import textwrap
from typing import TYPE_CHECKING, Any

import bpy

from . import results
from .core import core
from .operators import OFFLINE
from .props import settings
from .pump import SESSION, SHOWN
from .texturing import task

if TYPE_CHECKING:
    from bpy.stub_internal.rna_enums import IconItems

CATEGORY = "ComfyRelay"
HISTORY_SHOWN = 10


def _headline(status: str, fits: int = 40) -> str:
    """What fits on the progress bar: the status, or its first clause (cut at a word) when
    it is long; the panel then shows the whole status below."""
    if len(status) <= fits:
        return status
    clause = re.split(r"[.;] ", status, maxsplit=1)[0]
    return clause if len(clause) <= fits else clause[:fits].rsplit(" ", 1)[0] + "…"


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
        self._server(layout, s)
        self._controls(layout)
        self._workflow(layout, s)
        self._source(layout, s)
        self._run(layout)
        self._texturing(layout, s)
        self._results(layout)
        self._history(layout, s)

    def _server(self, layout: bpy.types.UILayout, s: Any) -> None:
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
        if any(c.scan_tip for c in view.controls):  # the chosen kind may leave things running
            row.operator("comfyrelay.find_leftovers", text="", icon="VIEWZOOM")
        _wrapped(box, view.problem or view.connection, "ERROR" if view.problem else icon)
        if view.connection_details and not view.problem:  # what the server lacks, folded
            box.prop(s, "show_details", emboss=False,
                     icon="TRIA_DOWN" if s.show_details else "TRIA_RIGHT")
            if s.show_details:
                for line in view.connection_details.splitlines():
                    _wrapped(box, line, "INFO")

    def _controls(self, layout: bpy.types.UILayout) -> None:
        """Each back-end kind's own box (a machine's state, cost and buttons) while it is
        chosen, and what earlier sessions left running."""
        for view in SESSION.view.controls:
            if view.title:
                box = layout.box()
                box.label(text=view.title, icon="WORLD")
                for line in view.lines:
                    _wrapped(box, line)
                _buttons(box.row(align=True), view.buttons)
            if not (view.found or view.found_message):
                continue
            box = layout.box()
            box.label(text=view.found_title, icon="ERROR" if view.found else "INFO")
            if view.found_message:
                _wrapped(box, view.found_message)
            for found in view.found:
                row = box.row(align=True)
                row.label(text=found.line)
                _buttons(row, found.buttons)

    def _workflow(self, layout: bpy.types.UILayout, s: Any) -> None:
        box = layout.box()
        row = box.row(align=True)
        # The file's name; its whole path is the button's tooltip.
        name = bpy.path.basename(s.workflow_path) if s.workflow_path else "Choose a workflow…"
        row.operator("comfyrelay.choose_workflow", text=name, icon="FILE_FOLDER")
        refresh = row.operator("comfyrelay.load_workflow", text="", icon="FILE_REFRESH")
        refresh.refresh = True  # type: ignore[union-attr]  # asks the server again
        if s.workflow_path:
            row.operator("comfyrelay.clear_workflow", text="", icon="X")
        if s.workflow_error:
            _wrapped(box, s.workflow_error, "ERROR")
        if not s.inputs:
            return
        box.prop(s, "customize", toggle=True, icon="PREFERENCES")
        if s.customize:
            box.operator("comfyrelay.app_reset", icon="LOOP_BACK")
        chosen = sorted((i for i in s.inputs if i.in_app), key=lambda i: i.app_order)
        for item in chosen:
            self._input(box.column(), s, item, item.shown_label)
        others = [i for i in s.inputs if not i.in_app]
        if chosen and others:  # the app's inputs first; the rest stay one click away
            text = core.all_inputs_title(len(others), sum(1 for i in others if i.problem))
            box.prop(s, "show_all", icon="TRIA_DOWN" if s.show_all else "TRIA_RIGHT",
                     emboss=False, text=text)
        if not chosen or s.show_all:
            for item in others:
                self._input(box.column(), s, item, item.label)
        if s.customize and len(s.outputs) > 1:  # which output nodes' files come back
            col = box.column(heading="Results From")
            for output in s.outputs:
                col.prop(output, "wanted", text=f"{output.title} ({output.node})")

    def _input(self, col: bpy.types.UILayout, s: Any, item: Any, label: str) -> None:
        """One field: typed by the server where it said how, flagged if it would refuse it."""
        if item.kind in ("image", "video"):
            return  # its loader's source is chosen under Sources
        typed = item.input if item.typed else None
        problem = item.problem
        row = col.row(align=True)
        row.alert = problem is not None
        row.prop(item, item.field, text=label)
        if typed is not None and typed.has_seed_control:
            row.prop(item, "control", text="")
        # Hover: the raw node.input and its node, and the node's tooltip when it has one.
        help_op = row.operator("comfyrelay.input_help", text="", icon="QUESTION")
        help_op.key = item.name  # type: ignore[union-attr]
        if s.customize:
            self._customize(col.row(align=True), item)
        if problem:
            _wrapped(col, problem, "ERROR")

    def _customize(self, row: bpy.types.UILayout, item: Any) -> None:
        row.prop(item, "in_app", text="")
        row.prop(item, "app_label", text="")
        moves: list[tuple[int, IconItems]] = [(-1, "TRIA_UP"), (1, "TRIA_DOWN")]
        for offset, icon in moves:
            op = row.operator("comfyrelay.app_move", text="", icon=icon)
            op.key, op.offset = item.name, offset  # type: ignore[union-attr]

    def _source(self, layout: bpy.types.UILayout, s: Any) -> None:
        """Each loader's source: a render pass, the selection's mask, an image, or Keep."""
        box = layout.box()
        for entry in s.media:
            box.prop(entry, "source", text=entry.title or entry.node)
            if entry.source == "IMAGE":
                box.template_ID(entry, "image", open="image.open")
        if any(entry.source == "NORMAL" for entry in s.media):
            box.prop(s, "normal_convention")
        box.prop(s, "use_material")

    def _run(self, layout: bpy.types.UILayout) -> None:
        view = SESSION.view
        row = layout.row(align=True)
        row.scale_y = 1.4
        row.operator("comfyrelay.run", icon="PLAY")
        row.operator("comfyrelay.cancel", text="", icon="CANCEL")
        col = layout.column(align=True)
        short = _headline(view.status)
        if view.progress_shown:  # a run started here: its bar
            col.progress(factor=view.progress, type="BAR", text=short)
        else:  # nothing ran in this workflow and back end: no bar, only the status
            col.label(text=short, icon="ERROR" if view.attention else "NONE")
        if short != view.status:  # e.g. a cancel that may still be billed: say it all
            _wrapped(col, view.status, "INFO")
        if view.node:
            col.label(text=f"{view.node} {view.step}".strip(), icon="NODE")
        if view.seed is not None:
            col.label(text=f"Seed {view.seed}")
        for error in (view.error, SHOWN.message):
            if error:
                _wrapped(layout.box(), error, "ERROR")
        if view.error_node:
            layout.label(text=f"Failed in {view.error_node}", icon="NODE")

    def _texturing(self, layout: bpy.types.UILayout, s: Any) -> None:
        """Texture from Cameras: its choices, its button, a line per view and the report."""
        box = layout.box()
        box.label(text="Texture from Cameras", icon="TEXTURE")
        box.row().prop(s, "texture_cameras", expand=True)
        if s.texture_cameras == "AUTO":
            box.prop(s, "texture_camera_count", text="Cameras")
        box.prop(s, "texture_size")
        box.prop(s, "texture_sequential")
        op = box.operator("comfyrelay.project_texture", icon="UV")
        op.cameras, op.camera_count = s.texture_cameras, s.texture_camera_count  # type: ignore[union-attr]
        op.texture_size, op.sequential = s.texture_size, s.texture_sequential  # type: ignore[union-attr]
        shown = task.LAST
        for line in shown.lines() if shown is not None else []:
            _wrapped(box, line)

    def _results(self, layout: bpy.types.UILayout) -> None:
        if SHOWN.outputs:
            col = layout.column(align=True)
            for name in SHOWN.outputs[:5]:
                col.label(text=name, icon="IMAGE_DATA")


    def _history(self, layout: bpy.types.UILayout, s: Any) -> None:
        """The runs kept in this .blend, newest first: see, reuse, run again."""
        runs = _runs(s.history)
        if not runs:
            return
        box = layout.box()
        box.prop(s, "show_history", text=f"History ({len(runs)})", emboss=False,
                 icon="TRIA_DOWN" if s.show_history else "TRIA_RIGHT")
        if not s.show_history:
            return
        for record in reversed(runs[-HISTORY_SHOWN:]):
            icon = results.thumbnail(record.image_output())
            row = box.row(align=True)
            row.label(text=record.describe(), icon_value=icon)
            for action, symbol in (("RERUN", "PLAY"), ("APPLY", "IMPORT"), ("SHOW", "FILEBROWSER")):
                cell = row.row(align=True)
                cell.enabled = action != "RERUN" or SESSION.view.can_rerun  # same rule as Krita
                op = cell.operator("comfyrelay.history", text="", icon=symbol)  # type: ignore[arg-type]
                op.run_id, op.action = record.id, action  # type: ignore[union-attr]


@functools.lru_cache(maxsize=4)
def _runs(stored: str) -> list[core.RunRecord]:
    """The history kept in the .blend, parsed once per change, not on every redraw."""
    return core.history_from_json(stored).runs if stored else []


class COMFYRELAY_PT_view3d(ComfyRelayPanel, bpy.types.Panel):
    bl_idname = "COMFYRELAY_PT_view3d"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"


class COMFYRELAY_PT_image(ComfyRelayPanel, bpy.types.Panel):
    bl_idname = "COMFYRELAY_PT_image"
    bl_space_type = "IMAGE_EDITOR"
    bl_region_type = "UI"


CLASSES = (COMFYRELAY_PT_view3d, COMFYRELAY_PT_image)


def _buttons(row: bpy.types.UILayout, buttons: tuple[core.Button, ...]) -> None:
    """A kind's buttons: each calls comfyrelay.backend_action with what to do."""
    for button in buttons:
        cell = row.row(align=True)
        cell.enabled = button.enabled
        op = cell.operator("comfyrelay.backend_action", text=button.label)
        op.kind, op.action, op.target = (  # type: ignore[union-attr]
            button.kind, button.action, button.target)
