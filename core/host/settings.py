"""The back-end settings a host shows and stores, flat, with the fields each back end needs.

Both hosts build their settings UI from FIELDS and KIND_FIELDS, so they offer the same
choices with the same labels. Hosts store these values in their own settings (Krita's
kritarc, Blender's preferences), never in a document; empty secrets fall back to the
environment and the credentials file.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, field_validator

from ..backends import KINDS, BackendSettings
from ..comfyapi.backend import DEFAULT_API as COMFY_API
from ..comfyicu.backend import ACCELERATORS
from ..comfyicu.backend import DEFAULT_API as COMFYICU_API
from ..config import Credentials, credentials_with
from ..runcomfy.api import DEFAULT_API as RUNCOMFY_API
from ..runcomfy.api import SERVER_TYPES

KIND_LABELS = {
    "comfyui": "ComfyUI",
    "runcomfy-machine": "RunComfy machine",
    "runcomfy-serverless": "RunComfy Serverless",
    "comfyicu": "ComfyICU",
    "comfy-api": "Comfy API (Comfy Cloud)",
}
FROM_ENV = "empty: from the environment or credentials.json"
# The value of "the service decides". Never "": Blender takes an empty enum identifier for a
# heading, so a default of "" matches no item and Blender warns on every redraw.
SERVICE_DEFAULT = "default"


@dataclass(frozen=True)
class Field:
    """How a host shows one setting."""

    label: str
    hint: str = ""  # placeholder or tooltip
    secret: bool = False
    choices: tuple[tuple[str, str], ...] = ()  # (value, label); empty: free text or number
    low: float = 0.0  # numbers: the smallest value; `special` is shown for it
    special: str = ""


FIELDS: dict[str, Field] = {
    "url": Field("URL", "http://127.0.0.1:8188"),
    "token": Field("Token", "none, or COMFYUI_TOKEN", secret=True),
    "rc_user_id": Field("User id", "empty: RUNCOMFY_USER_ID"),
    "rc_token1": Field("Token1", FROM_ENV, secret=True),
    "rc_token2": Field("Token2", "optional", secret=True),
    "rc_api_url": Field("API URL (advanced)", RUNCOMFY_API),
    "rc_workflow_version": Field("Workflow version", "workflow version_id"),
    "rc_server_type": Field("Machine type", choices=tuple((t, t) for t in SERVER_TYPES)),
    "rc_minutes": Field("Duration (min)", "running time asked for at launch", low=1),
    "rc_idle_minutes": Field("Idle auto-stop (min)", "stop after this long without jobs",
                             special="never"),
    "rc_hourly_price": Field("Hourly price", "your price for this machine type, to show "
                             "the cost", special="not set"),
    "rc_deployment": Field("Deployment", "deployment id"),
    "icu_api_key": Field("API key", "empty: COMFYICU_API_KEY", secret=True),
    "icu_workflow": Field("Workflow id", "workflow_id from “View API code”"),
    "icu_accelerator": Field("Accelerator", choices=((SERVICE_DEFAULT, "default"),
                                                     *((a, a) for a in ACCELERATORS))),
    "icu_api_url": Field("API URL (advanced)", COMFYICU_API),
    "ca_api_key": Field("API key", "empty: COMFY_API_KEY", secret=True),
    "ca_partner_key": Field("Partner nodes key", "optional: COMFY_ORG_API_KEY", secret=True),
    "ca_api_url": Field("API URL (advanced)", f"{COMFY_API}, a deployment, or a local "
                        "comfy-api-proxy"),
}
_RUNCOMFY = ["rc_user_id", "rc_token1", "rc_token2"]
KIND_FIELDS: dict[str, list[str]] = {
    "comfyui": ["url", "token"],
    "runcomfy-machine": [*_RUNCOMFY, "rc_workflow_version", "rc_server_type", "rc_minutes",
                         "rc_idle_minutes", "rc_hourly_price", "rc_api_url"],
    "runcomfy-serverless": [*_RUNCOMFY, "rc_deployment", "rc_api_url"],
    "comfyicu": ["icu_api_key", "icu_workflow", "icu_accelerator", "icu_api_url"],
    "comfy-api": ["ca_api_key", "ca_partner_key", "ca_api_url"],
}


class HostSettings(BaseModel):
    """What the settings UI holds; see FIELDS for each field's label."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    backend: str = "comfyui"  # one of KINDS
    url: str = "http://127.0.0.1:8188"
    token: str = ""
    rc_user_id: str = ""
    rc_token1: str = ""
    rc_token2: str = ""
    rc_api_url: str = ""  # empty: RunComfy's own API
    rc_workflow_version: str = ""
    rc_server_type: str = "medium"
    rc_minutes: int = 60
    rc_idle_minutes: int = 15  # 0: never
    rc_hourly_price: float = 0.0  # 0: unknown, so no cost is shown
    rc_deployment: str = ""
    icu_api_key: str = ""
    icu_workflow: str = ""
    icu_accelerator: str = SERVICE_DEFAULT  # ComfyICU's own choice
    icu_api_url: str = ""  # empty: ComfyICU's own API
    ca_api_key: str = ""
    ca_partner_key: str = ""
    ca_api_url: str = ""  # empty: Comfy Cloud

    @field_validator("icu_accelerator")
    @classmethod
    def _blank_is_default(cls, value: str) -> str:
        return value or SERVICE_DEFAULT  # "" as stored by earlier versions

    def credentials(self) -> Credentials:
        """The secrets typed here; empty ones from the environment or the credentials file."""
        return credentials_with(
            runcomfy_user_id=self.rc_user_id.strip(),
            runcomfy_tokens=(self.rc_token1.strip(), self.rc_token2.strip()),
            comfyicu_api_key=self.icu_api_key.strip(),
            comfyui_token=self.token.strip(),
            comfy_api_key=self.ca_api_key.strip(),
            comfy_org_api_key=self.ca_partner_key.strip(),
        )

    def backend_settings(self) -> BackendSettings:
        """The core's settings for make_backend() (no secrets in them)."""
        rc_api = {"api_url": self.rc_api_url.strip()} if self.rc_api_url.strip() else {}
        icu_api = {"api_url": self.icu_api_url.strip()} if self.icu_api_url.strip() else {}
        ca_api = {"api_url": self.ca_api_url.strip()} if self.ca_api_url.strip() else {}
        idle = self.rc_idle_minutes * 60.0 if self.rc_idle_minutes > 0 else None
        return BackendSettings.model_validate({
            "kind": self.backend if self.backend in KINDS else "comfyui",
            "comfyui": {"url": self.url.strip()},
            "runcomfy_machine": {
                **rc_api,
                "workflow_version_id": self.rc_workflow_version.strip(),
                "server_type": self.rc_server_type,
                "duration": max(1, self.rc_minutes) * 60,
                "idle_stop": idle,
                "hourly_price": self.rc_hourly_price or None,
            },
            "runcomfy_serverless": {**rc_api, "deployment_id": self.rc_deployment.strip()},
            "comfyicu": {
                **icu_api,
                "workflow_id": self.icu_workflow.strip(),
                "accelerator": None if self.icu_accelerator == SERVICE_DEFAULT
                else self.icu_accelerator,
            },
            "comfy_api": ca_api,
        })
