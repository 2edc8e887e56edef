"""A RunComfy account as both RunComfy kinds (machines, Serverless) read it: its credentials,
the host fields that type them, and the API they share."""

from __future__ import annotations

from typing import Any

from ..config import Credential, Credentials, require
from ..jobs.backend_kind import Setting
from .api import DEFAULT_API, RunComfyServer

USER_ID = Credential("runcomfy_user_id", "RUNCOMFY_USER_ID")
TOKEN1 = Credential("runcomfy_api_token", "RUNCOMFY_API_TOKEN", group="runcomfy-tokens")
# Used when Token1 fails, or alone; typed in a host, the two replace the stored pair together.
TOKEN2 = Credential("runcomfy_api_token2", "RUNCOMFY_API_TOKEN2", group="runcomfy-tokens")
FROM_ENV = "empty: from the environment or credentials.json"
PROFILE = "Both are on your RunComfy profile page."

FIELDS = (
    Setting("rc_user_id", "User id", hint=f"empty: {USER_ID.env}", credential=USER_ID.name),
    Setting("rc_token1", "Token1", hint=FROM_ENV, credential=TOKEN1.name),
    Setting("rc_token2", "Token2", hint="optional", credential=TOKEN2.name),
)
API_URL = Setting("rc_api_url", "API URL (advanced)", hint=DEFAULT_API)


def api_url(values: Any) -> str:
    """The API URL a host field or an option gives; empty: RunComfy's own."""
    return str(values or "").strip() or DEFAULT_API


def tokens(credentials: Credentials) -> tuple[str, ...]:
    """Token1, then Token2, those that are set."""
    return tuple(t for t in credentials.of((TOKEN1, TOKEN2)) if t)


def require_tokens(credentials: Credentials) -> None:
    """Serverless needs a token (either) but not the user id."""
    if not tokens(credentials):
        require(credentials, (TOKEN1,), "The RunComfy API token is",
                "Token1 is on your RunComfy profile page.")


def machine_api(credentials: Credentials, url: str = "") -> RunComfyServer:
    """The RunComfy machine API for these credentials; raises if they are incomplete."""
    needed = (USER_ID,) if tokens(credentials) else (USER_ID, TOKEN1)
    require(credentials, needed, "RunComfy credentials are", PROFILE)
    return RunComfyServer(credentials[USER_ID.name], tokens(credentials), api_url=api_url(url))
