"""Reading a workflow file: JSON (API or UI format), or the metadata ComfyUI embeds in PNG/WebP."""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import WorkflowError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# One metadata text may inflate to at most what we read of a server's answer (net.http's
# MAX_BODY, which sits above this layer; tests/system/test_hostile_files.py keeps the two equal). A
# zTXt or iTXt chunk is measured before it is kept, so a small file that inflates to gigabytes
# costs a pass of zlib, not the memory.
MAX_TEXT = 64 * 2**20
INFLATE_STEP = 2**20
# A JSON workflow larger than this is not one ComfyUI saved (its templates are under 1 MB).
MAX_JSON = MAX_TEXT
METADATA_KEYS = ("prompt", "workflow")  # what ComfyUI writes; other chunks are not read


class TooLarge(Exception):
    """A metadata text that inflates past MAX_TEXT; `key` names it."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class WorkflowSource:
    """What a file holds: an API-format graph (`prompt`) and/or a UI-format workflow."""

    name: str
    prompt: dict[str, Any] | None = None
    workflow: dict[str, Any] | None = None


def read_workflow_file(path: Path | str) -> WorkflowSource:
    path = Path(path)
    try:
        with path.open("rb") as file:
            head = file.read(12)
            image = head.startswith(PNG_SIGNATURE) or (head[:4], head[8:12]) == (b"RIFF", b"WEBP")
            if not image and path.stat().st_size > MAX_JSON:
                raise WorkflowError(
                    f"{path.name} is {path.stat().st_size / 2**20:.0f} MB, larger than any "
                    f"workflow ComfyUI saves (ComfyRelay reads at most {MAX_JSON // 2**20} MB of "
                    "JSON); it was not read."
                )
            raw = head + file.read()
    except FileNotFoundError:
        raise WorkflowError(f"Workflow file not found: {path}") from None
    except OSError as exc:
        raise WorkflowError(f"Cannot read {path}: {exc.strerror or exc}") from None
    try:
        if raw.startswith(PNG_SIGNATURE):
            return from_metadata(path, png_text(raw))
        if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
            return from_metadata(path, webp_text(raw))
    except TooLarge as exc:
        raise WorkflowError(
            f"{path.name}'s {exc.key!r} metadata inflates to more than {MAX_TEXT // 2**20} MB, "
            "the most ComfyRelay reads; the file was refused (ComfyUI's own images carry far "
            "less)."
        ) from None
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WorkflowError(
            f"{path.name} is not a JSON workflow ({exc}). Use a workflow .json, or a PNG/WebP "
            "saved by ComfyUI."
        ) from None
    except RecursionError:
        raise WorkflowError(too_deep(path.name)) from None
    if is_ui(data):
        return WorkflowSource(path.stem, workflow=data)
    return WorkflowSource(path.stem, prompt=data)


def is_ui(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data


def too_deep(name: str) -> str:
    return (
        f"{name} holds JSON nested too deeply to be a workflow (Python's parser stops at about "
        "1,000 levels; ComfyUI saves fewer than 20); it was not read."
    )


def from_metadata(path: Path, text: dict[str, str]) -> WorkflowSource:
    try:
        prompt = parse_json(text.get("prompt"))
        workflow = parse_json(text.get("workflow"))
    except RecursionError:
        raise WorkflowError(too_deep(path.name)) from None
    if not isinstance(prompt, dict) and not is_ui(workflow):
        raise WorkflowError(
            f"{path.name} carries no ComfyUI workflow in its metadata (images saved by "
            "ComfyUI's Save Image node do; many programs strip it). Use the workflow .json."
        )
    return WorkflowSource(
        path.stem,
        prompt=prompt if isinstance(prompt, dict) else None,
        workflow=workflow if is_ui(workflow) else None,
    )


def parse_json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def png_text(data: bytes) -> dict[str, str]:
    """The tEXt, zTXt and iTXt entries of a PNG (ComfyUI writes `prompt` and `workflow`)."""
    found: dict[str, str] = {}
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + size]
        pos += 12 + size  # length, type, data, CRC
        if kind == b"IEND":
            break
        entry = png_chunk_text(kind, body, found)
        if entry:
            found.setdefault(*entry)
    return found


def png_chunk_text(kind: bytes, body: bytes, found: dict[str, str]) -> tuple[str, str] | None:
    """The key and text of a text chunk ComfyUI writes and `found` lacks yet; None for any
    other chunk, whose text is never inflated. Raises TooLarge."""
    key, sep, rest = body.partition(b"\0")
    if not sep or kind not in (b"tEXt", b"zTXt", b"iTXt"):
        return None
    name = key.decode("latin-1")
    if name not in METADATA_KEYS or name in found:
        return None
    try:
        if kind == b"tEXt":
            return name, rest.decode("latin-1")
        if kind == b"zTXt":
            return name, inflate(rest[1:], name).decode("latin-1")
        if kind == b"iTXt" and len(rest) >= 2:
            compressed = rest[0] == 1
            _lang, _, rest = rest[2:].partition(b"\0")
            _translated, _, text = rest.partition(b"\0")
            return name, (inflate(text, name) if compressed else text).decode("utf-8")
    except (zlib.error, UnicodeDecodeError):
        return None
    return None


def inflate(data: bytes, key: str) -> bytes:
    """The inflated text, once a first pass that keeps nothing has found it within
    MAX_TEXT (else TooLarge)."""
    inflate_pieces(data, key, keep=False)
    return b"".join(inflate_pieces(data, key, keep=True))


def inflate_pieces(data: bytes, key: str, *, keep: bool) -> list[bytes]:
    stream = zlib.decompressobj()
    pieces: list[bytes] = []
    size = 0
    rest = data
    while not stream.eof:
        piece = stream.decompress(rest, INFLATE_STEP)
        rest = stream.unconsumed_tail
        size += len(piece)
        if size > MAX_TEXT:
            raise TooLarge(key)
        if keep:
            pieces.append(piece)
        if not piece and not rest:
            break  # all input read and nothing more comes out: a truncated stream ends here
    return pieces


def webp_text(data: bytes) -> dict[str, str]:
    """ComfyUI's WebP metadata: EXIF text tags holding `workflow:{...}` and `prompt:{...}`."""
    found: dict[str, str] = {}
    pos = 12
    while pos + 8 <= len(data):
        kind, size = struct.unpack("<4sI", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)  # chunks are padded to an even size
        if kind == b"EXIF":
            for value in exif_strings(body):
                key, sep, text = value.partition(":")
                if sep and key in ("prompt", "workflow"):
                    found.setdefault(key, text)
    return found


def exif_strings(body: bytes) -> list[str]:
    """The text values of the first IFD of a TIFF-style EXIF block."""
    if body.startswith(b"Exif\0\0"):
        body = body[6:]
    if len(body) < 8 or body[:2] not in (b"II", b"MM"):
        return []
    order = "<" if body[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", body[4:8])
    if ifd + 2 > len(body):
        return []
    (count,) = struct.unpack(order + "H", body[ifd : ifd + 2])
    values = []
    for i in range(count):
        at = ifd + 2 + 12 * i
        if at + 12 > len(body):
            break
        _tag, kind, length, offset = struct.unpack(order + "HHII", body[at : at + 12])
        if kind not in (2, 7):  # ASCII or UNDEFINED
            continue
        raw = body[at + 8 : at + 8 + length] if length <= 4 else body[offset : offset + length]
        values.append(raw.rstrip(b"\0").decode("utf-8", errors="replace"))
    return values
