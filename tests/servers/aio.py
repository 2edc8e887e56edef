"""Shared plumbing of the hosted test servers: an aiohttp app on 127.0.0.1 in a thread,
request recording, bearer checks, and signed, expiring file URLs like object storage."""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from PIL import Image, PngImagePlugin


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    authorization: str
    body: Any


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error_code": code, "error_message": message}, status=status)


class AioServer:
    """Start with `with Server(...) as s:`; `s.url` is the base URL."""

    def __init__(self, url_ttl: float = 30.0) -> None:
        self.url = ""
        self.requests: list[Recorded] = []
        self.url_ttl = url_ttl
        self.files: dict[str, tuple[bytes, float]] = {}  # signature -> (bytes, created)
        self.file_requests: list[Recorded] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._lock = threading.Lock()

    # ---- lifecycle ----
    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def __enter__(self) -> Any:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _shutdown(self) -> None:
        """Cancel simulated work still pending (a long run) before the loop stops."""
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()
        await self._runner.cleanup()

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_routes([*self.routes(), web.get("/storage/{sig}/{name}", self._file)])
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def record(self, request: web.Request) -> Recorded:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        entry = Recorded(
            request.method, request.path, request.query_string,
            request.headers.get("Authorization", ""), body,
        )
        with self._lock:
            self.requests.append(entry)
        return entry

    def called(self, method: str, suffix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    # ---- object storage: signed URLs that expire, no other auth accepted ----
    def store(self, name: str, data: bytes) -> str:
        sig = secrets.token_hex(8)
        self.files[sig] = (data, time.monotonic())
        query = f"X-Amz-Expires={int(self.url_ttl)}&X-Amz-Signature={sig}"
        return f"{self.url}/storage/{sig}/{name}?{query}"

    async def _file(self, request: web.Request) -> web.StreamResponse:
        entry = Recorded("GET", request.path, request.query_string,
                         request.headers.get("Authorization", ""), None)
        self.file_requests.append(entry)
        if entry.authorization:  # S3: "Only one auth mechanism allowed"
            return web.Response(status=400, text="<Error><Code>InvalidArgument</Code></Error>")
        sig = request.match_info["sig"]
        if sig not in self.files or request.query.get("X-Amz-Signature") != sig:
            return web.Response(status=403, text="<Error><Code>AccessDenied</Code></Error>")
        data, created = self.files[sig]
        if time.monotonic() - created > self.url_ttl:
            return web.Response(status=403, text="<Error><Code>AccessDenied</Code>"
                                "<Message>Request has expired</Message></Error>")
        return web.Response(body=data, content_type="image/png")


def png(text: dict[str, str], color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A small PNG carrying `text` chunks, as ComfyUI's SaveImage stores the prompt."""
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def now_iso(offset: float = 0.0) -> str:
    from datetime import datetime, timedelta, timezone

    return (datetime.now(timezone.utc) + timedelta(seconds=offset)).isoformat()
