"""The user's config folder and hosted-service credentials (environment or a 0600 file).

Credentials never come from command-line arguments: those show in `ps` and shell history.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ComfyRelayError

log = logging.getLogger(__name__)
APP = "comfyrelay"
CREDENTIALS_FILE = "credentials.json"


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where ComfyRelay keeps its ledger and credentials file on this OS."""
    env = os.environ if env is None else env
    if env.get("COMFYRELAY_CONFIG_DIR"):
        return Path(env["COMFYRELAY_CONFIG_DIR"])
    if sys.platform == "win32":
        base = env.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
        return Path(base) / APP
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP
    return Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config") / APP


@dataclass(frozen=True)
class Credentials:
    """Secrets for the hosted services; repr() never shows them."""

    runcomfy_user_id: str = ""
    runcomfy_tokens: tuple[str, ...] = field(default=(), repr=False)  # Token1, then Token2
    comfyicu_api_key: str = field(default="", repr=False)
    comfyui_token: str = field(default="", repr=False)  # a bearer header for a remote ComfyUI
    comfy_api_key: str = field(default="", repr=False)  # Comfy Cloud / Comfy API v2 key
    # The key partner (API) nodes bill to, sent in a job's extra_data.api_key_comfy_org.
    comfy_org_api_key: str = field(default="", repr=False)

    def secrets(self) -> list[str]:
        """Every secret, so tests and log filters can check none leaked."""
        every = (*self.runcomfy_tokens, self.comfyicu_api_key, self.comfyui_token,
                 self.comfy_api_key, self.comfy_org_api_key)
        return [s for s in every if s]

    def require_runcomfy(self) -> None:
        if not self.runcomfy_user_id or not self.runcomfy_tokens:
            raise ComfyRelayError(
                "RunComfy credentials are missing. Set RUNCOMFY_USER_ID and RUNCOMFY_API_TOKEN "
                "(and RUNCOMFY_API_TOKEN2 if you use Token2) in the environment, or put "
                f"runcomfy_user_id and runcomfy_api_token in {credentials_path()}. Both are on "
                "your RunComfy profile page."
            )

    def require_runcomfy_tokens(self) -> None:
        """Serverless needs a token but not the user id."""
        if not self.runcomfy_tokens:
            raise ComfyRelayError(
                "The RunComfy API token is missing. Set RUNCOMFY_API_TOKEN (Token1 on your "
                f"RunComfy profile) in the environment, or runcomfy_api_token in "
                f"{credentials_path()}."
            )

    def require_comfyicu(self) -> None:
        if not self.comfyicu_api_key:
            raise ComfyRelayError(
                "The ComfyICU API key is missing. Set COMFYICU_API_KEY in the environment, or "
                f"put comfyicu_api_key in {credentials_path()}. Create a key in your ComfyICU "
                "account settings."
            )


    def require_comfy_api(self) -> None:
        if not self.comfy_api_key:
            raise ComfyRelayError(
                "The Comfy API key is missing. Create an API key in your Comfy Cloud account, "
                "then set COMFY_API_KEY in the environment, put comfy_api_key in "
                f"{credentials_path()}, or enter it in the add-on's back-end settings. (A local "
                "comfy-api-proxy started without --token needs no key: set its URL instead.)"
            )


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    return config_dir(env) / CREDENTIALS_FILE


def load_credentials(env: Mapping[str, str] | None = None) -> Credentials:
    """Environment variables first, then the credentials file for whatever they leave out."""
    env = os.environ if env is None else env
    stored = _read_file(credentials_path(env))

    def pick(env_name: str, key: str) -> str:
        return (env.get(env_name) or str(stored.get(key) or "")).strip()

    tokens = (
        pick("RUNCOMFY_API_TOKEN", "runcomfy_api_token"),
        pick("RUNCOMFY_API_TOKEN2", "runcomfy_api_token2"),
    )
    return Credentials(
        runcomfy_user_id=pick("RUNCOMFY_USER_ID", "runcomfy_user_id"),
        runcomfy_tokens=tuple(t for t in tokens if t),
        comfyicu_api_key=pick("COMFYICU_API_KEY", "comfyicu_api_key"),
        comfyui_token=pick("COMFYUI_TOKEN", "comfyui_token"),
        comfy_api_key=pick("COMFY_API_KEY", "comfy_api_key"),
        comfy_org_api_key=pick("COMFY_ORG_API_KEY", "comfy_org_api_key"),
    )


def credentials_with(
    *,
    runcomfy_user_id: str = "",
    runcomfy_tokens: tuple[str, str] = ("", ""),
    comfyicu_api_key: str = "",
    comfyui_token: str = "",
    comfy_api_key: str = "",
    comfy_org_api_key: str = "",
    env: Mapping[str, str] | None = None,
) -> Credentials:
    """What a host's settings hold, falling back field by field to the environment and the
    credentials file (load_credentials) for what the user left empty."""
    base = load_credentials(env)
    tokens = tuple(t.strip() for t in runcomfy_tokens if t.strip())
    return Credentials(
        runcomfy_user_id=runcomfy_user_id.strip() or base.runcomfy_user_id,
        runcomfy_tokens=tokens or base.runcomfy_tokens,
        comfyicu_api_key=comfyicu_api_key.strip() or base.comfyicu_api_key,
        comfyui_token=comfyui_token.strip() or base.comfyui_token,
        comfy_api_key=comfy_api_key.strip() or base.comfy_api_key,
        comfy_org_api_key=comfy_org_api_key.strip() or base.comfy_org_api_key,
    )


def save_credentials(values: Mapping[str, str], env: Mapping[str, str] | None = None) -> Path:
    """Merge `values` (file keys, e.g. runcomfy_api_token) into the file, readable by the
    user only. Hosts call this from their preferences instead of keeping secrets themselves."""
    path = credentials_path(env)
    data = _read_file(path)
    data.update({k: v for k, v in values.items() if v is not None})
    write_private_json(path, data)
    return path


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ComfyRelayError(f"Cannot read {path}: {exc.strerror}.") from None
    if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s is readable by other users; run: chmod 600 %s", path, path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # Not the text itself: it holds secrets.
        raise ComfyRelayError(f"{path} is not valid JSON (line {exc.lineno}).") from None
    if not isinstance(data, dict):
        raise ComfyRelayError(f"{path} must hold a JSON object of settings.")
    return data


def write_private_json(path: Path, data: Any) -> None:
    """Atomically replace `path` with `data`, created with mode 0600 from the start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(OSError):  # Windows ignores POSIX modes
            os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
