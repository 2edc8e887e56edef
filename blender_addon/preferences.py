"""Add-on preferences: where ComfyUI is, its token, where results go, how they come back.

Preferences live in Blender's userpref.blend, never in the scene, so tokens stay out of the
.blend files artists share.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import bpy

# `__package__` is "bl_ext.<repo>.comfyrelay" when installed as an extension.
ADDON_ID: str = __package__ or "comfyrelay"
TOKEN_ENV = "COMFYUI_TOKEN"


class ComfyRelayPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    # ---- ComfyUI server ----
    comfyui_url: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="ComfyUI URL",
        description="Address of the ComfyUI server (local, remote, or a rented machine)",
        default="http://127.0.0.1:8188",
    )
    comfyui_token: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Token",
        description=f"Bearer token for servers behind a login; empty uses ${TOKEN_ENV}",
        subtype="PASSWORD",
    )

    # ---- Hosted back ends (issue 3) ----
    # RunComfy (user id, tokens, machine type, duration), Serverless deployment, ComfyICU
    # (key, workflow) and idle auto-stop go here once the core ships `comfyrelay.backends`.

    # ---- Results ----
    output_dir: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Output Folder",
        description="Where results are saved; empty: a ComfyRelay folder next to the .blend file",
        subtype="DIR_PATH",
    )
    result_mode: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Results",
        items=[
            ("REPLACE", "Update One Image", "Each run replaces the pixels of one result image"),
            ("NEW", "New Image per Run", "Each run adds a new image"),
        ],
        default="REPLACE",
    )

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        box = layout.box()
        box.label(text="ComfyUI Server", icon="URL")
        box.prop(self, "comfyui_url")
        box.prop(self, "comfyui_token")
        if not self.comfyui_token and os.environ.get(TOKEN_ENV):
            box.label(text=f"Using the token from ${TOKEN_ENV}", icon="INFO")
        box = layout.box()
        box.label(text="Results", icon="IMAGE_DATA")
        box.prop(self, "output_dir")
        box.row().prop(self, "result_mode", expand=True)


def prefs() -> ComfyRelayPreferences:
    preferences = bpy.context.preferences
    assert preferences is not None  # None only while Blender starts or quits
    return preferences.addons[ADDON_ID].preferences  # type: ignore[return-value]


def token() -> str | None:
    """The token from preferences, else from the environment; never from scene data."""
    return prefs().comfyui_token or os.environ.get(TOKEN_ENV) or None


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
