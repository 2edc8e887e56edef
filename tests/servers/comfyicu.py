"""A strict ComfyICU test server (docs/WIRE.md §4): runs go QUEUED -> STARTED -> COMPLETED
(or ERROR); outputs are a flat list of signed URLs on this server; input files by URL only."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.servers.aio import AioServer, bearer, now_iso, png

ACCELERATORS = {"T4", "L4", "A10", "A100_40GB", "A100_80GB", "H100"}
RUN_FIELDS = {"workflow_id", "prompt", "files", "webhook", "accelerator"}


@dataclass
class TestRun:
    id: str
    workflow_id: str
    prompt: dict[str, Any]
    files: dict[str, str]
    created: float = field(default_factory=time.monotonic)
    output: list[dict[str, Any]] | None = None
    error: str = ""


class ComfyICUTestServer(AioServer):
    def __init__(
        self,
        *,
        api_key: str = "icu-key-SECRET",
        queue_time: float = 0.1,
        run_time: float = 0.2,
        lowercase: bool = False,
        url_ttl: float = 30.0,
    ) -> None:
        super().__init__(url_ttl)
        self.api_key = api_key
        self.queue_time = queue_time
        self.run_time = run_time
        self.lowercase = lowercase  # some clients report lower-case statuses
        self.runs: dict[str, TestRun] = {}
        self.output_name: str | None = None  # outputs reported under this filename
        self.url_name: str | None = None  # the file name in output URLs
        # Given a finished run's output list, the fields to send in place of `output` (an
        # answer of a shape the docs do not describe).
        self.reshape_output: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/workflows/{wid}/runs", self.create),
            web.get("/api/v1/workflows/{wid}/runs/{rid}", self.get),
        ]

    def _refuse(self, request: web.Request) -> web.Response | None:
        if bearer(request) != self.api_key:
            return web.json_response({"error": "Unauthorized"}, status=401)
        if request.query_string:
            return web.json_response({"error": "Unexpected query"}, status=400)
        return None

    async def create(self, request: web.Request) -> web.Response:
        rec = await self.record(request)
        refused = self._refuse(request)
        if refused is not None:
            return refused
        body = rec.body
        if not isinstance(body, dict) or set(body) - RUN_FIELDS:
            return web.json_response({"error": "Unknown fields"}, status=400)
        if body.get("workflow_id") != request.match_info["wid"] or not isinstance(
            body.get("prompt"), dict
        ):
            return web.json_response({"error": "workflow_id and prompt are required"}, status=400)
        files = body.get("files") or {}
        if not isinstance(files, dict) or any(
            not k.startswith("/") or not str(v).startswith(("http://", "https://"))
            for k, v in files.items()
        ):
            return web.json_response({"error": "files must map /paths to URLs"}, status=400)
        if "accelerator" in body and body["accelerator"] not in ACCELERATORS:
            return web.json_response({"error": "Unknown accelerator"}, status=400)
        run = TestRun(uuid.uuid4().hex[:16], body["workflow_id"], body["prompt"], files)
        self.runs[run.id] = run
        return web.json_response(self._json(run))

    async def get(self, request: web.Request) -> web.Response:
        await self.record(request)
        refused = self._refuse(request)
        if refused is not None:
            return refused
        run = self.runs.get(request.match_info["rid"])
        if run is None or run.workflow_id != request.match_info["wid"]:
            return web.json_response({"error": "Run not found"}, status=404)
        return web.json_response(self._json(run))

    def _status(self, run: TestRun) -> str:
        age = time.monotonic() - run.created
        if age < self.queue_time:
            return "QUEUED"
        if age < self.queue_time + self.run_time:
            return "STARTED"
        if run.output is None and not run.error:
            self._finish(run)
        return "ERROR" if run.error else "COMPLETED"

    def _finish(self, run: TestRun) -> None:
        for node in run.prompt.values():
            if node.get("class_type") == "LoadImage":
                name = node["inputs"].get("image")
                if f"/input/{name}" not in run.files:
                    run.error = f"Invalid image file: {name}"
                    return
        run.output = []
        for nid, node in run.prompt.items():
            if node.get("class_type", "").startswith("Save"):
                name = f"{node['inputs'].get('filename_prefix', 'ComfyUI')}_{nid}_00001_.png"
                data = png({"prompt": json.dumps(run.prompt)})
                url = self.store(self.url_name if self.url_name is not None else name, data)
                shown = self.output_name if self.output_name is not None else name
                run.output.append({"filename": shown, "url": url, "thumbnail_url": url})

    def _json(self, run: TestRun) -> dict[str, Any]:
        status = self._status(run)
        data: dict[str, Any] = {
            "id": run.id,
            "status": status.lower() if self.lowercase else status,
            "created_at": now_iso(),
            "run_time": None,
            "name": None,
        }
        if status == "COMPLETED":
            data["output"] = run.output
            data["run_time"] = self.run_time
            if self.reshape_output is not None:
                del data["output"]
                data.update(self.reshape_output(run.output or []))
        if run.error:
            data["error"] = run.error
        return data
