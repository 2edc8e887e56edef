"""Build any back end from one settings object, so hosts and the CLI do it the same way.

Settings hold no secrets: credentials come separately (config.load_credentials()).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .comfyapi import backend as comfyapi
from .comfyapi.api import ComfyApi
from .comfyicu import backend as comfyicu
from .comfyui.backend import ComfyUIBackend
from .config import Credentials
from .errors import ComfyRelayError
from .jobs.backend import Backend
from .runcomfy import api as runcomfy
from .runcomfy.ledger import Ledger
from .runcomfy.machine import MachineOptions, RunComfyMachineBackend
from .runcomfy.serverless import RunComfyServerless, RunComfyServerlessBackend

Kind = Literal["comfyui", "runcomfy-machine", "runcomfy-serverless", "comfyicu", "comfy-api"]
KINDS: tuple[str, ...] = (
    "comfyui", "runcomfy-machine", "runcomfy-serverless", "comfyicu", "comfy-api",
)


class _Settings(BaseModel):
    model_config = ConfigDict(extra="ignore")  # settings saved by a newer version still load


class ComfyUISettings(_Settings):
    url: str = "http://127.0.0.1:8188"


class MachineSettings(_Settings):
    api_url: str = runcomfy.DEFAULT_API
    workflow_version_id: str = ""
    server_id: str = ""  # reuse this running machine instead of launching
    server_type: str = "medium"
    duration: int = Field(default=3600, ge=60)  # first estimated_duration, seconds
    # Stop after this many seconds without jobs; None: never.
    idle_stop: float | None = Field(default=900.0, ge=0)
    extend_margin: float = 600.0
    extend_step: int = Field(default=1800, ge=60)
    stop_on_close: bool = True
    hourly_price: float | None = None  # the user's price for this server_type, for cost shown


class ServerlessSettings(_Settings):
    api_url: str = runcomfy.DEFAULT_API
    deployment_id: str = ""
    send_workflow: bool = False  # send the whole graph instead of overrides
    poll_interval: float = 2.0


class ComfyICUSettings(_Settings):
    api_url: str = comfyicu.DEFAULT_API
    workflow_id: str = ""
    accelerator: str | None = None  # T4 L4 A10 A100_40GB A100_80GB H100
    files: dict[str, str] = Field(default_factory=dict)  # {"/input/x.png": "https://..."}
    poll_interval: float = 3.0


class ComfyApiSettings(_Settings):
    """Comfy Cloud by default; a Comfy deployment's URL or a comfy-api-proxy's work the same."""

    api_url: str = comfyapi.DEFAULT_API
    live_events: bool = True  # progress and previews from the job's event stream
    poll_interval: float = 1.0


class BackendSettings(_Settings):
    kind: Kind = "comfyui"
    comfyui: ComfyUISettings = Field(default_factory=ComfyUISettings)
    runcomfy_machine: MachineSettings = Field(default_factory=MachineSettings)
    runcomfy_serverless: ServerlessSettings = Field(default_factory=ServerlessSettings)
    comfyicu: ComfyICUSettings = Field(default_factory=ComfyICUSettings)
    comfy_api: ComfyApiSettings = Field(default_factory=ComfyApiSettings)


# Machine settings a live back end takes through tune(): rebuilding it would stop its machine.
TUNABLE = frozenset({"hourly_price", "idle_stop", "duration"})


def rebuild_key(settings: BackendSettings, credentials: Credentials) -> tuple[Any, ...]:
    """What needs a new back end when it changes: the kind, that kind's own settings (less
    the TUNABLE ones) and the credentials it uses. Other back ends' fields do not."""
    part = getattr(settings, settings.kind.replace("-", "_"))
    secrets = {
        "comfyui": (credentials.comfyui_token, credentials.comfy_org_api_key),
        "runcomfy-machine": (credentials.runcomfy_user_id, credentials.runcomfy_tokens,
                             credentials.comfy_org_api_key),
        "runcomfy-serverless": (credentials.runcomfy_tokens, credentials.comfy_org_api_key),
        "comfyicu": (credentials.comfyicu_api_key,),
        "comfy-api": (credentials.comfy_api_key, credentials.comfy_org_api_key),
    }[settings.kind]
    exclude = set(TUNABLE) if settings.kind == "runcomfy-machine" else None
    return settings.kind, part.model_dump_json(exclude=exclude), secrets


def runcomfy_server(credentials: Credentials, api_url: str = "") -> runcomfy.RunComfyServer:
    """The RunComfy machine API for these credentials; raises if they are incomplete."""
    credentials.require_runcomfy()
    return runcomfy.RunComfyServer(
        credentials.runcomfy_user_id, credentials.runcomfy_tokens,
        api_url=api_url.strip() or runcomfy.DEFAULT_API,
    )


def make_backend(
    settings: BackendSettings, credentials: Credentials, *, ledger: Ledger | None = None
) -> Backend:
    """The back end `settings.kind` names, configured; raises ComfyRelayError if incomplete."""
    partner_key = credentials.comfy_org_api_key or None  # for Comfy's partner (API) nodes
    if settings.kind == "comfyui":
        return ComfyUIBackend(settings.comfyui.url, token=credentials.comfyui_token or None,
                              partner_key=partner_key)
    if settings.kind == "runcomfy-machine":
        m = settings.runcomfy_machine
        options = MachineOptions(
            workflow_version_id=m.workflow_version_id,
            server_type=m.server_type,
            duration=m.duration,
            idle_stop=m.idle_stop,
            extend_margin=m.extend_margin,
            extend_step=m.extend_step,
            stop_on_close=m.stop_on_close,
            hourly_price=m.hourly_price,
        )
        return RunComfyMachineBackend(
            runcomfy_server(credentials, m.api_url), options, server_id=m.server_id,
            ledger=ledger, comfy_factory=lambda url: ComfyUIBackend(url, partner_key=partner_key),
        )
    if settings.kind == "runcomfy-serverless":
        s = settings.runcomfy_serverless
        credentials.require_runcomfy_tokens()
        if not s.deployment_id:
            raise ComfyRelayError(
                "Choose a RunComfy Serverless deployment (its id; see "
                "`comfyrelay deployments list`)."
            )
        client = RunComfyServerless(credentials.runcomfy_tokens, api_url=s.api_url)
        return RunComfyServerlessBackend(
            client, s.deployment_id, send_workflow=s.send_workflow, poll_interval=s.poll_interval,
            partner_key=partner_key,
        )
    if settings.kind == "comfy-api":
        return comfy_api_backend(settings.comfy_api, credentials)
    c = settings.comfyicu
    credentials.require_comfyicu()
    if not c.workflow_id:
        raise ComfyRelayError(
            "Choose a ComfyICU workflow id (open a run on comfy.icu and use “View API code”)."
        )
    client_icu = comfyicu.ComfyICU(credentials.comfyicu_api_key, api_url=c.api_url)
    return comfyicu.ComfyICUBackend(
        client_icu, c.workflow_id, accelerator=c.accelerator, files=c.files,
        poll_interval=c.poll_interval,
    )


def comfy_api_backend(
    settings: ComfyApiSettings, credentials: Credentials
) -> comfyapi.ComfyApiBackend:
    """A Comfy API v2 back end. Comfy Cloud needs a key; a local comfy-api-proxy may not."""
    url = settings.api_url.strip() or comfyapi.DEFAULT_API
    if url.rstrip("/") == comfyapi.DEFAULT_API:
        credentials.require_comfy_api()
    client = ComfyApi(url, credentials.comfy_api_key,
                      secrets=(credentials.comfy_org_api_key,))
    return comfyapi.ComfyApiBackend(
        client, partner_key=credentials.comfy_org_api_key, live_events=settings.live_events,
        poll_interval=settings.poll_interval,
    )
