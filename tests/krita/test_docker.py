"""The docker as an artist meets it in the first minutes, in a full Krita window under
Xvfb (scripts/docker_checks.py): what it says, what it lets one do, and Krita's log."""

from __future__ import annotations

import json
from pathlib import Path

from tests.krita.conftest import RunKrita, safe_asserts
from tests.paths import WORKFLOWS
from tests.servers.comfyui import ComfyTestServer

NOISE = WORKFLOWS / "noise_api.json"
INVERT = WORKFLOWS / "invert_api.json"
IMG2IMG = WORKFLOWS / "sd15_img2img_api.json"


def failing(tmp_path: Path) -> Path:
    """noise_api.json whose save node names a class the server does not have: refused."""
    graph = json.loads(NOISE.read_text())
    node = next(n for n in graph.values() if n["class_type"] == "SaveImage")
    node["class_type"] = "SaveImageNowhere"
    path = tmp_path / "failing_api.json"
    path.write_text(json.dumps(graph))
    return path


def test_three_runs_leave_no_assertion_in_kritas_log(
    run_gui: RunKrita, server: ComfyTestServer
) -> None:
    r = run_gui("three_runs", script="docker_checks", url=server.url, workflow=str(NOISE))
    assert not r["errors"], r["errors"]
    first, second, third = (stack[0] for stack in r["stacks"])
    assert r["stacks"][-1] == [third, second, first, "Background"]  # each run's on top
    assert safe_asserts(r["log"]) == []  # Krita is not asked to activate what it lacks


def test_another_workflow_clears_the_last_runs_error_and_progress(
    run_gui: RunKrita, server: ComfyTestServer, tmp_path: Path
) -> None:
    r = run_gui("switching", script="docker_checks", url=server.url, workflow=str(NOISE),
                failing=str(failing(tmp_path)), other=str(INVERT))
    failed, done = r["failed"], r["done"]
    assert failed["red"] and failed["status"], failed  # the refusal, said in red
    assert done["status"].startswith("Done — 1 result") and done["bar_text"], done
    assert done["bar"] == 1000  # full: the run is over
    for after in (r["after_failed"], r["after_done"]):
        # Another workflow: nothing of the last run is left, the bar empty and quiet.
        assert after["status"] == "Ready" and not after["red"], after
        assert after["bar"] == 0 and not after["bar_text"], after
        assert after["run_enabled"] and after["run_tip"] == ""


def test_run_is_disabled_without_a_workflow_and_with_a_flagged_value(
    run_gui: RunKrita, server: ComfyTestServer
) -> None:
    r = run_gui("run_button", script="docker_checks", url=server.url, workflow=str(IMG2IMG))
    none = r["none"]
    assert not none["run_enabled"] and none["run_tip"] == "Choose a workflow first."
    assert none["status"] == "No workflow" and not none["bar_text"]
    flagged = r["flagged"]  # the test server lists no checkpoint
    assert not flagged["run_enabled"], flagged
    assert flagged["run_tip"].startswith("1 input needs attention: Checkpoint — "), flagged
    assert flagged["status"] == flagged["run_tip"] and flagged["red"]
    assert not r["busy_after_click"] and server.prompts == []


def test_results_folder_default_customize_reset_and_no_workflow(
    run_gui: RunKrita, server: ComfyTestServer, tmp_path: Path
) -> None:
    folder = tmp_path / "results"
    r = run_gui("tools", script="docker_checks", url=server.url, workflow=str(IMG2IMG),
                folder=str(folder), relabel="6.text")
    # The results folder chosen, then Default: the default folder again.
    assert r["chosen_folder"] == str(folder) and r["default_shown"]
    assert r["reset_folder"] == r["default_folder"] and r["stored"] == ""
    assert not r["default_shown_after"]  # nothing to reset any more: the path gets the room
    # A first label edit on the default app renames in place: the editor is not rebuilt
    # under the user's typing (focus kept).
    assert r["default_app"][0] == "Prompt" and not r["reset_enabled_before"]
    assert r["same_editor"] and r["relabelled"][0] == "My prompt"
    # Reset to default: the default app, no longer the user's.
    assert r["after_reset"] == r["default_app"] and r["custom"] is False
    # ×: no workflow, Run disabled and saying why.
    assert r["clear_enabled"] and not r["clear_enabled_after"]
    cleared = r["cleared"]
    assert cleared["status"] == "No workflow" and not cleared["run_enabled"], cleared
    assert r["name"] == "No workflow chosen"
