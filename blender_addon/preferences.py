"""Add-on preferences: the back end and its credentials, where results go, how they come back.

The back-end fields are made from the core's registry of kinds (the Krita docker shows the
same); changing one applies the settings to the session once (pump.configure).
Preferences live in Blender's userpref.blend, never in the scene, so tokens stay out of the
.blend files artists share.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import bpy

from .core import core

# `__package__` is "bl_ext.<repo>.comfyrelay" when installed as an extension.
ADDON_ID: str = __package__ or "comfyrelay"


def _changed(self: Any, context: bpy.types.Context) -> None:
    """A back-end setting changed: the session applies them (a new back end if needed).
    A problem (a broken credentials file) is reported by the next action that needs the
    back end, which applies them again."""
    from . import pump  # pump imports this module

    with contextlib.suppress(core.ComfyRelayError, ValueError):
        pump.configure()


def _prop(field: core.Setting) -> Any:
    """A bpy property for one back-end field, with the core's default."""
    default = field.default
    common: dict[str, Any] = {"name": field.label, "description": field.hint,
                              "update": _changed}
    if field.choices:
        items = [(value, label.capitalize(), "") for value, label in field.choices]
        return bpy.props.EnumProperty(items=items, default=default, **common)
    if isinstance(default, int):
        return bpy.props.IntProperty(default=default, min=int(field.low), **common)
    if isinstance(default, float):
        return bpy.props.FloatProperty(default=default, min=field.low, **common)
    return bpy.props.StringProperty(default=default, **common,
                                    subtype="PASSWORD" if field.secret else "NONE")


def preferences_class() -> type[bpy.types.AddonPreferences]:
    """The preferences, made when the add-on registers: a field for every back-end kind
    the core knows by then (a kind registered before the add-on is enabled included)."""
    annotations = {
        "backend": bpy.props.EnumProperty(
            name="Back End", items=[(k, v, "") for k, v in core.KINDS.labels().items()],
            default=core.DEFAULT_KIND, update=_changed,
        ),
        **{name: _prop(field) for name, field in core.KINDS.fields().items()},
        "output_dir": bpy.props.StringProperty(
            name="Output Folder", subtype="DIR_PATH",
            description="Where results are saved; empty: a ComfyRelay folder next to the "
            ".blend file",
        ),
        "result_mode": bpy.props.EnumProperty(
            name="Results",
            items=[
                ("REPLACE", "Update One Image", "Each run replaces the pixels of one image"),
                ("NEW", "New Image per Run", "Each run adds a new image"),
            ],
            default="REPLACE",
        ),
    }
    return type("ComfyRelayPreferences", (Drawn, bpy.types.AddonPreferences),
                {"bl_idname": ADDON_ID, "__annotations__": annotations})


class Drawn:
    """How the preferences draw themselves: the chosen kind's fields only."""

    def draw(self: Any, context: bpy.types.Context) -> None:  # self: the built class
        box = self.layout.box()
        box.prop(self, "backend")
        fields = core.KINDS.fields()
        for name in core.KINDS.kind_fields(self.backend):
            box.prop(self, name)
        for name in core.KINDS.kind_fields(self.backend):
            env = core.KINDS.credential_env(fields[name].credential)
            if env and not getattr(self, name) and os.environ.get(env):
                box.label(text=f"{fields[name].label}: using ${env}", icon="INFO")
        box = self.layout.box()
        box.label(text="Results", icon="IMAGE_DATA")
        box.prop(self, "output_dir")
        box.row().prop(self, "result_mode", expand=True)


def prefs() -> Any:
    preferences = bpy.context.preferences
    assert preferences is not None  # None only while Blender starts or quits
    return preferences.addons[ADDON_ID].preferences


def host_settings() -> core.HostSettings:
    """The back-end fields as the core reads them."""
    p = prefs()
    names = ["backend", *core.KINDS.fields()]
    return core.HostSettings.model_validate({name: getattr(p, name) for name in names})


def output_dir() -> Path:
    """The output folder, created if needed."""
    chosen = prefs().output_dir
    if chosen:
        path = Path(bpy.path.abspath(chosen))
    elif bpy.data.filepath:
        path = Path(bpy.data.filepath).parent / "ComfyRelay"
    else:
        path = Path(tempfile.gettempdir()) / "ComfyRelay"
    path.mkdir(parents=True, exist_ok=True)
    return path
