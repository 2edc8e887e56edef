"""The add-on on hosted back ends: a RunComfy machine (leftovers found and stopped, Launch,
Run, Stop, with the ledger right and the token kept out of the .blend), RunComfy Serverless
as RunComfy's own clients see it (a failure, a LoRA-style result, a cancel that may still be
billed), the Comfy API through the official comfy-api-proxy, and a kind the test suite
registers itself."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from comfyrelay.net import ratelimit
from comfyrelay.runcomfy.api import RunComfyServer
from comfyrelay.runcomfy.ledger import Ledger
from PIL import Image

from tests import extra_kind
from tests.blender.conftest import RunBlender, uploaded
from tests.imaging import inverted_rgba, within_one_level
from tests.paths import WORKFLOWS
from tests.servers.api_proxy import proxy
from tests.servers.comfyui import ComfyTestServer
from tests.servers.runcomfy import RunComfyTestServer

TOKEN = "rc-BLENDER-token-SECRET"
INVERT = str(WORKFLOWS / "invert_api.json")
EXTRA_KIND = Path(extra_kind.__file__)


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[RunComfyTestServer]:
    with ComfyTestServer(tmp_path / "machine") as comfy, RunComfyTestServer(
        comfy.url, tokens=(TOKEN,)
    ) as rc:
        yield rc


def test_machine_from_the_panel(
    run_blender: RunBlender, machines: RunComfyTestServer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(ratelimit.DEFAULTS, "runcomfy", (200.0, 50))
    monkeypatch.setattr(ratelimit, "_buckets", {})
    earlier = RunComfyServer(machines.user_id, (TOKEN,), api_url=machines.url)
    leftover = earlier.launch("ver-1", "medium", 600).server_id  # an earlier session's
    earlier.close()
    config = tmp_path / "config"
    r = run_blender("machine", url="", workflow=INVERT, config=str(config),
                    user_id=machines.user_id, rc_token=TOKEN, rc_url=machines.url)

    assert r["leftovers"] == [leftover]
    assert any("label:" in c and leftover in c for c in r["leftover_panel"])
    assert machines.machines[leftover].stopped is not None
    assert r["leftover_message"].startswith(f"Stopped {leftover}")

    sid = r["launched"]
    assert sid and sid != leftover and len(machines.called("POST", "/servers")) == 2
    ready = "\n".join(r["ready_panel"])
    assert f"{sid}: Ready (medium)" in ready and "left before RunComfy stops it" in ready
    assert "so far" in ready  # the cost while it runs
    assert "operator:comfyrelay.backend_action:Stop" in ready

    assert r["run_error"] == "" and r["error"] == "", (r["run_error"], r["error"])
    assert r["same_backend"]  # the run went through the launched machine, not a new one
    rgb = Image.open(Path(r["output"]) / "reference.png").convert("RGB").tobytes()
    assert within_one_level(bytes.fromhex(r["result"]), inverted_rgba(rgb))

    assert r["stopped_status"] == "Stopped"
    assert machines.machines[sid].stopped is not None
    assert r["ledger_running"] == [sid]  # known before it could leak
    assert Ledger(config / "machines.json").entries() == []
    assert r["token_in_blend"] is False


def labels(panel: list[str]) -> str:
    """The panel's label texts as one line, as the eye reads wrapped lines."""
    return " ".join(line.split(":", 2)[2] for line in panel if line.startswith("label:"))


def test_serverless_failure_lora_result_and_cancel_in_the_panel(
    run_blender: RunBlender, tmp_path: Path
) -> None:
    graph = json.loads(Path(INVERT).read_text())
    with RunComfyTestServer(tokens=(TOKEN,), run_time=3.0) as rc:
        rc.cancel_delay = None  # RunComfy only notes the cancel: the job runs on
        deployment = rc.add_deployment(graph, lora=True)  # files come under `output`
        prefs = {"backend": "runcomfy-serverless", "rc_user_id": rc.user_id,
                 "rc_token1": TOKEN, "rc_api_url": rc.url, "rc_deployment": deployment}
        r = run_blender("serverless", url="", workflow=INVERT, prefs=prefs)
        submits = rc.called("POST", "/inference")
        stored = [data for data, _ in rc.files.values()]

    # Failed at RunComfy's status endpoint: shown at once with RunComfy's words and node.
    assert r["failed_seconds"] < 10  # not the job timeout (an hour)
    failed = r["failed"]
    assert "input filename_prefix made the node fail" in failed["error"], failed
    assert failed["error_node"] == "node 3 (SaveImage)"
    assert "filename_prefix made the node fail" in labels(r["failed_panel"])

    # A LoRA deployment's `output`: the file is saved and imported.
    assert r["run_error"] == "" and r["done"]["status"].startswith("Done"), r["done"]
    sent = submits[1].body["overrides"]["1"]["inputs"]["image"]
    rendered = Image.open(io.BytesIO(base64.b64decode(sent.split(",", 1)[1])))
    reference = Image.open(Path(r["output"]) / "reference.png")
    assert rendered.convert("RGB").tobytes() == reference.convert("RGB").tobytes()
    server_png = Image.open(io.BytesIO(stored[0])).convert("RGBA")  # the first that succeeded
    assert r["size"] == list(server_png.size)
    assert within_one_level(bytes.fromhex(r["result"]), server_png.tobytes())
    assert Path(r["filepath"]).parent == Path(r["output"])

    # RunComfy answered cancellation_requested: the panel says the job may still be billed.
    cancelled = r["cancelled"]
    assert cancelled["status"] == (
        "Cancelled — Cancel requested on RunComfy; the job may still finish and be billed."
    ), cancelled
    assert "progress::Cancelled — Cancel requested on RunComfy" in r["cancelled_panel"]
    assert "the job may still finish and be billed" in labels(r["cancelled_panel"])


def test_comfy_api_back_end_through_the_official_proxy(
    run_blender: RunBlender, tmp_path: Path
) -> None:
    key = "comfy-api-BLENDER-key"
    with ComfyTestServer(tmp_path / "server", node_delay=0.0) as comfy, \
            proxy(comfy.url, tmp_path / "proxy", token=key) as url:
        prefs = {"backend": "comfy-api", "ca_api_url": url, "ca_api_key": key}
        r = run_blender("invert", url="", workflow=INVERT, prefs=prefs, token=key)
        (sent,) = uploaded(comfy)
        rgb = Image.open(sent).convert("RGB").tobytes()
    assert r["run_error"] == "" and r["error"] == "", (r["run_error"], r["error"])
    assert r["status"].startswith("Done"), r["status"]
    assert within_one_level(bytes.fromhex(r["result"]), inverted_rgba(rgb))
    assert r["token_in_blend"] is False


def test_a_kind_registered_before_enabling_shows_in_the_preferences(
    run_blender: RunBlender,
) -> None:
    """A back-end kind registered into the add-on's own core (no add-on file edited): its
    choice and its field in the preferences, drawn when chosen, and the back end built."""
    r = run_blender("extra_kind", extra_kind=str(EXTRA_KIND))
    assert extra_kind.NAME in r["choices"] and "comfyui" in r["choices"]
    assert r["field"] == "blender" and r["field_label"] == "Prefix"
    assert f"prop:{extra_kind.FIELD}:" in r["prefs_drawn"]
    assert "prop:url:" not in r["prefs_drawn"]  # only the chosen kind's fields
    assert r["backend"] == "Echo back end (blender)"
