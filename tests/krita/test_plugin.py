"""The plugin in the real Krita against the ComfyUI test server: invert the canvas or the
selection and check the new layer's pixels and place; drive the docker (Run, Cancel, error)."""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path

import pytest

from tests import workflows
from tests.krita.conftest import RunKrita
from tests.krita.test_layers import alpha_box
from tests.paths import WORKFLOWS

W, H = 40, 30
INVERT = str(WORKFLOWS / "invert_api.json")
INVERT_UI = str(WORKFLOWS / "invert_ui.json")  # the same graph as the web UI saves it


def pattern(x: int, y: int) -> tuple[int, int, int, int]:
    """Must match krita_checks.pattern: the canvas's B, G, R, A at (x, y)."""
    return (x * 4) % 256, (y * 4) % 256, (x * 7 + y * 3) % 256, 255


def assert_inverted(pixels: bytes, rect: tuple[int, int, int, int]) -> None:
    """Inside `rect`: the canvas inverted, opaque; outside: nothing. ComfyUI inverts in
    float32 and truncates, so 254 - v is right too (tests/imaging.is_inverse)."""
    assert alpha_box(pixels, W) == rect
    x0, y0, w, h = rect
    for y in range(y0, y0 + h):
        for x in range(x0, x0 + w):
            i = (y * W + x) * 4
            *got, alpha = pixels[i : i + 4]
            want = [255 - v for v in pattern(x, y)[:3]]
            close = all(0 <= v - g <= 1 for g, v in zip(got, want, strict=True))
            assert alpha == 255 and close, (x, y, got, want)


def test_whole_canvas_becomes_an_inverted_layer(run_krita: RunKrita, server) -> None:
    r = run_krita("flow", url=server.url, workflow=INVERT, width=W, height=H)
    assert r["finished"] and r["errors"] == [], r["errors"]
    assert r["events"][0] == "JobStarted" and r["events"][-2:] == ["JobFinished", "RunEnded"]
    assert r["layers"] == ["invert_api", "Background"]
    assert r["kept"] == ["inverted_00001_.png"]  # the result file stays in the output folder
    assert r["bounds"] == [0, 0, W, H]
    assert_inverted(base64.b64decode(r["pixels"]), (0, 0, W, H))
    assert "/pykrita/comfyrelay_krita/vendor/pydantic/" in r["pydantic"]  # the bundled one


def test_selection_region_is_its_bounds_and_a_margin(run_krita: RunKrita, server) -> None:
    """The selection's bounds and 8 px around them (the least margin), within the canvas."""
    sel = (12, 9, 18, 11)
    around = (4, 1, 34, 27)  # x 12-8 .. 30+8, y 9-8 .. 20+8 (the canvas ends at 40, 30)
    r = run_krita("flow", url=server.url, workflow=INVERT, width=W, height=H, selection=sel,
                  region="selection")
    assert r["finished"] and r["errors"] == [], r["errors"]
    assert r["layers"] == ["invert_api", "Background"]
    assert r["bounds"] == list(around)
    assert_inverted(base64.b64decode(r["pixels"]), around)


@pytest.mark.fault
def test_docker_run_adds_a_layer_and_keeps_the_token_out_of_the_kra(
    run_krita: RunKrita, server
) -> None:
    token = "tok-KRA-CHECK"
    r = run_krita("docker", url=server.url, workflow=INVERT, width=W, height=H, token=token)
    assert r["server_status"].startswith("Connected"), r["server_status"]
    assert r["running"] and r["finished"]
    assert r["status"].startswith("Done"), r["status"]
    assert r["progress"] == 1000 and not r["cancel_enabled"]
    assert "JobProgress" in r["events"] and "JobFinished" in r["events"]
    assert r["layers"] == ["invert_api", "Background"]
    assert_inverted(base64.b64decode(r["pixels"]), (0, 0, W, H))
    assert r["stored_url"] == server.url  # kept in Krita's settings
    assert r["stored_token"] == token
    with zipfile.ZipFile(r["kra"]) as kra:
        assert all(token.encode() not in kra.read(name) for name in kra.namelist())


def test_a_result_of_another_size_is_scaled_to_the_canvas_and_said(
    run_krita: RunKrita, server, tmp_path: Path
) -> None:
    """ImageScale makes the inverted canvas 512×512: the layer covers the 40×30 canvas
    exactly, and the status says it was scaled."""
    graph = json.loads(Path(INVERT).read_text())
    graph["9"] = {"class_type": "ImageScale",
                  "inputs": {"image": ["2", 0], "upscale_method": "nearest-exact",
                             "width": 512, "height": 512, "crop": "disabled"}}
    graph["3"]["inputs"]["images"] = ["9", 0]
    workflow = tmp_path / "invert_scaled.json"
    workflow.write_text(json.dumps(graph))
    r = run_krita("docker", url=server.url, workflow=str(workflow), width=W, height=H)
    assert r["finished"], r["status"]
    assert r["status"] == "Done — 1 result. Result 512×512 scaled to the canvas' 40×30."
    assert r["status_style"] == ""  # not an error
    assert r["layers"] == ["invert_scaled", "Background"]
    assert r["bounds"] == [0, 0, W, H]


def test_docker_runs_a_ui_format_workflow_like_its_api_twin(run_krita: RunKrita, server) -> None:
    r = run_krita("docker", url=server.url, workflow=INVERT_UI, width=W, height=H)
    assert r["finished"] and r["status"].startswith("Done"), r["status"]
    assert r["inputs"] == ["3.filename_prefix"]
    assert r["layers"] == ["invert_ui", "Background"]
    assert_inverted(base64.b64decode(r["pixels"]), (0, 0, W, H))


def test_docker_cancel_stops_the_job(run_krita: RunKrita, server) -> None:
    server.node_delay = 1.0
    r = run_krita("docker", url=server.url, workflow=INVERT, width=W, height=H, cancel=True)
    assert r["finished"]
    assert r["events"][-2:] == ["JobCancelled", "RunEnded"], r["events"]
    assert r["status"] == "Cancelled"
    assert r["layers"] == ["Background"]


def test_docker_names_the_failing_node(run_krita: RunKrita, server, tmp_path: Path) -> None:
    failing = tmp_path / "failing_api.json"
    failing.write_text(json.dumps(workflows.failing().graph))
    # Its loader feeds ImageToMask, so it would get the selection: the canvas is picked.
    r = run_krita("docker", url=server.url, workflow=str(failing), width=W, height=H,
                  sources={"1": "canvas"})
    assert r["finished"] and r["events"][-2:] == ["JobFailed", "RunEnded"], r["events"]
    assert "node 4 (ImageToMask)" in r["status"], r["status"]
    assert "color" in r["status_style"]  # shown as an error
    assert r["layers"] == ["Background"]


def test_docker_lists_the_workflow_inputs(run_krita: RunKrita, server) -> None:
    r = run_krita("docker", url=server.url, workflow=INVERT, width=W, height=H)
    assert r["inputs"] == ["3.filename_prefix"]  # the loader's image is the canvas


def test_a_video_result_becomes_a_group_with_a_layer_per_frame(
    run_krita: RunKrita, server, tmp_path: Path
) -> None:
    graph = workflows.invert().graph  # the canvas, inverted, as a one-frame clip
    graph["5"] = {"class_type": "CreateVideo", "inputs": {"images": ["2", 0], "fps": 8.0}}
    graph["3"] = {"class_type": "SaveVideo",
                  "inputs": {"video": ["5", 0], "filename_prefix": "clip", "format": "mp4",
                             "codec": "h264"}}
    clip = tmp_path / "clip_api.json"
    clip.write_text(json.dumps(graph))
    r = run_krita("flow", url=server.url, workflow=str(clip), width=W, height=H)
    assert r["finished"] and r["errors"] == [], r["errors"]
    assert r["layers"] == ["clip_api", "Background"] and r["children"] == ["frame 1"]
    pixels = base64.b64decode(r["pixels"])  # frame 1, through a lossy H.264 file
    want = [255 - v for y in range(H) for x in range(W) for v in pattern(x, y)[:3]]
    got = [v for i in range(0, len(pixels), 4) for v in pixels[i : i + 3]]
    assert sum(abs(a - b) for a, b in zip(got, want, strict=True)) / len(want) < 12
