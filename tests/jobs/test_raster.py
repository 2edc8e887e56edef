"""The core's own PNG: what it writes opens as the same pixels in Pillow, what Pillow writes
(every row filter) decodes to Pillow's pixels, and what it cannot read is refused saying how
to save it."""

from __future__ import annotations

import io
import random

import pytest
from comfyrelay.errors import WorkflowError
from comfyrelay.jobs.raster import Pixels, decode_png, encode_png, interleave
from PIL import Image

MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def noise(width: int, height: int, channels: int, seed: int = 1) -> Pixels:
    rng = random.Random(seed)
    return Pixels(width, height, channels, rng.randbytes(width * height * channels))


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_what_it_writes_pillow_reads_as_the_same_pixels(channels: int) -> None:
    pixels = noise(37, 21, channels)
    image = Image.open(io.BytesIO(encode_png(pixels)))
    assert image.mode == MODES[channels] and image.size == (37, 21)
    assert image.tobytes() == pixels.data


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_what_pillow_writes_it_reads_back(channels: int) -> None:
    """Pillow picks a filter per row (Sub, Up, Average, Paeth on smooth and noisy rows)."""
    width, height = 40, 30
    smooth = bytes((x * 3 + y * 5 + c * 40) % 256 for y in range(height) for x in range(width)
                   for c in range(channels))
    for data in (smooth, noise(width, height, channels).data):
        image = Image.frombytes(MODES[channels], (width, height), data)
        buf = io.BytesIO()
        image.save(buf, "PNG", optimize=True)
        decoded = decode_png(buf.getvalue(), "mask.png")
        assert (decoded.size, decoded.channels, decoded.data) == ((width, height), channels, data)


@pytest.mark.parametrize(("mode", "said"), [("I;16", "16-bit"), ("P", "colour type 3"),
                                             ("1", "1-bit")])
def test_what_it_cannot_read_is_refused_saying_how_to_save_it(mode: str, said: str) -> None:
    buf = io.BytesIO()
    Image.new(mode, (8, 8)).save(buf, "PNG")
    with pytest.raises(WorkflowError, match="save it as an 8-bit gray, RGB or RGBA PNG") as err:
        decode_png(buf.getvalue(), "mask.png")
    assert said in str(err.value) or "colour type" in str(err.value)


def test_not_a_png_and_a_damaged_one_say_so() -> None:
    with pytest.raises(WorkflowError, match="not a PNG file"):
        decode_png(b"GIF89a....", "mask.gif")
    cut = encode_png(noise(20, 20, 1))[:-40]
    with pytest.raises(WorkflowError, match="damaged PNG"):
        decode_png(cut, "mask.png")


def test_planes_interleave_into_pixels() -> None:
    pixels = interleave(2, 1, b"\x01\x02", b"\x03\x04", b"\x05\x06")
    assert pixels.data == bytes([1, 3, 5, 2, 4, 6]) and pixels.channel(1) == b"\x03\x04"
    with pytest.raises(ValueError, match="do not make"):
        Pixels(2, 2, 3, b"\x00")
