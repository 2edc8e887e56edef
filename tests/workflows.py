"""Model-free workflows for tests, built in code so each test says what it runs."""

from __future__ import annotations

import json
from typing import Any

from comfyrelay import Workflow

from tests.paths import WORKFLOWS


def invert() -> Workflow:
    return Workflow.load(WORKFLOWS / "invert_api.json")


def failing() -> Workflow:
    """ImageToMask(alpha) on an RGB image raises at run time: a deterministic node error."""
    graph: dict[str, Any] = json.loads((WORKFLOWS / "invert_api.json").read_text())
    graph["4"] = {
        "class_type": "ImageToMask",
        "inputs": {"image": ["1", 0], "channel": "alpha"},
        "_meta": {"title": "Alpha"},
    }
    graph["5"] = {"class_type": "MaskToImage", "inputs": {"mask": ["4", 0]}}
    graph["3"]["inputs"]["images"] = ["5", 0]
    return Workflow(graph, "failing")


def slow(blurs: int = 6, size: int = 1024) -> Workflow:
    """A chain of large blurs: long enough to cancel while it runs, with no input image."""
    graph: dict[str, Any] = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": size, "height": size, "batch_size": 1, "color": 0x808080},
        }
    }
    for n in range(2, blurs + 2):
        graph[str(n)] = {
            "class_type": "ImageBlur",
            "inputs": {"image": [str(n - 1), 0], "blur_radius": 31, "sigma": 10.0},
        }
    graph[str(blurs + 2)] = {
        "class_type": "PreviewImage",
        "inputs": {"images": [str(blurs + 1), 0]},
    }
    return Workflow(graph, "slow")


def video_invert() -> Workflow:
    """LoadVideo -> GetVideoComponents -> ImageInvert -> CreateVideo -> SaveVideo (mp4)."""
    graph: dict[str, Any] = {
        "1": {"class_type": "LoadVideo", "inputs": {"file": "input.mp4"},
              "_meta": {"title": "Clip"}},
        "2": {"class_type": "GetVideoComponents", "inputs": {"video": ["1", 0]}},
        "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
        "4": {"class_type": "CreateVideo", "inputs": {"images": ["3", 0], "fps": ["2", 2]}},
        "5": {
            "class_type": "SaveVideo",
            "inputs": {"video": ["4", 0], "filename_prefix": "video/relay", "format": "mp4",
                       "codec": "h264"},
            "_meta": {"title": "Save Video"},
        },
    }
    return Workflow(graph, "video invert")


def animated_webp(frames: int = 3) -> Workflow:
    """EmptyImage batch -> SaveAnimatedWEBP: one animated image file."""
    graph: dict[str, Any] = {
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": 32, "height": 24, "batch_size": frames, "color": 0x3366CC}},
        "2": {"class_type": "SaveAnimatedWEBP",
              "inputs": {"images": ["1", 0], "filename_prefix": "relay", "fps": 6.0,
                         "lossless": True, "quality": 80, "method": "default"}},
    }
    return Workflow(graph, "animated webp")


def audio_copy() -> Workflow:
    """LoadAudio -> SaveAudio (FLAC)."""
    graph: dict[str, Any] = {
        "1": {"class_type": "LoadAudio", "inputs": {"audio": "input.wav"}},
        "2": {"class_type": "SaveAudio",
              "inputs": {"audio": ["1", 0], "filename_prefix": "audio/relay"}},
    }
    return Workflow(graph, "audio copy")


def _save(prefix: str, source: list[Any]) -> dict[str, Any]:
    return {"class_type": "SaveImage", "inputs": {"images": source, "filename_prefix": prefix}}


def passes(*loaders: str) -> Workflow:
    """A LoadImage per title, each saved as it came (prefix: its title in lower case): the
    files a host sends are the results."""
    graph: dict[str, Any] = {}
    for n, title in enumerate(loaders):
        load, save = str(2 * n + 1), str(2 * n + 2)
        graph[load] = {"class_type": "LoadImage", "inputs": {"image": "example.png"},
                       "_meta": {"title": title}}
        graph[save] = _save(title.lower(), [load, 0])
    return Workflow(graph, "passes")


def object_mask() -> Workflow:
    """LoadImageMask (red channel: the mask as sent, gray) -> MaskToImage -> SaveImage."""
    graph: dict[str, Any] = {
        "1": {"class_type": "LoadImageMask", "inputs": {"image": "mask.png", "channel": "red"},
              "_meta": {"title": "Mask"}},
        "2": {"class_type": "MaskToImage", "inputs": {"mask": ["1", 0]}},
        "3": _save("mask", ["2", 0]),
    }
    return Workflow(graph, "object mask")


def preview_and_save() -> Workflow:
    """The input previewed as it came, and saved inverted: only the saved file is a result."""
    graph: dict[str, Any] = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"},
              "_meta": {"title": "Render"}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
        "3": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "4": _save("inverted", ["3", 0]),
    }
    return Workflow(graph, "preview and save")


def render_and_mask() -> Workflow:
    """A LoadImage for the render and a LoadImageMask for the mask, each saved."""
    graph = dict(passes("Render").graph)
    graph.update({f"1{k}": v for k, v in object_mask().graph.items()})
    graph["12"]["inputs"]["mask"] = ["11", 0]
    graph["13"]["inputs"]["images"] = ["12", 0]
    return Workflow(graph, "render and mask")
