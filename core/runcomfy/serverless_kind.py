"""The RunComfy Serverless kind: jobs sent to a deployment's queue, which scales its own
instances."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..comfyui.kind import PARTNER_KEY
from ..config import Credentials
from ..errors import ComfyRelayError
from ..jobs.backend_api import Backend
from ..jobs.backend_kind import API_URL_OPTION, BackendKind, CliOption, KindSettings, Setting
from . import account
from .serverless import RunComfyServerless, RunComfyServerlessBackend


class ServerlessSettings(KindSettings):
    api_url: str = account.DEFAULT_API
    deployment_id: str = ""
    send_workflow: bool = False  # send the whole graph instead of overrides
    poll_interval: float = 2.0


class ServerlessKind(BackendKind[ServerlessSettings]):
    name = "runcomfy-serverless"
    label = "RunComfy Serverless"
    settings_model = ServerlessSettings
    fields = (*account.FIELDS, Setting("rc_deployment", "Deployment", hint="deployment id"),
              account.API_URL)
    credentials = (account.TOKEN1, account.TOKEN2, PARTNER_KEY)
    cli_options = (
        API_URL_OPTION,
        CliOption("--deployment", "runcomfy-serverless: deployment id"),
        CliOption("--send-workflow", "runcomfy-serverless: send the whole workflow, not "
                  "overrides", default=False, action="store_true"),
    )
    capabilities = RunComfyServerlessBackend.capabilities

    def from_fields(self, values: Mapping[str, Any]) -> ServerlessSettings:
        return ServerlessSettings(api_url=account.api_url(values["rc_api_url"]),
                                  deployment_id=str(values["rc_deployment"]).strip())

    def from_args(self, args: argparse.Namespace) -> ServerlessSettings:
        return ServerlessSettings(api_url=account.api_url(args.api_url),
                                  deployment_id=args.deployment or "",
                                  send_workflow=args.send_workflow)

    def build(self, settings: ServerlessSettings, credentials: Credentials,
              config: Path | None) -> Backend:
        account.require_tokens(credentials)
        if not settings.deployment_id:
            raise ComfyRelayError(
                "Choose a RunComfy Serverless deployment (its id; see "
                "`comfyrelay deployments list`)."
            )
        client = RunComfyServerless(account.tokens(credentials), api_url=settings.api_url)
        return RunComfyServerlessBackend(
            client, settings.deployment_id, send_workflow=settings.send_workflow,
            poll_interval=settings.poll_interval,
            partner_key=credentials[PARTNER_KEY.name] or None,
        )


KIND = ServerlessKind()
