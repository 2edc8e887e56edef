"""A host's mask ("white = change this") turned into what a ComfyUI loader reads as its
MASK, by ComfyUI's own rules (docs/WIRE.md §1.9):

- LoadImage (and LoadImageOutput) gives MASK = 1 − alpha, and 0 where the file has no alpha;
  LoadImageMask with channel "alpha" reads 1 − alpha too. Such a loader gets RGBA whose
  alpha is the inverted mask: opaque (keep) where the mask is black, clear (change) where it
  is white. When the same loader also gets an image (inpainting), its colour is the image's.
- LoadImageMask with channel "red", "green" or "blue" reads that channel as it is: it gets
  the mask as gray.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from ..errors import WorkflowError
from .raster import Pixels, interleave

MASK_LOADERS = {"LoadImage", "LoadImageOutput", "LoadImageMask"}
_INVERT = bytes(255 - i for i in range(256))


class MaskForm(Enum):
    """How a loader reads its mask from the file it is given."""

    ALPHA = "alpha"  # MASK = 1 − alpha
    CHANNEL = "channel"  # MASK = one colour channel, as is


def mask_form(node: dict[str, Any]) -> MaskForm:
    """The form `node` (a loader of the graph) reads a mask in."""
    channel = str(node.get("inputs", {}).get("channel", "alpha"))
    if node.get("class_type") == "LoadImageMask" and channel in ("red", "green", "blue"):
        return MaskForm.CHANNEL
    return MaskForm.ALPHA


def loader_pixels(mask: Pixels, form: MaskForm, image: Pixels | None, where: str) -> Pixels:
    """The pixels to send a loader that reads `mask` in `form`; `image` goes to the same
    loader (its colour is kept). `where` names the loader in errors."""
    gray = mask.gray()
    if image is not None and image.size != mask.size:
        raise WorkflowError(
            f"The mask for {where} is {mask.width}×{mask.height} but its image is "
            f"{image.width}×{image.height}: they must be the same size."
        )
    if form is MaskForm.CHANNEL:
        if image is not None:
            raise WorkflowError(f"{where} loads only a mask (a LoadImageMask): send the image "
                                "to a LoadImage instead.")
        return Pixels(mask.width, mask.height, 1, gray)
    alpha = gray.translate(_INVERT)
    if image is None:
        return interleave(mask.width, mask.height, gray, gray, gray, alpha)
    colour = [image.channel(0)] * 3 if image.channels <= 2 else [
        image.channel(0), image.channel(1), image.channel(2)]
    return interleave(mask.width, mask.height, *colour, alpha)
