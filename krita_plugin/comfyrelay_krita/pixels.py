"""Moving pixels between Krita documents and images: the source region, a layer and the
selection in, results out (masked by the selection for an inpaint)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core import core
from .qt import (
    ALPHA8,
    ARGB32,
    DESTINATION_IN,
    IGNORE_ASPECT,
    SMOOTH,
    WRITE_ONLY,
    QBuffer,
    QByteArray,
    QImage,
    QPainter,
    image_bytes,
)

PNG_QUALITY = 80  # Qt maps it to zlib level (100 - q) * 9 // 91 = 1
# Around a selection the workflow sees some of what surrounds it (an inpaint model needs
# context to match): an eighth of the selection's longer side, at least this many pixels.
MIN_MARGIN = 8


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int


def is_rgba8(node_or_doc: Any) -> bool:
    """Krita stores 8-bit RGBA as B, G, R, A bytes: QImage's ARGB32 on every desktop CPU."""
    return node_or_doc.colorModel() == "RGBA" and node_or_doc.colorDepth() == "U8"


def source_rect(doc: Any, use_selection: bool) -> Rect:
    """The whole canvas, or the bounds of the selection with a margin when there is one."""
    selection = doc.selection() if use_selection else None
    if selection is None or selection.width() <= 0 or selection.height() <= 0:
        return Rect(0, 0, doc.width(), doc.height())
    margin = max(MIN_MARGIN, max(selection.width(), selection.height()) // 8)
    x0, y0 = max(0, selection.x() - margin), max(0, selection.y() - margin)
    x1 = min(doc.width(), selection.x() + selection.width() + margin)
    y1 = min(doc.height(), selection.y() + selection.height() + margin)
    return Rect(x0, y0, x1 - x0, y1 - y0)


def selection_mask(doc: Any, rect: Rect) -> bytes | None:
    """The selection within `rect`, a byte a pixel (255 selected, feathered edges between);
    None without a selection."""
    selection = doc.selection()
    if selection is None or selection.width() <= 0 or selection.height() <= 0:
        return None
    return bytes(selection.pixelData(rect.x, rect.y, rect.width, rect.height))


def read_region(doc: Any, rect: Rect) -> QImage:
    """The visible image (all layers merged) within `rect`."""
    doc.waitForDone()  # let pending strokes reach the projection first
    if is_rgba8(doc):
        data = bytes(doc.pixelData(rect.x, rect.y, rect.width, rect.height))
        return QImage(data, rect.width, rect.height, ARGB32).copy()  # copy: own the memory
    # Other colour spaces: Krita converts the projection to an sRGB QImage for us.
    full = doc.thumbnail(doc.width(), doc.height()).convertToFormat(ARGB32)
    return full.copy(rect.x, rect.y, rect.width, rect.height)


def read_node(doc: Any, node: Any, rect: Rect) -> QImage:
    """A layer or group as it looks on its own (a group: its children merged) within `rect`."""
    doc.waitForDone()
    if is_rgba8(node):
        data = bytes(node.projectionPixelData(rect.x, rect.y, rect.width, rect.height))
        return QImage(data, rect.width, rect.height, ARGB32).copy()
    full = node.thumbnail(doc.width(), doc.height()).convertToFormat(ARGB32)
    return full.copy(rect.x, rect.y, rect.width, rect.height)


def to_pixels(image: QImage) -> core.Pixels:
    """ARGB32 (B, G, R, A bytes) as the core's RGBA pixels: for a loader that also gets a
    mask, which the core merges into the image's alpha."""
    data = image_bytes(image.convertToFormat(ARGB32))
    rgba = bytearray(data)
    rgba[0::4], rgba[2::4] = data[2::4], data[0::4]  # swap blue and red, in C loops
    return core.Pixels(image.width(), image.height(), 4, bytes(rgba))


def mask_pixels(mask: bytes, rect: Rect) -> core.Pixels:
    """The selection's bytes as a gray mask, white = change."""
    return core.Pixels(rect.width, rect.height, 1, mask)


def apply_mask(image: QImage, mask: bytes) -> QImage:
    """`image` with its alpha multiplied by `mask` (same size): outside the selection clear,
    a feathered edge partly so. Any thread: QPainter on a QImage needs no GUI thread."""
    w, h = image.width(), image.height()
    stencil = QImage(mask, w, h, w, ALPHA8)  # bytesPerLine = w: the mask rows are unpadded
    out = image.convertToFormat(ARGB32)
    painter = QPainter(out)
    painter.setCompositionMode(DESTINATION_IN)  # keeps the image where the stencil is opaque
    painter.drawImage(0, 0, stencil)
    painter.end()
    return out.convertToFormat(ARGB32)


def png_bytes(image: QImage) -> bytes:
    """PNG at zlib level 1 (Qt quality 80): at 4K 2.3× faster than Qt's default level 6 for
    12 % more bytes (benchmarks/krita.py); Blender's add-on uses the same level."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(WRITE_ONLY)
    image.save(buffer, "PNG", PNG_QUALITY)
    buffer.close()
    return data.data()


def load_image(path: Path, size: tuple[int, int] | None = None) -> QImage:
    """A result file as ARGB32, scaled to `size` (width, height) when given."""
    image = QImage(str(path))
    if image.isNull():
        raise ValueError(f"Krita cannot read the result image {path.name}.")
    image = image.convertToFormat(ARGB32)
    if size and (image.width(), image.height()) != size:
        image = image.scaled(size[0], size[1], IGNORE_ASPECT, SMOOTH)
    return image


def load_fitted(path: Path, size: tuple[int, int]) -> tuple[QImage, tuple[int, int] | None]:
    """A result file scaled to `size`, the region it replaces (a workflow may scale or
    upscale), and its own size when that differed, to be said in the status."""
    image = load_image(path, size=None)
    own = (image.width(), image.height())
    if own == size:
        return image, None
    return image.scaled(size[0], size[1], IGNORE_ASPECT, SMOOTH), own


def scaled_note(own: tuple[int, int], rect: Rect, whole: bool) -> str:
    """What the status says of a result scaled to its region."""
    where = "the canvas'" if whole else "the selection's region"
    return f"Result {own[0]}×{own[1]} scaled to {where} {rect.width}×{rect.height}."


def layer_bytes(image: QImage) -> QByteArray:
    return QByteArray(image_bytes(image.convertToFormat(ARGB32)))
