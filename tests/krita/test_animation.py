"""Animated results in a full Krita window under Xvfb: one animated layer per result,
made the way measured not to crash Krita (issue 25)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from PIL import Image

from tests import workflows
from tests.krita.conftest import RunKrita
from tests.krita.test_plugin import INVERT, H, W
from tests.servers.comfy_media import Video, decode, encode


def test_a_24_frame_result_imported_30_times_without_a_crash(run_gui: RunKrita) -> None:
    r = run_gui("repeated_import", frames=24, times=30, timeout=900)
    assert r["can_animate"]
    assert r["bad"] == [] and r["good"] == 30  # each: 24 keyframes, each its own frame
    assert r["layers"] == [f"result {n}" for n in range(30, 0, -1)] + ["Background"]
    assert r["animated"][:30] == [True] * 30
    assert r["clip_end"] >= 23 and r["fps"] == 12  # an unanimated document takes the clip's


def frame_bgr(n: int) -> tuple[int, int, int]:
    """Must match gui_checks.frame_colour: frame n's B, G, R."""
    return (n * 10) % 256, (255 - n * 7) % 256, (n * 37 + 50) % 256


def four_frame_clip(path: Path, width: int = W, height: int = H) -> None:
    """A 4-frame H.264 clip of solid colours (frame_bgr), as a painter's animation."""
    frames = [Image.new("RGB", (width, height), frame_bgr(n)[::-1]) for n in range(4)]
    encode(frames, 8.0, path)


def close(got: list[int], want: list[int], tolerance: int = 8) -> bool:
    """Through lossy H.264 twice, solid colours stay within a few levels."""
    return all(abs(g - w) <= tolerance for g, w in zip(got, want, strict=True))


def test_headless_krita_gets_a_group_of_layers_without_a_crash(
    run_krita: RunKrita, server, tmp_path: Path
) -> None:
    """kritarunner has no window, where importAnimation crashes: a layer per frame."""
    four_frame_clip(server.input_dir / "input.mp4")
    workflow = tmp_path / "video_invert.json"
    workflow.write_text(json.dumps(workflows.video_invert().graph))
    r = run_krita("flow", url=server.url, workflow=str(workflow), width=W, height=H,
                  sources=[["1", "keep"]])
    assert r["finished"] and r["errors"] == [], r["errors"]
    assert r["layers"] == ["video_invert", "Background"]
    assert r["children"] == ["frame 1", "frame 2", "frame 3", "frame 4"]
    first = list(base64.b64decode(r["pixels"])[:4])  # frame 1's layer
    assert close(first, [255 - v for v in frame_bgr(0)] + [255])


def test_a_4_frame_animation_comes_back_inverted_as_one_animated_layer(
    run_gui: RunKrita, server, tmp_path: Path
) -> None:
    """LoadVideo gets the timeline as an MP4; the inverted clip is one new layer with a
    keyframe at each of the 4 frames, each the inverse of its source frame."""
    workflow = tmp_path / "video_invert.json"
    workflow.write_text(json.dumps(workflows.video_invert().graph))
    r = run_gui("animation_round_trip", url=server.url, workflow=str(workflow), frames=4)
    assert r["errors"] == [] and r["events"][-1] == "RunEnded", (r["errors"], r["events"])
    assert r["before"] == ["painted", "Background"]
    assert r["added"] == 1 and r["layers"] == ["video_invert", "painted", "Background"]
    assert r["animated"] and r["type"] == "paintlayer"
    *frames, after = r["colours"]
    assert after is None  # no keyframe past the clip
    for n, (corner, centre) in enumerate(zip(frames, r["centre"], strict=True)):
        want = [255 - v for v in frame_bgr(n)] + [255]
        assert close(corner, want) and close(centre, want), (n, corner, centre, want)
    assert r["time"] == 0  # the timeline is back where it was
    (sent,) = [p for p in server.input_dir.iterdir() if p.suffix == ".mp4"]
    frames, fps = decode(Video(sent))
    assert len(frames) == 4 and fps == 24  # the document's frame rate


def test_animation_source_on_a_still_document_is_refused_with_a_sentence(
    run_krita: RunKrita, server, tmp_path: Path
) -> None:
    workflow = tmp_path / "video_invert.json"
    workflow.write_text(json.dumps(workflows.video_invert().graph))
    r = run_krita("flow", url=server.url, workflow=str(workflow), width=W, height=H,
                  sources=[["1", "animation"]])
    assert r["raised"].startswith("Animation and Each frame need an animated document"), \
        r["raised"]
    assert not r["busy"] and r["layers"] == ["Background"]
    assert list(server.input_dir.iterdir()) == []  # nothing sent


def test_each_frame_runs_per_frame_into_one_animated_layer_and_run_again_keeps_the_range(
    run_gui: RunKrita, server
) -> None:
    """img2img on an animation: LoadImage gets each frame in turn; the 6 inverted results
    are one layer with a keyframe per frame, in order. Run Again reads the same 6 frames."""
    r = run_gui("each_frame", url=server.url, workflow=INVERT, frames=6)
    assert r["errors"] == [] and r["events"][-1] == "RunEnded", (r["errors"], r["events"])
    assert r["added"] == 1 and r["layers"] == ["invert_api", "painted", "Background"]
    assert r["animated"]
    want = [[255 - v for v in frame_bgr(n)] + [255] for n in range(6)]
    assert len(r["colours"]) == 7 and r["colours"][6] is None  # no keyframe past the range
    for n in range(6):  # PNG both ways: exact but for ComfyUI's float truncation
        assert close(r["colours"][n], want[n], tolerance=1), (n, r["colours"][n], want[n])
    assert r["frames"] == [0, 5]  # kept in the history entry
    assert r["again_errors"] == []
    assert all(close(r["again"][n], want[n], tolerance=1) for n in range(6))
    assert r["again"][6] is None


def test_animation_refused_when_capped_or_its_document_closes(
    run_gui: RunKrita, server, tmp_path: Path
) -> None:
    graph = workflows.video_invert().graph
    plain = tmp_path / "video_invert.json"
    plain.write_text(json.dumps(graph))
    graph["1"]["inputs"]["frame_load_cap"] = 2  # as VHS_LoadVideo's limit
    capped = tmp_path / "capped.json"
    capped.write_text(json.dumps(graph))
    r = run_gui("animation_refusals", url=server.url, workflow=str(plain),
                capped=str(capped))
    assert r["capped"] == ("The playback range has 4 frames but loader 1 (Clip) takes at most "
                           "2: shorten the range on the timeline, or raise its frame limit.")
    assert not r["busy_after_capped"]
    closed = "The document was closed while its frames were read: nothing was sent."
    assert r["view_error"] == closed and r["status"] == "Not started", r["view_error"]
    assert r["errors"] == [] and r["events"] == []  # said once; no job ever started
    assert not r["busy"] and r["layers"] == 0
    assert list(server.input_dir.iterdir()) == []  # nothing half-made went out


def test_an_image_batch_of_an_animation_run_becomes_one_animated_layer(
    run_gui: RunKrita, server, tmp_path: Path
) -> None:
    """The clip's frames inverted and saved as 4 images by one SaveImage: one layer, a
    keyframe per image, in order."""
    graph = workflows.video_invert().graph
    graph["5"] = {"class_type": "SaveImage",
                  "inputs": {"images": ["3", 0], "filename_prefix": "frames"}}
    del graph["4"]
    workflow = tmp_path / "video_frames.json"
    workflow.write_text(json.dumps(graph))
    r = run_gui("animation_round_trip", url=server.url, workflow=str(workflow), frames=4)
    assert r["errors"] == [] and r["events"][-1] == "RunEnded", (r["errors"], r["events"])
    assert r["events"].count("JobOutput") == 4
    assert r["added"] == 1 and r["layers"] == ["video_frames", "painted", "Background"]
    assert r["animated"]
    *frames, after = r["colours"]
    assert after is None
    for n, corner in enumerate(frames):  # H.264 out, PNG back
        assert close(corner, [255 - v for v in frame_bgr(n)] + [255]), (n, corner)


def test_a_clip_lands_at_the_current_frame_with_its_frame_rate(
    run_gui: RunKrita, server, tmp_path: Path
) -> None:
    """A still document at frame 5 gets the 4-frame 8 fps clip as keyframes 5-8; the
    document takes the clip's frame rate, and its range reaches frame 8 at least."""
    four_frame_clip(server.input_dir / "input.mp4")
    workflow = tmp_path / "video_invert.json"
    workflow.write_text(json.dumps(workflows.video_invert().graph))
    r = run_gui("video_into_still_document", url=server.url, workflow=str(workflow),
                width=W, height=H, at=5)
    assert r["errors"] == [] and r["events"][-1] == "RunEnded", (r["errors"], r["events"])
    assert r["added"] == 1 and r["layers"] == ["video_invert", "Background"]
    assert r["animated"]
    colours = r["colours"]
    # Krita 5.1's importAnimation gives a layer starting later a transparent keyframe at 0.
    assert colours[0] in (None, [0, 0, 0, 0]) and colours[1:5] == [None] * 4
    assert colours[9:] == [None, None]
    for n in range(4):
        assert close(colours[5 + n], [255 - v for v in frame_bgr(n)] + [255]), n
    assert r["fps"] == 8
    assert r["clip_end"] >= 8 and r["playback_end"] >= 8


def scaled(graph: dict, after: str, width: int, height: int) -> None:
    """Node "9", ImageScale to width × height, between node `after` and what reads it."""
    for node in graph.values():
        for key, value in node["inputs"].items():
            if value == [after, 0]:
                node["inputs"][key] = ["9", 0]
    graph["9"] = {"class_type": "ImageScale",
                  "inputs": {"image": [after, 0], "upscale_method": "bilinear",
                             "width": width, "height": height, "crop": "disabled"}}


def test_a_clip_of_another_size_is_scaled_to_the_canvas_and_said(
    run_gui: RunKrita, server, tmp_path: Path
) -> None:
    """The workflow scales the frames to 512×512: the animated layer still covers exactly
    the 64×48 canvas, each keyframe the inverse of its frame, and the status says why."""
    graph = workflows.video_invert().graph
    scaled(graph, "2", 512, 512)
    workflow = tmp_path / "video_scaled.json"
    workflow.write_text(json.dumps(graph))
    r = run_gui("animation_round_trip", url=server.url, workflow=str(workflow), frames=4)
    assert r["errors"] == [] and r["events"][-1] == "RunEnded", (r["errors"], r["events"])
    assert r["added"] == 1 and r["animated"]
    assert r["bounds"] == [0, 0, 64, 48]
    assert r["notes"] == ["Result 512×512 scaled to the canvas' 64×48."]
    *frames, after = r["colours"]
    assert after is None
    for n, (corner, centre) in enumerate(zip(frames, r["centre"], strict=True)):
        want = [255 - v for v in frame_bgr(n)] + [255]
        assert close(corner, want) and close(centre, want), (n, corner, centre, want)


def test_animation_to_an_image_loader_goes_as_one_apng_and_comes_back_as_one_layer(
    run_gui: RunKrita, server
) -> None:
    """LoadImage gets the 4 frames as one animated PNG and reads them as a batch of 4 (as
    ComfyUI's does); the 4 inverted images come back as one layer, a keyframe per frame."""
    r = run_gui("animation_round_trip", url=server.url, workflow=INVERT, frames=4)
    assert r["errors"] == [] and r["events"][-1] == "RunEnded", (r["errors"], r["events"])
    assert r["events"].count("JobOutput") == 4
    assert r["added"] == 1 and r["layers"] == ["invert_api", "painted", "Background"]
    assert r["animated"] and r["notes"] == []
    *frames, after = r["colours"]
    assert after is None
    for n, (corner, centre) in enumerate(zip(frames, r["centre"], strict=True)):
        want = [255 - v for v in frame_bgr(n)] + [255]  # lossless both ways
        assert close(corner, want, 1) and close(centre, want, 1), (n, corner, centre, want)
    (sent,) = [p for p in server.input_dir.iterdir() if p.suffix == ".png"]
    with Image.open(sent) as apng:
        assert apng.format == "PNG" and getattr(apng, "n_frames", 1) == 4
        assert apng.info.get("loop") == 0  # plays forever
