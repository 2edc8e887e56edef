"""Each loader's source in the real Krita, against the ComfyUI test server: the selection as
an inpaint mask (nothing outside it changes, a feathered edge blends), a canvas and a named
layer to two loaders, only the SaveImage result as a layer, and bad sources refused before
anything is sent."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from PIL import Image

from tests import workflows
from tests.krita.conftest import RunKrita
from tests.krita.test_plugin import INVERT, H, W, pattern

SEL = (12, 9, 14, 10)  # x, y, width, height
SKETCH = (5, 5, 10, 8)  # the named layer's patch
SKETCH_BGRA = (10, 200, 30, 255)


def pixels(r: dict[str, Any], key: str) -> bytes:
    return base64.b64decode(r[key])


def blended(x: int, y: int, m: int) -> list[int]:
    """The canvas at (x, y) with its inverse laid over it at opacity m / 255 (B, G, R)."""
    return [round((255 - v) * m / 255 + v * (255 - m) / 255) for v in pattern(x, y)[:3]]


def check_inpaint(r: dict[str, Any]) -> dict[str, int]:
    """Every pixel of what the user sees, against the selection Krita reports: where nothing
    is selected the canvas exactly, where all is the inverse, between them the blend.
    Returns how many pixels of each were checked."""
    seen, mask = pixels(r, "projection"), pixels(r, "selection_mask")
    counts = {"outside": 0, "inside": 0, "edge": 0}
    for y in range(H):
        for x in range(W):
            i = y * W + x
            got, m = list(seen[i * 4 : i * 4 + 3]), mask[i]
            if m == 0:
                assert got == list(pattern(x, y)[:3]), (x, y, got)  # untouched
                counts["outside"] += 1
            else:
                want = blended(x, y, m)
                # ComfyUI truncates float32 (254 - v); a soft edge adds 8-bit rounding twice.
                tolerance = 1 if m == 255 else 3
                assert all(abs(g - w) <= tolerance for g, w in zip(got, want, strict=True)), (
                    x, y, m, got, want)
                counts["inside" if m == 255 else "edge"] += 1
            assert seen[i * 4 + 3] == 255
    return counts


def test_selection_as_mask_inpaints_only_the_selection(run_krita: RunKrita, server) -> None:
    """LoadImage gets the canvas and the selection as its mask (one RGBA file); the inverted
    result is laid exactly over the selection."""
    r = run_krita("flow", url=server.url, workflow=INVERT, width=W, height=H, selection=SEL,
                  sources=[["1", "canvas+mask"]])
    assert r["finished"] and r["errors"] == [], r["errors"]
    assert r["layers"] == ["invert_api", "Background"]
    counts = check_inpaint(r)
    assert counts == {"outside": W * H - 14 * 10, "inside": 14 * 10, "edge": 0}
    (sent,) = [p for p in server.input_dir.iterdir() if p.suffix == ".png"]
    with Image.open(sent) as image:  # the canvas with the mask in its alpha: 0 = change
        assert image.mode == "RGBA" and image.size == (W, H)
        clear = image.getchannel("A").tobytes().count(0)
    assert clear == 14 * 10


def test_a_feathered_selection_keeps_its_soft_edge(run_krita: RunKrita, server) -> None:
    """The selection's bounds and a margin go out; the result blends over the soft edge."""
    r = run_krita("flow", url=server.url, workflow=INVERT, width=W, height=H, selection=SEL,
                  feather=3, region="selection", sources=[["1", "canvas+mask"]])
    assert r["finished"] and r["errors"] == [], r["errors"]
    counts = check_inpaint(r)
    assert counts["edge"] >= 2 * (14 + 10)  # a soft ring, at least one pixel deep
    assert counts["inside"] > 0 and counts["outside"] > W * H // 2


def test_a_canvas_and_a_named_layer_go_to_two_loaders(
    run_krita: RunKrita, server, tmp_path: Path
) -> None:
    graph = workflows.invert().graph
    graph["4"] = {"class_type": "LoadImage", "_meta": {"title": "Sketch in"},
                  "inputs": {"image": "example.png", "upload": "image"}}
    graph["5"] = {"class_type": "SaveImage", "inputs": {"images": ["4", 0],
                                                        "filename_prefix": "sketch"}}
    path = tmp_path / "two_api.json"
    path.write_text(json.dumps(graph))
    r = run_krita("flow", url=server.url, workflow=str(path), width=W, height=H,
                  layers={"Sketch": [*SKETCH, SKETCH_BGRA]},
                  sources=[["1", "canvas"], ["4", "layer:Sketch"]])
    assert r["finished"] and r["errors"] == [], r["errors"]
    assert len(list(server.input_dir.glob("*.png"))) == 2
    added = [pixels(layer, "pixels") for layer in r["added"]]
    assert len(added) == 2
    # LoadImage drops alpha: the layer comes back as its patch on black.
    (sketch,) = [p for p in added if p[:4] == bytes((0, 0, 0, 255))]
    (canvas,) = [p for p in added if p is not sketch]
    x0, y0, w, h = SKETCH
    for y in range(H):
        for x in range(W):
            i = (y * W + x) * 4
            inside = x0 <= x < x0 + w and y0 <= y < y0 + h
            assert tuple(sketch[i : i + 4]) == (SKETCH_BGRA if inside else (0, 0, 0, 255))
            seen = SKETCH_BGRA if inside else pattern(x, y)  # the canvas shows the patch
            inverse = [255 - v for v in seen[:3]]
            assert all(0 <= v - g <= 1 for g, v in zip(canvas[i : i + 3], inverse, strict=True))


def test_only_the_saved_result_becomes_a_layer(
    run_krita: RunKrita, server, tmp_path: Path
) -> None:
    """A PreviewImage of the input is no result: the document gets the SaveImage's only."""
    graph = workflows.invert().graph
    graph["4"] = {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    path = tmp_path / "preview_api.json"
    path.write_text(json.dumps(graph))
    r = run_krita("flow", url=server.url, workflow=str(path), width=W, height=H)
    assert r["finished"] and r["errors"] == [], r["errors"]
    assert r["layers"] == ["preview_api", "Background"]
    (layer,) = r["added"]
    top_left = pixels(layer, "pixels")[:3]
    assert all(0 <= 255 - v - g <= 1 for g, v in zip(top_left, pattern(0, 0)[:3], strict=True))


def refused(run_krita: RunKrita, server, **payload: Any) -> str:
    """Run with bad sources: the sentence said; no layer, no upload, nothing queued."""
    r = run_krita("flow", url=server.url, workflow=INVERT, width=W, height=H, **payload)
    assert r["layers"] == ["Background"] and not r["busy"]
    assert server.prompts == [] and not any("/upload" in seen for seen in server.seen)
    return str(r["raised"])


def test_selection_as_mask_without_a_selection_is_refused(run_krita: RunKrita, server) -> None:
    said = refused(run_krita, server, sources=[["1", "selection"]])
    assert said == "Selection as mask needs a selection: select the area to change."


def test_a_layer_that_is_gone_is_refused(run_krita: RunKrita, server) -> None:
    said = refused(run_krita, server, sources=[["1", "layer:Old sketch"]])
    assert said == ("The layer 'Old sketch' for loader 1 (Input) no longer exists: choose "
                    "another source.")


def test_two_sources_for_one_loader_are_refused(run_krita: RunKrita, server) -> None:
    said = refused(run_krita, server, sources=[["1", "canvas"], ["1", "active"]])
    assert said == "Two sources are set for loader 1 (Input): give it one."


def test_a_mask_of_another_size_than_its_image_is_refused(run_krita: RunKrita, server) -> None:
    said = refused(run_krita, server, selection=SEL, sources=[["1", "canvas+mask"]],
                   narrow_canvas=True)
    assert said == (f"The mask for loader 1 is {W}×{H} but its image is {W - 1}×{H}: they "
                    "must be the same size.")


def test_docker_lists_a_source_per_loader_and_inpaints(run_krita: RunKrita, server) -> None:
    """The docker as a user sees it: the loader's title and its sources (the document's
    layers among them), the pick kept for the workflow, the inpaint done."""
    r = run_krita("docker", url=server.url, workflow=INVERT, width=W, height=H, selection=SEL,
                  layers={"Sketch": [*SKETCH, SKETCH_BGRA]}, sources={"1": "canvas+mask"})
    assert r["source_labels"] == ["Input"]
    assert r["source_defaults"] == {"1": "canvas"}
    assert r["source_items"] == {"1": ["Canvas", "Canvas, selection as mask",
                                       "Selection as mask", "Active layer",
                                       "Animation (the playback range)",
                                       "Each frame (a run per frame)",
                                       "Keep (the workflow's file)", "Layer: Sketch",
                                       "Layer: Background"]}
    assert json.loads(r["stored_sources"]) == {INVERT: {"1": "canvas+mask"}}
    assert r["finished"] and r["status"].startswith("Done"), r["status"]
    assert r["layers"] == ["invert_api", "Sketch", "Background"]


def test_docker_says_why_a_selection_mask_cannot_go(run_krita: RunKrita, server) -> None:
    r = run_krita("docker", url=server.url, workflow=INVERT, width=W, height=H,
                  sources={"1": "selection"})
    assert r["status"] == "Selection as mask needs a selection: select the area to change."
    assert "color" in r["status_style"]  # shown as an error
    assert r["layers"] == ["Background"] and server.prompts == []
