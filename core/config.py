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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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
class Credential:
    """One secret a back-end kind reads: from `env`, else `name` in the credentials file.
    Kinds that share an account share the Credential (RunComfy's tokens)."""

    name: str  # its key in credentials.json
    env: str  # its environment variable
    # Credentials of one group are one unit where a host's fields are typed: typing any of
    # them replaces the whole group (RunComfy's Token1 and Token2 are a pair).
    group: str = ""


class Credentials:
    """Secrets by Credential.name; repr() never shows them. Immutable, so any thread may
    read it."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = {k: v.strip() for k, v in (values or {}).items() if v and v.strip()}

    def __getitem__(self, name: str) -> str:
        """The secret, or "" when it is not set."""
        return self._values.get(name, "")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Credentials) and other._values == self._values

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values.items())))

    def __repr__(self) -> str:
        return f"Credentials({sorted(self._values)})"  # names only

    def of(self, credentials: Iterable[Credential]) -> tuple[str, ...]:
        """The values of these credentials, in order ("" for unset)."""
        return tuple(self[c.name] for c in credentials)

    def secrets(self) -> list[str]:
        """Every secret, so tests and log filters can check none leaked."""
        return list(self._values.values())

    def overridden(self, typed: Mapping[str, str],
                   specs: Iterable[Credential] = ()) -> Credentials:
        """These credentials with the non-empty `typed` ones (a host's fields) replacing
        theirs; where any credential of a group (`specs` say which) is typed, the group's
        others are what was typed too, empty or not."""
        values = {**self._values, **{k: v for k, v in typed.items() if v.strip()}}
        groups = {c.name: c.group for c in specs if c.group}
        typed_groups = {groups[k] for k, v in typed.items() if v.strip() and k in groups}
        for name, group in groups.items():
            if group in typed_groups:
                values[name] = typed.get(name, "")
        return Credentials(values)


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    return config_dir(env) / CREDENTIALS_FILE


def read_credentials(
    wanted: Iterable[Credential], env: Mapping[str, str] | None = None
) -> Credentials:
    """Each wanted credential from the environment, else from the credentials file."""
    env = os.environ if env is None else env
    stored = _read_file(credentials_path(env))
    return Credentials({
        c.name: (env.get(c.env) or str(stored.get(c.name) or "")).strip() for c in wanted
    })


def require(credentials: Credentials, needed: Iterable[Credential], what: str,
            where_to_get: str = "") -> None:
    """Raise, saying where to put them, when any of the `needed` credentials is missing."""
    missing = [c for c in needed if not credentials[c.name]]
    if not missing:
        return
    envs = " and ".join(c.env for c in missing)
    keys = " and ".join(c.name for c in missing)
    raise ComfyRelayError(
        f"{what} missing. Set {envs} in the environment, or put {keys} in "
        f"{credentials_path()}" + (f". {where_to_get}" if where_to_get else ".")
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
