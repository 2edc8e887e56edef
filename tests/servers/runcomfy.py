"""A strict RunComfy test server: Server API (machines) and Serverless API, docs/WIRE.md §2-3.

Strict where the service would be: bearer header (401), exact paths and bodies (400 for an
unknown or missing field), the per-account rate limit (429 with error code rate_limited).
Machines go Starting -> Ready after `ready_delay`, answer 404 for `not_found_for` seconds
right after launch, are billed from Ready until stopped (or their duration runs out), and
their main_service_url is `comfy_url` (a ComfyTestServer). `variant="guess"` sends the
variants the client must tolerate, the [guess] lines of docs/WIRE.md (other field names,
wrapped lists, lower-case statuses, another change-duration body).

Every behaviour names its source, as docs/WIRE.md does: [seed 000]/[seed 002]/[seed 004] (the
source documents); an official RunComfy client, `runcomfy-com/runcomfy-cli` (Rust) or
`runcomfy-com/runcomfy-mcp` (Python), with its file; a third-party client (`CONJURE`:
lopezyaoming/CONJURE for machines, `go-runcomfyserverless`: iguanesolutions/go-runcomfyserverless
for Serverless); or [guess]. No official client covers the machine (Server API) endpoints:
beyond what seed 000 says, their paths and shapes are third-party or guesses.
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
# [seed 004]
CREATE_FIELDS = {"name", "workflow_id", "workflow_version", "hardware", "min_instances",
                 "max_instances", "queue_size", "keep_warm_duration_in_seconds"}
PATCH_FIELDS = CREATE_FIELDS - {"workflow_id"} | {"is_enabled"}  # [seed 004]
INFERENCE_FIELDS = {"overrides", "workflow_api_json", "extra_data"}  # [seed 002] [seed 004]
# Webhooks go as query parameters: runcomfy-cli src/cmd/deployments.rs `run` and runcomfy-mcp
# runcomfy_client.py `submit_request` both send them so. Refusing them in the body is [guess]
# from that (seed 004 lists them among the body's optional fields).
WEBHOOK_QUERY = {"webhook", "webhook_intermediate_status"}


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
    failure: dict[str, str] | None = None  # node_id, node_type, message: sent as error_shape
    fetched: bool = False
    submitted: float = field(default_factory=time.monotonic)
    webhook: str = ""  # from the query string


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
        cold_start: float = 0.0,
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
        # Serverless bills each request's running seconds, and an instance's cold start the
        # first time it runs ([guess] on the model: RunComfy's pricing page bills GPU seconds,
        # start-up included).
        self.cold_start = cold_start
        self.serverless_billed = 0.0  # seconds billed so far
        self._warm = 0  # instances started
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
        self.lora_deployments: set[str] = set()  # their results say `output`
        self.error_in_200 = 0  # the next N inference submits answer 200 with an error body
        self.output_name: str | None = None  # outputs reported under this filename...
        self.output_subfolder: str | None = None  # ...and subfolder (hostile names)
        self.url_name: str | None = None  # the file name in output URLs
        # Given a finished request's outputs, the result fields to send in their place (an
        # answer of a shape the docs do not describe).
        self.reshape_outputs: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.cancel_spelling = "cancelled"  # [seed 004]; "canceled" [seed 002]
        # Status of a finished request: "completed" [seed 002] [seed 004]; "succeeded" is
        # terminal too in runcomfy-cli src/poll.rs `inference_is_terminal`.
        self.done_spelling = "completed"
        # Status of a failed request: "failed", which runcomfy-cli src/poll.rs and runcomfy-mcp
        # runcomfy_client.py stop on; "completed" as seed 002 has it (only the result fails).
        self.failed_status = "failed"
        # A failed result's `error`: "dict" {error_type, node_id, node_type, error_message}
        # [guess]; "list" of {errorCode, error, debugInfo} [go-runcomfyserverless request.go];
        # "string" [guess].
        self.error_shape = "dict"
        self.error_in_status = False  # [guess] the failed status carries the error too
        # The cancel answer: "status" {status: cancellation_requested} (202) [seed 002]
        # [go-runcomfyserverless actions.go] [runcomfy-cli src/cmd/mod.rs]; "outcome" 202
        # {status: completed, outcome: cancelled} [seed 004 §3.4].
        self.cancel_reply = "status"
        # Seconds before a requested cancel stops a running request; None: it runs to its end
        # (and is billed). runcomfy-cli src/cmd/mod.rs `print_cancel_outcome`: "it may still be
        # running". 0 (stops at once) is [guess], the kindest case.
        self.cancel_delay: float | None = 0.0
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
        """From Ready until stopped or its duration ends [seed 000]."""
        m = self.machines[server_id]
        ready = m.ready_at(self.ready_delay)
        end = min(m.stopped or time.monotonic(), ready + m.estimated_duration)
        return 0.0 if m.fail else max(0.0, end - ready)

    def running(self) -> list[str]:
        return [sid for sid, m in self.machines.items() if self._status(m) not in (None,)]

    def add_deployment(
        self, graph: dict[str, Any], name: str = "dep", *, lora: bool = False
    ) -> str:
        """A deployment of `graph`; `lora`: a Serverless LoRA deployment, whose result carries
        `output` instead of `outputs` (runcomfy-cli src/cmd/mod.rs). Its body and the inner
        shape of `output` are [guess]: it takes our overrides and sends a list of bare URLs."""
        dep_id = str(uuid.uuid4())
        self.deployments[dep_id] = self._deployment(dep_id, {
            "name": name, "workflow_id": "wf-1", "workflow_version": "v1",
            "hardware": ["AMPERE_24"], "min_instances": 0, "max_instances": self.instances,
            "queue_size": 10, "keep_warm_duration_in_seconds": 60,
        }, graph)
        if lora:
            self.lora_deployments.add(dep_id)
        return dep_id

    # ---- routes ----
    def routes(self) -> list[web.RouteDef]:
        u = "/prod/api/users/{user_id}"
        d1 = "/prod/v1/deployments/{dep}"
        return [
            # Machines: seed 000 names these six operations (paths of /workflows only); the
            # other paths and every shape are third-party (CONJURE) or [guess], docs/WIRE.md §2.
            web.get(u + "/workflows", self._guard(self.list_workflows)),
            web.get(u + "/servers", self._guard(self.list_machines)),
            web.post(u + "/servers", self._guard(self.launch)),
            web.get(u + "/servers/{sid}", self._guard(self.get_machine)),
            web.delete(u + "/servers/{sid}", self._guard(self.stop_machine)),
            web.post(u + "/servers/{sid}/update-estimated-duration", self._guard(self.duration)),
            # Deployments (v2) [seed 004]; runcomfy-cli src/cmd/deployments.rs uses the same.
            web.get("/prod/v2/deployments", self._guard(self.list_deployments)),
            web.post("/prod/v2/deployments", self._guard(self.create_deployment)),
            web.get("/prod/v2/deployments/{dep}", self._guard(self.get_deployment)),
            web.patch("/prod/v2/deployments/{dep}", self._guard(self.patch_deployment)),
            web.delete("/prod/v2/deployments/{dep}", self._guard(self.delete_deployment)),
            # Inference (v1) [seed 002] [seed 004], runcomfy-mcp runcomfy_client.py; runcomfy-cli
            # calls the same paths under /prod/v2.
            web.post(d1 + "/inference", self._guard(self.submit)),
            web.get(d1 + "/requests/{rid}/status", self._guard(self.req_status)),
            web.get(d1 + "/requests/{rid}/result", self._guard(self.req_result)),
            web.post(d1 + "/requests/{rid}/cancel", self._guard(self.req_cancel)),
        ]

    def _guard(self, handler: Any) -> Any:
        async def guarded(request: web.Request) -> web.StreamResponse:
            rec = await self.record(request)
            token = bearer(request)  # Bearer Token1 or Token2 [seed 000] [seed 002]
            if token is None or token not in self.tokens or token in self.refused:
                return error(401, "unauthorized", "Invalid or missing API token.")  # [guess]
            if "user_id" in request.match_info and request.match_info["user_id"] != self.user_id:
                return error(403, "forbidden", "Not your account.")  # [guess]
            # ~1 request/s per account with bursts, else 429 rate_limited [seed 000]; that
            # Serverless shares it and Retry-After are [guess].
            if self._limited():
                self.rate_limited += 1
                headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
                response = error(429, "rate_limited", "Too many requests.")
                response.headers.update(headers)
                return response
            # [guess] a JSON object body wherever one is sent; cancel needs none.
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
    # ---- machines: beyond seed 000, third-party (CONJURE) or [guess]; no official client ----
    def _status(self, m: TestMachine) -> str | None:
        """None: RunComfy does not know it (stopped, or the brief 404 after launch [guess]).
        Starting [CONJURE Postman copy], Initializing [guess], Ready [seed 000], Error
        [CONJURE client]; gone once its duration from Ready runs out [CONJURE Postman copy]."""
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
        """The machine object [CONJURE Postman copy]; main_service_url once Ready [seed 000];
        the "guess" variant's aliases, lower case and extra field are [guess]."""
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
        # A bare array [CONJURE client]; wrapped with a count in the "guess" variant [guess].
        return {key: items, "count": len(items)} if self.variant == "guess" else items

    async def list_workflows(self, request: web.Request, body: Any) -> web.Response:
        # [seed 000] (path, version_id); fields [CONJURE client].
        return web.json_response(self._list(self.workflows, "workflows"))

    async def list_machines(self, request: web.Request, body: Any) -> web.Response:
        # [seed 000] (the operation); path and shape [CONJURE client].
        found = [
            self._machine_json(m, s)
            for m in self.machines.values()
            if (s := self._status(m)) is not None
        ]
        return web.json_response(self._list(found, "servers"))

    async def launch(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        # Body [CONJURE client]; server types and seconds [seed 000]; answers at once with
        # the machine [seed 000]; the 400s and 404 are [guess].
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
        # [CONJURE Postman copy]; 404 while unknown [guess].
        m, status = self._find(request)
        if m is None or status is None:
            return error(404, "not_found", "Server not found.")
        return web.json_response(self._machine_json(m, status))

    async def stop_machine(self, request: web.Request, body: Any) -> web.Response:
        # Billing ends with the DELETE [seed 000]; the machine object back [CONJURE Postman
        # copy] (which says Deleting; "Stopping" here is [guess]); 404 when gone [guess].
        m, status = self._find(request)
        if m is None or status is None:
            return error(404, "not_found", "Server not found.")
        m.stopped = time.monotonic()
        return web.json_response(self._machine_json(m, "Stopping"))

    async def duration(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        # {update_estimated_duration} once Ready [seed 000] [CONJURE Postman copy]; the
        # "guess" variant's key estimated_duration [guess].
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
        # includes=payload|readme, ids= [seed 004]; unknown keys refused [guess].
        includes = request.query.getall("includes", [])
        if set(request.query) - {"includes", "ids"} or set(includes) - {"payload", "readme"}:
            return error(400, "invalid_request", "Unknown query parameter.")
        view = {k: v for k, v in dep.items() if k != "payload" or "payload" in includes}
        if "readme" in includes:
            view["readme"] = "# readme"
        return view

    async def list_deployments(self, request: web.Request, body: Any) -> web.Response:
        # A bare array: runcomfy-cli src/cmd/deployments.rs `list` ("The API returns a bare
        # array").
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
        # Every field required, one hardware SKU [seed 004]; 422 and the answer without
        # payload [guess].
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
        # Fields [seed 004]. `name` is required on every PATCH: runcomfy-cli
        # src/cmd/deployments.rs `update` quotes "Deployment name is required" and runcomfy-mcp
        # server.py says so; the 400 and error code are [guess].
        dep = self.deployments.get(request.match_info["dep"])
        if dep is None:
            return error(404, "not_found", "Deployment not found.")
        if "name" not in body:
            return error(400, "invalid_request", "Deployment name is required")
        if set(body) - PATCH_FIELDS:
            return error(422, "invalid_request", f"unknown {sorted(set(body) - PATCH_FIELDS)}")
        dep.update(body, updated_at=now_iso())
        return web.json_response({k: v for k, v in dep.items() if k != "payload"})

    async def delete_deployment(self, request: web.Request, body: Any) -> web.Response:
        # [seed 004]; the answer's shape [guess].
        if self.deployments.pop(request.match_info["dep"], None) is None:
            return error(404, "not_found", "Deployment not found.")
        return web.json_response({"id": request.match_info["dep"], "deleted": True})

    # ---- serverless: inference ----
    async def submit(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        dep = self.deployments.get(request.match_info["dep"])
        if dep is None:
            return error(404, "not_found", "Deployment not found.")  # [guess]
        refused = self._webhook_refused(request, body)
        if refused is not None:
            return refused
        # Fields [seed 002] [seed 004]; a body with neither graph part is refused [guess].
        if set(body) - INFERENCE_FIELDS or not ({"overrides", "workflow_api_json"} & set(body)):
            return error(400, "invalid_request", "Give overrides and/or workflow_api_json only.")
        if self.error_in_200 > 0:  # [guess] an error body with 200, docs/WIRE.md §2.3
            self.error_in_200 -= 1
            return web.json_response({"error_code": "insufficient_balance",
                                      "error_message": "Your balance is too low."})
        graph = json.loads(json.dumps(body.get("workflow_api_json")
                                      or dep["payload"]["workflow_api_json"]))
        # Overrides merge into the stored workflow [seed 002]. Seed 002 says unmatched ones
        # are silently ignored; refusing them makes a client's mistake loud [guess].
        for nid, change in (body.get("overrides") or {}).items():
            if nid not in graph or set(change) != {"inputs"}:
                return error(400, "invalid_overrides", f"Unknown node {nid}.")
            graph[nid]["inputs"].update(change["inputs"])
        rid = str(uuid.uuid4())
        req = Request(rid, dep["id"], graph, webhook=request.query.get("webhook", ""))
        self.inference[rid] = req
        self._note_outstanding()
        self._tasks.add(asyncio.ensure_future(self._execute(req)))
        base = f"{self.url}/prod/v1/deployments/{dep['id']}/requests/{rid}"
        return web.json_response({"request_id": rid, "status_url": base + "/status",
                                  "result_url": base + "/result", "cancel_url": base + "/cancel"})

    def _webhook_refused(self, request: web.Request, body: dict[str, Any]) -> web.Response | None:
        """Webhooks only as query parameters (WEBHOOK_QUERY says why); None when fine."""
        if WEBHOOK_QUERY & set(body):
            return error(400, "invalid_request",
                         "webhook and webhook_intermediate_status go in the query string.")
        query = request.query
        if set(query) - WEBHOOK_QUERY:
            return error(400, "invalid_request", "Unknown query parameter.")
        if "webhook" in query and not query["webhook"].startswith(("https://", "http://")):
            return error(400, "invalid_request", "webhook must be an http(s) URL.")
        if query.get("webhook_intermediate_status", "false") not in ("true", "false"):
            return error(400, "invalid_request", "webhook_intermediate_status: true or false.")
        return None

    def _note_outstanding(self) -> None:
        outstanding = sum(1 for r in self.inference.values() if not r.fetched)
        self.max_outstanding = max(self.max_outstanding, outstanding)

    async def _execute(self, req: Request) -> None:
        # Up to max_instances run at once, the rest queue [seed 004: autoscaling] [guess].
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.instances)
        async with self._sem:
            if req.state != "in_queue":
                return
            req.state = "in_progress"
            if self._warm < self.instances:  # this instance starts cold
                self._warm += 1
                self.serverless_billed += self.cold_start
                await asyncio.sleep(self.cold_start)
            self.serverless_billed += self.run_time
            await asyncio.sleep(self.run_time)
            if req.state != "in_progress":
                return
            self._outputs(req)
            req.state = "completed"

    def _outputs(self, req: Request) -> None:
        """An input "FAIL" fails its node [guess: how a node fails]; else each Save node
        gives one PNG carrying the prompt, as ComfyUI's SaveImage (docs/WIRE.md §1.5)."""
        for nid, node in req.graph.items():
            for name, value in node.get("inputs", {}).items():
                if value == "FAIL":
                    req.outcome = "failed"
                    req.failure = {"node_id": nid, "node_type": node["class_type"],
                                   "message": f"input {name} made the node fail"}
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
            return error(404, "not_found", "Request not found.")  # [guess]
        data: dict[str, Any] = {"request_id": req.request_id, "status": self._state(req)}
        if req.state == "in_queue":  # queue_position [seed 002] [seed 004]
            queued = [r for r in self.inference.values() if r.state == "in_queue"]
            data["queue_position"] = queued.index(req)
        else:
            data["instance_id"] = "inst-1"  # [seed 004]
        if req.failure is not None and self.error_in_status:
            data["error"] = self._error(req.failure)
        return web.json_response(data)

    def _state(self, req: Request) -> str:
        """The status endpoint's word: in_queue, in_progress [seed 002]; see the spelling
        options for the ends."""
        if req.state == "cancelled":
            return self.cancel_spelling
        if req.state == "completed":
            return self.failed_status if req.outcome == "failed" else self.done_spelling
        return req.state

    def _error(self, failure: dict[str, str]) -> Any:
        """A failed result's `error` in the shape `error_shape` names."""
        text = f"{failure['node_type']} node {failure['node_id']}: {failure['message']}"
        if self.error_shape == "list":  # go-runcomfyserverless request.go
            trace = ("Traceback (most recent call last):\n  File \"execution.py\", line 1\n"
                     f"RuntimeError: {failure['message']}")
            return [{"errorCode": 500, "error": text, "debugInfo": trace}]
        if self.error_shape == "string":  # [guess]
            return text
        return {"error_type": "ExecutionError", "node_id": failure["node_id"],  # [guess]
                "node_type": failure["node_type"], "error_message": failure["message"]}

    async def req_result(self, request: web.Request, body: Any) -> web.Response:
        req = self._req(request)
        if req is None:
            return error(404, "not_found", "Request not found.")  # [guess]
        # succeeded | failed | in_queue | in_progress | canceled [seed 002]; the other fields
        # [seed 004].
        status = req.outcome if req.state == "completed" else self._state(req)
        data: dict[str, Any] = {"request_id": req.request_id, "status": status,
                                "created_at": now_iso(), "instance_id": "inst-1"}
        if req.state == "completed":
            req.fetched = True
            data.update(self._files(req), finished_at=now_iso())
            if req.failure is not None:
                data["error"] = self._error(req.failure)
        elif req.state == "cancelled":
            req.fetched = True
        return web.json_response(data)

    def _files(self, req: Request) -> dict[str, Any]:
        """`outputs` keyed by node [seed 004]; a LoRA deployment's `output` (runcomfy-cli
        src/cmd/mod.rs), here a list of bare URLs [guess]; or what reshape_outputs makes."""
        if self.reshape_outputs is not None:
            return self.reshape_outputs(req.outputs)
        if req.deployment_id in self.lora_deployments:
            urls = [f["url"] for out in req.outputs.values() for f in out["images"]]
            return {"output": urls}
        return {"outputs": req.outputs}

    async def req_cancel(self, request: web.Request, body: Any) -> web.Response:
        req = self._req(request)
        if req is None:
            return error(404, "not_found", "Request not found.")  # [guess]
        if req.state not in ("in_queue", "in_progress"):
            # [seed 002] [go-runcomfyserverless actions.go]; HTTP 200 is [guess].
            return web.json_response({"request_id": req.request_id, "status": "not_cancellable"})
        if self.cancel_reply == "outcome":  # [seed 004 §3.4]: the answer says it is done
            self._cancelled(req)
            return web.json_response({"request_id": req.request_id, "status": "completed",
                                      "outcome": "cancelled"}, status=202)
        if req.state == "in_queue" or self.cancel_delay == 0:
            self._cancelled(req)  # [guess] a queued request never starts
        elif self.cancel_delay is not None:
            self._tasks.add(asyncio.ensure_future(self._cancel_later(req, self.cancel_delay)))
        # 202 [seed 004]; status cancellation_requested [seed 002] [go-runcomfyserverless].
        return web.json_response({"request_id": req.request_id,
                                  "status": "cancellation_requested"}, status=202)

    def _cancelled(self, req: Request) -> None:
        req.state = "cancelled"
        req.fetched = True

    async def _cancel_later(self, req: Request, delay: float) -> None:
        """A requested cancel reaches the running job late; it may finish first."""
        await asyncio.sleep(delay)
        if req.state == "in_progress":
            self._cancelled(req)
