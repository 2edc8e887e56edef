"""Hosted back ends in the real Krita's docker: a RunComfy machine (leftover shown and stopped,
Launch, Ready, Run, Stop, ledger empty, tokens not in the .kra) and ComfyICU's clear refusal
of the canvas, and the Comfy API through the official comfy-api-proxy. The test servers run in
this process; Krita gets its own config folder."""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from comfyrelay.runcomfy.ledger import Ledger
from PIL import Image

from tests.krita.conftest import RunKrita
from tests.krita.test_plugin import INVERT, H, W, assert_inverted
from tests.servers.api_proxy import proxy
from tests.servers.comfyui import ComfyTestServer
from tests.servers.runcomfy import RunComfyTestServer
from tests.servers.runcomfy import TestMachine as Machine  # not a test class

TOKENS = ("rc-token-one-KRITA", "rc-token-two-KRITA")
LEFTOVER = "leftover-machine-1"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return tmp_path / "comfyrelay-config"


@pytest.fixture
def krita_env(config: Path) -> dict[str, str | None]:
    """Krita's ledger and credentials file in a tmp folder; no credentials from this shell."""
    env: dict[str, str | None] = {"COMFYRELAY_CONFIG_DIR": str(config)}
    for name in ("RUNCOMFY_USER_ID", "RUNCOMFY_API_TOKEN", "RUNCOMFY_API_TOKEN2",
                 "COMFYICU_API_KEY", "COMFYUI_TOKEN"):
        env[name] = None
    return env


@pytest.fixture
def rc(tmp_path: Path) -> Iterator[RunComfyTestServer]:
    with (ComfyTestServer(tmp_path / "machine") as comfy,
          RunComfyTestServer(comfy.url, tokens=TOKENS, ready_delay=0.4) as server):
        yield server


def test_docker_launches_runs_and_stops_a_runcomfy_machine(
    run_krita: RunKrita, rc: RunComfyTestServer, krita_env: dict[str, str | None],
    config: Path, tmp_path: Path,
) -> None:
    # A machine an earlier session left running (not in this config's ledger).
    rc.machines[LEFTOVER] = Machine(LEFTOVER, "medium", "ver-1", 3600, time.monotonic() - 5)
    settings = {
        "backend": "runcomfy-machine", "rc_user_id": rc.user_id, "rc_token1": TOKENS[0],
        "rc_token2": TOKENS[1], "rc_api_url": rc.url, "rc_workflow_version": "ver-1",
        "rc_hourly_price": 1.5, "workflow": INVERT, "output_folder": str(tmp_path / "results"),
    }
    r = run_krita("machine_docker", env=krita_env, width=W, height=H, settings=settings)

    # Shown at docker creation, with a Stop that stops it.
    assert r["seen"] and list(r["rows"]) == [LEFTOVER], r["rows"]
    assert "not launched by ComfyRelay" in r["rows"][LEFTOVER]
    assert rc.machines[LEFTOVER].stopped is not None and r["left_after"] == []

    assert r["click_seconds"] < 0.2  # Launch never waits for the network
    assert r["ready"], r["status_ready"]
    assert "left before RunComfy stops it" in r["status_ready"]
    assert r["finished"] and r["status"].startswith("Done"), r["status"]
    assert r["layers"] == ["invert_api", "Background"]
    assert_inverted(base64.b64decode(r["pixels"]), (0, 0, W, H))
    assert "so far" in r["status_after_job"], r["status_after_job"]  # the cost, priced

    assert r["stopped"], r["status_stopped"]
    launched = [sid for sid in rc.machines if sid != LEFTOVER]
    assert launched == [r["server_id"]] and len(rc.called("POST", "/servers")) == 1
    assert rc.machines[r["server_id"]].stopped is not None
    assert Ledger(config / "machines.json").entries() == []
    with zipfile.ZipFile(r["kra"]) as kra:
        for name in kra.namelist():
            data = kra.read(name)
            assert all(token.encode() not in data for token in TOKENS), name


def test_comfyicu_refuses_the_canvas_with_the_cores_reason(
    run_krita: RunKrita, krita_env: dict[str, str | None]
) -> None:
    settings = {
        "backend": "comfyicu", "icu_api_key": "icu-key-KRITA", "icu_workflow": "wf-1",
        "icu_api_url": "http://127.0.0.1:9/api/v1", "workflow": INVERT,
    }
    r = run_krita("docker_run", env=krita_env, width=W, height=H, settings=settings)
    assert r["finished"]
    assert "only downloads input files from public URLs" in r["status"], r["status"]
    assert "color" in r["status_style"]
    assert not r["cancel_enabled"]  # ComfyICU cannot cancel a run
    assert r["preview_hidden"] and r["machine_box_hidden"]
    assert r["layers"] == ["Background"]


def test_serverless_failure_lora_result_and_cancel_in_the_docker(
    run_krita: RunKrita, krita_env: dict[str, str | None], tmp_path: Path
) -> None:
    graph = json.loads(Path(INVERT).read_text())
    with RunComfyTestServer(tokens=TOKENS, run_time=3.0) as rc:
        rc.cancel_delay = None  # RunComfy only notes the cancel: the job runs on
        deployment = rc.add_deployment(graph, lora=True)  # files come under `output`
        settings = {"backend": "runcomfy-serverless", "rc_user_id": rc.user_id,
                    "rc_token1": TOKENS[0], "rc_api_url": rc.url, "rc_deployment": deployment,
                    "workflow": INVERT, "output_folder": str(tmp_path / "results")}
        r = run_krita("serverless_docker", env=krita_env, width=W, height=H,
                      settings=settings)
        (server_png, *_) = [data for data, _ in rc.files.values()]

    # Failed at RunComfy's status endpoint: shown at once, in red, with RunComfy's words.
    assert r["failed_finished"] and r["failed_seconds"] < 10  # not the job timeout (an hour)
    assert "input filename_prefix made the node fail" in r["failed_status"], r["failed_status"]
    assert "node 3 (SaveImage)" in r["failed_status"]
    assert "color" in r["failed_style"]

    # A LoRA deployment's `output`: its file becomes a layer covering the canvas, scaled to
    # it (as any result of another size than its region), which the status says.
    result = Image.open(io.BytesIO(server_png)).convert("RGBA")
    w, h = result.size
    assert r["finished"] and r["status"] == (
        f"Done — 1 result. Result {w}×{h} scaled to the canvas' {W}×{H}."), r["status"]
    assert r["layers"] == ["invert_api", "Background"]
    assert r["bounds"] == [0, 0, W, H]
    canvas = Image.frombytes("RGBA", (W, H), base64.b64decode(r["pixels"]), "raw", "BGRA")
    assert canvas.getpixel((0, 0)) == result.getpixel((0, 0))  # a corner stays its colour

    # RunComfy answered cancellation_requested: the docker says the job may still be billed.
    assert r["sent"] and r["cancel_finished"]
    assert r["cancel_status"] == (
        "Cancelled — Cancel requested on RunComfy; the job may still finish and be billed."
    ), r["cancel_status"]
    assert "color" not in r["cancel_style"]  # not an error
    assert r["layers_after_cancel"] == ["invert_api", "Background"]  # nothing added


def test_comfy_api_back_end_through_the_official_proxy(
    run_krita: RunKrita, krita_env: dict[str, str | None], tmp_path: Path
) -> None:
    key = "comfy-api-KRITA-key"
    with ComfyTestServer(tmp_path / "server", node_delay=0.0) as comfy, \
            proxy(comfy.url, tmp_path / "proxy", token=key) as url:
        settings = {"backend": "comfy-api", "ca_api_key": key, "ca_api_url": url,
                    "workflow": INVERT}
        r = run_krita("docker_run", env=krita_env, width=W, height=H, settings=settings)
    assert r["finished"] and r["status"].startswith("Done"), r["status"]
    assert r["layers"] == ["invert_api", "Background"]
    assert_inverted(base64.b64decode(r["pixels"]), (0, 0, W, H))
    with zipfile.ZipFile(r["kra"]) as kra:
        assert all(key.encode() not in kra.read(name) for name in kra.namelist())
