"""A strict Comfy API v2 test server that follows the public OpenAPI spec 2.0.0, for what
comfy-api-proxy cannot be made to do: 402 insufficient_credits, 429 queue_full and
deployment_not_ready with Retry-After, 429 rate_limited, 503 while starting, per-node
validation errors in the spec's shape, confirmed cancels, Stripe-style replayed submits
(the older 2.0.0 text), host-relative links under a mount prefix, outputs on another origin.

Each behaviour names the operation or schema of the spec it follows. A job "runs" by
inverting the image its core/ASSET reference names, so outputs have checkable pixels.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import blake3
from aiohttp import web
from PIL import Image, ImageOps

from tests.servers.aio import AioServer, Recorded, bearer


def envelope(status: int, code: str, message: str, *, details: Any = None,
             retry_after: float | None = None) -> web.Response:
    """[spec] ErrorEnvelope: {"error": {"code", "message", "details"}}."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    return web.json_response({"error": {"code": code, "message": message, "details": details}},
                             status=status, headers=headers)


@dataclass
class Knobs:
    """Behaviour on demand; tests change it at any time."""

    insufficient_credits: bool = False  # postJobs 402
    queue_full: int = 0  # postJobs: this many 429 queue_full answers first
    not_ready: int = 0  # postJobs: this many 429 deployment_not_ready answers first
    starting_503: int = 0  # postJobs: this many 503 + Retry-After answers first [inferred]
    rate_limited: int = 0  # getJob: this many 429 rate_limited answers first
    retry_after: float = 0.2
    replay: bool = False  # older 2.0.0 text: same key replays the job (Stripe semantics)
    lose_first_submit: bool = False  # the first submit's answer is lost after the job exists
    relative_links: bool = False  # JobUrls as host-relative references
    storage_origin: bool = False  # Output.url on another origin (signed storage, no auth)
    output_shape: Any = None  # outputs sent verbatim instead of the spec's Output list
    output_content_type: str = "image/png"
    output_type: str = "image"
    run_time: float = 0.3


@dataclass
class ApiJob:
    id: str
    graph: dict[str, Any]
    status: str = "queued"
    outputs: list[dict[str, Any]] = field(default_factory=list)
    progress: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class ComfyApiTestServer(AioServer):
    def __init__(self, api_key: str = "", prefix: str = "") -> None:
        super().__init__()
        self.api_key = api_key
        self.prefix = prefix  # a mount prefix, as a serverless gateway's /deployment/{id}
        self.knobs = Knobs()
        self.jobs: dict[str, ApiJob] = {}
        self.keys: dict[str, str] = {}  # Idempotency-Key -> job id
        self.assets: dict[str, dict[str, Any]] = {}
        self.blobs: dict[str, bytes] = {}  # hash -> bytes
        self.tasks: set[asyncio.Future[None]] = set()  # running jobs, kept from the GC

    @property
    def base(self) -> str:
        return self.url + self.prefix

    def routes(self) -> list[web.RouteDef]:
        p = self.prefix + "/api/v2"
        return [
            web.post(p + "/assets", self.post_assets),
            web.post(p + "/assets/from-hash", self.from_hash),
            web.head(p + "/assets/by-hash/{hash}", self.by_hash),
            web.get(p + "/assets/{id}", self.get_asset),
            web.get(p + "/assets/{id}/content", self.content),
            web.post(p + "/jobs", self.post_jobs),
            web.get(p + "/jobs", self.list_jobs),
            web.get(p + "/jobs/{id}", self.get_job),
            web.get(p + "/jobs/{id}/workflow", self.job_workflow),
            web.get(p + "/jobs/{id}/events", self.events),
            web.post(p + "/jobs/{id}/cancel", self.cancel),
        ]

    def note(self, request: web.Request) -> web.Response | None:
        """Record the request; [spec] bearerAuth: a wrong or missing key is 401."""
        self.requests.append(Recorded(request.method, request.path, request.query_string,
                                      request.headers.get("Authorization", ""),
                                      request.headers.get("Idempotency-Key")))
        if self.api_key and bearer(request) != self.api_key:
            return envelope(401, "unauthorized", "Missing or invalid credentials.")
        return None

    # ---- assets ----
    def asset_json(self, aid: str) -> dict[str, Any]:
        """[spec] Asset."""
        a = self.assets[aid]
        return {"id": aid, "hash": a["hash"], "size_bytes": len(self.blobs[a["hash"]]),
                "content_type": a["content_type"], "file_path": a["file_path"],
                "created_at": "2026-01-01T00:00:00Z", "url": self.link(f"/assets/{aid}/content"),
                "url_expires_at": "2099-01-01T00:00:00Z"}

    def mint(self, content_hash: str, file_path: str, content_type: str) -> str:
        aid = str(uuid.uuid4())
        self.assets[aid] = {"hash": content_hash, "file_path": file_path,
                            "content_type": content_type}
        return aid

    async def post_assets(self, request: web.Request) -> web.Response:
        """[spec] postAssets: the server hashes; expected_hash is verified (409)."""
        if (denied := self.note(request)) is not None:
            return denied
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField) or not form.get("file_path"):
            return envelope(422, "invalid_request", "file and file_path are required.")
        data = upload.file.read()
        content_hash = "blake3:" + blake3.blake3(data).hexdigest()
        expected = str(form.get("expected_hash") or "")
        if expected and expected != content_hash:
            return envelope(409, "hash_mismatch", "The bytes do not match expected_hash.")
        known = content_hash in self.blobs
        self.blobs[content_hash] = data
        aid = self.mint(content_hash, str(form["file_path"]), str(form.get("content_type")))
        return web.json_response({**self.asset_json(aid), "created_new": not known},
                                 status=200 if known else 201)

    async def from_hash(self, request: web.Request) -> web.Response:
        """[spec] assetFromHash: 201 over a known blob, 404 blob_not_found."""
        if (denied := self.note(request)) is not None:
            return denied
        body = await request.json()
        if body.get("hash") not in self.blobs:
            return envelope(404, "blob_not_found", "No blob the caller may mint from.")
        aid = self.mint(body["hash"], body.get("file_path") or "", "image/png")
        return web.json_response(self.asset_json(aid), status=201)

    async def by_hash(self, request: web.Request) -> web.Response:
        """[spec] headAssetByHash: 200 or 404."""
        if (denied := self.note(request)) is not None:
            return denied
        return web.Response(status=200 if request.match_info["hash"] in self.blobs else 404)

    async def get_asset(self, request: web.Request) -> web.Response:
        """[spec] getAsset: a fresh url each time."""
        if (denied := self.note(request)) is not None:
            return denied
        aid = request.match_info["id"]
        if aid not in self.assets:
            return envelope(404, "not_found", "No such asset.")
        return web.json_response(self.asset_json(aid))

    async def content(self, request: web.Request) -> web.Response:
        """[spec] getAssetContent: the bytes (self-hosted surfaces serve them directly)."""
        if (denied := self.note(request)) is not None:
            return denied
        aid = request.match_info["id"]
        if aid not in self.assets:
            return envelope(404, "not_found", "No such asset.")
        a = self.assets[aid]
        return web.Response(body=self.blobs[a["hash"]], content_type=a["content_type"])

    # ---- jobs ----
    def link(self, tail: str) -> str:
        """[spec] JobUrls: absolute, or host-relative carrying the mount prefix."""
        path = self.prefix + "/api/v2" + tail
        return path if self.knobs.relative_links else self.url + path

    def job_json(self, job: ApiJob) -> dict[str, Any]:
        """[spec] Job."""
        return {
            "id": job.id, "status": job.status, "created_at": "2026-01-01T00:00:00Z",
            "started_at": None, "completed_at": None, "expires_at": "2099-01-01T00:00:00Z",
            "queue_position": 1 if job.status == "queued" else None, "progress": job.progress,
            "outputs": job.outputs if self.knobs.output_shape is None or job.status != "succeeded"
            else self.knobs.output_shape,
            "error": job.error, "urls": {"self": self.link(f"/jobs/{job.id}"),
                                         "events": self.link(f"/jobs/{job.id}/events"),
                                         "cancel": self.link(f"/jobs/{job.id}/cancel")},
        }

    async def post_jobs(self, request: web.Request) -> web.StreamResponse:
        """[spec] postJobs."""
        if (denied := self.note(request)) is not None:
            return denied
        k = self.knobs
        body = await request.json()
        key = request.headers.get("Idempotency-Key")
        if key and key in self.keys:
            if k.replay:  # older 2.0.0 text: Stripe semantics, the recorded job replayed
                job = self.jobs[self.keys[key]]
                return web.json_response(self.job_json(job), status=201,
                                         headers={"Idempotency-Replayed": "true"})
            return envelope(422, "idempotency_key_reuse", "This Idempotency-Key was used.")
        if k.insufficient_credits:
            return envelope(402, "insufficient_credits", "The account has no credits left.")
        for name, code, status in (("queue_full", "queue_full", 429),
                                   ("not_ready", "deployment_not_ready", 429),
                                   ("starting_503", "deployment_not_ready", 503)):
            if getattr(k, name) > 0:
                setattr(k, name, getattr(k, name) - 1)
                return envelope(status, code, f"{code}: back off", retry_after=k.retry_after)
        graph = body.get("workflow")
        if not isinstance(graph, dict):
            return envelope(422, "invalid_workflow", "Missing 'workflow'.")
        if "nodes" in graph and "links" in graph:
            return envelope(422, "workflow_format_ui", "This is a UI-format export.")
        bad = {nid: [{"field": name, "reason": "value_not_in_list"}]
               for nid, node in graph.items()
               for name, value in (node.get("inputs") or {}).items() if value == "not-a-choice"}
        if bad:
            return envelope(422, "invalid_workflow", "Prompt outputs failed validation",
                            details={"node_errors": bad})
        job = ApiJob(str(uuid.uuid4()), graph)
        self.jobs[job.id] = job
        if key:
            self.keys[key] = job.id
        self.tasks.add(asyncio.ensure_future(self._run(job)))
        if k.lose_first_submit:
            k.lose_first_submit = False
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=599)
        return web.json_response(self.job_json(job), status=201)

    async def _run(self, job: ApiJob) -> None:
        await asyncio.sleep(0.05)
        if job.status != "queued":
            return
        job.status = "running"
        steps = 4
        for step in range(1, steps + 1):
            await asyncio.sleep(self.knobs.run_time / steps)
            if job.status != "running":
                return
            job.progress = {"value": step / (steps + 1), "nodes_done": 1, "nodes_total": 3,
                            "current_node": "2", "current_node_class": "ImageInvert",
                            "step": step, "steps": steps}
        data = self._result(job.graph)
        content_hash = "blake3:" + blake3.blake3(data).hexdigest()
        self.blobs[content_hash] = data
        aid = self.mint(content_hash, "inverted_00001_.png", self.knobs.output_content_type)
        url = self.link(f"/assets/{aid}/content")
        if self.knobs.storage_origin:  # another origin: signed, and refusing any auth header
            url = self.store("inverted_00001_.png", data).replace("127.0.0.1", "localhost")
        elif not url.startswith("http"):
            url = self.url + url
        job.outputs = [{"node_id": "3", "name": "inverted_00001_.png",
                        "type": self.knobs.output_type,
                        "content_type": self.knobs.output_content_type,
                        "size_bytes": len(data), "id": aid, "hash": None, "url": url,
                        "url_expires_at": "2099-01-01T00:00:00Z"}]
        job.status = "succeeded"

    def _result(self, graph: dict[str, Any]) -> bytes:
        source = Image.new("RGB", (8, 8), (10, 20, 30))
        for node in graph.values():
            for value in (node.get("inputs") or {}).values():
                if isinstance(value, dict) and value.get("__type") == "core/ASSET":
                    a = self.assets[value["info"]["id"]]
                    source = Image.open(io.BytesIO(self.blobs[a["hash"]])).convert("RGB")
        buf = io.BytesIO()
        ImageOps.invert(source).save(buf, "PNG")
        return buf.getvalue()

    async def list_jobs(self, request: web.Request) -> web.Response:
        if (denied := self.note(request)) is not None:
            return denied
        newest = list(reversed(self.jobs.values()))
        return web.json_response({"jobs": [self.job_json(j) for j in newest[:20]]})

    async def get_job(self, request: web.Request) -> web.Response:
        """[spec] getJob; 429 rate_limited is its RateLimited response."""
        if (denied := self.note(request)) is not None:
            return denied
        if self.knobs.rate_limited > 0:
            self.knobs.rate_limited -= 1
            return envelope(429, "rate_limited", "Too many requests.",
                            retry_after=self.knobs.retry_after)
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return envelope(404, "not_found", "No such job.")
        return web.json_response(self.job_json(job))

    async def job_workflow(self, request: web.Request) -> web.Response:
        """[spec] getJobWorkflow: the executed graph, format api."""
        if (denied := self.note(request)) is not None:
            return denied
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return envelope(404, "not_found", "No such job.")
        return web.json_response({"workflow": job.graph, "format": "api"})

    async def cancel(self, request: web.Request) -> web.Response:
        """[spec] cancelJob: running → canceling → canceled; a terminal job stays as is."""
        if (denied := self.note(request)) is not None:
            return denied
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return envelope(404, "not_found", "No such job.")
        if job.status in ("queued", "running"):
            job.status = "canceling"
            asyncio.get_running_loop().call_later(0.1, setattr, job, "status", "canceled")
        return web.json_response(self.job_json(job))

    async def events(self, request: web.Request) -> web.StreamResponse:
        """[spec] getJobEvents: a snapshot on connect, then changes; ends after the terminal
        status. Payloads: StatusEvent, Progress, PreviewEvent."""
        if (denied := self.note(request)) is not None:
            return denied
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return envelope(404, "not_found", "No such job.")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        last: tuple[Any, ...] = ()
        preview = base64.b64encode(self._result(job.graph)).decode()
        while True:
            state = (job.status, json.dumps(job.progress))
            if state != last:
                last = state
                await response.write(frame("status", {"status": job.status}))
                if job.progress:
                    await response.write(frame("progress", job.progress))
                    await response.write(frame("preview", {
                        "node_id": "2", "content_type": "image/png", "data_base64": preview}))
            if job.status in ("succeeded", "failed", "canceled", "expired"):
                break
            await asyncio.sleep(0.02)
        await response.write_eof()
        return response


def frame(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
