"""The RunComfy machine kind: a dedicated machine launched (or reused) for the jobs, its
ComfyUI run like any other; the user's hourly price gives the cost."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from ..comfyui.kind import PARTNER_KEY
from ..comfyui.server_backend import ComfyUIBackend
from ..config import Credentials
from ..jobs.backend_api import Backend
from ..jobs.backend_kind import (
    API_URL_OPTION,
    UNKNOWN,
    BackendKind,
    CliOption,
    Controls,
    KindSettings,
    Price,
    Setting,
)
from . import account
from .api import SERVER_TYPES
from .ledger import Ledger
from .machine import MachineOptions, RunComfyMachineBackend
from .machine_controls import MachineControls

OPTIONS = {f.name for f in dataclasses.fields(MachineOptions)}


class MachineSettings(KindSettings):
    api_url: str = account.DEFAULT_API
    server_id: str = ""  # reuse this running machine instead of launching
    workflow_version_id: str = ""
    server_type: str = "medium"
    duration: int = Field(default=3600, ge=60)  # first estimated_duration, seconds
    idle_stop: float | None = Field(default=900.0, ge=0)  # seconds without jobs; None: never
    extend_margin: float = 600.0
    extend_step: int = Field(default=1800, ge=60)
    stop_on_close: bool = True
    hourly_price: float | None = None  # the user's price for this server_type
    keep: bool = False  # a pool file's `"keep": true`: leave it running (stop_on_close off)
    own_machine: bool = False  # set by the pool for each of an entry's machines

    def options(self) -> MachineOptions:
        """What the back end launches with (MachineOptions' fields, by name)."""
        values = self.model_dump(include=OPTIONS)
        values["stop_on_close"] = self.stop_on_close and not self.keep
        return MachineOptions(**values)


class MachineKind(BackendKind[MachineSettings]):
    name = "runcomfy-machine"
    label = "RunComfy machine"
    settings_model = MachineSettings
    fields = (
        *account.FIELDS,
        Setting("rc_workflow_version", "Workflow version", hint="workflow version_id"),
        Setting("rc_server_type", "Machine type", "medium",
                choices=tuple((t, t) for t in SERVER_TYPES)),
        Setting("rc_minutes", "Duration (min)", 60, "running time asked for at launch", low=1),
        Setting("rc_idle_minutes", "Idle auto-stop (min)", 15,
                "stop after this long without jobs", special="never"),
        Setting("rc_hourly_price", "Hourly price", 0.0, "your price for this machine type, "
                "to show the cost", special="not set"),
        account.API_URL,
    )
    credentials = (account.USER_ID, account.TOKEN1, account.TOKEN2, PARTNER_KEY)
    cli_options = (
        API_URL_OPTION,
        CliOption("--workflow-version", "runcomfy-machine: version_id to launch"),
        CliOption("--server-id", "runcomfy-machine: reuse this running machine"),
        CliOption("--server-type", "runcomfy-machine: machine type", default="medium",
                  choices=SERVER_TYPES),
        CliOption("--minutes", "runcomfy-machine: running time", default=60, type=int),
        CliOption("--idle-stop", "runcomfy-machine: stop after this long without jobs",
                  default=15.0, type=float, metavar="MINUTES"),
        CliOption("--keep-machine", "runcomfy-machine: leave a machine launched here running "
                  "at the end", default=False, action="store_true"),
    )
    capabilities = RunComfyMachineBackend.capabilities
    # A live back end takes these through tune(): rebuilding it would stop its machine.
    tunable = frozenset({"hourly_price", "idle_stop", "duration"})

    def from_fields(self, values: Mapping[str, Any]) -> MachineSettings:
        idle = int(values["rc_idle_minutes"])
        return MachineSettings(
            api_url=account.api_url(values["rc_api_url"]),
            workflow_version_id=str(values["rc_workflow_version"]).strip(),
            server_type=str(values["rc_server_type"]),
            duration=max(1, int(values["rc_minutes"])) * 60,
            idle_stop=idle * 60.0 if idle > 0 else None,  # 0: never
            hourly_price=float(values["rc_hourly_price"]) or None,  # 0: unknown, no cost
        )

    def from_args(self, args: argparse.Namespace) -> MachineSettings:
        return MachineSettings(
            api_url=account.api_url(args.api_url),
            workflow_version_id=args.workflow_version or "",
            server_id=args.server_id or "",
            server_type=args.server_type,
            duration=args.minutes * 60,
            idle_stop=args.idle_stop * 60,
            stop_on_close=not args.keep_machine,
        )

    def build(self, settings: MachineSettings, credentials: Credentials,
              config: Path | None) -> Backend:
        partner = credentials[PARTNER_KEY.name] or None
        return RunComfyMachineBackend(
            account.machine_api(credentials, settings.api_url), settings.options(),
            server_id=settings.server_id,
            ledger=Ledger.in_folder(config),
            comfy_factory=lambda url: ComfyUIBackend(url, partner_key=partner),
        )

    def price(self, settings: MachineSettings) -> Price:
        if not settings.hourly_price:
            return UNKNOWN
        # RunComfy bills a machine per hour while it runs, from Ready (docs/WIRE.md §2).
        return Price(settings.hourly_price / 3600.0,
                     basis=f"{settings.server_type} machine per hour, your price",
                     while_up=True)

    def tune(self, backend: Backend, settings: MachineSettings) -> None:
        if isinstance(backend, RunComfyMachineBackend):
            backend.tune(hourly_price=settings.hourly_price, idle_stop=settings.idle_stop,
                         duration=settings.duration)

    def pool_workers(self, settings: MachineSettings, slots: int,
                     keep: bool) -> list[tuple[MachineSettings, int]]:
        """A pool entry's `slots` are machines: one worker each, one job in flight on it,
        each launching its own machine when its first job comes (none reuses a machine
        another worker holds). A given server_id is one machine: one worker, its slots."""
        if keep:
            settings = settings.model_copy(update={"keep": True})
        if settings.server_id:
            return [(settings, slots)]
        own = settings.model_copy(update={"own_machine": True})
        return [(own, 1)] * slots

    def controls(self, config: Path | None) -> Controls:
        # Its box offers the look for machines left running also while Serverless (the same
        # RunComfy account) is chosen.
        return MachineControls(self.name, config, frozenset({"runcomfy-serverless"}))


KIND = MachineKind()
