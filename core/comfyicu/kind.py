"""The ComfyICU kind: runs of a workflow saved on comfy.icu, input files by public URL."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from ..config import Credential, Credentials, require
from ..errors import ComfyRelayError
from ..jobs.backend_api import Backend
from ..jobs.backend_kind import API_URL_OPTION, BackendKind, CliOption, KindSettings, Setting
from .icu_backend import ACCELERATORS, DEFAULT_API, ComfyICU, ComfyICUBackend, is_url

API_KEY = Credential("comfyicu_api_key", "COMFYICU_API_KEY")
# The value of "the service decides". Never "": Blender takes an empty enum identifier for a
# heading, so a default of "" matches no item and Blender warns on every redraw.
SERVICE_DEFAULT = "default"


class ComfyICUSettings(KindSettings):
    api_url: str = DEFAULT_API
    workflow_id: str = ""
    accelerator: str | None = None  # None: ComfyICU's own choice
    files: dict[str, str] = Field(default_factory=dict)  # {"/input/x.png": "https://..."}
    poll_interval: float = 3.0


class ComfyICUKind(BackendKind[ComfyICUSettings]):
    name = "comfyicu"
    label = "ComfyICU"
    settings_model = ComfyICUSettings
    fields = (
        Setting("icu_api_key", "API key", hint=f"empty: {API_KEY.env}", credential=API_KEY.name),
        Setting("icu_workflow", "Workflow id", hint="workflow_id from “View API code”"),
        Setting("icu_accelerator", "Accelerator", SERVICE_DEFAULT,
                choices=((SERVICE_DEFAULT, "default"), *((a, a) for a in ACCELERATORS))),
        Setting("icu_api_url", "API URL (advanced)", hint=DEFAULT_API),
    )
    credentials = (API_KEY,)
    cli_options = (
        API_URL_OPTION,
        CliOption("--icu-workflow", "comfyicu: workflow_id"),
        CliOption("--accelerator", "comfyicu: GPU", choices=ACCELERATORS),
        CliOption("--file", "comfyicu: input file by URL, e.g. /input/photo.png=https://...",
                  dest="files", default=[], action="append", metavar="PATH=URL"),
    )
    capabilities = ComfyICUBackend.capabilities

    def from_fields(self, values: Mapping[str, Any]) -> ComfyICUSettings:
        accelerator = str(values["icu_accelerator"])
        return ComfyICUSettings(
            api_url=str(values["icu_api_url"]).strip() or DEFAULT_API,
            workflow_id=str(values["icu_workflow"]).strip(),
            accelerator=None if accelerator in ("", SERVICE_DEFAULT) else accelerator,
        )

    def from_args(self, args: argparse.Namespace) -> ComfyICUSettings:
        return ComfyICUSettings(
            api_url=args.api_url or DEFAULT_API, workflow_id=args.icu_workflow or "",
            accelerator=args.accelerator, files=dict(_file_arg(text) for text in args.files),
        )

    def build(self, settings: ComfyICUSettings, credentials: Credentials,
              config: Path | None) -> Backend:
        require(credentials, (API_KEY,), "The ComfyICU API key is",
                "Create a key in your ComfyICU account settings.")
        if not settings.workflow_id:
            raise ComfyRelayError(
                "Choose a ComfyICU workflow id (open a run on comfy.icu and use “View API code”)."
            )
        client = ComfyICU(credentials[API_KEY.name], api_url=settings.api_url)
        return ComfyICUBackend(
            client, settings.workflow_id, accelerator=settings.accelerator,
            files=settings.files, poll_interval=settings.poll_interval,
        )


def _file_arg(text: str) -> tuple[str, str]:
    path, eq, url = text.partition("=")
    if not eq or not path.startswith("/") or not is_url(url):
        raise ComfyRelayError(f"--file {text!r}: write /input/NAME=https://..., a public URL.")
    return path, url


KIND = ComfyICUKind()
