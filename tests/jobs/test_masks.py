"""A host mask (white = change) reaches each loader in the form ComfyUI reads it: checked by
reading the file the core makes with ComfyUI 0.3.64's own rules (nodes.py LoadImage and
LoadImageMask, docs/WIRE.md §1.9), reproduced here with Pillow."""

from __future__ import annotations

import io

import pytest
from comfyrelay.errors import WorkflowError
from comfyrelay.jobs.masks import MaskForm, loader_pixels, mask_form
from comfyrelay.jobs.raster import Pixels, encode_png
from PIL import Image, ImageChops

W, H = 16, 8
HOST_MASK = Pixels(W, H, 1, bytes((255 if 4 <= x < 12 else x * 8) for _y in range(H)
                                  for x in range(W)))  # white inside, a soft ramp outside
CANVAS = Pixels(W, H, 3, bytes((x * 10, y * 20, 99)[c] for y in range(H) for x in range(W)
                               for c in range(3)))


def comfy_load_image_mask(png: bytes) -> bytes:
    """LoadImage's MASK: 1 - alpha of the file (as 8-bit)."""
    image = Image.open(io.BytesIO(png)).convert("RGBA")
    return ImageChops.invert(image.getchannel("A")).tobytes()


def comfy_load_image_mask_node(png: bytes, channel: str) -> bytes:
    """LoadImageMask: the file as RGBA, the channel as is, alpha inverted."""
    image = Image.open(io.BytesIO(png)).convert("RGBA")
    band = image.getchannel("RGBA"["rgba".index(channel[0])])
    return (ImageChops.invert(band) if channel == "alpha" else band).tobytes()


def test_load_image_reads_the_host_mask_from_the_inverted_alpha() -> None:
    node = {"class_type": "LoadImage", "inputs": {"image": "x.png"}}
    assert mask_form(node) is MaskForm.ALPHA
    png = encode_png(loader_pixels(HOST_MASK, MaskForm.ALPHA, None, "loader 1"))
    assert comfy_load_image_mask(png) == HOST_MASK.data


def test_an_image_and_its_mask_to_one_load_image_keep_the_image_colours() -> None:
    png = encode_png(loader_pixels(HOST_MASK, MaskForm.ALPHA, CANVAS, "loader 1"))
    assert Image.open(io.BytesIO(png)).convert("RGB").tobytes() == CANVAS.data
    assert comfy_load_image_mask(png) == HOST_MASK.data


@pytest.mark.parametrize("channel", ["alpha", "red", "green", "blue"])
def test_load_image_mask_reads_it_whatever_its_channel(channel: str) -> None:
    node = {"class_type": "LoadImageMask", "inputs": {"image": "m.png", "channel": channel}}
    form = mask_form(node)
    assert form is (MaskForm.ALPHA if channel == "alpha" else MaskForm.CHANNEL)
    png = encode_png(loader_pixels(HOST_MASK, form, None, "loader 3"))
    assert comfy_load_image_mask_node(png, channel) == HOST_MASK.data


def test_a_colour_mask_counts_by_its_brightness() -> None:
    rgb = Pixels(2, 1, 3, bytes([255, 255, 255, 0, 0, 0]))
    png = encode_png(loader_pixels(rgb, MaskForm.ALPHA, None, "loader 1"))
    assert comfy_load_image_mask(png) == bytes([255, 0])


def test_sizes_must_agree_and_a_mask_only_loader_takes_no_image() -> None:
    small = Pixels(4, 4, 1, bytes(16))
    with pytest.raises(WorkflowError, match="mask for loader 1 is 4×4 but its image is 16×8"):
        loader_pixels(small, MaskForm.ALPHA, CANVAS, "loader 1")
    with pytest.raises(WorkflowError, match="loads only a mask"):
        loader_pixels(HOST_MASK, MaskForm.CHANNEL, CANVAS, "loader 3")
