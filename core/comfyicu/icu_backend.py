"""ComfyICU: runs of a saved workflow, docs/WIRE.md §4.

ComfyICU takes input files only by URL (it downloads them before the run), has no cancel
endpoint and reports no node progress: the back end says so through its Capabilities.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import Field, PrivateAttr, ValidationError

from ..errors import (
    AuthenticationFailed,
    CancelledByUser,
    ComfyRelayError,
    ConnectionFailed,
    ExecutionFailed,
    ServerError,
    WorkflowError,
    transient,
)
from ..jobs.backend_api import Backend, Capabilities, JobContext
from ..jobs.events import JobOutput, JobProgress, JobQueued
from ..jobs.job import Job
from ..jobs.media import media_kind
from ..jobs.workflow import MEDIA_LOADERS
from ..net.downloads import Unreachable, UrlFetcher, url_name, wait
from ..net.files import safe_name
from ..net.http import DEFAULT_TIMEOUT, HttpClient
from ..net.ratelimit import (
    DEFAULT_POLICY,
    Cancelled,
    RetryPolicy,
    TokenBucket,
    bucket,
    never,
    send_limited,
)
from ..net.wire import Wire, shape

log = logging.getLogger(__name__)

DEFAULT_API = "https://comfy.icu/api/v1"
SERVICE = "ComfyICU API"
ACCELERATORS = ("T4", "L4", "A10", "A100_40GB", "A100_80GB", "H100")
FINISHED_OK = {"completed", "succeeded", "success"}
FINISHED_BAD = {"error", "failed", "cancelled", "canceled"}


class OutputFile(Wire):
    filename: str = ""
    url: str = ""
    thumbnail_url: str = ""


class Run(Wire):
    id: str = Field(default="")
    status: str = ""
    created_at: Any = None
    run_time: Any = None
    output: Any = None  # a flat list of files [guess]: read leniently, docs/WIRE.md §4.2
    outputs: Any = None
    error: Any = None
    _shape: str = PrivateAttr(default="")  # what the answer held, for errors

    @property
    def state(self) -> str:
        return self.status.strip().lower()

    def files(self) -> list[OutputFile]:
        """Every object with a download `url` under `output` (or `outputs`), a flat list or
        nested by node like ComfyUI's."""
        found = []
        for item in url_items(self.output) + url_items(self.outputs):
            try:
                found.append(OutputFile.model_validate(item))
            except ValidationError:
                continue
        return found


def url_items(value: Any, depth: int = 4) -> list[dict[str, Any]]:
    """Objects with a `url` string, in lists and objects nested up to `depth` deep."""
    if isinstance(value, dict):
        if isinstance(value.get("url"), str):
            return [value]
        children = list(value.values())
    elif isinstance(value, list):
        children = value
    else:
        return []
    if depth <= 0:
        return []
    return [item for child in children for item in url_items(child, depth - 1)]


class ComfyICU:
    """The runs endpoints of one account."""

    def __init__(
        self,
        api_key: str,
        *,
        api_url: str = DEFAULT_API,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        limiter: TokenBucket | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        if not api_key:
            raise AuthenticationFailed("No ComfyICU API key: set COMFYICU_API_KEY.")
        self.http = HttpClient(api_url, token=api_key, timeout=timeout, service=SERVICE)
        self.http.session.headers["Accept"] = "application/json"
        self.limiter = limiter or bucket("comfyicu")
        self.policy = policy

    def create_run(
        self,
        workflow_id: str,
        prompt: dict[str, Any],
        *,
        files: dict[str, str] | None = None,
        accelerator: str | None = None,
        webhook: str | None = None,
        cancelled: Cancelled = never,
    ) -> Run:
        body: dict[str, Any] = {"workflow_id": workflow_id, "prompt": prompt}
        if files:
            body["files"] = files
        if accelerator:
            body["accelerator"] = accelerator
        if webhook:
            body["webhook"] = webhook
        path = f"/workflows/{quote(workflow_id, safe='')}/runs"
        run = self._call("POST", path, cancelled, json=body)
        if not run.id:
            raise ServerError("ComfyICU accepted the run but sent no run id.")
        return run

    def get_run(self, workflow_id: str, run_id: str, cancelled: Cancelled = never) -> Run:
        path = f"/workflows/{quote(workflow_id, safe='')}/runs/{quote(run_id, safe='')}"
        return self._call("GET", path, cancelled)

    def _call(self, method: str, path: str, cancelled: Cancelled, **kwargs: Any) -> Run:
        response = send_limited(
            lambda: self.http.request(method, path, accept=(429,), **kwargs),
            self.limiter,
            cancelled=cancelled,
            policy=self.policy,
            service=SERVICE,
        )
        data = self.http.parse(response, path)
        if not isinstance(data, dict):
            raise ServerError(f"ComfyICU sent an unexpected answer to {method} {path}.")
        if data.get("error") and not data.get("id"):
            detail = self.http.redact(str(data["error"]))[:300]
            raise ServerError(f"ComfyICU refused the request: {detail}", 200)
        run = Run.model_validate(data)
        run._shape = shape(data)
        return run

    def close(self) -> None:
        self.http.close()


def is_url(value: Any) -> bool:
    return isinstance(value, str) and urlsplit(value).scheme in ("http", "https")


def url_inputs(graph: dict[str, Any], files: dict[str, str]) -> dict[str, str]:
    """Loader inputs set to URLs become files {"/input/name": url}, the input the bare name."""
    files = dict(files)
    for node in graph.values():
        key = MEDIA_LOADERS.get(node.get("class_type", ""))
        value = node.get("inputs", {}).get(key) if key else None
        if key and isinstance(value, str) and is_url(value):
            name = safe_name(url_name(value) or "input.png")
            files.setdefault(f"/input/{name}", value)
            node["inputs"][key] = name
    return files


@dataclass
class _Run:
    workflow_id: str
    run_id: str
    out_dir: Path
    started: float
    state: str = ""


class ComfyICUBackend(Backend):
    """Runs of one ComfyICU workflow (its workflow_id from "View API code")."""

    name = "comfyicu"
    capabilities = Capabilities(cancel=False, live_progress=False, previews=False, uploads=False)
    NO_CANCEL = (
        "ComfyICU has no way to cancel a run: it keeps running (and billing) there; this app "
        "only stops waiting for it."
    )

    def __init__(
        self,
        client: ComfyICU,
        workflow_id: str,
        *,
        accelerator: str | None = None,
        files: dict[str, str] | None = None,
        poll_interval: float = 3.0,
        job_timeout: float = 3600.0,
        lost_after: float = 60.0,
    ) -> None:
        if accelerator is not None and accelerator not in ACCELERATORS:
            raise ComfyRelayError(
                f"Unknown ComfyICU accelerator {accelerator!r}; use one of "
                f"{', '.join(ACCELERATORS)}."
            )
        self.client = client
        self.workflow_id = workflow_id
        self.accelerator = accelerator
        self.files = dict(files or {})  # {"/input/x.png": "https://..."} for every run
        self.poll_interval = poll_interval
        self.job_timeout = job_timeout
        self.lost_after = lost_after
        self.fetcher = UrlFetcher("ComfyICU")

    def check(self) -> str:
        # No read-only endpoint is documented (docs/WIRE.md §4.1); a missing key is the likely
        # mistake.
        return f"ComfyICU workflow {self.workflow_id} (checked when a run is sent)"

    def start(self, job: Job, ctx: JobContext) -> _Run:
        ctx.raise_if_cancelled()
        if job.all_media():
            name = job.all_media()[0].file.name
            raise WorkflowError(
                f"ComfyICU cannot take the image {name!r} from this app: it only "
                "downloads input files from public URLs. Upload the image somewhere public "
                "(https://...) and give that URL as the image loader's value (the workflow's "
                "input field, or `--set NODE.image=URL` on the command line), or add it to "
                "the ComfyICU input files as /input/NAME=URL; then run without sending an "
                "image. Nothing was sent."
            )
        graph = job.workflow.bind(job.bindings)
        files = url_inputs(graph, self.files)
        run = self.client.create_run(
            self.workflow_id, graph, files=files or None, accelerator=self.accelerator,
            cancelled=ctx.is_cancelled,
        )
        ctx.emit(JobQueued(ctx.job_id))
        return _Run(self.workflow_id, run.id, job.out_dir, time.monotonic())

    def finish(self, handle: Any, ctx: JobContext) -> list[Path]:
        run: _Run = handle
        result = self._wait(run, ctx)
        if result.state in FINISHED_BAD:
            detail = f": {str(result.error)[:300]}" if result.error else " (no details given)"
            raise ExecutionFailed(
                f"The ComfyICU run {run.run_id} ended with {result.status}{detail}"
            )
        return self._download(run, result, ctx)

    def _wait(self, run: _Run, ctx: JobContext) -> Run:
        lost = Unreachable("ComfyICU", self.lost_after)
        while True:
            if ctx.cancelled:
                log.warning(self.NO_CANCEL)
                raise CancelledByUser("Stopped waiting. " + self.NO_CANCEL)
            if time.monotonic() - run.started > self.job_timeout:
                raise ServerError(
                    f"The ComfyICU run {run.run_id} did not finish within "
                    f"{self.job_timeout / 60:.0f} min. Check it on comfy.icu."
                )
            try:
                result = self.client.get_run(run.workflow_id, run.run_id, ctx.is_cancelled)
                lost.ok()
            except CancelledByUser:
                continue
            except (ConnectionFailed, ServerError) as exc:
                if not transient(exc):
                    raise
                lost.failed(exc)
            else:
                if result.state in FINISHED_OK | FINISHED_BAD:
                    return result
                if result.state != run.state:
                    run.state = result.state
                    if result.state in ("started", "running"):
                        ctx.emit(JobProgress(ctx.job_id, 0.0, message="Running on ComfyICU"))
            wait(ctx, self.poll_interval)

    def _download(self, run: _Run, result: Run, ctx: JobContext) -> list[Path]:
        files = result.files()
        if not files:
            raise ExecutionFailed(
                f"The ComfyICU run {run.run_id} ended as {result.status} but sent back no "
                f"output files; its answer held {result._shape}. Check the run on comfy.icu."
            )
        paths = []
        for item in files:
            path = self.fetcher.save(item.url, run.out_dir, item.filename)
            paths.append(path)
            kind = media_kind(item.filename or path.name)
            ctx.emit(JobOutput(ctx.job_id, path, "", kind, kind == "video"))
        return paths

    def close(self) -> None:
        self.fetcher.close()
        self.client.close()


__all__ = ["ACCELERATORS", "ComfyICU", "ComfyICUBackend", "Run"]
