"""The Comfy API kind: Comfy Cloud by default; a Comfy deployment's URL or a local
comfy-api-proxy work the same (the Comfy API v2, docs/WIRE.md §5)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..comfyui.kind import PARTNER_KEY
from ..config import Credential, Credentials, credentials_path
from ..errors import ComfyRelayError
from ..jobs.backend_api import Backend
from ..jobs.backend_kind import API_URL_OPTION, BackendKind, KindSettings, Setting
from .api import ComfyApi
from .api_backend import DEFAULT_API, ComfyApiBackend

API_KEY = Credential("comfy_api_key", "COMFY_API_KEY")


class ComfyApiSettings(KindSettings):
    api_url: str = DEFAULT_API
    live_events: bool = True  # progress and previews from the job's event stream
    poll_interval: float = 1.0


class ComfyApiKind(BackendKind[ComfyApiSettings]):
    name = "comfy-api"
    label = "Comfy API (Comfy Cloud)"
    settings_model = ComfyApiSettings
    fields = (
        Setting("ca_api_key", "API key", hint=f"empty: {API_KEY.env}", credential=API_KEY.name),
        Setting("ca_partner_key", "Partner nodes key", hint=f"optional: {PARTNER_KEY.env}",
                credential=PARTNER_KEY.name),
        Setting("ca_api_url", "API URL (advanced)",
                hint=f"{DEFAULT_API}, a deployment, or a local comfy-api-proxy"),
    )
    credentials = (API_KEY, PARTNER_KEY)
    cli_options = (API_URL_OPTION,)
    capabilities = ComfyApiBackend.capabilities

    def from_fields(self, values: Mapping[str, Any]) -> ComfyApiSettings:
        return ComfyApiSettings(api_url=str(values["ca_api_url"]).strip() or DEFAULT_API)

    def from_args(self, args: argparse.Namespace) -> ComfyApiSettings:
        return ComfyApiSettings(api_url=args.api_url or DEFAULT_API)

    def build(self, settings: ComfyApiSettings, credentials: Credentials,
              config: Path | None) -> Backend:
        return comfy_api_backend(settings, credentials)


def comfy_api_backend(settings: ComfyApiSettings, credentials: Credentials) -> ComfyApiBackend:
    """A Comfy API v2 back end. Comfy Cloud needs a key; a local comfy-api-proxy may not."""
    url = settings.api_url.strip() or DEFAULT_API
    key, partner = credentials[API_KEY.name], credentials[PARTNER_KEY.name]
    if url.rstrip("/") == DEFAULT_API and not key:
        raise ComfyRelayError(
            "The Comfy API key is missing. Create an API key in your Comfy Cloud account, "
            f"then set {API_KEY.env} in the environment, put {API_KEY.name} in "
            f"{credentials_path()}, or enter it in the add-on's back-end settings. (A local "
            "comfy-api-proxy started without --token needs no key: set its URL instead.)"
        )
    client = ComfyApi(url, key, secrets=(partner,))
    return ComfyApiBackend(client, partner_key=partner, live_events=settings.live_events,
                           poll_interval=settings.poll_interval)


KIND = ComfyApiKind()
