"""A strict RunComfy test server: Server API (machines) and Serverless API, docs/WIRE.md §2-3.

Strict where the service would be: bearer header (401), exact paths and bodies (400 for an
unknown or missing field), the per-account rate limit (429 with error code rate_limited).
Machines go Starting -> Ready after `ready_delay`, answer 404 for `not_found_for` seconds
right after launch, are billed from Ready until stopped (or their duration runs out), and
their main_service_url is `comfy_url` (a ComfyTestServer). `variant="guess"` sends the
variants the client must tolerate, the [guess] lines of docs/WIRE.md (other field names,
wrapped lists, lower-case statuses, another change-duration body).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.servers.aio import AioServer, bearer, error, now_iso, png

SERVER_TYPES = {"medium", "large", "extra-large", "2x-large", "2xl-turbo"}
HARDWARE = {"TURING_16", "AMPERE_24", "AMPERE_48", "ADA_48_PLUS", "AMPERE_80", "ADA_80_PLUS",
            "HOPPER_141"}
CREATE_FIELDS = {"name", "workflow_id", "workflow_version", "hardware", "min_instances",
                 "max_instances", "queue_size", "keep_warm_duration_in_seconds"}
PATCH_FIELDS = CREATE_FIELDS - {"workflow_id"} | {"is_enabled"}
INFERENCE_FIELDS = {"overrides", "workflow_api_json", "extra_data", "webhook",
                    "webhook_intermediate_status"}


@dataclass
class TestMachine:
    server_id: str
    server_type: str
    workflow_version_id: str
    estimated_duration: int
    launched: float
    fail: bool = False
    stopped: float | None = None
    state: str | None = None  # forced current_status once started (set_state)

    def ready_at(self, delay: float) -> float:
        return self.launched + delay


@dataclass
class Request:
    request_id: str
    deployment_id: str
    graph: dict[str, Any]
    state: str = "in_queue"  # in_queue, in_progress, completed, cancelled
    outcome: str = ""  # succeeded, failed
    outputs: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    fetched: bool = False
    submitted: float = field(default_factory=time.monotonic)


class RunComfyTestServer(AioServer):
    def __init__(
        self,
        comfy_url: str = "",
        *,
        user_id: str = "user-0001",
        tokens: tuple[str, ...] = ("rc-token-one-SECRET", "rc-token-two-SECRET"),
        ready_delay: float = 0.4,
        not_found_for: float = 0.15,
        rate: float = 100.0,
        burst: int = 20,
        retry_after: float | None = 0.05,
        variant: str = "doc",
        instances: int = 4,
        run_time: float = 0.15,
        url_ttl: float = 30.0,
    ) -> None:
        super().__init__(url_ttl)
        self.comfy_url = comfy_url
        self.user_id = user_id
        self.tokens = set(tokens)
        self.refused: set[str] = set()  # tokens revoked (rotation)
        self.ready_delay = ready_delay
        self.not_found_for = not_found_for
        self.rate, self.burst = rate, burst
        self.retry_after = retry_after
        self.variant = variant
        self.instances = instances
        self.run_time = run_time
        self.machines: dict[str, TestMachine] = {}
        self.fail_next_launch = False
        self.launch_answer_status: int | None = None  # e.g. 502: machine made, answer lost
        self.workflows = [
            {"workflow_id": "wf-1", "workflow_name": "Invert", "version_id": "ver-1",
             "created_at": now_iso(-86400), "updated_at": now_iso(-3600)},
        ]
        self.graphs: dict[str, dict[str, Any]] = {}  # workflow_id -> workflow_api_json
        self.deployments: dict[str, dict[str, Any]] = {}
        self.inference: dict[str, Request] = {}
        self.error_in_200 = 0  # the next N inference submits answer 200 with an error body
        self.output_name: str | None = None  # outputs reported under this filename...
        self.output_subfolder: str | None = None  # ...and subfolder (hostile names)
        self.url_name: str | None = None  # the file name in output URLs
        # Given a finished request's outputs, the result fields to send in their place (an
        # answer of a shape the docs do not describe).
        self.reshape_outputs: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.cancel_spelling = "cancelled"
        self.max_outstanding = 0
        self.rate_limited = 0  # 429s sent
        self._storm = 0
        self._storm_until = 0.0
        self._bucket = float(burst)
        self._stamp = time.monotonic()
        self._sem: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._state_lock = threading.Lock()

    # ---- test controls ----
    def storm(self, count: int = 0, seconds: float = 0.0) -> None:
        """Refuse the next `count` API requests, or all for `seconds`, with 429."""
        self._storm = count
        self._storm_until = time.monotonic() + seconds

    def set_state(self, server_id: str, state: str) -> None:
        """Switch a started machine to `state` ("Error", "Stopping"...) from now on."""
        self.machines[server_id].state = state

    def billed_seconds(self, server_id: str) -> float:
        m = self.machines[server_id]
        ready = m.ready_at(self.ready_delay)
        end = min(m.stopped or time.monotonic(), ready + m.estimated_duration)
        return 0.0 if m.fail else max(0.0, end - ready)

    def running(self) -> list[str]:
        return [sid for sid, m in self.machines.items() if self._status(m) not in (None,)]

    def add_deployment(self, graph: dict[str, Any], name: str = "dep") -> str:
        dep_id = str(uuid.uuid4())
        self.deployments[dep_id] = self._deployment(dep_id, {
            "name": name, "workflow_id": "wf-1", "workflow_version": "v1",
            "hardware": ["AMPERE_24"], "min_instances": 0, "max_instances": self.instances,
            "queue_size": 10, "keep_warm_duration_in_seconds": 60,
        }, graph)
        return dep_id

    # ---- routes ----
    def routes(self) -> list[web.RouteDef]:
        u = "/prod/api/users/{user_id}"
        d1 = "/prod/v1/deployments/{dep}"
        return [
            web.get(u + "/workflows", self._guard(self.list_workflows)),
            web.get(u + "/servers", self._guard(self.list_machines)),
            web.post(u + "/servers", self._guard(self.launch)),
            web.get(u + "/servers/{sid}", self._guard(self.get_machine)),
            web.delete(u + "/servers/{sid}", self._guard(self.stop_machine)),
            web.post(u + "/servers/{sid}/update-estimated-duration", self._guard(self.duration)),
            web.get("/prod/v2/deployments", self._guard(self.list_deployments)),
            web.post("/prod/v2/deployments", self._guard(self.create_deployment)),
            web.get("/prod/v2/deployments/{dep}", self._guard(self.get_deployment)),
            web.patch("/prod/v2/deployments/{dep}", self._guard(self.patch_deployment)),
            web.delete("/prod/v2/deployments/{dep}", self._guard(self.delete_deployment)),
            web.post(d1 + "/inference", self._guard(self.submit)),
            web.get(d1 + "/requests/{rid}/status", self._guard(self.req_status)),
            web.get(d1 + "/requests/{rid}/result", self._guard(self.req_result)),
            web.post(d1 + "/requests/{rid}/cancel", self._guard(self.req_cancel)),
        ]

    def _guard(self, handler: Any) -> Any:
        async def guarded(request: web.Request) -> web.StreamResponse:
            rec = await self.record(request)
            token = bearer(request)
            if token is None or token not in self.tokens or token in self.refused:
                return error(401, "unauthorized", "Invalid or missing API token.")
            if "user_id" in request.match_info and request.match_info["user_id"] != self.user_id:
                return error(403, "forbidden", "Not your account.")
            if self._limited():
                self.rate_limited += 1
                headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
                response = error(429, "rate_limited", "Too many requests.")
                response.headers.update(headers)
                return response
            bodyless = request.path.endswith("/cancel") and rec.body is None
            if request.method in ("POST", "PATCH") and not bodyless and not isinstance(
                rec.body, dict
            ):
                return error(400, "invalid_request", "The body must be a JSON object.")
            return await handler(request, rec.body)

        return guarded

    def _limited(self) -> bool:
        with self._state_lock:
            now = time.monotonic()
            if self._storm > 0 or now < self._storm_until:
                self._storm = max(0, self._storm - 1)
                return True
            self._bucket = min(self.burst, self._bucket + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._bucket < 1:
                return True
            self._bucket -= 1
            return False

    # ---- machines ----
    def _status(self, m: TestMachine) -> str | None:
        """None: RunComfy does not know it (stopped, or the brief 404 after launch)."""
        now = time.monotonic()
        ready = m.ready_at(self.ready_delay)
        if m.stopped is not None or (not m.fail and now > ready + m.estimated_duration):
            return None
        if now - m.launched < self.not_found_for:
            return None
        if now < ready:
            return "Starting" if now < m.launched + self.ready_delay / 2 else "Initializing"
        if m.state is not None:
            return m.state
        return "Error" if m.fail else "Ready"

    def _machine_json(self, m: TestMachine, status: str) -> dict[str, Any]:
        ready = status == "Ready"
        wall_ready = time.time() - (time.monotonic() - m.ready_at(self.ready_delay))
        body: dict[str, Any] = {
            "server_id": m.server_id, "user_id": self.user_id, "server_type": m.server_type,
            "current_status": status, "estimated_duration": m.estimated_duration,
            "main_service_url": self.comfy_url if ready else None,
            "service_ready_at": now_iso(wall_ready - time.time()) if ready else None,
            "estimated_stopping_at": (
                now_iso(wall_ready + m.estimated_duration - time.time()) if ready else None
            ),
        }
        if self.variant == "guess":
            body["id"] = body.pop("server_id")
            body["status"] = body.pop("current_status").lower()
            body.pop("estimated_stopping_at")
            body["gpu"] = "A10G"  # an extra field
        return body

    def _list(self, items: list[Any], key: str) -> Any:
        return {key: items, "count": len(items)} if self.variant == "guess" else items

    async def list_workflows(self, request: web.Request, body: Any) -> web.Response:
        return web.json_response(self._list(self.workflows, "workflows"))

    async def list_machines(self, request: web.Request, body: Any) -> web.Response:
        found = [
            self._machine_json(m, s)
            for m in self.machines.values()
            if (s := self._status(m)) is not None
        ]
        return web.json_response(self._list(found, "servers"))

    async def launch(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        need = {"workflow_version_id", "server_type", "estimated_duration"}
        if set(body) != need:
            return error(400, "invalid_request", f"Fields must be exactly {sorted(need)}.")
        if body["server_type"] not in SERVER_TYPES:
            return error(400, "invalid_request", "Unknown server_type.")
        duration = body["estimated_duration"]
        if not isinstance(duration, int) or isinstance(duration, bool) or duration <= 0:
            return error(400, "invalid_request", "estimated_duration must be seconds (int).")
        if body["workflow_version_id"] not in {w["version_id"] for w in self.workflows}:
            return error(404, "not_found", "No such workflow version.")
        m = TestMachine(uuid.uuid4().hex, body["server_type"], body["workflow_version_id"],
                        duration, time.monotonic(), fail=self.fail_next_launch)
        self.fail_next_launch = False
        self.machines[m.server_id] = m
        if self.launch_answer_status is not None:
            return web.Response(status=self.launch_answer_status, text="Bad gateway")
        return web.json_response(self._machine_json(m, "Starting"))

    def _find(self, request: web.Request) -> tuple[TestMachine | None, str | None]:
        m = self.machines.get(request.match_info["sid"])
        return m, (self._status(m) if m else None)

    async def get_machine(self, request: web.Request, body: Any) -> web.Response:
        m, status = self._find(request)
        if m is None or status is None:
            return error(404, "not_found", "Server not found.")
        return web.json_response(self._machine_json(m, status))

    async def stop_machine(self, request: web.Request, body: Any) -> web.Response:
        m, status = self._find(request)
        if m is None or status is None:
            return error(404, "not_found", "Server not found.")
        m.stopped = time.monotonic()
        return web.json_response(self._machine_json(m, "Stopping"))

    async def duration(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        key = "estimated_duration" if self.variant == "guess" else "update_estimated_duration"
        if set(body) != {key} or not isinstance(body[key], int) or body[key] <= 0:
            return error(400, "invalid_request", f"Body must be {{{key}: seconds}}.")
        m, status = self._find(request)
        if m is None or status is None:
            return error(404, "not_found", "Server not found.")
        if status != "Ready":
            return error(400, "invalid_state", "The duration can change once the server is Ready.")
        m.estimated_duration = body[key]
        return web.json_response(self._machine_json(m, status))

    # ---- serverless: deployments ----
    def _deployment(
        self, dep_id: str, fields: dict[str, Any], graph: dict[str, Any] | None
    ) -> dict[str, Any]:
        return {
            "id": dep_id, **fields, "status": "ready", "is_enabled": True,
            "created_at": now_iso(), "updated_at": now_iso(),
            "payload": {"workflow_api_json": graph or {}, "overrides": {},
                        "object_info_url": f"{self.url}/object_info.json"},
        }

    def _view(self, dep: dict[str, Any], request: web.Request) -> dict[str, Any] | web.Response:
        includes = request.query.getall("includes", [])
        if set(request.query) - {"includes", "ids"} or set(includes) - {"payload", "readme"}:
            return error(400, "invalid_request", "Unknown query parameter.")
        view = {k: v for k, v in dep.items() if k != "payload" or "payload" in includes}
        if "readme" in includes:
            view["readme"] = "# readme"
        return view

    async def list_deployments(self, request: web.Request, body: Any) -> web.Response:
        ids = request.query.getall("ids", [])
        views = [self._view(d, request) for i, d in self.deployments.items() if not ids or i in ids]
        if any(isinstance(v, web.Response) for v in views):
            return next(v for v in views if isinstance(v, web.Response))
        return web.json_response(views)

    async def get_deployment(self, request: web.Request, body: Any) -> web.Response:
        dep = self.deployments.get(request.match_info["dep"])
        if dep is None:
            return error(404, "not_found", "Deployment not found.")
        view = self._view(dep, request)
        return view if isinstance(view, web.Response) else web.json_response(view)

    async def create_deployment(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        if set(body) != CREATE_FIELDS:
            missing, extra = CREATE_FIELDS - set(body), set(body) - CREATE_FIELDS
            detail = f"missing {sorted(missing)}, unknown {sorted(extra)}"
            return error(422, "invalid_request", detail)
        hw = body["hardware"]
        if not isinstance(hw, list) or len(hw) != 1 or hw[0] not in HARDWARE:
            return error(422, "invalid_request", "hardware must be a list with one SKU.")
        if body["workflow_id"] not in {w["workflow_id"] for w in self.workflows}:
            return error(404, "not_found", "No such workflow.")
        dep_id = str(uuid.uuid4())
        graph = self.graphs.get(body["workflow_id"])
        self.deployments[dep_id] = self._deployment(dep_id, body, graph)
        return web.json_response(
            {k: v for k, v in self.deployments[dep_id].items() if k != "payload"}
        )

    async def patch_deployment(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        dep = self.deployments.get(request.match_info["dep"])
        if dep is None:
            return error(404, "not_found", "Deployment not found.")
        if not body or set(body) - PATCH_FIELDS:
            return error(422, "invalid_request", f"unknown {sorted(set(body) - PATCH_FIELDS)}")
        dep.update(body, updated_at=now_iso())
        return web.json_response({k: v for k, v in dep.items() if k != "payload"})

    async def delete_deployment(self, request: web.Request, body: Any) -> web.Response:
        if self.deployments.pop(request.match_info["dep"], None) is None:
            return error(404, "not_found", "Deployment not found.")
        return web.json_response({"id": request.match_info["dep"], "deleted": True})

    # ---- serverless: inference ----
    async def submit(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        dep = self.deployments.get(request.match_info["dep"])
        if dep is None:
            return error(404, "not_found", "Deployment not found.")
        if set(body) - INFERENCE_FIELDS or not ({"overrides", "workflow_api_json"} & set(body)):
            return error(400, "invalid_request", "Give overrides and/or workflow_api_json only.")
        if self.error_in_200 > 0:
            self.error_in_200 -= 1
            return web.json_response({"error_code": "insufficient_balance",
                                      "error_message": "Your balance is too low."})
        graph = json.loads(json.dumps(body.get("workflow_api_json")
                                      or dep["payload"]["workflow_api_json"]))
        for nid, change in (body.get("overrides") or {}).items():
            if nid not in graph or set(change) != {"inputs"}:
                return error(400, "invalid_overrides", f"Unknown node {nid}.")
            graph[nid]["inputs"].update(change["inputs"])
        rid = str(uuid.uuid4())
        req = Request(rid, dep["id"], graph)
        self.inference[rid] = req
        self._note_outstanding()
        self._tasks.add(asyncio.ensure_future(self._execute(req)))
        base = f"{self.url}/prod/v1/deployments/{dep['id']}/requests/{rid}"
        return web.json_response({"request_id": rid, "status_url": base + "/status",
                                  "result_url": base + "/result", "cancel_url": base + "/cancel"})

    def _note_outstanding(self) -> None:
        outstanding = sum(1 for r in self.inference.values() if not r.fetched)
        self.max_outstanding = max(self.max_outstanding, outstanding)

    async def _execute(self, req: Request) -> None:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.instances)
        async with self._sem:
            if req.state != "in_queue":
                return
            req.state = "in_progress"
            await asyncio.sleep(self.run_time)
            if req.state != "in_progress":
                return
            self._outputs(req)
            req.state = "completed"

    def _outputs(self, req: Request) -> None:
        for nid, node in req.graph.items():
            for name, value in node.get("inputs", {}).items():
                if value == "FAIL":
                    req.outcome = "failed"
                    req.error = {"error_type": "ExecutionError", "node_id": nid,
                                 "node_type": node["class_type"],
                                 "error_message": f"input {name} made the node fail"}
                    return
        req.outcome = "succeeded"
        for nid, node in req.graph.items():
            if node["class_type"].startswith("Save"):
                name = f"{node['inputs'].get('filename_prefix', 'ComfyUI')}_00001_.png"
                data = png({"prompt": json.dumps(req.graph)})
                url = self.store(self.url_name if self.url_name is not None else name, data)
                shown = self.output_name if self.output_name is not None else name
                req.outputs[nid] = {"images": [{"url": url, "filename": shown,
                                                "subfolder": self.output_subfolder or "",
                                                "type": "output"}]}

    def _req(self, request: web.Request) -> Request | None:
        req = self.inference.get(request.match_info["rid"])
        return req if req and req.deployment_id == request.match_info["dep"] else None

    async def req_status(self, request: web.Request, body: Any) -> web.Response:
        req = self._req(request)
        if req is None:
            return error(404, "not_found", "Request not found.")
        data: dict[str, Any] = {"request_id": req.request_id, "status": self._state(req)}
        if req.state == "in_queue":
            queued = [r for r in self.inference.values() if r.state == "in_queue"]
            data["queue_position"] = queued.index(req)
        else:
            data["instance_id"] = "inst-1"
        return web.json_response(data)

    def _state(self, req: Request) -> str:
        return self.cancel_spelling if req.state == "cancelled" else req.state

    async def req_result(self, request: web.Request, body: Any) -> web.Response:
        req = self._req(request)
        if req is None:
            return error(404, "not_found", "Request not found.")
        status = req.outcome if req.state == "completed" else self._state(req)
        data: dict[str, Any] = {"request_id": req.request_id, "status": status,
                                "created_at": now_iso(), "instance_id": "inst-1"}
        if req.state == "completed":
            req.fetched = True
            data.update(outputs=req.outputs, finished_at=now_iso())
            if self.reshape_outputs is not None:
                del data["outputs"]
                data.update(self.reshape_outputs(req.outputs))
            if req.error:
                data["error"] = req.error
        elif req.state == "cancelled":
            req.fetched = True
        return web.json_response(data)

    async def req_cancel(self, request: web.Request, body: Any) -> web.Response:
        req = self._req(request)
        if req is None:
            return error(404, "not_found", "Request not found.")
        if req.state in ("in_queue", "in_progress"):
            req.state = "cancelled"
            req.fetched = True
            return web.json_response({"request_id": req.request_id,
                                      "status": "cancellation_requested"}, status=202)
        return web.json_response({"request_id": req.request_id, "status": "not_cancellable"})
