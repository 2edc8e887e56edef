"""A ComfyUI-faithful test server: real HTTP and WebSocket on 127.0.0.1 (PROTOCOL.md §1).

It validates and executes the model-free nodes in comfy_nodes.py for real, sends the frames
in the real order, caches like ComfyUI, and can be told to misbehave through `faults`.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web
from PIL import Image

from tests.servers.comfy_nodes import NODES, Folders, execute
from tests.servers.comfy_validate import check_prompt_id, is_link, top_error, validate

VERSION = "0.3.64-test"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Faults:
    """Misbehaviour on demand; all off by default."""

    drop_ws_after_frames: int | None = None  # close every socket after N frames of a run
    silent_ws: bool = False  # after the first status frame, send nothing at all
    http_errors: dict[str, int] = field(default_factory=dict)  # route -> status to answer
    truncate_downloads: bool = False  # /view promises more bytes than it sends
    hostile_filename: str | None = None  # outputs are reported under this name
    unknown_ws_messages: bool = False  # interleave unknown types and malformed binary frames


@dataclass
class Prompt:
    number: int
    prompt_id: str
    graph: dict[str, Any]
    client_id: str | None
    extra_data: dict[str, Any]
    outputs: list[str]


class Interrupted(Exception):
    pass


class Socket:
    def __init__(self, ws: web.WebSocketResponse, sid: str) -> None:
        self.ws = ws
        self.sid = sid
        self.metadata_previews = False
        self.frames = 0


class ComfyTestServer:
    def __init__(
        self,
        root: Path,
        *,
        node_delay: float = 0.0,
        token: str | None = None,
        max_upload_size: int = 100 * 2**20,
        previews: bool = True,
    ) -> None:
        self.folders = Folders(Path(root))
        self.input_dir, self.output_dir, self.temp_dir = (
            self.folders.input,
            self.folders.output,
            self.folders.temp,
        )
        self.node_delay = node_delay
        self.token = token
        self.max_upload_size = max_upload_size
        self.previews = previews
        self.faults = Faults()
        self.prompts: list[dict[str, Any]] = []  # every accepted POST /prompt body
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._reset_state()

    def _reset_state(self) -> None:
        self.history: dict[str, dict[str, Any]] = {}
        self.pending: list[Prompt] = []
        self.running: Prompt | None = None
        self.cache: dict[str, tuple[str, tuple[Any, ...], dict[str, Any]]] = {}
        self.sockets: dict[str, Socket] = {}
        self.interrupt_flag = False
        self.counter = 0

    # ---- lifecycle (test thread) ----
    def __enter__(self) -> ComfyTestServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def restart(self) -> None:
        """Forget everything, as a restarted ComfyUI would; keep listening on the same port."""
        asyncio.run_coroutine_threadsafe(self._restart(), self._loop).result(10)

    def wait_idle(self, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.running is None and not self.pending:
                return True
            time.sleep(0.02)
        return False

    async def _start(self) -> None:
        self._wake = asyncio.Event()
        app = web.Application(middlewares=[self._guard], client_max_size=self.max_upload_size)
        for prefix in ("", "/api"):
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
                    web.get(prefix + "/view", self.view),
                    web.post(prefix + "/upload/image", self.upload),
                    web.get(prefix + "/system_stats", self.system_stats),
                    web.get(prefix + "/object_info", self.object_info),
                    web.get(prefix + "/object_info/{node_class}", self.object_info_one),
                    web.get(prefix + "/features", self.features),
                    web.post(prefix + "/free", self.free),
                ]
            )
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._worker = asyncio.ensure_future(self._work())

    async def _stop(self) -> None:
        self._worker.cancel()
        await self._close_sockets()
        await self._runner.cleanup()

    async def _restart(self) -> None:
        self._worker.cancel()
        await self._close_sockets()
        self._reset_state()
        self._worker = asyncio.ensure_future(self._work())

    async def _close_sockets(self) -> None:
        for sock in list(self.sockets.values()):
            await sock.ws.close()
        self.sockets.clear()

    # ---- middleware: front-door token, Origin check, injected HTTP errors ----
    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        origin = request.headers.get("Origin")
        if origin and urlsplit(origin).netloc != request.headers.get("Host"):
            return web.Response(status=403)
        route = request.path.removeprefix("/api")
        for prefix, status in self.faults.http_errors.items():
            if route == prefix or route.startswith(prefix + "/"):
                return web.Response(status=status, text=f"injected {status}")
        return await handler(request)

    # ---- WebSocket ----
    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        sock = Socket(ws, sid)
        self.sockets[sid] = sock
        await ws.send_str(json.dumps(self._status(sid)))
        if self.running is not None and self.running.client_id == sid:
            # As ComfyUI does after a reconnect mid-run: the node, without a prompt_id.
            await self._send(
                sock,
                {"type": "executing", "data": {"node": self.current_node, "display_node": None}},
            )
        first = True
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and first:
                body = json.loads(msg.data)
                if body.get("type") == "feature_flags":
                    sock.metadata_previews = bool(body["data"].get("supports_preview_metadata"))
                    await self._send(
                        sock,
                        {
                            "type": "feature_flags",
                            "data": {
                                "supports_preview_metadata": True,
                                "max_upload_size": self.max_upload_size,
                            },
                        },
                    )
            first = False
        if self.sockets.get(sid) is sock:
            del self.sockets[sid]
        return ws

    def _status(self, sid: str | None = None) -> dict[str, Any]:
        remaining = len(self.pending) + (1 if self.running else 0)
        data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": remaining}}}
        if sid:
            data["sid"] = sid
        return {"type": "status", "data": data}

    async def _send(self, sock: Socket, message: dict[str, Any] | bytes) -> None:
        if self.faults.silent_ws or sock.ws.closed:
            return
        limit = self.faults.drop_ws_after_frames
        if limit is not None and self.running is not None and sock.frames >= limit:
            await sock.ws.close()
            return
        sock.frames += 1
        try:
            if isinstance(message, bytes):
                await sock.ws.send_bytes(message)
            else:
                await sock.ws.send_str(json.dumps(message))
        except (ConnectionError, RuntimeError):
            pass

    async def _to_client(self, prompt: Prompt, kind: str, data: dict[str, Any]) -> None:
        sock = self.sockets.get(prompt.client_id or "")
        if sock is not None:
            if self.faults.unknown_ws_messages:
                await self._send(sock, {"type": "crystools.monitor", "data": {"cpu": 1}})
                for junk in (b"\x00\x00", struct.pack(">I", 2) + b"xx", struct.pack(">I", 99)):
                    await self._send(sock, junk)
            await self._send(sock, {"type": kind, "data": data})

    async def _broadcast_status(self) -> None:
        for sock in list(self.sockets.values()):
            await self._send(sock, self._status())

    # ---- HTTP: prompts and queue ----
    async def post_prompt(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=500, text="500 Internal Server Error")
        if not isinstance(body.get("prompt"), dict):
            return web.json_response(top_error("no_prompt", "No prompt provided"), status=400)
        prompt_id = body.get("prompt_id") or str(uuid.uuid4())
        problem = check_prompt_id(prompt_id) or validate(body["prompt"], self.folders)
        if problem:
            return web.json_response(problem, status=400)
        self.prompts.append(body)
        graph = body["prompt"]
        outputs = [nid for nid, n in graph.items() if NODES[n["class_type"]].output_node]
        self.counter += 1
        self.pending.append(
            Prompt(
                self.counter,
                prompt_id,
                graph,
                body.get("client_id"),
                body.get("extra_data") or {},
                outputs,
            )
        )
        self._wake.set()
        await self._broadcast_status()
        return web.json_response(
            {"prompt_id": prompt_id, "number": self.counter, "node_errors": {}}
        )

    async def get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response(self._status()["data"]["status"])

    def _item(self, p: Prompt) -> list[Any]:
        return [p.number, p.prompt_id, p.graph, p.extra_data, p.outputs]

    async def get_queue(self, request: web.Request) -> web.Response:
        running = [self._item(self.running)] if self.running else []
        return web.json_response(
            {"queue_running": running, "queue_pending": [self._item(p) for p in self.pending]}
        )

    async def post_queue(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clear"):
            self.pending.clear()
        doomed = set(body.get("delete") or [])
        self.pending = [p for p in self.pending if p.prompt_id not in doomed]
        await self._broadcast_status()
        return web.Response(status=200)

    async def post_interrupt(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        target = body.get("prompt_id") if isinstance(body, dict) else None
        if self.running is not None and target in (None, self.running.prompt_id):
            self.interrupt_flag = True
        return web.Response(status=200)

    async def get_history(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry else {})

    async def get_histories(self, request: web.Request) -> web.Response:
        items = list(self.history.items())
        limit = request.query.get("max_items")
        if limit:
            items = items[-int(limit) :]
        return web.json_response(dict(items))

    # ---- HTTP: files ----
    async def upload(self, request: web.Request) -> web.Response:
        form = await request.post()  # raises 413 above client_max_size, like ComfyUI
        image = form.get("image")
        if not hasattr(image, "file"):
            return web.Response(status=400)
        folder = self.folders.by_type(str(form.get("type") or "input"))
        if folder is None:
            return web.Response(status=500)
        subfolder = str(form.get("subfolder") or "")
        target_dir = (folder / subfolder).resolve()
        if not target_dir.is_relative_to(folder.resolve()):
            return web.Response(status=400)
        target_dir.mkdir(parents=True, exist_ok=True)
        data = image.file.read()  # type: ignore[union-attr]
        name = self._free_name(
            target_dir,
            Path(image.filename).name,  # type: ignore[union-attr]
            data,
            str(form.get("overwrite")) == "true",
        )
        (target_dir / name).write_bytes(data)
        return web.json_response(
            {"name": name, "subfolder": subfolder, "type": form.get("type") or "input"}
        )

    @staticmethod
    def _free_name(folder: Path, name: str, data: bytes, overwrite: bool) -> str:
        stem, ext = Path(name).stem, Path(name).suffix
        candidate, n = name, 1
        while (folder / candidate).exists() and not overwrite:
            if (folder / candidate).read_bytes() == data:
                break
            candidate = f"{stem} ({n}){ext}"
            n += 1
        return candidate

    async def view(self, request: web.Request) -> web.StreamResponse:
        filename = request.query.get("filename", "")
        hostile = self.faults.hostile_filename
        if hostile and filename == hostile:
            path = self.hostile_source
        else:
            if not filename or ".." in filename or filename.startswith("/"):
                return web.Response(status=400)
            folder = self.folders.by_type(request.query.get("type", "output"))
            if folder is None:
                return web.Response(status=400)
            path = (folder / request.query.get("subfolder", "") / filename).resolve()
            if not path.parent.is_relative_to(folder.resolve()):
                return web.Response(status=403)
        if not path.is_file():
            return web.Response(status=404)
        return await self._send_file(request, path.read_bytes())

    async def _send_file(self, request: web.Request, data: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        if self.faults.truncate_downloads:
            response.content_length = len(data) + 1000
            await response.prepare(request)
            await response.write(data[: len(data) // 2])
            assert request.transport is not None
            request.transport.close()
            return response
        response.content_length = len(data)
        await response.prepare(request)
        await response.write(data)
        return response

    # ---- HTTP: server info ----
    async def system_stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "system": {
                    "os": "posix",
                    "comfyui_version": VERSION,
                    "python_version": "3.11",
                    "pytorch_version": "none",
                    "embedded_python": False,
                    "argv": ["main.py"],
                },
                "devices": [
                    {"name": "cpu", "type": "cpu", "index": None, "vram_total": 0, "vram_free": 0}
                ],
            }
        )

    async def object_info(self, request: web.Request) -> web.Response:
        return web.json_response({name: self._schema(name) for name in NODES})

    async def object_info_one(self, request: web.Request) -> web.Response:
        name = request.match_info["node_class"]
        return web.json_response({name: self._schema(name)} if name in NODES else {})

    def _schema(self, name: str) -> dict[str, Any]:
        schema = NODES[name].schema(name)
        if name == "LoadImage":
            files = sorted(p.name for p in self.input_dir.iterdir() if p.is_file())
            schema["input"]["required"]["image"] = [files, {"image_upload": True}]
        return schema

    async def features(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"supports_preview_metadata": True, "max_upload_size": self.max_upload_size}
        )

    async def free(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    # ---- execution ----
    current_node: str | None = None
    hostile_source: Path = Path("/nonexistent")

    async def _work(self) -> None:
        while True:
            if not self.pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            self.pending.sort(key=lambda p: p.number)
            prompt = self.pending.pop(0)
            self.running, self.interrupt_flag = prompt, False
            for sock in self.sockets.values():
                sock.frames = 0
            await self._broadcast_status()
            messages: list[list[Any]] = []
            outputs: dict[str, dict[str, Any]] = {}
            status = await self._run(prompt, messages, outputs)
            self.history[prompt.prompt_id] = {
                "prompt": self._item(prompt),
                "outputs": outputs,
                "status": {
                    "status_str": status,
                    "completed": status == "success",
                    "messages": messages,
                },
                "meta": {nid: {"node_id": nid, "display_node": nid} for nid in outputs},
            }
            self.running = None
            await self._broadcast_status()
            await self._to_client(
                prompt,
                "executing",
                {"node": None, "display_node": None, "prompt_id": prompt.prompt_id},
            )

    async def _event(
        self, prompt: Prompt, messages: list[list[Any]], kind: str, data: dict[str, Any]
    ) -> None:
        data = {**data, "prompt_id": prompt.prompt_id}
        if kind.startswith("execution_"):
            data["timestamp"] = int(time.time() * 1000)
            messages.append([kind, data])
        await self._to_client(prompt, kind, data)

    async def _run(
        self, prompt: Prompt, messages: list[list[Any]], outputs: dict[str, dict[str, Any]]
    ) -> str:
        order = execution_order(prompt.graph, prompt.outputs)
        keys = cache_keys(prompt.graph, order)
        cached = [nid for nid in order if self.cache.get(nid, ("",))[0] == keys[nid]]
        await self._event(prompt, messages, "execution_start", {})
        await self._event(prompt, messages, "execution_cached", {"nodes": cached})
        values: dict[str, tuple[Any, ...]] = {}
        for nid in order:
            try:
                ui = await self._node(prompt, nid, keys[nid], nid in cached, values)
            except Interrupted:
                await self._event(
                    prompt,
                    messages,
                    "execution_interrupted",
                    {
                        "node_id": nid,
                        "node_type": prompt.graph[nid]["class_type"],
                        "executed": list(values),
                    },
                )
                return "error"
            except Exception as exc:
                await self._event(
                    prompt,
                    messages,
                    "execution_error",
                    {
                        "node_id": nid,
                        "node_type": prompt.graph[nid]["class_type"],
                        "executed": list(values),
                        "exception_message": str(exc),
                        "exception_type": type(exc).__name__,
                        "traceback": [f'  File "nodes.py", in {prompt.graph[nid]["class_type"]}\n'],
                        "current_inputs": {},
                        "current_outputs": {},
                    },
                )
                return "error"
            if ui:
                outputs[nid] = self._reported(ui)
                await self._to_client(
                    prompt,
                    "executed",
                    {
                        "node": nid,
                        "display_node": nid,
                        "output": outputs[nid],
                        "prompt_id": prompt.prompt_id,
                    },
                )
        await self._event(prompt, messages, "execution_success", {})
        return "success"

    def _reported(self, ui: dict[str, Any]) -> dict[str, Any]:
        hostile = self.faults.hostile_filename
        if not hostile or not ui.get("images"):
            return ui
        first = ui["images"][0]
        folder = self.folders.by_type(first["type"]) or self.output_dir
        self.hostile_source = folder / first["subfolder"] / first["filename"]
        return {**ui, "images": [{**first, "filename": hostile}]}

    async def _node(
        self, prompt: Prompt, nid: str, key: str, cached: bool, values: dict[str, tuple[Any, ...]]
    ) -> dict[str, Any]:
        if cached:
            values[nid] = self.cache[nid][1]
            return self.cache[nid][2]
        if self.interrupt_flag:
            raise Interrupted()
        self.current_node = nid
        await self._to_client(
            prompt, "executing", {"node": nid, "display_node": nid, "prompt_id": prompt.prompt_id}
        )
        await self._progress_state(prompt, nid, "running")
        await self._ticks(prompt, nid)
        node = prompt.graph[nid]
        inputs = {
            name: values[str(v[0])][v[1]] if is_link(v) else v
            for name, v in node["inputs"].items()
            if name in NODES[node["class_type"]].required
        }
        result, ui = await asyncio.to_thread(execute, node["class_type"], inputs, self.folders)
        values[nid] = result
        self.cache[nid] = (key, result, ui)
        await self._progress_state(prompt, nid, "finished")
        if self.previews and result and isinstance(result[0], list) and result[0]:
            await self._preview(prompt, nid, result[0][0])
        return ui

    async def _ticks(self, prompt: Prompt, nid: str, steps: int = 4) -> None:
        if self.node_delay <= 0:
            return
        for step in range(1, steps + 1):
            await asyncio.sleep(self.node_delay / steps)
            if self.interrupt_flag:
                raise Interrupted()
            await self._to_client(
                prompt,
                "progress",
                {"value": step, "max": steps, "node": nid, "prompt_id": prompt.prompt_id},
            )

    async def _progress_state(self, prompt: Prompt, nid: str, state: str) -> None:
        await self._to_client(
            prompt,
            "progress_state",
            {
                "prompt_id": prompt.prompt_id,
                "nodes": {
                    nid: {
                        "value": 1 if state == "finished" else 0,
                        "max": 1,
                        "state": state,
                        "node_id": nid,
                        "prompt_id": prompt.prompt_id,
                        "display_node_id": nid,
                        "parent_node_id": None,
                        "real_node_id": nid,
                    }
                },
            },
        )

    async def _preview(self, prompt: Prompt, nid: str, image: Any) -> None:
        sock = self.sockets.get(prompt.client_id or "")
        if sock is None or not isinstance(image, Image.Image):
            return
        buf = io.BytesIO()
        image.convert("RGB").resize((16, 16)).save(buf, "PNG")
        png = buf.getvalue()
        if sock.metadata_previews:
            meta = json.dumps(
                {
                    "node_id": nid,
                    "prompt_id": prompt.prompt_id,
                    "display_node_id": nid,
                    "parent_node_id": None,
                    "real_node_id": nid,
                    "image_type": "image/png",
                }
            ).encode()
            frame = struct.pack(">II", 4, len(meta)) + meta + png
        else:
            frame = struct.pack(">II", 1, 2) + png
        await self._send(sock, frame)


def execution_order(graph: dict[str, Any], outputs: list[str]) -> list[str]:
    """Dependencies first, only what the output nodes need."""
    order: list[str] = []

    def visit(nid: str) -> None:
        if nid in order:
            return
        for value in graph[nid].get("inputs", {}).values():
            if is_link(value):
                visit(str(value[0]))
        order.append(nid)

    for nid in outputs:
        visit(nid)
    return order


def cache_keys(graph: dict[str, Any], order: list[str]) -> dict[str, str]:
    """A node is cached when its class, literal inputs and upstream keys are unchanged."""
    keys: dict[str, str] = {}
    for nid in order:
        node = graph[nid]
        inputs = {
            k: keys[str(v[0])] + f":{v[1]}" if is_link(v) else v
            for k, v in sorted(node.get("inputs", {}).items())
        }
        keys[nid] = json.dumps([node["class_type"], inputs], sort_keys=True, default=str)
    return keys
