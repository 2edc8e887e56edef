"""The host settings: every kind's fields by their stored keys, text from a host's storage
read as each field's type, earlier versions' values still loading, and the RunComfy token
pair typed as one."""

from __future__ import annotations

import pytest
from comfyrelay import HostSettings
from comfyrelay.runcomfy import account


def test_stored_text_is_read_as_each_fields_type() -> None:
    """Krita keeps text (kritarc): each value comes back as its field's type."""
    settings = HostSettings()
    settings.rc_minutes = "90"
    settings.rc_hourly_price = "1.5"
    assert (settings.rc_minutes, settings.rc_hourly_price) == (90, 1.5)
    with pytest.raises(ValueError):
        settings.rc_minutes = "ninety"
    assert settings.rc_minutes == 90  # unchanged


def test_earlier_versions_values_still_load() -> None:
    old = HostSettings(backend="comfyicu", icu_accelerator="", rc_server_type="gone-type",
                       some_old_field="x")
    assert old.backend_settings().settings.accelerator is None  # "" was "the service's"
    assert old.rc_server_type == "medium"  # a choice this version lacks: the default
    assert HostSettings(backend="a-newer-kind").backend_settings().kind == "comfyui"


def test_the_token_pair_is_typed_as_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", "env-1")
    monkeypatch.setenv("RUNCOMFY_API_TOKEN2", "env-2")
    assert account.tokens(HostSettings().credentials()) == ("env-1", "env-2")
    assert account.tokens(HostSettings(rc_token2="typed-2").credentials()) == ("typed-2",)


def test_token2_alone_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCOMFY_USER_ID", "user")
    monkeypatch.setenv("RUNCOMFY_API_TOKEN2", "only-2")
    creds = HostSettings().credentials()
    account.require_tokens(creds)
    server = account.machine_api(creds)
    assert server._tokens == ["only-2"]
    server.close()
