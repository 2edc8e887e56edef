"""Texture from Cameras (comfyrelay.project_texture) in real bpy 5.0.1 against the ComfyUI
test server (a real ComfyUI with COMFYUI_URL): the identity workflow must give back the
texture each object shows, from automatic or selected cameras, sequentially or not."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests import workflows
from tests.blender.conftest import RunBlender
from tests.paths import WORKFLOWS
from tests.servers.comfyui import ComfyTestServer

IDENTITY = str(WORKFLOWS / "identity_api.json")
INVERT = str(WORKFLOWS / "invert_api.json")
REAL_URL = os.environ.get("COMFYUI_URL", "").rstrip("/")


def texturing(run_blender: RunBlender, check: str, **given: Any) -> dict[str, Any]:
    return run_blender(check, script="texturing_checks.py", timeout=600, **given)


def url(server: ComfyTestServer) -> str:
    return REAL_URL or server.url


# The issue asks 99 % of the outside-visible area from six cameras. Suzanne's folds (round
# the ears, under the chin, the eye sockets) each need a camera looking into them; six do
# not reach all of them: 96.4 % here (256-pixel views); the best six of 400 candidate
# directions any search found reach 97.0 %; at 1024-pixel views six give 98.5 % (best found
# 98.7 %). Twelve cameras pass 99 % from 512 pixels on (test_twelve_cameras). So her six-view
# coverage is held to what six cameras give (docs/WIRE.md §6.1).
@pytest.mark.parametrize(("kind", "coverage"), [("suzanne", 0.96), ("cube", 0.99)])
def test_six_automatic_views_give_the_texture_back(
    run_blender: RunBlender, server: ComfyTestServer, kind: str, coverage: float
) -> None:
    r = texturing(run_blender, "identity", url=url(server), workflow=IDENTITY, objects=[kind],
                  cameras=6, size=1024, render=256)
    assert r["error"] == "" and r["views"] == ["done"] * 6, (r["error"], r["lines"])
    (obj,) = r["objects"].values()
    assert obj["coverage"] >= coverage, r["lines"]
    assert obj["psnr"] >= 30, obj
    assert obj["size"] == [1024, 1024] and obj["packed"] and obj["colorspace"] == "sRGB"
    assert ("ShaderNodeTexImage", "Base Color") in [tuple(link) for link in obj["links"]]
    assert r["uv_unchanged"] and r["old_kept"]
    assert r["cameras_left"] == []  # the placed cameras are removed
    assert all(a is not None and a >= 0 for a in r["added"])
    assert any("coverage" in line and "texels filled" in line for line in r["lines"])


def test_twelve_cameras_cover_99_percent(run_blender: RunBlender,
                                        server: ComfyTestServer) -> None:
    """Twelve 512-pixel views cover 99.2 % of Suzanne's outside-visible area."""
    r = texturing(run_blender, "identity", url=url(server), workflow=IDENTITY,
                  objects=["suzanne"], cameras=12, size=1024, render=512)
    assert r["error"] == "" and r["views"] == ["done"] * 12, (r["error"], r["lines"])
    (obj,) = r["objects"].values()
    assert obj["coverage"] >= 0.99 and obj["psnr"] >= 30, obj


def test_a_small_object_is_not_clipped_away(run_blender: RunBlender,
                                           server: ComfyTestServer) -> None:
    """A 2.3 cm cube (radius 0.02): its automatic cameras, 3.1 radii away, are nearer than
    Blender's default 0.1 m Clip Start; they get a clip range that keeps it."""
    r = texturing(run_blender, "identity", url=server.url, workflow=IDENTITY, objects=["cube"],
                  object_size=0.023, cameras=6, size=256, render=128)
    assert r["error"] == "" and r["views"] == ["done"] * 6, (r["error"], r["lines"])
    (obj,) = r["objects"].values()
    assert obj["coverage"] >= 0.99 and obj["psnr"] >= 30, obj


def test_two_objects_side_by_side(run_blender: RunBlender, server: ComfyTestServer) -> None:
    r = texturing(run_blender, "identity", url=url(server), workflow=IDENTITY,
                  objects=["suzanne", "cube"], cameras=6, size=512, render=256)
    assert r["error"] == "" and r["views"] == ["done"] * 6, (r["error"], r["lines"])
    assert len(r["objects"]) == 2 and r["uv_unchanged"]
    for obj in r["objects"].values():  # each smaller in the frame: a softer copy
        assert obj["coverage"] >= 0.8 and obj["psnr"] >= 27, obj


def test_projected_so_far_shows_the_texture_as_a_render_of_it_would(
    run_blender: RunBlender, server: ComfyTestServer
) -> None:
    r = texturing(run_blender, "projected", url=server.url, workflow=IDENTITY)
    assert r["error"] == "", r["error"]
    assert r["pixels"] > 3000 and r["psnr"] >= 30, r
    assert r["uncovered"] < 0.02, r  # six views painted nearly all it sees


def test_a_hidden_part_takes_no_colour_of_what_hides_it(
    run_blender: RunBlender, server: ComfyTestServer
) -> None:
    r = texturing(run_blender, "occlusion", url=server.url, workflow=IDENTITY)
    assert r["error"] == "", r["error"]
    assert r["hidden"] > 500, r  # the plane hides a good part of the cube's front
    assert r["hidden_red_max"] < 0.5 and r["hidden_red_mean"] < 0.05, r


def test_sequential_views_paint_only_what_no_earlier_view_painted(
    run_blender: RunBlender, server: ComfyTestServer
) -> None:
    r = texturing(run_blender, "sequential", url=server.url, workflow=INVERT)
    assert r["error"] == "" and r["views"] == ["done"] * 4, (r["error"], r["lines"])
    assert r["renders"] == 0  # Uncovered alone needs no render
    assert [c["old_changed"] for c in r["changes"]] == [0, 0, 0, 0], r["changes"]
    assert all(c["new"] > 0 for c in r["changes"]), r["changes"]
    # Each view's result is its inverted Uncovered mask: black wherever it painted.
    assert r["painted"] > 1000 and r["painted_dark"] > 0.9, r


def test_bad_input_is_refused_and_leaves_the_file_as_it_was(
    run_blender: RunBlender, server: ComfyTestServer, tmp_path: Path
) -> None:
    no_image = tmp_path / "no_image_api.json"
    graph = json.loads((WORKFLOWS / "invert_api.json").read_text())
    graph["3"] = {"class_type": "SaveLatent", "inputs": {"samples": ["1", 0]}}  # no image
    no_image.write_text(json.dumps(graph))
    r = texturing(run_blender, "refusals", url=server.url,
                  workflow=str(WORKFLOWS / "noise_api.json"), no_image_workflow=str(no_image))
    assert "no mesh is selected" in r["no_mesh"], r["no_mesh"]
    assert "'Empty mesh' has no faces" in r["no_faces"] and r["no_faces_clean"], r
    assert "Camera 'Away' sees none of the selected objects" in r["away"], r["away"]
    assert r["away_clean"]
    assert "Camera 'Clipped' cuts the selected objects" in r["clipped"], r["clipped"]
    assert "Clip Start/End" in r["clipped"] and r["clipped_clean"]
    assert "No selected camera sees 'Plane'" in r["unseen"] and r["unseen_clean"], r["unseen"]
    assert "Camera 'Clipped' is panoramic" in r["pano"], r["pano"]
    assert "Select the cameras" in r["none_selected_cameras"], r
    assert "has no image output" in r["no_image"], r["no_image"]
    assert r["clean"] and not r["busy"]  # the seeds too: a refused press advances none
    assert "no room" in r["late"], r["late"]
    assert r["late_clean"] and r["mode"] == "OBJECT", r["late_state"]
    assert not any(server.input_dir.iterdir())  # nothing sent


def test_a_back_end_failing_midway_keeps_the_views_done_as_a_partial_texture(
    run_blender: RunBlender, server: ComfyTestServer
) -> None:
    r = texturing(run_blender, "partial", url=server.url, workflow=IDENTITY,
                  failing_graph=workflows.failing().graph)
    assert r["views"][:2] == ["done", "done"] and r["views"][2] == "failed", r["lines"]
    assert r["texture"].startswith("Partial A Suzanne"), r["texture"]  # kept when cut at 63
    assert r["texture"].endswith("(2 of 4 views)") and r["partial"] == "2 of 4 views", r
    assert r["error"], "the failure is reported"
    assert r["cameras_left"] == []


def test_an_unreadable_result_or_a_removed_object_ends_the_run_with_a_sentence(
    run_blender: RunBlender, server: ComfyTestServer
) -> None:
    r = texturing(run_blender, "failures", url=server.url, workflow=IDENTITY)
    assert "exception" not in r, r.get("exception")
    assert r["views"][:2] == ["done", "failed"], r["lines"]
    assert any("View 2 failed" in line and "cannot read" in line for line in r["lines"]), r
    assert any("Cube: removed or renamed during the run" in line for line in r["lines"]), r
    assert r["texture"].startswith("Partial "), r["texture"]  # Suzanne's first view is kept
    assert r["cameras_left"] == ["Mine"] and r["camera"] == "Mine", r
    assert not r["busy"]
    assert r["again"] == "" and r["again_views"] == ["done"] * 2, r["again"]
    assert r["again_partial"] is None  # complete now


def test_the_view_is_the_saved_image_not_a_preview(
    run_blender: RunBlender, server: ComfyTestServer, tmp_path: Path
) -> None:
    """A ControlNet-like workflow previews what it made of the view (here inverted) beside
    the result it saves (here the view itself): the texture is the saved image (the core's
    rule of results, jobs/outputs.py, leaves the preview out)."""
    graph = json.loads((WORKFLOWS / "identity_api.json").read_text())
    graph = {"0": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
             "3": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}}, **graph}
    previewing = tmp_path / "previewing_api.json"
    previewing.write_text(json.dumps(graph))
    r = texturing(run_blender, "identity", url=server.url, workflow=str(previewing),
                  objects=["cube"], cameras=2, size=256, render=64)
    assert r["error"] == "" and r["views"] == ["done"] * 2, (r["error"], r["lines"])
    (obj,) = r["objects"].values()
    assert obj["psnr"] >= 25, (obj, r["lines"])
    # Only the saved image came back (the preview was left out), so nothing needed saying.
    assert not any("its job gave" in line for line in r["lines"]), r["lines"]


def test_a_result_of_another_size_is_scaled_to_the_view_and_said(
    run_blender: RunBlender, server: ComfyTestServer, tmp_path: Path
) -> None:
    graph = json.loads((WORKFLOWS / "identity_api.json").read_text())
    graph["3"] = {"class_type": "ImageScaleBy",
                  "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact",
                             "scale_by": 2.0}}
    graph["2"]["inputs"]["images"] = ["3", 0]
    bigger = tmp_path / "bigger_api.json"
    bigger.write_text(json.dumps(graph))
    r = texturing(run_blender, "scaled", url=server.url, workflow=str(bigger))
    assert r["error"] == "", r["error"]
    assert any("was 128×128, scaled to the view's 64×64" in line for line in r["lines"]), r
    assert "partial" not in r["texture"] and r["texture"]
    assert r["uv_maps"] == ["UVMap"] and r["mode"] == "OBJECT"  # made by Smart UV Project
    assert any("new UV map 'UVMap'" in line for line in r["lines"]), r["lines"]


def test_views_rendered_as_blender_render_jobs_are_sent_once_done(
    run_blender: RunBlender, server: ComfyTestServer
) -> None:
    r = texturing(run_blender, "ui_render", url=server.url, workflow=IDENTITY)
    assert r["error"] == "" and r["views"] == ["done"] * 3, r
    assert r["calls"] == [["INVOKE_DEFAULT"]] * 3  # started as the UI starts render jobs
    assert r["camera"] == ""  # the scene had none: put back after each view
    assert r["objects"]["Cube"]["psnr"] >= 30, r["objects"]


def test_closing_during_a_render_job_waits_for_it_to_end(
    run_blender: RunBlender, server: ComfyTestServer
) -> None:
    r = texturing(run_blender, "close_mid_render", url=server.url, workflow=IDENTITY)
    assert "exception" not in r, r.get("exception")
    during = r["during"]  # the job still renders from the view's camera, to its file
    assert during["camera"] == "ComfyRelay View 1" and during["path_kept"], r
    assert during["cameras"] == ["ComfyRelay View 1", "ComfyRelay View 2"], r
    assert r["again"] is None  # the timer is done
    assert r["after"] == {"camera": "", "path_back": True, "cameras": []}, r


def test_cancel_stops_between_views_and_keeps_what_is_done(
    run_blender: RunBlender, server: ComfyTestServer
) -> None:
    r = texturing(run_blender, "cancel", url=server.url, workflow=IDENTITY)
    assert r["views"] == ["done", "done", "cancelled", "cancelled"], r["lines"]
    assert r["renders"] == 2 and len(server.prompts) == 2  # nothing after the cancel
    assert r["texture"] == "Partial Suzanne ComfyRelay Texture (2 of 4 views)", r["texture"]
    assert not r["busy"] and r["cameras_left"] == []
    shown = " ".join(r["panel"])
    assert "View 1 (ComfyRelay View 1" in shown and "): done" in shown, shown
    assert "View 3 (ComfyRelay View 3" in shown and "waiting" in shown, shown
