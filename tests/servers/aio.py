"""Shared plumbing of the hosted test servers: an aiohttp app on 127.0.0.1 in a thread,
request recording, bearer checks, and signed, expiring file URLs like object storage."""

from __future__ import annotations

import asyncio
import io
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web
from PIL import Image, PngImagePlugin


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    authorization: str
    body: Any


@dataclass
class Injected:
    """One fault: requests whose method and path match get `status` instead of the route's
    answer. `path` is a regular expression searched in the request path ("/inference",
    "/servers$", "/storage/")."""

    method: str
    path: str
    status: int = 500
    count: int | None = None  # None: every matching request; else this many more
    echo: bool = False  # the error page echoes the request headers (a misconfigured proxy)
    html: bool = False  # a captive portal's HTML page instead of an error body
    after: bool = False  # the route does its work first; then its answer is lost

    def matches(self, request: web.Request) -> bool:
        return (
            (not self.method or self.method == request.method)
            and re.search(self.path, request.path) is not None
            and (self.count is None or self.count > 0)
        )


PORTAL = "<!DOCTYPE html><html><body><h1>Welcome to the hotel Wi-Fi</h1></body></html>"


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
        self.faults: list[Injected] = []
        self.truncate_files = False  # storage sends a Content-Length it does not honour
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

    def inject(self, method: str, path: str, status: int = 500, **kw: Any) -> Injected:
        """Make matching requests fail (see Injected); returns the fault to change later."""
        fault = Injected(method, path, status, **kw)
        self.faults.append(fault)
        return fault

    @web.middleware
    async def _inject(self, request: web.Request, handler: Any) -> web.StreamResponse:
        fault = next((f for f in self.faults if f.matches(request)), None)
        if fault is None:
            return await handler(request)
        if fault.count is not None:
            fault.count -= 1
        if fault.after:
            await handler(request)
        elif request.path.startswith("/storage/"):
            self.file_requests.append(Recorded("GET", request.path, request.query_string,
                                               request.headers.get("Authorization", ""), None))
        else:
            await self.record(request)
        if fault.html:
            return web.Response(status=fault.status, text=PORTAL, content_type="text/html")
        text = f"{fault.status}: injected by the test server"
        if fault.echo:
            text += f". Request headers: {dict(request.headers)}"
        return web.Response(status=fault.status, text=text)

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 2**20, middlewares=[self._inject])
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
        return f"{self.url}/storage/{sig}/{quote(name, safe='')}?{query}"

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
        if not self.truncate_files:
            return web.Response(body=data, content_type="image/png")
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.content_length = len(data) + 1000  # promises more than it sends
        await response.prepare(request)
        await response.write(data[: len(data) // 2])
        if request.transport is not None:
            request.transport.close()
        return response


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
