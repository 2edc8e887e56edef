"""The docker as an artist meets it in the first minutes, in a full Krita window under
Xvfb (scripts/docker_checks.py): what it says, what it lets one do, and Krita's log."""

from __future__ import annotations

from tests.krita.conftest import RunKrita, safe_asserts
from tests.paths import WORKFLOWS
from tests.servers.comfyui import ComfyTestServer

NOISE = WORKFLOWS / "noise_api.json"


def test_three_runs_leave_no_assertion_in_kritas_log(
    run_gui: RunKrita, server: ComfyTestServer
) -> None:
    r = run_gui("three_runs", script="docker_checks", url=server.url, workflow=str(NOISE))
    assert not r["errors"], r["errors"]
    first, second, third = (stack[0] for stack in r["stacks"])
    assert r["stacks"][-1] == [third, second, first, "Background"]  # each run's on top
    assert safe_asserts(r["log"]) == []  # Krita is not asked to activate what it lacks
