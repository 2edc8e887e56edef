"""8-bit pixels in memory, and the small part of PNG the core needs to turn a host's mask
into what a ComfyUI loader expects (docs/WIRE.md §1.9).

The core has no imaging library (its dependencies stay few): hosts hand masks and images
as raw pixels (encoding them here is fast: rows unfiltered, one zlib pass); only a mask
given as a file (the command line) is decoded, which pure Python does at about a second per
megapixel of filtered rows.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..errors import WorkflowError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> samples per pixel (8-bit only)
_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}
MAX_PIXELS = 16384 * 16384  # what a decoded mask may hold: 256 MiB of gray


@dataclass(frozen=True)
class Pixels:
    """Rows top first, `channels` 8-bit samples a pixel: 1 gray, 2 gray+alpha, 3 RGB,
    4 RGBA. Immutable, so any thread may read it."""

    width: int
    height: int
    channels: int
    data: bytes

    def __post_init__(self) -> None:
        if len(self.data) != self.width * self.height * self.channels:
            raise ValueError(f"{len(self.data)} bytes do not make {self.width}×{self.height} "
                             f"pixels of {self.channels} channels")

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def channel(self, index: int) -> bytes:
        """One channel's samples, row by row."""
        return self.data[index::self.channels]

    def gray(self) -> bytes:
        """Luminance for a mask: gray as is; colour by its mean (a white-on-black mask has
        equal channels, so any weighting gives the same)."""
        if self.channels <= 2:
            return self.channel(0)
        r, g, b = self.channel(0), self.channel(1), self.channel(2)
        return bytes((x + y + z) // 3 for x, y, z in zip(r, g, b, strict=True))


def interleave(width: int, height: int, *planes: bytes) -> Pixels:
    """Pixels from one plane per channel (each width × height samples)."""
    out = bytearray(width * height * len(planes))
    for i, plane in enumerate(planes):
        out[i::len(planes)] = plane
    return Pixels(width, height, len(planes), bytes(out))


def encode_png(pixels: Pixels, level: int = 6) -> bytes:
    """A PNG of these pixels: rows unfiltered (fast to make), deflated once."""
    stride = pixels.width * pixels.channels
    rows = b"".join(b"\x00" + pixels.data[y * stride:(y + 1) * stride]
                    for y in range(pixels.height))
    header = struct.pack(">IIBBBBB", pixels.width, pixels.height, 8,
                         _COLOUR_TYPE[pixels.channels], 0, 0, 0)
    return (SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows, level))
            + _chunk(b"IEND", b""))


def decode_png(data: bytes, name: str = "the image") -> Pixels:
    """The pixels of an 8-bit, non-interlaced gray, gray+alpha, RGB or RGBA PNG; anything
    else is refused saying how to save it."""
    if not data.startswith(SIGNATURE):
        raise WorkflowError(f"{name} is not a PNG file: save the mask as PNG.")
    header, idat = _chunks(data, name)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in _CHANNELS or interlace:
        raise WorkflowError(
            f"{name} is a PNG of {depth}-bit samples, colour type {colour}"
            f"{', interlaced' if interlace else ''}: save it as an 8-bit gray, RGB or RGBA PNG "
            "without interlacing."
        )
    if width * height > MAX_PIXELS:
        raise WorkflowError(f"{name} is {width}×{height}: larger than a mask may be.")
    channels = _CHANNELS[colour]
    inflater = zlib.decompressobj()
    stride = width * channels
    raw = inflater.decompress(idat, height * (stride + 1) + 1)  # never more than it can hold
    if len(raw) != height * (stride + 1):
        raise WorkflowError(f"{name} is a damaged PNG (its rows are incomplete).")
    return Pixels(width, height, channels, _unfilter(raw, stride, channels, height, name))


def _chunks(data: bytes, name: str) -> tuple[bytes, bytes]:
    pos, header, parts = len(SIGNATURE), b"", []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            parts.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if len(header) != 13 or not parts:
        raise WorkflowError(f"{name} is a damaged PNG (no header or no pixel data).")
    return header, b"".join(parts)


def _unfilter(raw: bytes, stride: int, bpp: int, height: int, name: str) -> bytes:
    """Undo PNG's per-row filters (None, Sub, Up, Average, Paeth)."""
    out = bytearray(stride * height)
    prior = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        row = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
        elif kind == 2:
            row = bytearray((a + b) & 0xFF for a, b in zip(row, prior, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + prior[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = row[i - bpp] if i >= bpp else 0
                c = prior[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + _paeth(a, prior[i], c)) & 0xFF
        elif kind != 0:
            raise WorkflowError(f"{name} is a damaged PNG (row filter {kind}).")
        out[y * stride:(y + 1) * stride] = row
        prior = row
    return bytes(out)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)
