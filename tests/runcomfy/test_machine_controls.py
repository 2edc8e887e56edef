"""The machine box both hosts show: actions return at once, state reads never block, and the
text says what a user needs (status, time left, cost)."""

from __future__ import annotations

import time

import pytest
from comfyrelay import HostSettings
from comfyrelay.runcomfy import account
from comfyrelay.runcomfy.ledger import Ledger
from comfyrelay.runcomfy.machine import (
    MachineOptions,
    MachineStatus,
    RunComfyMachineBackend,
)
from comfyrelay.runcomfy.machine_controls import MachineActions, status_lines

from tests.hosted import FAST_MACHINE, TOKENS, machine_api, wait_for
from tests.servers.runcomfy import RunComfyTestServer


def test_launch_extend_stop_from_a_ui_thread(rc: RunComfyTestServer) -> None:
    backend = RunComfyMachineBackend(
        machine_api(rc),
        MachineOptions(workflow_version_id="ver-1", duration=600, hourly_price=1.8),
        timing=FAST_MACHINE,
    )
    panel = MachineActions()
    started = time.monotonic()
    panel.launch(backend)
    panel.launch(backend)  # a double click
    assert time.monotonic() - started < 0.1  # the click returns at once
    assert backend.preparing  # hosts grey out Launch meanwhile
    wait_for(lambda: backend.status().status == "Ready" and not backend.preparing)
    assert len(rc.called("POST", "/servers")) == 1
    lines = status_lines(backend.status())
    assert lines[0] == f"{backend.server_id}: Ready (medium)"
    assert "left before RunComfy stops it" in lines[1]

    panel.extend(backend, 30)
    panel.wait(10)
    assert "Extended by 30 min" in panel.message
    assert rc.machines[backend.server_id].estimated_duration == 600 + 1800

    time.sleep(1.1)  # billed time passes; the cost follows the user's hourly price
    assert "about 0.00 so far" in "\n".join(status_lines(backend.status()))
    sid = backend.server_id
    panel.stop(backend)
    panel.wait(10)
    assert panel.message == f"Stopped {sid}; billing has ended."
    assert rc.machines[sid].stopped is not None and Ledger().entries() == []
    assert backend.status().status == "Stopped"
    backend.close()


def test_scan_finds_a_leftover_and_stops_it(rc: RunComfyTestServer) -> None:
    earlier = RunComfyMachineBackend(
        machine_api(rc),
        MachineOptions(workflow_version_id="ver-1", stop_on_close=False, idle_stop=None),
        timing=FAST_MACHINE,
    )
    earlier.ensure_ready()
    sid = earlier.server_id
    earlier.close()  # the app quit without stopping it

    panel = MachineActions()
    server = machine_api(rc)
    panel.scan(server)
    panel.wait(10)
    assert panel.leftovers is not None
    assert [m.machine.server_id for m in panel.leftovers] == [sid]
    assert panel.message == "1 machine(s) still running."
    panel.stop_leftover(sid)  # on the server the scan asked
    panel.wait(10)
    assert panel.leftovers == [] and rc.machines[sid].stopped is not None
    assert Ledger().entries() == []
    panel.close()


def test_a_failed_action_leaves_its_reason_in_the_message(rc: RunComfyTestServer) -> None:
    rc.refused.update(TOKENS)
    panel = MachineActions()
    panel.scan(machine_api(rc))
    panel.wait(10)
    assert "token" in panel.message.lower() and panel.leftovers is None
    assert all(t not in panel.message for t in TOKENS)


def test_status_lines_for_a_panel() -> None:
    assert status_lines(MachineStatus()) == ["No machine yet: Launch, or Run launches one."]
    lines = status_lines(MachineStatus(
        server_id="m-1", status="Ready", server_type="large", time_left=3900,
        billed_seconds=600, cost=0.5, auto_stop_in=240,
    ))
    assert lines == [
        "m-1: Ready (large)",
        "1 h 05 min left before RunComfy stops it",
        "Running for 10 min, about 0.50 so far",
        "Auto-stop in 4 min without jobs",
    ]
    unpriced = status_lines(MachineStatus(server_id="m-1", status="Ready", billed_seconds=60))
    assert "set the hourly price" in unpriced[-1]


def test_host_fields_win_and_empty_ones_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCOMFY_USER_ID", "env-user")
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", "env-token")
    monkeypatch.setenv("COMFYICU_API_KEY", "env-icu")
    creds = HostSettings(rc_token1=" typed-token ", icu_api_key="").credentials()
    assert creds["runcomfy_user_id"] == "env-user"
    assert account.tokens(creds) == ("typed-token",)
    assert creds["comfyicu_api_key"] == "env-icu"
    assert "typed-token" not in repr(creds) and "env-icu" not in repr(creds)
    # The tokens are a pair: a typed Token2 replaces the environment's pair, as before.
    creds = HostSettings(rc_token2="typed-2").credentials()
    assert account.tokens(creds) == ("typed-2",)
    assert creds["runcomfy_user_id"] == "env-user"  # not of the pair: its own fallback
