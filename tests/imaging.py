"""Small images for tests, and the pixel checks a user would make."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageChops


def gradient_png(width: int = 64, height: int = 48) -> bytes:
    """An RGB image with distinct pixels, so an inversion is checkable exactly."""
    image = Image.new("RGB", (width, height))
    image.putdata(
        [
            ((x * 255) // max(1, width - 1), (y * 255) // max(1, height - 1), (x + y) % 256)
            for y in range(height)
            for x in range(width)
        ]
    )
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def is_inverse(png: bytes, result: Path) -> bool:
    """True if result is png inverted. ComfyUI inverts in float32 and truncates back to 8 bits,
    so a real server gives 254 - v for some values: allow 1 level of difference."""
    source = Image.open(io.BytesIO(png)).convert("RGB")
    with Image.open(result) as out:
        got = out.convert("RGB")
        if got.size != source.size:
            return False
        counts = ImageChops.difference(ImageChops.invert(source), got).histogram()
        # 256 counts per band: no pixel may differ by 2 levels or more.
        return not any(sum(counts[band * 256 + 2 : band * 256 + 256]) for band in range(3))


def inverted_rgba(rgb: bytes) -> bytes:
    """RGB bytes inverted, as opaque RGBA: what an image holds once an inverted result is
    imported (Blender's pixels always have alpha)."""
    pixels = (rgb[i : i + 3] for i in range(0, len(rgb), 3))
    return bytes(v for pixel in pixels for v in (*(255 - c for c in pixel), 255))


def within_one_level(got: bytes, expected: bytes) -> bool:
    """Same length and no byte more than 1 apart (ComfyUI's float32 rounding, see is_inverse)."""
    if len(got) != len(expected):
        return False
    return all(abs(a - b) <= 1 for a, b in zip(got, expected, strict=True))
