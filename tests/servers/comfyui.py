"""A ComfyUI-faithful test server: real HTTP and WebSocket on 127.0.0.1 (docs/WIRE.md §1).

It follows ComfyUI 0.3.64's own code (server.py, execution.py, main.py) where a client can
tell the difference: validation and its error shapes (comfy_validate), the frames of a run
and who receives them (comfy_executor), /view and /upload checks (comfy_files). It executes
the model-free nodes of comfy_nodes (and, with PyAV, the video ones of comfy_media) for real
and can be told to misbehave through `faults`.

Its `profile` picks the version it behaves as, where versions differ on the wire:
- "old", ComfyUI 0.3.44 (c5de4955): picks its own prompt ids, has no feature flags (no
  /features, no answer on the socket, previews as event 1), no targeted interrupt, no
  `progress_state`; it has the /api aliases.
- "current", ComfyUI 0.3.64 (63722199).
- "new", the newest source read (Comfy-Org/ComfyUI server.py 002c3fb9, jobs.py 172be438,
  0.38.x): the job routes of comfy_jobs, canonical-UUID prompt ids, and the partner-node keys
  kept out of /queue and /history.

    with ComfyTestServer(tmp_path, node_delay=0.0, profile="old") as srv:
        requests.post(f"{srv.url}/prompt", json={...})
"""

from __future__ import annotations

import asyncio
import heapq
import ipaddress
import itertools
import json
import struct
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlsplit

from aiohttp import WSMsgType, web

from tests.servers import comfy_files, comfy_jobs
from tests.servers.aio import PORTAL
from tests.servers.comfy_executor import Executor, Prompt, Run
from tests.servers.comfy_media import audio_files, video_files
from tests.servers.comfy_nodes import DESCRIBED_ONLY, NODES, Folders
from tests.servers.comfy_validate import check_prompt_id, top_error, validate_prompt

PROFILES = ("old", "current", "new")
VERSIONS = {"old": "0.3.44-test", "current": "0.3.64-test", "new": "0.38.1-test"}
VERSION = VERSIONS["current"]
# Partner-node keys: 0.3.44 keeps them in /queue and /history, 0.3.64 drops them from the
# history entry, the newest server keeps them out of both (execution.py).
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Faults:
    """Misbehaviour on demand; all off by default. Tests may change it at any time."""

    # Abort every socket after it was sent N frames of the current run (the run goes on
    # server-side and its history is still written). The count restarts with each run.
    drop_ws_after_frames: int | None = None
    # After the first `status` frame of a connection, send nothing at all.
    silent_ws: bool = False
    # Route ("/prompt", "/upload/image", "/view", "/history", "/ws"; also matches
    # "/history/<id>" and the /api/ variants), optionally with a method ("POST /queue")
    # -> the HTTP status to answer instead (the route does nothing).
    http_errors: dict[str, int] = field(default_factory=dict)
    # Route -> how many more requests get the injected error (absent: every request).
    http_error_count: dict[str, int] = field(default_factory=dict)
    # Injected error pages echo the request headers back (a misconfigured proxy).
    echo_headers: bool = False
    # Route (as http_errors) -> the status answered AFTER the route did its work, as a
    # proxy that loses the answer: {"/prompt": 502} queues the prompt, then answers 502.
    answer_lost: dict[str, int] = field(default_factory=dict)
    # A captive portal / login page: every route, the /ws handshake too, answers 200 HTML.
    portal: bool = False
    # Route (as http_errors) -> a valid JSON answer of this many bytes instead (a huge
    # /object_info or /history).
    huge_json: dict[str, int] = field(default_factory=dict)
    # Route -> a JSON body that never ends, one 64 KiB piece every this many seconds.
    endless_json: dict[str, float] = field(default_factory=dict)
    # /view sends a Content-Length larger than the bytes it sends, then hangs up.
    truncate_downloads: bool = False
    # Outputs (in `executed` and history) are reported under this filename and/or subfolder;
    # /view still serves the real bytes for them, so a naive client would write them.
    hostile_filename: str | None = None
    hostile_subfolder: str | None = None
    # Interleave unknown text types and malformed binary frames into every run.
    unknown_ws_messages: bool = False
    # Restart the server as the next prompt starts executing (one-shot: resets itself).
    restart_during_run: bool = False
    # History entries carry these outputs instead of the real ones (an unexpected shape).
    odd_outputs: Any = None
    # Send `executing {node: null}` as each prompt starts, long before its history exists.
    early_end: bool = False


class Socket:
    def __init__(self, ws: web.WebSocketResponse, sid: str, request: web.Request) -> None:
        self.ws, self.sid, self.request = ws, sid, request
        self.feature_flags: dict[str, Any] = {}
        self.run_frames = 0
        self.dropped = False

    def abort(self) -> None:
        """Hang up without a close frame, as a crashed server or a dead proxy would."""
        self.dropped = True
        if self.request.transport is not None:
            self.request.transport.abort()


# Junk for the unknown_ws_messages fault: a custom node's type, and binary frames that are
# too short, of the event type that never appears (2), and of an unknown one (99).
JUNK_TEXT = json.dumps({"type": "crystools.monitor", "data": {"cpu_utilization": 3.5}})
JUNK_BINARY = (b"\x00\x00", struct.pack(">I", 2) + b"xx", struct.pack(">II", 99, 7))


class ComfyTestServer:
    def __init__(
        self,
        root: Path,
        *,
        node_delay: float = 0.0,
        token: str | None = None,
        max_upload_size: int = 100 * 2**20,
        previews: bool = True,
        preview_format: str = "PNG",
        strict_prompt_id: bool = True,
        float32_pixels: bool = True,
        profile: str = "current",
    ) -> None:
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}")
        self.profile = profile
        self.version = VERSIONS[profile]
        self.folders = Folders(Path(root))
        self.input_dir = self.folders.input
        self.output_dir = self.folders.output
        self.temp_dir = self.folders.temp
        self.node_delay = node_delay  # seconds per executed node, in progress ticks
        self.token = token  # when set, every route and /ws want "Authorization: Bearer <token>"
        self.max_upload_size = max_upload_size
        self.previews = previews  # one small binary preview per executed node
        self.preview_format = preview_format  # "PNG" or "JPEG"
        # 0.3.64 itself accepts any prompt_id; newer servers want a canonical UUID.
        self.strict_prompt_id = strict_prompt_id or profile == "new"
        self.progress_states = profile != "old"  # `progress_state` frames came after 0.3.44
        # A real ImageInvert gives 254 - v for 159 of the 256 values (float32 truncation).
        self.float32_pixels = float32_pixels
        self.faults = Faults()
        self.prompts: list[dict[str, Any]] = []  # every accepted POST /prompt body, ever
        self.seen: list[str] = []  # "METHOD /path" of every request, ever
        self.url = ""
        self.sockets: dict[str, Socket] = {}
        self.hostile_files: comfy_files.HostileFiles = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._reset_state()

    def _reset_state(self) -> None:
        """What a ComfyUI process keeps in memory only."""
        self.history: dict[str, dict[str, Any]] = {}
        self.queue: list[tuple[float, str, int, Prompt]] = []  # a heap, as PromptQueue's
        self.running: Prompt | None = None
        self.number = 0
        self.executor = Executor(self)
        self._restarting: asyncio.Future[None] | None = None
        self._seq = itertools.count()
        self._busy = False  # from taking a prompt until its executing{node:null} is sent

    # ---- lifecycle (called from the test thread) ----
    def __enter__(self) -> ComfyTestServer:
        self._thread.start()
        self._call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    def restart(self) -> None:
        """As a restarted ComfyUI: history, queue, running job and cache forgotten, every
        socket dropped; files stay and the server keeps listening on the same port."""
        self._call(self._restart())

    def wait_idle(self, timeout: float = 10) -> bool:
        """True once nothing is queued or running and the last run's frames are sent."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.queue and not self._busy:
                return True
            time.sleep(0.01)
        return False

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _start(self) -> None:
        self._wake = asyncio.Event()
        app = web.Application(middlewares=[self._guard], client_max_size=self.max_upload_size)
        for prefix in ("", "/api"):
            if self.profile != "old":
                app.router.add_get(prefix + "/features", self.features)
            app.router.add_routes(
                [
                    web.get(prefix + "/ws", self.ws),
                    web.post(prefix + "/prompt", self.post_prompt),
                    web.get(prefix + "/prompt", self.get_prompt),
                    web.get(prefix + "/queue", self.get_queue),
                    web.post(prefix + "/queue", self.post_queue),
                    web.post(prefix + "/interrupt", self.post_interrupt),
                    web.get(prefix + "/history", self.get_histories),
                    web.get(prefix + "/history/{prompt_id}", self.get_history),
                    web.post(prefix + "/history", self.post_history),
                    web.get(prefix + "/view", self.view),
                    web.post(prefix + "/upload/image", self.upload_image),
                    web.post(prefix + "/upload/mask", self.upload_mask),
                    web.get(prefix + "/system_stats", self.system_stats),
                    web.get(prefix + "/object_info", self.object_info),
                    web.get(prefix + "/object_info/{node_class}", self.object_info_one),
                    web.post(prefix + "/free", self.free),
                ]
            )
        if self.profile == "new":
            comfy_jobs.add_routes(app, self)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self._worker = asyncio.ensure_future(self._work())

    async def _stop(self) -> None:
        await self._stop_worker()
        self._drop_sockets()
        await self._runner.cleanup()

    async def _restart(self) -> None:
        await self._stop_worker()
        self._drop_sockets()
        self._reset_state()
        self._worker = asyncio.ensure_future(self._work())

    async def _stop_worker(self) -> None:
        self._worker.cancel()
        await asyncio.gather(self._worker, return_exceptions=True)

    def _drop_sockets(self) -> None:
        for sock in list(self.sockets.values()):
            sock.abort()
        self.sockets.clear()

    # ---- middleware: front-door token, ComfyUI's Origin check, injected HTTP errors ----
    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        if origin_forbidden(request.headers.get("Host"), request.headers.get("Origin")):
            return web.Response(status=403)
        route = request.path.removeprefix("/api")
        self.seen.append(f"{request.method} {request.path}")
        faults = self.faults
        if faults.portal:
            return web.Response(text=PORTAL, content_type="text/html")
        status = self._injected_error(request.method, route)
        if status is not None:
            return self._error_page(request, status)
        size = _match(faults.huge_json, request.method, route)
        if size is not None:
            return await huge_json(request, size)
        pause = _match(faults.endless_json, request.method, route)
        if pause is not None:
            return await endless_json(request, pause)
        if request.method == "OPTIONS":
            return web.Response()
        response = await handler(request)
        lost = _match(faults.answer_lost, request.method, route)
        if lost is not None:
            return self._error_page(request, lost)
        return response

    def _error_page(self, request: web.Request, status: int) -> web.Response:
        text = f"{status}: injected by the test server"
        if self.faults.echo_headers:
            text += f". Request headers: {dict(request.headers)}"
        return web.Response(status=status, text=text)

    def _injected_error(self, method: str, route: str) -> int | None:
        for key, status in list(self.faults.http_errors.items()):
            if not _matches(key, method, route):
                continue
            left = self.faults.http_error_count.get(key)
            if left is not None:
                if left <= 0:
                    continue
                self.faults.http_error_count[key] = left - 1
            return status
        return None

    # ---- WebSocket ----
    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.rel_url.query.get("clientId", "") or uuid.uuid4().hex
        sock = Socket(ws, sid, request)
        self.sockets[sid] = sock  # a second socket with the same clientId replaces the first
        try:
            await ws.send_str(json.dumps(self._status(sid)))
            executor = self.executor
            if executor.client_id == sid and executor.last_node_id is not None:
                # As ComfyUI after a reconnect mid-run: the node, without a prompt_id.
                await self._deliver(
                    sock, json.dumps({"type": "executing", "data": {"node": executor.last_node_id}})
                )
            await self._read(sock)
        finally:
            # ComfyUI pops by clientId, so closing an old socket also unregisters a newer one
            # with the same clientId: a client must close the old socket before reopening.
            self.sockets.pop(sid, None)
        return ws

    async def _read(self, sock: Socket) -> None:
        first = True
        async for msg in sock.ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                data = json.loads(msg.data)
            except ValueError:
                continue
            if (
                first
                and self.profile != "old"
                and isinstance(data, dict)
                and data.get("type") == "feature_flags"
            ):
                sock.feature_flags = data.get("data", {})
                flags = {"type": "feature_flags", "data": self._server_features()}
                await self._deliver(sock, json.dumps(flags))
            first = False

    def _status(self, sid: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": self._remaining()}}}
        if sid:
            data["sid"] = sid
        return {"type": "status", "data": data}

    def _remaining(self) -> int:
        return len(self.queue) + (1 if self.running else 0)

    def _server_features(self) -> dict[str, Any]:
        return {"supports_preview_metadata": True, "max_upload_size": self.max_upload_size}

    # Host protocol for the executor: sid None means every socket.
    async def send(self, event: str, data: dict[str, Any], sid: str | None) -> None:
        await self._fanout(json.dumps({"type": event, "data": data}), sid)

    async def send_binary(self, event: int, payload: bytes, sid: str | None) -> None:
        await self._fanout(struct.pack(">I", event) + payload, sid)

    def negotiated(self, sid: str | None) -> bool:
        if self.profile == "old":
            return False
        sock = self.sockets.get(sid or "")
        return sock is not None and sock.feature_flags.get("supports_preview_metadata") is True

    async def on_execution_start(self) -> None:
        if self.faults.early_end and self.running is not None:
            done = {"node": None, "prompt_id": self.running.prompt_id}
            await self.send("executing", done, self.running.client_id)
        if self.faults.restart_during_run:
            self.faults.restart_during_run = False
            self._restarting = asyncio.ensure_future(self._restart())
            await asyncio.sleep(5)  # cancelled by the restart, like the process it emulates

    def report(self, ui: dict[str, Any]) -> dict[str, Any]:
        """UI output as `executed` and history show it: renamed under the hostile faults."""
        name, sub = self.faults.hostile_filename, self.faults.hostile_subfolder
        if name is None and sub is None:
            return ui
        return {key: self._renamed(items, name, sub) for key, items in ui.items()}

    def _renamed(self, items: Any, name: str | None, sub: str | None) -> Any:
        if not isinstance(items, list):
            return items
        renamed = []
        for item in items:
            if isinstance(item, dict) and "filename" in item:
                folder = self.folders.by_type(item.get("type")) or self.output_dir
                real = folder / item.get("subfolder", "") / item["filename"]
                item = {
                    **item,
                    "filename": item["filename"] if name is None else name,
                    "subfolder": item.get("subfolder", "") if sub is None else sub,
                }
                self.hostile_files[(item["filename"], item["subfolder"], item["type"])] = real
            renamed.append(item)
        return renamed

    async def _fanout(self, frame: str | bytes, sid: str | None) -> None:
        if sid is None:
            targets = list(self.sockets.values())
        else:
            targets = [self.sockets[sid]] if sid in self.sockets else []
        for sock in targets:
            await self._deliver(sock, frame)

    async def _deliver(self, sock: Socket, frame: str | bytes) -> None:
        if sock.dropped or sock.ws.closed or self.faults.silent_ws:
            return
        limit = self.faults.drop_ws_after_frames
        if self._busy and limit is not None and sock.run_frames >= limit:
            sock.abort()
            return
        if self._busy:
            sock.run_frames += 1
        try:
            if self._busy and self.faults.unknown_ws_messages and isinstance(frame, str):
                await sock.ws.send_str(JUNK_TEXT)
                for junk in JUNK_BINARY:
                    await sock.ws.send_bytes(junk)
            if isinstance(frame, bytes):
                await sock.ws.send_bytes(frame)
            else:
                await sock.ws.send_str(frame)
        except (ConnectionError, RuntimeError):
            pass  # send_socket_catch_exception: a dead socket is skipped

    async def _broadcast_status(self) -> None:
        await self._fanout(json.dumps(self._status()), None)

    # ---- HTTP: prompts and queue ----
    async def post_prompt(self, request: web.Request) -> web.Response:
        body = await request.json()  # not JSON: the exception becomes a 500, as in ComfyUI
        if "number" in body:
            number = float(body["number"])
        else:
            number = -self.number if body.get("front") else self.number
            self.number += 1
        if "prompt" not in body:
            no_prompt = top_error("no_prompt", "No prompt provided", "No prompt provided")
            return web.json_response({"error": no_prompt, "node_errors": {}}, status=400)
        prompt_id = str(uuid.uuid4())
        if self.profile != "old" and body.get("prompt_id") is not None:  # 0.3.44 ignores it
            prompt_id = str(body["prompt_id"])
            bad_id = check_prompt_id(prompt_id) if self.strict_prompt_id else None
            if bad_id:
                return web.json_response({"error": bad_id, "node_errors": {}}, status=400)
        error, outputs, node_errors = validate_prompt(
            body["prompt"], self.folders, body.get("partial_execution_targets")
        )
        if error:
            return web.json_response({"error": error, "node_errors": node_errors}, status=400)
        extra_data = body.get("extra_data", {})
        if "client_id" in body:
            extra_data["client_id"] = body["client_id"]
        self.prompts.append(body)
        extra_data = dict(extra_data)  # what the queue keeps; `prompts` keeps the body as sent
        if self.profile == "new":
            for key in SENSITIVE_EXTRA_DATA_KEYS:  # "new" keeps these out of the queue
                extra_data.pop(key, None)
            extra_data["create_time"] = int(time.time() * 1000)
        prompt = Prompt(number, prompt_id, body["prompt"], extra_data, outputs)
        heapq.heappush(self.queue, (number, prompt_id, next(self._seq), prompt))
        await self._broadcast_status()
        self._wake.set()
        return web.json_response(
            {"prompt_id": prompt_id, "number": number, "node_errors": node_errors}
        )

    async def get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response(self._status()["data"]["status"])

    async def get_queue(self, request: web.Request) -> web.Response:
        running = [self.running.item()] if self.running else []
        pending = [entry[-1].item() for entry in self.queue]  # heap order, not sorted
        return web.json_response({"queue_running": running, "queue_pending": pending})

    async def post_queue(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clear"):
            self.queue.clear()
            await self._broadcast_status()
        for doomed in body.get("delete", []):
            for index, entry in enumerate(self.queue):
                if entry[1] == doomed:
                    self.queue.pop(index)
                    heapq.heapify(self.queue)
                    await self._broadcast_status()
                    break
        return web.Response(status=200)

    async def post_interrupt(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        target = body.get("prompt_id") if self.profile != "old" else None  # 0.3.44: global
        if not target or (self.running is not None and self.running.prompt_id == target):
            self.executor.interrupt_flag = True  # cooperative: seen at the next checkpoint
        return web.Response(status=200)

    async def get_history(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry is not None else {})

    async def get_histories(self, request: web.Request) -> web.Response:
        query = request.rel_url.query
        max_items = int(query["max_items"]) if "max_items" in query else None
        offset = int(query.get("offset", -1))
        if offset < 0 and max_items is not None:
            offset = len(self.history) - max_items
        items = list(self.history.items())[max(offset, 0) :]
        return web.json_response(dict(items[:max_items] if max_items is not None else items))

    async def post_history(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clear"):
            self.history.clear()
        for doomed in body.get("delete", []):
            self.history.pop(doomed, None)
        return web.Response(status=200)

    # ---- HTTP: files ----
    async def view(self, request: web.Request) -> web.StreamResponse:
        truncate = self.faults.truncate_downloads
        return await comfy_files.view(request, self.folders, self.hostile_files, truncate)

    async def upload_image(self, request: web.Request) -> web.Response:
        return await comfy_files.upload(request, self.folders)

    async def upload_mask(self, request: web.Request) -> web.Response:
        return await comfy_files.upload(request, self.folders, mask=True)

    # ---- HTTP: server info ----
    async def system_stats(self, request: web.Request) -> web.Response:
        ram = 16 * 2**30
        system = {
            "os": "posix",
            "ram_total": ram,
            "ram_free": ram // 2,
            "comfyui_version": self.version,
            "required_frontend_version": "1.27.10",
            "installed_templates_version": "0.1.94",
            "required_templates_version": "0.1.94",
            "python_version": "3.11.7 (test server)",
            "pytorch_version": "none (test server)",
            "embedded_python": False,
            "argv": ["main.py", "--cpu", "--listen", "127.0.0.1"],
        }
        device = {
            "name": "cpu",
            "type": "cpu",
            "index": None,
            "vram_total": ram,
            "vram_free": ram // 2,
            "torch_vram_total": ram,
            "torch_vram_free": ram // 2,
        }
        if self.profile == "old":  # 0.3.44 reports no frontend or template versions
            for key in ("required_frontend_version", "installed_templates_version",
                        "required_templates_version"):
                system.pop(key)
        return web.json_response({"system": system, "devices": [device]})

    async def object_info(self, request: web.Request) -> web.Response:
        described = [*NODES, *DESCRIBED_ONLY]
        return web.json_response({name: self._schema(name) for name in described})

    async def object_info_one(self, request: web.Request) -> web.Response:
        name = request.match_info["node_class"]
        known = name in NODES or name in DESCRIBED_ONLY
        return web.json_response({name: self._schema(name)} if known else {})

    def _schema(self, name: str) -> dict[str, Any]:
        node = NODES.get(name)
        schema = json.loads(json.dumps(node.schema if node else DESCRIBED_ONLY[name]))
        if name in ("LoadImage", "LoadImageMask"):
            schema["input"]["required"]["image"][0] = self.folders.input_files()
        if name == "LoadVideo":
            schema["input"]["required"]["file"][1]["options"] = video_files(self.folders)
        if name == "LoadAudio":
            schema["input"]["required"]["audio"][0] = audio_files(self.folders)
        return schema

    async def features(self, request: web.Request) -> web.Response:
        return web.json_response(self._server_features())

    async def free(self, request: web.Request) -> web.Response:
        await request.json()
        return web.Response(status=200)

    # ---- the one worker ----
    async def _work(self) -> None:
        while True:
            if not self.queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            prompt = heapq.heappop(self.queue)[-1]
            self._busy, self.running = True, prompt
            for sock in self.sockets.values():
                sock.run_frames = 0
            await self._broadcast_status()
            run = await self.executor.execute(prompt)
            if self.profile == "current":  # 0.3.64's task_done: out of history, not /queue
                for key in SENSITIVE_EXTRA_DATA_KEYS:
                    prompt.extra_data.pop(key, None)
            self.history[prompt.prompt_id] = history_entry(run)
            if self.faults.odd_outputs is not None:
                self.history[prompt.prompt_id]["outputs"] = self.faults.odd_outputs
            self.running = None
            await self._broadcast_status()
            if prompt.client_id is not None:
                done = {"node": None, "prompt_id": prompt.prompt_id}
                await self.send("executing", done, prompt.client_id)
            self._busy = False


def _matches(key: str, method: str, route: str) -> bool:
    """`key` is "/route" or "METHOD /route"; "/history" also matches "/history/<id>"."""
    want, _, prefix = key.rpartition(" ")
    if want and want.upper() != method:
        return False
    return route == prefix or route.startswith(prefix.rstrip("/") + "/")


def _match(table: dict[str, Any], method: str, route: str) -> Any:
    return next((v for k, v in table.items() if _matches(k, method, route)), None)


async def huge_json(request: web.Request, size: int) -> web.StreamResponse:
    """{"padding": "xxx..."} of `size` bytes, sent in pieces."""
    head, tail = b'{"padding": "', b'"}'
    fill = max(0, size - len(head) - len(tail))
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(head) + fill + len(tail)
    await response.prepare(request)
    await response.write(head)
    piece = b"x" * (1 << 20)
    while fill > 0:
        await response.write(piece[:fill])
        fill -= len(piece)
    await response.write(tail)
    await response.write_eof()
    return response


async def endless_json(request: web.Request, pause: float) -> web.StreamResponse:
    """A chunked JSON array that never ends (until the client hangs up, or 4 GiB)."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    piece = b"0," * (1 << 15)
    try:
        await response.write(b"[")
        for _ in range(1 << 16):
            await response.write(piece)
            if pause:
                await asyncio.sleep(pause)
    except (ConnectionError, RuntimeError):
        pass  # the client hung up, as it should
    return response


def history_entry(run: Run) -> dict[str, Any]:
    return {
        "prompt": run.prompt.item(),
        "outputs": run.outputs,
        "status": {
            "status_str": "success" if run.success else "error",
            "completed": run.success,
            "messages": run.messages,
        },
        "meta": run.meta,
    }


def origin_forbidden(host: str | None, origin: str | None) -> bool:
    """server.py's create_origin_only_middleware: on a loopback Host, a different Origin
    host is refused; a side without a port is compared without the port."""
    if host is None or origin is None:
        return False
    host_domain: str | None = host.lower()
    parsed = urlparse(origin)
    origin_domain: str | None = parsed.netloc.lower()
    host_parsed = urlsplit("//" + host.lower())
    if parsed.port is None:
        host_domain = host_parsed.hostname
    if host_parsed.port is None:
        origin_domain = parsed.hostname
    return bool(
        is_loopback(host_parsed.hostname)
        and host_domain
        and origin_domain
        and host_domain != origin_domain
    )


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"  # ComfyUI resolves the name; tests need no DNS
