"""A forwarding HTTP shim in front of a server, for faults a real server will not make on
demand: an answer lost after the server acted, an event stream cut mid-job. It keeps the
client's Host header, so the links the server builds lead back through the shim, and it
logs every request (method, path, whether it carried credentials, status).

    with ApiShim(proxy_url) as shim:
        shim.lose_answers[("POST", "/api/v2/jobs")] = 1
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from tests.servers.aio import AioServer

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


@dataclass
class Passed:
    method: str
    path: str
    query: str
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)


class ApiShim(AioServer):
    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target.rstrip("/")
        self.log: list[Passed] = []
        # (method, path) -> how many more answers to lose after the target acted
        self.lose_answers: dict[tuple[str, str], int] = {}
        # cut each event stream after this many bytes of its body (None: never)
        self.cut_events_after: int | None = None
        self._session: aiohttp.ClientSession | None = None

    def routes(self) -> list[web.RouteDef]:
        return [web.route("*", "/{tail:.*}", self._forward)]

    def calls(self, method: str, path: str) -> list[Passed]:
        return [p for p in self.log if p.method == method and p.path == path]

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        passed = Passed(request.method, request.path, request.query_string,
                        headers=dict(request.headers))
        self.log.append(passed)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        body = await request.read()
        url = self.target + request.path_qs
        upstream = await self._session.request(
            request.method, url, headers=headers, data=body or None, allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
        )
        passed.status = upstream.status
        key = (request.method, request.path)
        if self.lose_answers.get(key, 0) > 0:
            self.lose_answers[key] -= 1
            await upstream.read()
            upstream.release()
            return self._hang_up(request)
        response = web.StreamResponse(status=upstream.status)
        for name, value in upstream.headers.items():
            if name.lower() not in HOP:
                response.headers[name] = value
        await response.prepare(request)
        sent = 0
        cut = self.cut_events_after if request.path.endswith("/events") else None
        try:
            async for chunk in upstream.content.iter_any():
                if cut is not None and sent + len(chunk) > cut:
                    await response.write(chunk[: max(0, cut - sent)])
                    upstream.release()
                    return self._hang_up(request)
                await response.write(chunk)
                sent += len(chunk)
        except (ConnectionError, aiohttp.ClientError):
            pass
        finally:
            upstream.release()
        await response.write_eof()
        return response

    def _hang_up(self, request: web.Request) -> web.StreamResponse:
        """Close the client's connection without (the rest of) an answer."""
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=599)

    async def _shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
        await super()._shutdown()
