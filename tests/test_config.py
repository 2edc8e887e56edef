"""Credentials (environment or a 0600 file, never shown) and the machine ledger."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from comfyrelay import config
from comfyrelay.errors import ComfyRelayError
from comfyrelay.kinds import BackendSettings, load_credentials, make_backend
from comfyrelay.runcomfy import account

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
