"""The README's pictures of the docker, made in a full Krita window under Xvfb
(tests/krita/screenshot.py) into a temporary folder: what its first screen says, read from
the widgets inside Krita, and that it fits its dock at Krita's default width."""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image

from tests.krita.screenshot import fits, full_png, make_screenshot
from tests.krita.test_gui import NEEDS

# The default app of sd15_img2img_api.json, in words.
FIRST_SCREEN = ["Prompt", "Negative prompt", "Seed", "Steps", "CFG", "Strength", "Sampler",
                "Scheduler", "Checkpoint"]


def test_the_first_screen_and_the_docker_fitting_its_dock(
    plugin_data: Path, tmp_path: Path
) -> None:
    assert shutil.which("xvfb-run") and shutil.which("krita"), NEEDS
    png = tmp_path / "docker.png"
    r = make_screenshot(png, tmp_path / "work", installed=plugin_data)
    assert r["ran"] and r["typed"] and r["history"] == 1, r
    first = r["first_screen"]
    # Every input of the default app with its word label, above the fold; the raw input
    # on hover.
    assert first["labels_in_view"] == FIRST_SCREEN, first
    assert first["tips"]["Seed"].startswith("3.seed · KSampler")
    assert first["labels_cut"] == []  # labels and the workflow's name fit whole
    # A value too long for the dock: cut with "…", never mid-letter, whole on hover.
    value = first["checkpoint"]["value"]
    assert value == "v1-5-pruned-emaonly.safetensors"
    shown = first["checkpoint"]["shown"]
    assert shown.endswith("…") and value.startswith(shown[:-1]), shown
    assert first["checkpoint"]["hover"].startswith(value), first["checkpoint"]
    # The checkpoint the server lacks: named in the status line, on the first screen too,
    # and Run waits, saying why.
    assert first["status"].startswith("1 input needs attention: Checkpoint — ")
    assert first["status_in_view"] and not first["run_enabled"]
    assert first["run_tip"] == first["status"]
    assert first["run_again_enabled"]  # the history's run has its own workflow, not flagged
    # The connection in plain words; what the server lacks under Details, folded.
    assert first["connection"].startswith("Connected to ComfyUI") and \
        "lacks" not in first["connection"], first["connection"]
    assert first["details_toggle"] and not first["details_shown"]
    assert "lacks" in first["details"]
    assert first["region_label"] == "Region" and first["region_label_in_view"]
    assert first["workflow_name"] == "sd15_img2img_api.json"
    assert first["workflow_tip"].endswith("tests/data/workflows/sd15_img2img_api.json")
    # The run before was of another workflow: its "100%" is gone.
    assert first["progress_value"] == 0 and not first["progress_text"]
    assert r["safe_asserts"] == []  # the run's result layer included
    assert not r["floating"] and r["dock_width"] < 400  # docked, at Krita's width for it
    assert fits(r), r  # no sideways scrolling, also with All inputs open and Customize on
    with Image.open(png) as image:
        assert image.width == r["dock_width"] and image.height == r["dock_height"]
    with Image.open(full_png(png)) as image:
        assert image.height > r["dock_height"]  # the whole panel, scrolled through
