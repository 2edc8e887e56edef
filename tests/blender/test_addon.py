"""The Blender extension in real bpy 5.0.1 against the ComfyUI test server."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from tests import workflows
from tests.blender.conftest import RunBlender, uploaded
from tests.imaging import gradient_png, inverted_rgba, within_one_level
from tests.paths import WORKFLOWS
from tests.servers.comfy_nodes import SCHEMAS
from tests.servers.comfyui import ComfyTestServer

INVERT = str(WORKFLOWS / "invert_api.json")
INVERT_UI = str(WORKFLOWS / "invert_ui.json")  # the same graph as the web UI saves it
SD15 = str(WORKFLOWS / "sd15_img2img_api.json")  # shown and checked; needs models to run
NOISE = str(WORKFLOWS / "noise_api.json")  # seeded noise: the seed decides the pixels
W, H = 64, 48


def test_install_finds_panel_operators_and_bundled_wheels(run_blender: RunBlender) -> None:
    r = run_blender("install")
    assert r["addon"] == "bl_ext.user_default.comfyrelay"
    assert all(r["classes"].values()), r["classes"]
    assert r["space"] == ["VIEW_3D", "UI", "ComfyRelay"]
    assert r["ops"] == ["check", "run", "cancel", "load_workflow"]
    assert r["prefs_class"] == "ComfyRelayPreferences"  # found through __package__
    assert "/extensions/user_default/comfyrelay/comfyrelay/" in r["core_file"]
    assert "/extensions/.local/lib/python3.11/site-packages/pydantic/" in r["pydantic"]
    assert r["offline_poll"] is False  # online access off: Run is disabled
    assert r["online_poll_no_workflow"] is False  # no workflow yet: disabled, and says why
    assert r["run_tip_no_workflow"] == "Choose a workflow first."


def test_panel_draws_inputs_progress_errors_and_offline_state(
    run_blender: RunBlender, server: ComfyTestServer
) -> None:
    r = run_blender("panel", url=server.url, workflow=INVERT)
    idle = "\n".join(r["idle"])
    # The workflow by its file name (the button's tooltip is the whole path).
    assert "operator:comfyrelay.choose_workflow:invert_api.json" in idle
    assert "prop:source:Input" in idle  # the loader's source, by its title
    assert "prop:string_value:File name prefix" in idle  # labels in words
    assert "template_ID:image:" in idle  # source: an existing image
    assert "operator:comfyrelay.run:" in idle and "operator:comfyrelay.cancel:" in idle
    assert "label::Ready" in idle and "progress:" not in idle  # nothing ran: no bar
    closed = "\n".join(r["closed"])
    assert "label::Connected to ComfyUI 0.3.64 — ready." in closed
    assert "prop:show_details:" in closed and "job routes" not in closed  # folded
    failed = "\n".join(r["failed"])
    assert "label::This server lacks job routes /api/jobs" in failed  # unfolded
    assert "progress::" in failed  # a run started: its bar
    assert "label::Failed in node 4 (ImageToMask)" in failed
    assert "label::Invert (2) step 2/4" in failed
    assert sum("x" * 20 in line for line in r["failed"]) >= 2  # a long error wraps
    offline = "\n".join(r["offline"])
    assert "Online access is off" in offline and "operator:comfyrelay.check:" not in offline
    assert any("prop:token" in c for c in r["prefs"])


@pytest.mark.fault
def test_render_is_inverted_and_token_stays_out_of_the_blend(
    run_blender: RunBlender, server: ComfyTestServer
) -> None:
    token = "tok-BLEND-CHECK"
    server.token = token
    r = run_blender("invert", url=server.url, workflow=INVERT, token=token)
    assert r["run_error"] == "" and r["error"] == "", (r["run_error"], r["error"])
    assert r["status"].startswith("Done"), r["status"]
    assert r["connection"].startswith("Connected to ComfyUI"), r["connection"]
    assert r["inputs"] == ["1.image", "3.filename_prefix"]
    (sent,) = uploaded(server)
    rendered = Image.open(sent).convert("RGB")
    reference = Image.open(Path(r["output"]) / "reference.png").convert("RGB")
    assert rendered.size == (W, H)
    rgb = rendered.tobytes()
    assert len(set(rgb)) > 10  # a real render, not a blank image
    # What was sent is the Render Result as Blender saves it (same colour management).
    assert rgb == reference.tobytes()
    assert r["size"] == [W, H]
    result = bytes.fromhex(r["result"])
    assert within_one_level(result, inverted_rgba(rgb))  # the imported image is the inverted render
    assert Path(r["filepath"]).parent == Path(r["output"])  # saved in the output folder
    assert r["token_in_blend"] is False
    assert "ComfyRelay Preview" in r["images"]  # the server's live previews were shown


def test_ui_format_workflow_gives_the_same_pixels_as_its_api_twin(
    run_blender: RunBlender, server: ComfyTestServer
) -> None:
    r = run_blender("invert", url=server.url, workflow=INVERT_UI)
    assert r["run_error"] == "" and r["error"] == "", (r["run_error"], r["error"])
    assert r["inputs"] == ["1.image", "3.filename_prefix"]  # listed once converted
    (sent,) = uploaded(server)
    rgb = Image.open(sent).convert("RGB").tobytes()
    assert within_one_level(bytes.fromhex(r["result"]), inverted_rgba(rgb))


def test_material_option_wires_the_texture_and_reruns_update_one_image(
    run_blender: RunBlender, server: ComfyTestServer
) -> None:
    r = run_blender("invert", url=server.url, workflow=INVERT, material=True, runs=2, prefix="mine")
    assert r["run_error"] == "" and r["error"] == "", (r["run_error"], r["error"])
    assert r["texture_image"] == "ComfyRelay Result"
    assert "ComfyRelay Texture.Color->ShaderNodeBsdfPrincipled.Base Color" in r["links"]
    first, second = r["result_paths"]
    assert Path(first).name.startswith("mine_")  # the edited filename_prefix field was sent
    assert first != second  # the second run's file...
    assert r["images"].count("ComfyRelay Result") == 1  # ...went into the same image
    assert not any(name.startswith("ComfyRelay Result.") for name in r["images"])
    # Two Runs apply no settings; one changed preference applies them once.
    assert r["configured"] == 1
    # Another back end: what the runs said belonged to the old one.
    assert r["cleared"]["status"] == "Ready" and not r["cleared"]["progress_shown"]


def test_animation_gives_one_result_per_frame(
    run_blender: RunBlender, server: ComfyTestServer
) -> None:
    frames = 3
    r = run_blender("animation", url=server.url, workflow=INVERT, frames=frames)
    assert r["run_error"] == "" and r["error"] == "", (r["run_error"], r["error"])
    assert r["status"] == f"Done — {frames} of {frames} frames", r["status"]
    assert r["files"] == [f"invert_api_{f:04d}.png" for f in range(1, frames + 1)]
    assert r["sequences"] == [["ComfyRelay invert_api", "invert_api_0001.png"]]
    assert r["texture_frames"] == frames
    assert r["filepath_restored"] and r["format_restored"] == "PNG"
    assert len(uploaded(server)) == frames  # every frame went through the workflow
    assert len(server.prompts) == frames


def test_cancel_stops_the_run_and_blender_stays_usable(
    run_blender: RunBlender, server: ComfyTestServer
) -> None:
    server.node_delay = 2.0
    r = run_blender("cancel", url=server.url, workflow=INVERT, cancel_after=1.0)
    running = r["while_running"]
    assert running["node"] in {"Input (1)", "Invert (2)"}, running
    assert running["step"].startswith("step "), running
    assert 0 < running["progress"] < 1
    state = r["after_cancel"]
    assert state["status"] == "Cancelled", state
    assert not state["busy"] and state["error"] == ""
    assert r["cancel_seconds"] < 10
    assert r["run_poll_after"] is True
    assert server.wait_idle(5)


def test_node_error_names_the_failing_node(
    run_blender: RunBlender, server: ComfyTestServer, tmp_path: Path
) -> None:
    failing = tmp_path / "failing_api.json"
    failing.write_text(json.dumps(workflows.failing().graph))
    r = run_blender("error", url=server.url, workflow=str(failing), other=INVERT)
    state = r["state"]
    assert state["status"] == "Failed", state
    assert state["error_node"] == "node 4 (ImageToMask)", state
    assert "Alpha" in state["error"] and state["progress_shown"]
    assert "node 4" in r["run_error"]  # the operator's report says it too
    assert r["run_poll_after"] is True
    # Another workflow: the failure and the bar were the old one's.
    switched = r["after_switch"]
    assert (switched["status"], switched["error"], switched["error_node"]) == ("Ready", "", "")
    assert not switched["progress_shown"] and switched["run_tip"] == ""
    panel = "\n".join(r["panel_after_switch"])
    assert "Alpha" not in panel and "progress:" not in panel


def test_http_error_is_reported(run_blender: RunBlender, server: ComfyTestServer) -> None:
    server.faults.http_errors = {"/prompt": 500}
    r = run_blender("error", url=server.url, workflow=INVERT)
    state = r["state"]
    assert state["status"] == "Failed" and "500" in state["error"], state
    assert r["run_poll_after"] is True


def test_other_sources(run_blender: RunBlender, server: ComfyTestServer, tmp_path: Path) -> None:
    picture = tmp_path / "picture.png"
    pixels = bytes((x * 5 + y * 11) % 256 for y in range(H) for x in range(W) for _ in range(3))
    Image.frombytes("RGB", (W, H), pixels).save(picture)
    r = run_blender("sources", url=server.url, workflow=INVERT, image=str(picture))
    # bpy has no OpenGL context: the viewport source fails with Blender's reason, nothing sent.
    assert "Viewport render failed" in r["viewport_error"], r["viewport_error"]
    assert "background mode" in r["viewport_state"]["error"]
    assert not r["viewport_state"]["busy"]
    # An untouched image file is sent as it is, byte for byte.
    assert r["image_error"] == "", r["image_error"]
    (sent,) = uploaded(server)
    assert sent.read_bytes() == picture.read_bytes()
    assert within_one_level(bytes.fromhex(r["result"]), inverted_rgba(pixels))


def test_disable_and_remove_cleanly(run_blender: RunBlender) -> None:
    r = run_blender("remove")
    assert r["enabled_after_disable"] is False
    assert r["registered_after_disable"] is False
    assert r["scene_prop_after"] is False
    assert r["left"] == []
    assert r["wheels_before"] == ["pydantic_core"]
    assert r["wheels_after"] == []


def test_zips_pass_blenders_extension_validation(extension_zip: Path) -> None:
    """What `blender --command extension validate` runs: Blender's own blender_ext.py."""
    import subprocess
    import sys

    from tests.blender.conftest import SITE

    cli = next(SITE.glob("bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    proc = subprocess.run(
        [sys.executable, str(cli), "validate", str(extension_zip)], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "Success" in proc.stdout, proc.stdout + proc.stderr
    with zipfile.ZipFile(extension_zip) as zf:
        manifest = zf.read("blender_manifest.toml").decode()
        names = zf.namelist()
    assert 'platforms = ["linux-x64"]' in manifest
    assert 'blender_version_min = "4.2.13"' in manifest
    wheels = [n for n in names if n.startswith("wheels/")]
    for python in ("cp311", "cp313"):  # Blender 4.2-5.0, 5.1-5.2
        assert any("pydantic_core" in w and python in w and "x86_64" in w for w in wheels)
    assert all(f'"./{w}"' in manifest for w in wheels)
    assert "comfyrelay/__init__.py" in names


def test_fields_typed_from_the_server_refusal_and_app_view_kept(
    run_blender: RunBlender, server: ComfyTestServer, tmp_path: Path
) -> None:
    config = str(tmp_path / "config")
    app = [["6.text", "Scene"], ["3.seed", "Seed"], ["3.steps", "Steps"]]
    r = run_blender("typed", url=server.url, workflow=SD15, config=config, app=app,
                    other_workflow=INVERT)
    samplers = SCHEMAS["KSampler"]["input"]["required"]["sampler_name"]  # what it serves
    assert r["sampler_field"] == "choice"  # a dropdown of the server's samplers
    assert r["sampler_choices"] == samplers[0] and "euler" in r["sampler_choices"]
    assert r["steps_range"] == [1, 10000]
    assert "prop:choice:Sampler" in r["panel"]  # in words
    # The default app: what people change, in words, read from the graph.
    assert r["default_app"] == [
        ["6.text", "Prompt"], ["7.text", "Negative prompt"], ["3.seed", "Seed"],
        ["3.steps", "Steps"], ["3.cfg", "CFG"], ["3.denoise", "Strength"],
        ["3.sampler_name", "Sampler"], ["3.scheduler", "Scheduler"],
        ["4.ckpt_name", "Checkpoint"]]
    # The test server has no checkpoint: named at once, and Run waits.
    flagged = r["flagged"]
    assert flagged["status"].startswith(
        "1 input needs attention: Checkpoint — the server has no checkpoints"), flagged
    assert flagged["run_tip"] == flagged["status"]
    assert r["twice_flagged"]["status"].startswith("2 inputs need attention: ")
    assert "Steps — 0 is below the minimum 1" in r["twice_flagged"]["status"]
    assert "Steps — 0 is below the minimum 1" in r["refused"], r["refused"]  # poll's reason
    assert server.prompts == []  # refused before anything was queued
    labels = [c for c in r["app_panel"] if c.split(":")[-1] in ("Scene", "Seed", "Steps")]
    assert [c.split(":")[-1] for c in labels] == ["Scene", "Steps", "Seed"], labels

    # Redraws poll Run: the view only, never the preferences or the credentials file.
    assert r["poll_configured"] == 0 and r["polls"] == [False] * 5
    # The session follows the scene the panel shows: back to this scene's workflow.
    followed = r["followed"]
    assert followed["away"] == INVERT and followed["back"] == SD15
    assert followed["status"].startswith("2 inputs need attention: "), followed

    restored = run_blender("app_restored", url=server.url, workflow=SD15, config=config)
    assert restored["app"] == [["6.text", "Scene"], ["3.steps", "Steps"], ["3.seed", "Seed"]]
    assert restored["reset"] == r["default_app"]  # Reset to Default: the default app again
    # The file browser keeps a "//"-relative path, as the path field did: .blends travel.
    assert restored["relative"].startswith("//") and restored["absolute"] == SD15
    assert (restored["cleared_path"], restored["cleared_inputs"]) == ("", 0)  # the ×
    assert restored["cleared"]["status"] == "No workflow"


def test_history_survives_the_blend_and_run_again_reproduces_the_result(
    run_blender: RunBlender, server: ComfyTestServer, tmp_path: Path
) -> None:
    image = tmp_path / "source.png"
    image.write_bytes(gradient_png(W, H))
    config = str(tmp_path / "config")
    first = run_blender("history", url=server.url, workflow=NOISE, config=config,
                        image=str(image))
    assert first["run_error"] == "", first["run_error"]
    (run,) = first["runs"]
    assert run["seed"] == first["field_seed"]  # the random seed that was used
    assert run["backend"] == "comfyui" and run["seconds"] > 0
    assert run["bindings"]["values"]["2.strength"] == 0.5
    again = run_blender("rerun", url=server.url, workflow=NOISE, config=config,
                        blend=first["blend"])
    # Run Again follows the session's rule (can_rerun) and says why it cannot start.
    assert "A run is in progress" in again["refused"] and "poll()" not in again["refused"]
    assert len(again["runs"]) == 2 and again["field_seed"] == run["seed"]
    redone = again["runs"][1]
    assert redone["seed"] == run["seed"]
    (before,), (after,) = run["outputs"], redone["outputs"]
    assert before != after  # a new file, with the same pixels
    assert Image.open(before).tobytes() == Image.open(after).tobytes()


def test_an_animation_goes_as_one_video_and_comes_back_as_a_movie_clip(
    run_blender: RunBlender, server: ComfyTestServer, tmp_path: Path
) -> None:
    video_workflow = tmp_path / "video_invert_api.json"
    video_workflow.write_text(json.dumps(workflows.video_invert().graph))
    r = run_blender("video", url=server.url, workflow=str(video_workflow), frames=3)
    assert r["run_error"] == "" and r["error"] == "", (r["run_error"], r["error"])
    assert r["status"] == "Done — 1 result", r["status"]
    sent = [p.name for p in server.input_dir.iterdir()]
    assert len(sent) == 1 and sent[0].endswith(".mp4"), sent  # one clip, not three frames
    (clip,) = r["clips"]
    assert clip["file"].endswith(".mp4") and Path(r["output"]) in Path(clip["file"]).parents
    assert clip["frames"] == 3  # the inverted range, frame for frame
    assert r["sequences"] == []
