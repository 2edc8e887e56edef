"""The docker fits its dock at Krita's default width, in a full Krita window under Xvfb: the
run behind the README's picture (tests/krita/screenshot.py), into a temporary file."""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image

from tests.krita.screenshot import fits, make_screenshot
from tests.krita.test_gui import NEEDS


def test_docker_fits_its_dock_with_typed_fields_and_history(
    plugin_data: Path, tmp_path: Path
) -> None:
    assert shutil.which("xvfb-run") and shutil.which("krita"), NEEDS
    png = tmp_path / "docker.png"
    r = make_screenshot(png, tmp_path / "work", installed=plugin_data)
    assert r["ran"] and r["typed"] and r["history"] == 1, r
    assert not r["floating"] and r["dock_width"] < 400  # docked, at Krita's width for it
    assert fits(r), r  # no sideways scrolling, also with All inputs open and Customize on
    with Image.open(png) as image:
        assert image.width == r["dock_width"] and image.height > 600
