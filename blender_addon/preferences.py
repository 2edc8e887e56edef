"""Add-on preferences: the back end and its credentials, where results go, how they come back.

Preferences live in Blender's userpref.blend, never in the scene, so tokens stay out of the
.blend files artists share.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import bpy

from . import core

# `__package__` is "bl_ext.<repo>.comfyrelay" when installed as an extension.
ADDON_ID: str = __package__ or "comfyrelay"
TOKEN_ENV = "COMFYUI_TOKEN"
BACKENDS = [
    ("comfyui", "ComfyUI Server", "A ComfyUI you run (local or remote)"),
    ("runcomfy-machine", "RunComfy Machine", "A cloud machine launched on RunComfy (billed)"),
    ("runcomfy-serverless", "RunComfy Serverless", "A RunComfy Serverless deployment"),
    ("comfyicu", "ComfyICU", "A ComfyICU workflow (input files by URL only)"),
]


def _secret(name: str, env: str) -> bpy.props.StringProperty:  # type: ignore[valid-type]
    return bpy.props.StringProperty(
        name=name, description=f"Empty: use ${env} or the credentials file", subtype="PASSWORD"
    )


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

    backend: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Back End", items=BACKENDS, default="comfyui"
    )

    # ---- RunComfy (machines and Serverless) ----
    runcomfy_user_id: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="User ID", description="Empty: use $RUNCOMFY_USER_ID or the credentials file"
    )
    runcomfy_token: _secret("Token 1", "RUNCOMFY_API_TOKEN")  # type: ignore[valid-type]
    runcomfy_token2: _secret("Token 2", "RUNCOMFY_API_TOKEN2")  # type: ignore[valid-type]
    runcomfy_api_url: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="API URL", default=core.RUNCOMFY_API
    )
    workflow_version_id: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Workflow Version", description="version_id of the RunComfy workflow to launch"
    )
    server_id: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Machine", description="Reuse this running machine (server_id) instead of launching"
    )
    server_type: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Machine Type", items=[(t, t, "") for t in core.SERVER_TYPES], default="medium"
    )
    duration_minutes: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Duration (min)", description="Running time asked for at launch", default=60, min=1
    )
    idle_stop_minutes: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Auto-Stop When Idle (min)", description="0: never", default=15, min=0
    )
    hourly_price: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Hourly Price", description="Your price for this machine type, to show the cost; "
        "0: not shown", default=0.0, min=0.0
    )
    deployment_id: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Deployment", description="RunComfy Serverless deployment id"
    )

    # ---- ComfyICU ----
    comfyicu_key: _secret("API Key", "COMFYICU_API_KEY")  # type: ignore[valid-type]
    comfyicu_workflow: bpy.props.StringProperty(name="Workflow ID")  # type: ignore[valid-type]
    comfyicu_accelerator: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="GPU", items=[("", "Default", ""), *((a, a, "") for a in core.ACCELERATORS)]
    )
    comfyicu_api_url: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="API URL", default=core.COMFYICU_API
    )

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
        box.prop(self, "backend")
        fields = {
            "comfyui": ["comfyui_url", "comfyui_token"],
            "runcomfy-machine": [
                "runcomfy_user_id", "runcomfy_token", "runcomfy_token2", "workflow_version_id",
                "server_id", "server_type", "duration_minutes", "idle_stop_minutes",
                "hourly_price", "runcomfy_api_url",
            ],
            "runcomfy-serverless": [
                "runcomfy_token", "runcomfy_token2", "deployment_id", "runcomfy_api_url"
            ],
            "comfyicu": [
                "comfyicu_key", "comfyicu_workflow", "comfyicu_accelerator", "comfyicu_api_url"
            ],
        }[self.backend]
        for name in fields:
            box.prop(self, name)
        if self.backend == "comfyui" and not self.comfyui_token and os.environ.get(TOKEN_ENV):
            box.label(text=f"Using the token from ${TOKEN_ENV}", icon="INFO")
        box = layout.box()
        box.label(text="Results", icon="IMAGE_DATA")
        box.prop(self, "output_dir")
        box.row().prop(self, "result_mode", expand=True)


def prefs() -> ComfyRelayPreferences:
    preferences = bpy.context.preferences
    assert preferences is not None  # None only while Blender starts or quits
    return preferences.addons[ADDON_ID].preferences  # type: ignore[return-value]


def backend_settings() -> core.BackendSettings:
    """The core's settings for the chosen back end (no secrets in them)."""
    p = prefs()
    idle = p.idle_stop_minutes * 60.0 if p.idle_stop_minutes else None
    return core.BackendSettings.model_validate({
        "kind": p.backend,
        "comfyui": {"url": p.comfyui_url.strip()},
        "runcomfy_machine": {
            "api_url": p.runcomfy_api_url.strip(), "workflow_version_id": p.workflow_version_id,
            "server_id": p.server_id, "server_type": p.server_type,
            "duration": p.duration_minutes * 60, "idle_stop": idle,
            "hourly_price": p.hourly_price or None,
        },
        "runcomfy_serverless": {
            "api_url": p.runcomfy_api_url.strip(), "deployment_id": p.deployment_id.strip()
        },
        "comfyicu": {
            "api_url": p.comfyicu_api_url.strip(), "workflow_id": p.comfyicu_workflow.strip(),
            "accelerator": p.comfyicu_accelerator or None,
        },
    })


def credentials() -> core.Credentials:
    """Secrets from preferences, else from the environment or the credentials file; never
    from scene data."""
    p = prefs()
    return core.credentials_with(
        runcomfy_user_id=p.runcomfy_user_id,
        runcomfy_tokens=(p.runcomfy_token, p.runcomfy_token2),
        comfyicu_api_key=p.comfyicu_key,
        comfyui_token=p.comfyui_token,
    )


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
