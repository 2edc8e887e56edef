"""GET /view and POST /upload/image|mask, following ComfyUI 0.3.64's server.py checks."""

from __future__ import annotations

import hashlib
import io
import json
import mimetypes
import os
from pathlib import Path
from typing import Any

from aiohttp import web
from PIL import Image

from tests.servers.comfy_nodes import Folders

# (filename, subfolder, type) as reported under the hostile_filename fault -> the real file
HostileFiles = dict[tuple[str, str, str], Path]


def _inside(folder: Path, path: str) -> bool:
    return os.path.commonpath((os.path.abspath(path), str(folder))) == str(folder)


async def view(
    request: web.Request, folders: Folders, hostile: HostileFiles, truncate: bool
) -> web.StreamResponse:
    query = request.rel_url.query
    key = (query.get("filename", ""), query.get("subfolder", ""), query.get("type", "output"))
    if key in hostile:  # the fault: serve the bytes so a naive client would write them
        return await send_file(request, hostile[key], hostile[key].name, truncate)
    if "filename" not in query:
        return web.Response(status=404)
    filename, folder = folders.annotated(query["filename"])
    if not filename:
        return web.Response(status=400)
    if filename[0] == "/" or ".." in filename:
        return web.Response(status=400)
    folder = folder or folders.by_type(query.get("type", "output"))
    if folder is None:
        return web.Response(status=400)
    if "subfolder" in query:
        if not _inside(folder, os.path.join(folder, query["subfolder"])):
            return web.Response(status=403)
        folder = Path(os.path.join(folder, query["subfolder"]))
    filename = os.path.basename(filename)
    file = folder / filename
    if not file.is_file():
        return web.Response(status=404)
    if "preview" in query or query.get("channel") in ("rgb", "a"):
        return converted(file, filename, query.get("preview"), query.get("channel", ""))
    return await send_file(request, file, filename, truncate)


def converted(file: Path, filename: str, preview: str | None, channel: str) -> web.Response:
    """`preview=jpeg;Q|webp;Q` re-encodes; `channel=rgb|a` splits the alpha off."""
    buf = io.BytesIO()
    with Image.open(file) as img:
        if preview is not None:
            fmt, *rest = preview.split(";")
            fmt = fmt if fmt in ("webp", "jpeg") and "a" not in channel else "webp"
            quality = int(rest[-1]) if rest and rest[-1].isdigit() else 90
            out = img.convert("RGB") if fmt == "jpeg" or channel == "rgb" else img
            out.save(buf, format=fmt, quality=quality)
            content_type = f"image/{fmt}"
        elif channel == "rgb":
            img.convert("RGB").save(buf, format="PNG")
            content_type = "image/png"
        else:
            alpha = img.getchannel("A") if img.mode == "RGBA" else Image.new("L", img.size, 255)
            out = Image.new("RGBA", img.size)
            out.putalpha(alpha)
            out.save(buf, format="PNG")
            content_type = "image/png"
    return web.Response(
        body=buf.getvalue(),
        content_type=content_type,
        headers={"Content-Disposition": f'filename="{filename}"'},
    )


async def send_file(
    request: web.Request, path: Path, filename: str, truncate: bool
) -> web.StreamResponse:
    data = path.read_bytes()
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    if content_type in {"text/html", "application/xhtml+xml", "text/javascript", "text/css"}:
        content_type = "application/octet-stream"
    safe_name = filename.replace('"', "").replace("\r", "").replace("\n", "").replace("\0", "")
    response = web.StreamResponse(
        headers={"Content-Type": content_type, "Content-Disposition": f'filename="{safe_name}"'}
    )
    # The truncate_downloads fault promises more bytes than it sends, then hangs up.
    response.content_length = len(data) + (1000 if truncate else 0)
    await response.prepare(request)
    await response.write(data[: len(data) // 2] if truncate else data)
    if truncate:
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


def upload_dir(folders: Folders, kind: Any) -> tuple[Path, str]:
    """get_dir_by_type: a missing type means input; an unknown one raises (a 500)."""
    if kind is None:
        kind = "input"
    folder = folders.by_type(kind) if isinstance(kind, str) else None
    if folder is None:
        raise ValueError(f"unknown upload type {kind!r}")
    return folder, kind


def free_name(folder: Path, filename: str, data: bytes) -> tuple[str, bool]:
    """Same name and same bytes: keep it (a duplicate); else `name (1).ext`, `name (2).ext`."""
    stem, ext = os.path.splitext(filename)
    candidate, n = filename, 1
    while (folder / candidate).exists():
        existing = (folder / candidate).read_bytes()
        if hashlib.sha256(existing).digest() == hashlib.sha256(data).digest():
            return candidate, True
        candidate = f"{stem} ({n}){ext}"
        n += 1
    return candidate, False


async def upload(request: web.Request, folders: Folders, mask: bool = False) -> web.Response:
    post = await request.post()  # above client_max_size aiohttp answers 413, as ComfyUI does
    image: Any = post.get("image")
    folder, kind = upload_dir(folders, post.get("type"))
    if not image or not image.file:
        return web.Response(status=400)
    filename = image.filename
    if not filename:
        return web.Response(status=400)
    subfolder = str(post.get("subfolder", ""))
    target = Path(os.path.join(folder, os.path.normpath(subfolder)))
    filepath = os.path.abspath(os.path.join(target, filename))
    if not _inside(folder, filepath):
        return web.Response(status=400)
    target.mkdir(parents=True, exist_ok=True)
    data = image.file.read()
    duplicate = False
    if post.get("overwrite") not in ("true", "1"):
        filename, duplicate = free_name(target, filename, data)
    if not duplicate:
        if mask:
            copy_mask_alpha(folders, str(post.get("original_ref")), data, target / filename)
        else:
            (target / filename).write_bytes(data)
    return web.json_response({"name": filename, "subfolder": subfolder, "type": kind})


def copy_mask_alpha(folders: Folders, original_ref: str, mask: bytes, target: Path) -> None:
    """/upload/mask: the original image with the mask's alpha; sizes must match (else 500)."""
    ref = json.loads(original_ref)
    name, folder = folders.annotated(ref["filename"])
    if not name or name[0] == "/" or ".." in name:
        return
    folder = folder or folders.by_type(ref.get("type", "output"))
    if folder is None:
        return
    if ref.get("subfolder"):
        if not _inside(folder, os.path.join(folder, ref["subfolder"])):
            return
        folder = folder / ref["subfolder"]
    if not (folder / name).is_file():
        return
    with Image.open(folder / name) as original:
        rgba = original.convert("RGBA")
    rgba.putalpha(Image.open(io.BytesIO(mask)).convert("RGBA").getchannel("A"))
    rgba.save(target, compress_level=4)
