"""Render passes in real bpy 5.0.1 (Cycles on the CPU, small frames) against the ComfyUI
test server: each loader gets its own source, all made by one render."""

from __future__ import annotations

import json
from pathlib import Path

from comfyrelay import Workflow
from PIL import Image

from tests import workflows
from tests.blender.conftest import RunBlender
from tests.servers.comfyui import ComfyTestServer


def saved(tmp_path: Path, workflow: Workflow) -> str:
    path = tmp_path / f"{workflow.name.replace(' ', '_')}_api.json"
    path.write_text(json.dumps(workflow.graph))
    return str(path)


def sent(server: ComfyTestServer, title: str) -> Image.Image:
    """The file the loader titled `title` was given in the last prompt the server took that
    has it (files are named after their content, so the prompt says which is which)."""
    for body in reversed(server.prompts):
        names = [n["inputs"]["image"] for n in body["prompt"].values()
                 if n.get("_meta", {}).get("title") == title]
        if names:
            return Image.open(server.input_dir / names[0])
    raise AssertionError(f"no prompt had a loader titled {title!r}")


def px(image: Image.Image, x: int, y: int) -> tuple[int, ...]:
    """One pixel's channels (a gray image has one)."""
    value = image.getpixel((x, y))
    return tuple(value) if isinstance(value, tuple) else (int(value or 0),)


def test_depth_is_white_near_black_far_over_the_visible_planes(
    run_blender: RunBlender, server: ComfyTestServer, tmp_path: Path
) -> None:
    r = run_blender("depth", url=server.url, workflow=saved(tmp_path, workflows.passes("Depth")))
    assert r["sources"] == [["Depth", "DEPTH"]]  # the loader's title picks the source
    assert r["run_error"] == "" and r["error"] == "", (r["run_error"], r["error"])
    assert r["renders"] == 1 and r["restored"] is True
    depth = sent(server, "Depth").convert("L")
    near, middle, far = (px(depth, x, 24)[0] for x in (12, 32, 52))  # 10, 12, 14 away
    assert near == 255 and far == 0 and 100 < middle < 155, (near, middle, far)
    assert px(depth, 32, 2) == (0,) and px(depth, 32, 45) == (0,)  # background
    assert len(r["outputs"]) == 1  # the saved depth came back as an image


def test_normals_of_a_sphere_follow_normalbae(
    run_blender: RunBlender, server: ComfyTestServer, tmp_path: Path
) -> None:
    r = run_blender("normal", url=server.url,
                    workflow=saved(tmp_path, workflows.passes("Normal")))
    assert r["sources"] == [["Normal", "NORMAL"]]
    assert r["run_error"] == "" and r["error"] == "", (r["run_error"], r["error"])
    normal = sent(server, "Normal").convert("RGB")
    centre = px(normal, 32, 32)
    assert all(abs(c - e) <= 3 for c, e in zip(centre, (128, 128, 255), strict=True)), centre
    # 0.9 units off centre, 8 px in from each edge: n = ±0.9 along one axis, 0.44 toward us
    left, right = px(normal, 8, 32), px(normal, 55, 32)
    top, bottom = px(normal, 32, 8), px(normal, 32, 55)
    assert left[0] > 225 and right[0] < 30, (left, right)  # red = left
    assert top[1] > 225 and bottom[1] < 30, (top, bottom)  # green = up
    assert all(150 < p[2] < 215 for p in (left, right, top, bottom))  # blue = toward us


def test_normals_can_follow_opengl(
    run_blender: RunBlender, server: ComfyTestServer, tmp_path: Path
) -> None:
    r = run_blender("normal", url=server.url, convention="OPENGL",
                    workflow=saved(tmp_path, workflows.passes("Normal")))
    assert r["run_error"] == "", r["run_error"]
    normal = sent(server, "Normal").convert("RGB")
    left, right = px(normal, 8, 32), px(normal, 55, 32)
    assert left[0] < 30 and right[0] > 225, (left, right)  # red = right


def test_object_mask_is_the_selected_objects_index_pass_silhouette(
    run_blender: RunBlender, server: ComfyTestServer, tmp_path: Path
) -> None:
    r = run_blender("object_mask", url=server.url,
                    workflow=saved(tmp_path, workflows.object_mask()))
    assert r["sources"] == [["Mask", "OBJECT_MASK"]]
    assert r["run_error"] == "" and r["error"] == "", (r["run_error"], r["error"])
    assert r["renders"] == 1 and r["restored"] is True
    mask = sent(server, "Mask").convert("L")
    ours = [int(v > 127) for v in mask.tobytes()]
    reference = r["reference"]
    both = sum(a and b for a, b in zip(ours, reference, strict=True))
    either = sum(a or b for a, b in zip(ours, reference, strict=True))
    assert sum(reference) > 100 and both / either >= 0.98, (both, either)


def test_two_loaders_get_render_and_depth_from_one_render(
    run_blender: RunBlender, server: ComfyTestServer, tmp_path: Path
) -> None:
    r = run_blender("two_loaders", url=server.url,
                    workflow=saved(tmp_path, workflows.passes("Render", "Depth")),
                    preview=saved(tmp_path, workflows.preview_and_save()))
    assert r["sources"] == [["1", "Render", "RENDER_RESULT"], ["3", "Depth", "DEPTH"]]
    assert r["run_error"] == "" and r["two"]["error"] == "", (r["run_error"], r["two"])
    assert r["renders"] == 1 and r["restored"] is True
    render, depth = sent(server, "Render"), sent(server, "Depth")  # both reached the server
    assert render.mode == "RGBA" or render.mode == "RGB"
    assert depth.convert("RGB").tobytes() != render.convert("RGB").tobytes()
    assert r["two"]["status"] == "Done — 2 results", r["two"]["status"]
    assert len(r["two"]["outputs"]) == 2
    assert r["after_reload"] == ["RENDER", "NORMAL"]  # kept when the workflow is reread
    # A PreviewImage of the input is not a result: only the SaveImage comes back.
    assert r["preview_error"] == "" and r["preview"]["error"] == "", r["preview"]
    (shown,) = r["preview"]["outputs"]
    assert shown.startswith("ComfyRelay Result"), shown
    # Picking the preview node brings its file back instead, and the pick is kept.
    assert r["output_nodes"] == [["2", "PreviewImage"], ["4", "SaveImage"]]
    assert r["still_picked"] == ["2"] and r["picked_error"] == "", r["picked"]
    assert r["picked"]["status"] == "Done — 1 result" and len(r["picked"]["outputs"]) == 1


def test_bad_choices_are_refused_before_anything_is_queued(
    run_blender: RunBlender, server: ComfyTestServer, tmp_path: Path
) -> None:
    r = run_blender("refusals", url=server.url,
                    workflow=saved(tmp_path, workflows.passes("Render", "Depth")),
                    mask_workflow=saved(tmp_path, workflows.render_and_mask()))
    assert "Loader 1 (Render) has two sources" in r["two_sources"], r["two_sources"]
    assert "'BLENDER_WORKBENCH'" in r["engine"] and "Cycles or EEVEE" in r["engine"], r["engine"]
    assert "is 64×48" in r["mask_size"] and "32×32" in r["mask_size"], r["mask_size"]
    assert r["renders"] == 0
    assert not any(server.input_dir.iterdir())  # nothing sent


def test_scene_is_restored_after_a_failed_and_a_cancelled_render(
    run_blender: RunBlender, server: ComfyTestServer, tmp_path: Path
) -> None:
    r = run_blender("restore", url=server.url,
                    workflow=saved(tmp_path, workflows.passes("Render", "Depth")))
    assert "the render failed" in r["failed_error"] and r["failed_restored"] is True, r
    assert r["cancel_run_error"] == "" and r["changed_while_rendering"] is True
    assert r["cancel_restored"] is True
    assert r["cancelled"]["busy"] is False and not any(server.input_dir.iterdir())


def test_line_art_is_white_freestyle_lines_on_black(
    run_blender: RunBlender, server: ComfyTestServer, tmp_path: Path
) -> None:
    r = run_blender("depth", url=server.url,
                    workflow=saved(tmp_path, workflows.passes("Line Art")))
    assert r["sources"] == [["Line Art", "LINEART"]]
    assert r["run_error"] == "" and r["error"] == "", (r["run_error"], r["error"])
    assert r["renders"] == 1 and r["restored"] is True
    lines = sent(server, "Line Art").convert("L").tobytes()
    white = sum(v > 127 for v in lines)
    assert 0.01 < white / len(lines) < 0.3, white  # the planes' outlines, not filled
    assert px(sent(server, "Line Art").convert("L"), 32, 2) == (0,)  # background
