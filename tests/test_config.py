"""Credentials (environment or a 0600 file, never shown) and the machine ledger."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from comfyrelay import config
from comfyrelay.comfyicu.icu_backend import ComfyICUBackend
from comfyrelay.comfyui.server_backend import ComfyUIBackend
from comfyrelay.errors import ComfyRelayError
from comfyrelay.kinds import BackendSettings, load_credentials, make_backend
from comfyrelay.runcomfy import account
from comfyrelay.runcomfy.ledger import Ledger, LedgerEntry
from comfyrelay.runcomfy.machine import RunComfyMachineBackend
from comfyrelay.runcomfy.serverless import RunComfyServerlessBackend

from tests.hosted import TOKENS, isolated  # noqa: F401  (isolated: autouse, a private config)


def test_config_dir_per_platform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert config.config_dir({"COMFYRELAY_CONFIG_DIR": "/x"}) == Path("/x")
    monkeypatch.setattr(sys, "platform", "linux")
    assert config.config_dir({"XDG_CONFIG_HOME": "/cfg"}) == Path("/cfg/comfyrelay")
    monkeypatch.setattr(sys, "platform", "win32")
    assert config.config_dir({"APPDATA": "C:/Users/a/AppData/Roaming"}) == Path(
        "C:/Users/a/AppData/Roaming/comfyrelay"
    )
    monkeypatch.setattr(sys, "platform", "darwin")
    assert config.config_dir({}).parts[-3:] == ("Library", "Application Support", "comfyrelay")


def test_environment_wins_over_the_private_file(monkeypatch: pytest.MonkeyPatch) -> None:
    path = config.save_credentials({"runcomfy_user_id": "file-user",
                                    "runcomfy_api_token": "file-token-SECRET",
                                    "comfyicu_api_key": "icu-file-SECRET"})
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    creds = load_credentials()
    assert creds["runcomfy_user_id"] == "file-user"
    assert account.tokens(creds) == ("file-token-SECRET",)
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", TOKENS[0])
    monkeypatch.setenv("RUNCOMFY_API_TOKEN2", TOKENS[1])
    creds = load_credentials()
    assert account.tokens(creds) == TOKENS and creds["comfyicu_api_key"] == "icu-file-SECRET"
    assert all(secret not in repr(creds) for secret in creds.secrets())


def test_missing_credentials_say_where_to_put_them() -> None:
    with pytest.raises(ComfyRelayError, match="RUNCOMFY_USER_ID and RUNCOMFY_API_TOKEN"):
        account.machine_api(load_credentials())
    with pytest.raises(ComfyRelayError, match=r"COMFYICU_API_KEY.*credentials\.json"):
        make_backend(BackendSettings.of("comfyicu", workflow_id="w"), load_credentials())


@pytest.mark.fault
def test_broken_credentials_file_does_not_echo_its_content() -> None:
    path = config.credentials_path()
    path.parent.mkdir(parents=True)
    path.write_text('{"runcomfy_api_token": "half-SECRET', encoding="utf-8")
    with pytest.raises(ComfyRelayError) as caught:
        load_credentials()
    assert "half-SECRET" not in str(caught.value)


def test_ledger_round_trip_time_left_and_atomic_file() -> None:
    ledger = Ledger()
    now = time.time()
    ledger.add(LedgerEntry(server_id="a", launched_at=now, expected_stop=now + 600,
                           workflow_version_id="v", server_type="large"))
    ledger.add(LedgerEntry(server_id="b", launched_at=now))
    ledger.update("a", status="Ready")
    assert [e.server_id for e in ledger.entries()] == ["a", "b"]
    a = ledger.get("a")
    assert a is not None and a.status == "Ready"
    left = a.time_left(now)
    assert left == pytest.approx(600)
    b = ledger.get("b")
    assert b is not None and b.time_left() is None
    ledger.remove("b")
    raw = json.loads(ledger.path.read_text())
    assert [m["server_id"] for m in raw["machines"]] == ["a"]
    assert not any(p.suffix == ".tmp" for p in ledger.path.parent.iterdir())
    assert "token" not in ledger.path.read_text().lower()


def test_damaged_ledger_is_ignored_not_fatal() -> None:
    ledger = Ledger()
    ledger.path.parent.mkdir(parents=True, exist_ok=True)
    ledger.path.write_text("{not json")
    assert ledger.entries() == []


def test_make_backend_builds_every_kind() -> None:
    creds = config.Credentials({"runcomfy_user_id": "user", "runcomfy_api_token": TOKENS[0],
                                "comfyicu_api_key": "icu-key-SECRET"})
    assert isinstance(make_backend(BackendSettings(), creds), ComfyUIBackend)
    built: dict[str, dict[str, Any]] = {
        "runcomfy-machine": {"workflow_version_id": "v", "future_option": 1},
        "runcomfy-serverless": {"deployment_id": "d"},
        "comfyicu": {"workflow_id": "w"},
    }
    backends = {kind: make_backend(BackendSettings.of(kind, **values), creds)
                for kind, values in built.items()}
    assert isinstance(backends["runcomfy-machine"], RunComfyMachineBackend)
    assert isinstance(backends["runcomfy-serverless"], RunComfyServerlessBackend)
    assert isinstance(backends["comfyicu"], ComfyICUBackend)
    with pytest.raises(ComfyRelayError, match="deployment"):
        make_backend(BackendSettings.of("runcomfy-serverless"), creds)
    with pytest.raises(ComfyRelayError, match="Unknown back end 'nope'"):
        make_backend(BackendSettings("nope"), creds)
