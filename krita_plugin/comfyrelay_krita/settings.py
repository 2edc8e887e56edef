"""Back-end and docker settings, kept in Krita's own settings file (kritarc).

Nothing here is written into a .kra, so a shared painting never carries a token. Empty
credential fields fall back to the environment and ComfyRelay's credentials file.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .core import BackendSettings, Credentials, credentials_with

GROUP = "ComfyRelay"
KINDS = ("comfyui", "runcomfy-machine", "runcomfy-serverless", "comfyicu")


@dataclass
class Settings:
    backend: str = "comfyui"  # one of KINDS
    # ComfyUI
    url: str = "http://127.0.0.1:8188"
    token: str = ""  # empty: COMFYUI_TOKEN or the credentials file
    # RunComfy account: machines and Serverless
    rc_user_id: str = ""
    rc_token1: str = ""
    rc_token2: str = ""
    rc_api_url: str = ""  # empty: RunComfy's own API
    # RunComfy machine
    rc_workflow_version: str = ""
    rc_server_type: str = "medium"
    rc_minutes: int = 60  # the first estimated duration
    rc_idle_minutes: int = 15  # auto-stop without jobs; 0: never
    rc_hourly_price: float = 0.0  # 0: unknown, so no cost is shown
    # RunComfy Serverless
    rc_deployment: str = ""
    # ComfyICU
    icu_api_key: str = ""
    icu_workflow: str = ""
    icu_accelerator: str = ""  # empty: ComfyICU's default
    icu_api_url: str = ""  # empty: ComfyICU's own API
    # The docker
    workflow: str = ""  # path of the last API-format workflow
    source: str = "canvas"  # canvas or selection
    output_folder: str = ""  # empty: ~/Pictures/ComfyRelay

    def results_dir(self) -> Path:
        """Where result files stay, so a closed document or a crash loses nothing."""
        if self.output_folder:
            return Path(self.output_folder).expanduser()
        return Path.home() / "Pictures" / "ComfyRelay"

    def credentials(self) -> Credentials:
        """What the fields hold; empty ones from the environment or the credentials file."""
        return credentials_with(
            runcomfy_user_id=self.rc_user_id,
            runcomfy_tokens=(self.rc_token1, self.rc_token2),
            comfyicu_api_key=self.icu_api_key,
            comfyui_token=self.token,
        )

    def backend_settings(self, server_id: str = "") -> BackendSettings:
        """The core's settings for make_backend(); `server_id`: a running machine to reuse."""
        rc_api = {"api_url": self.rc_api_url} if self.rc_api_url else {}
        icu_api = {"api_url": self.icu_api_url} if self.icu_api_url else {}
        return BackendSettings.model_validate({
            "kind": self.backend,
            "comfyui": {"url": self.url},
            "runcomfy_machine": {
                **rc_api,
                "workflow_version_id": self.rc_workflow_version,
                "server_id": server_id,
                "server_type": self.rc_server_type,
                "duration": max(1, self.rc_minutes) * 60,
                "idle_stop": self.rc_idle_minutes * 60 if self.rc_idle_minutes > 0 else None,
                "hourly_price": self.rc_hourly_price or None,
            },
            "runcomfy_serverless": {**rc_api, "deployment_id": self.rc_deployment},
            "comfyicu": {
                **icu_api,
                "workflow_id": self.icu_workflow,
                "accelerator": self.icu_accelerator or None,
            },
        })


def _typed(raw: Any, default: Any) -> Any:
    """kritarc holds text: read each value back as its field's type, or the default."""
    try:
        return type(default)(raw)
    except (TypeError, ValueError):
        return default


def load(krita: Any) -> Settings:
    defaults = Settings()
    values = {
        f.name: _typed(krita.readSetting(GROUP, f.name, str(getattr(defaults, f.name))),
                       getattr(defaults, f.name))
        for f in fields(Settings)
    }
    settings = Settings(**values)
    if settings.backend not in KINDS:  # e.g. written by a newer version
        settings.backend = defaults.backend
    return settings


def save(krita: Any, settings: Settings) -> None:
    for f in fields(Settings):
        krita.writeSetting(GROUP, f.name, str(getattr(settings, f.name)))
