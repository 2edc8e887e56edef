"""Results become layers in the real Krita: placement, scaling, naming."""

from __future__ import annotations

import base64
from pathlib import Path

from PIL import Image

from tests.krita.conftest import RunKrita

W, H = 40, 30


def alpha_box(pixels: bytes, width: int) -> tuple[int, int, int, int] | None:
    """Bounds (x, y, w, h) of the non-transparent pixels of a B, G, R, A buffer."""
    xs, ys = [], []
    for i in range(3, len(pixels), 4):
        if pixels[i]:
            xs.append((i // 4) % width)
            ys.append((i // 4) // width)
    if not xs:
        return None
    return min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1


def test_result_is_scaled_into_the_selection(run_krita: RunKrita, tmp_path: Path) -> None:
    image = tmp_path / "small.png"
    Image.new("RGB", (10, 5), (200, 100, 50)).save(image)
    sel = [12, 7, 20, 9]
    r = run_krita("scaled_result", width=W, height=H, selection=sel, image=str(image))
    pixels = base64.b64decode(r["pixels"])
    assert r["layers"] == ["scaled", "Background"]
    assert alpha_box(pixels, W) == tuple(sel)
    x, y = sel[0] + 5, sel[1] + 4  # inside: the colour, stored as B, G, R, A
    assert tuple(pixels[(y * W + x) * 4 : (y * W + x) * 4 + 4]) == (50, 100, 200, 255)
