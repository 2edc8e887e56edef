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
