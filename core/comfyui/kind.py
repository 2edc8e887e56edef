"""The ComfyUI back-end kind: a ComfyUI server by URL (local, remote, behind a token)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import Credential, Credentials
from ..jobs.backend_api import Backend
from ..jobs.backend_kind import FREE, BackendKind, CliOption, KindSettings, Price, Setting
from .server_backend import ComfyUIBackend

DEFAULT_URL = "http://127.0.0.1:8188"
URL_ENV = "COMFYUI_URL"
TOKEN = Credential("comfyui_token", "COMFYUI_TOKEN")  # a bearer header for a remote ComfyUI
# The key Comfy's partner (API) nodes bill to, sent in a job's extra_data.api_key_comfy_org
# (docs/WIRE.md §1); every kind that runs a ComfyUI graph reads it.
PARTNER_KEY = Credential("comfy_org_api_key", "COMFY_ORG_API_KEY")


class ComfyUISettings(KindSettings):
    url: str = DEFAULT_URL


class ComfyUIKind(BackendKind[ComfyUISettings]):
    name = "comfyui"
    label = "ComfyUI"
    settings_model = ComfyUISettings
    fields = (
        Setting("url", "URL", DEFAULT_URL, DEFAULT_URL),
        Setting("token", "Token", hint=f"none, or {TOKEN.env}", credential=TOKEN.name),
    )
    credentials = (TOKEN, PARTNER_KEY)
    cli_options = (
        CliOption("--server", f"ComfyUI URL (default: ${URL_ENV} or {DEFAULT_URL}); several: "
                  "a pool of them, one job each at a time", action="append", metavar="URL"),
    )
    capabilities = ComfyUIBackend.capabilities

    def from_fields(self, values: Mapping[str, Any]) -> ComfyUISettings:
        return ComfyUISettings(url=str(values["url"]).strip() or DEFAULT_URL)

    def from_args(self, args: argparse.Namespace) -> ComfyUISettings:
        given = getattr(args, "server", None)
        if isinstance(given, list):  # `run --server` repeats (several: a pool)
            given = given[0] if given else None
        url = given or os.environ.get(URL_ENV) or DEFAULT_URL
        return ComfyUISettings(url=url)

    def build(self, settings: ComfyUISettings, credentials: Credentials,
              config: Path | None) -> Backend:
        return ComfyUIBackend(settings.url, token=credentials[TOKEN.name] or None,
                              partner_key=credentials[PARTNER_KEY.name] or None)

    def price(self, settings: ComfyUISettings) -> Price:
        return FREE  # the user's own (or a friend's) GPU


KIND = ComfyUIKind()
