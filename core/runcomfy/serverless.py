"""RunComfy Serverless: deployments (v2) and queued inference (v1), docs/WIRE.md §3.

A deployment autoscales, so many jobs may be in flight at once: start() only submits and
finish() polls one request, which lets JobRunner(max_in_flight=N) keep N submitted while
results still come back in submission order.

Statuses, results, failures and cancels are read as RunComfy's own clients read them: the
official `runcomfy-com/runcomfy-cli` (Rust) and `runcomfy-com/runcomfy-mcp` (Python), and the
third-party `iguanesolutions/go-runcomfyserverless`; docs/WIRE.md §3 gives each fact's source.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import AliasChoices, Field, PrivateAttr, field_validator

from ..errors import (
    CancelledByUser,
    ComfyRelayError,
    ConnectionFailed,
    ExecutionFailed,
    ServerError,
    WorkflowError,
    transient,
)
from ..jobs import loaders
from ..jobs.backend_api import Backend, Capabilities, JobContext
from ..jobs.events import JobOutput, JobProgress, JobQueued
from ..jobs.job import Job
from ..jobs.media import media_kind
from ..jobs.outputs import Produced, results
from ..jobs.workflow import Workflow
from ..net.downloads import Unreachable, UrlFetcher, data_uri, wait
from ..net.ratelimit import Cancelled, never
from ..net.wire import Wire, shape
from .api import RunComfyApi, items

log = logging.getLogger(__name__)

HARDWARE = ("TURING_16", "AMPERE_24", "AMPERE_48", "ADA_48_PLUS", "AMPERE_80", "ADA_80_PLUS",
            "HOPPER_141")
# RunComfy's recommended maximum for images as data URIs (docs/WIRE.md §3.2).
DATA_URI_RECOMMENDED = 256 * 1024
# Our own hard cap (not RunComfy's): base64 adds a third, the JSON body grows with it, and
# past ~10 MB a submit is slow and fragile; a public URL handles up to 50 MB.
DATA_URI_MAX = 10 * 1024 * 1024
# Terminal statuses, lower-cased, as runcomfy-cli src/poll.rs `inference_is_terminal` has
# them; anything else means "keep polling". runcomfy-mcp knows only completed, cancelled and
# failed; the status endpoint says `completed` [seed 002] and the result `succeeded`
# [go-runcomfyserverless], so both count as done wherever they appear.
DONE = frozenset({"completed", "succeeded"})
CANCELLED = frozenset({"canceled", "cancelled"})
FAILED = "failed"
TERMINAL = DONE | CANCELLED | {FAILED}
# What the user is told for each cancel answer. `cancellation_requested`, `not_cancellable`
# [seed 002] [go-runcomfyserverless actions.go]; `cancelled` as 202 {status: completed, outcome:
# cancelled} [seed 004 §3.4]. runcomfy-cli src/cmd/mod.rs `print_cancel_outcome` warns that a
# requested cancel "may still be running": so do we, and about the bill.
CANCEL_MESSAGES = {
    "cancelled": "Cancelled on RunComfy.",
    "canceled": "Cancelled on RunComfy.",
    "cancellation_requested": (
        "Cancel requested on RunComfy; the job may still finish and be billed."
    ),
    "not_cancellable": (
        "RunComfy could not cancel this job (it may have finished already); it may still be "
        "billed."
    ),
}


class DeploymentPayload(Wire):
    workflow_api_json: dict[str, Any] | None = None
    overrides: dict[str, Any] | None = None
    object_info_url: str = ""

    @field_validator("workflow_api_json", "overrides", mode="before")
    @classmethod
    def _json_text(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) and value.strip() else value or None


class Deployment(Wire):
    id: str = Field(validation_alias=AliasChoices("id", "deployment_id"))
    name: str = ""
    workflow_id: str = ""
    workflow_version: Any = None
    hardware: list[str] = Field(default_factory=list)
    min_instances: int | None = None
    max_instances: int | None = None
    queue_size: int | None = None
    keep_warm_duration_in_seconds: int | None = None
    status: str = ""
    is_enabled: bool | None = None
    created_at: Any = None
    updated_at: Any = None
    payload: DeploymentPayload | None = None


class DeploymentSpec(Wire):
    """The create body: every field is required by RunComfy."""

    name: str
    workflow_id: str
    workflow_version: str
    hardware: list[str]
    min_instances: int = 0
    max_instances: int = 1
    queue_size: int = 1
    keep_warm_duration_in_seconds: int = 60

    @field_validator("hardware")
    @classmethod
    def _one_sku(cls, value: list[str]) -> list[str]:
        if len(value) != 1 or value[0] not in HARDWARE:
            raise ValueError(f"hardware must be one of {', '.join(HARDWARE)}")
        return value


class Submitted(Wire):
    request_id: str
    status_url: str = ""
    result_url: str = ""
    cancel_url: str = ""


class RequestStatus(Wire):
    request_id: str = ""
    status: str = ""
    queue_position: int | None = None
    instance_id: str = ""
    error: Any = None  # [guess] a failed status may say why; else the result is asked

    @property
    def state(self) -> str:
        return self.status.strip().lower()


class RequestResult(Wire):
    request_id: str = ""
    status: str = ""
    outputs: Any = None  # {node_id: {images: [...]}} [seed 004], ComfyUI deployments
    output: Any = None  # LoRA deployments (runcomfy-cli src/cmd/mod.rs); its shape [guess]
    error: Any = None  # text, an object or a list of objects: see _failure
    created_at: Any = None
    finished_at: Any = None
    instance_id: str = ""
    _shape: str = PrivateAttr(default="")  # what the answer held, for errors
    _keys: tuple[str, ...] = PrivateAttr(default=())  # its top-level keys, for errors

    @property
    def state(self) -> str:
        return self.status.strip().lower()

    def files(self) -> list[File]:
        """(node id, file, animated) for every file below `outputs`, or `output` when
        `outputs` is missing (runcomfy-cli src/cmd/deployments.rs `run`). A file is an object
        with a `url` (ComfyUI's, docs/WIRE.md §1.5, §3.2); under a LoRA result's `output` also
        a bare http(s) URL [guess], as runcomfy-cli src/download.rs `collect_urls` finds them
        (under `outputs`, a URL string is some node's text, not a file)."""
        lora = self.outputs is None
        chosen = self.output if lora else self.outputs
        if not isinstance(chosen, dict):
            return _files_below(chosen, "", "", bare_urls=lora)
        found: list[File] = []
        for node_id, value in chosen.items():
            found += _files_below(value, str(node_id), str(node_id), bare_urls=lora)
        return found


File = tuple[str, dict[str, Any], bool]  # node id, the file's object, animated


def _files_below(
    value: Any, node_id: str, key: str, *, bare_urls: bool, animated: bool = False
) -> list[File]:
    """The files below `value`; `key` is the one it came under ("gifs" means animated)."""
    animated = animated or key == "gifs"
    if isinstance(value, str):
        url = bare_urls and urlsplit(value).scheme in ("http", "https")
        return [(node_id, {"url": value}, animated)] if url else []
    if isinstance(value, list):
        return [f for item in value
                for f in _files_below(item, node_id, key, bare_urls=bare_urls, animated=animated)]
    if not isinstance(value, dict):
        return []
    if isinstance(value.get("url"), str):
        return [(node_id, value, animated)]
    flagged = value.get("animated")  # ComfyUI's per-node [true] (docs/WIRE.md §1.5)
    animated = animated or (isinstance(flagged, list) and any(v is True for v in flagged))
    return [f for inner, item in value.items()
            for f in _files_below(item, node_id, str(inner), bare_urls=bare_urls,
                                  animated=animated)]


class RunComfyServerless(RunComfyApi):
    """Deployments and inference requests."""

    def __init__(self, tokens: Any, **kwargs: Any) -> None:
        super().__init__(tokens, **kwargs)
        self._graphs: dict[str, dict[str, Any]] = {}  # deployment id -> workflow_api_json

    # ---- deployments (v2) ----
    def deployments(
        self, *, payload: bool = True, ids: list[str] | None = None
    ) -> list[Deployment]:
        params: dict[str, Any] = {"includes": ["payload"]} if payload else {}
        if ids:
            params["ids"] = ids
        _, data = self.call("GET", "/prod/v2/deployments", params=params)
        return [Deployment.model_validate(d) for d in items(data, "deployments")]

    def deployment(self, deployment_id: str, *, payload: bool = True) -> Deployment:
        params = {"includes": ["payload"]} if payload else {}
        _, data = self.call("GET", _dep(deployment_id), params=params)
        return Deployment.model_validate(data)

    def create_deployment(self, spec: DeploymentSpec) -> Deployment:
        _, data = self.call("POST", "/prod/v2/deployments", json=spec.model_dump())
        return Deployment.model_validate(data)

    def update_deployment(self, deployment_id: str, **fields: Any) -> Deployment | None:
        if "name" not in fields:
            # RunComfy refuses a PATCH without `name` ("Deployment name is required"): carry
            # the current one over, as runcomfy-cli src/cmd/deployments.rs `update` and
            # runcomfy-mcp server.py do.
            fields = {"name": self.deployment(deployment_id, payload=False).name, **fields}
        _, data = self.call("PATCH", _dep(deployment_id), json=fields)
        self._graphs.pop(deployment_id, None)
        return Deployment.model_validate(data) if isinstance(data, dict) and data else None

    def delete_deployment(self, deployment_id: str) -> None:
        self.call("DELETE", _dep(deployment_id))
        self._graphs.pop(deployment_id, None)

    def workflow_of(self, deployment_id: str) -> dict[str, Any]:
        """The deployment's workflow_api_json (cached: overrides are checked against it)."""
        if deployment_id not in self._graphs:
            deployment = self.deployment(deployment_id)
            graph = deployment.payload.workflow_api_json if deployment.payload else None
            if not graph:
                raise ComfyRelayError(
                    f"RunComfy did not send the workflow of deployment {deployment_id}, so its "
                    "inputs cannot be checked. Send the full workflow instead."
                )
            self._graphs[deployment_id] = graph
        return self._graphs[deployment_id]

    # ---- inference (v1, as seeds 002 and 004 and runcomfy-mcp; runcomfy-cli uses v2) ----
    def submit(
        self,
        deployment_id: str,
        *,
        overrides: dict[str, Any] | None = None,
        workflow_api_json: dict[str, Any] | None = None,
        extra_data: dict[str, Any] | None = None,
        cancelled: Cancelled = never,
    ) -> Submitted:
        """Submit a job; overrides are checked against the workflow first (nothing is sent if
        they name a node or input the workflow does not have)."""
        if not overrides and not workflow_api_json:
            raise WorkflowError("Give overrides, a full workflow_api_json, or both.")
        if overrides:
            check_overrides(overrides, workflow_api_json or self.workflow_of(deployment_id))
        body: dict[str, Any] = {}
        if overrides:
            body["overrides"] = overrides
        if workflow_api_json:
            body["workflow_api_json"] = workflow_api_json
        if extra_data:
            body["extra_data"] = extra_data
        _, data = self.call(
            "POST", f"/prod/v1/deployments/{_q(deployment_id)}/inference", json=body,
            cancelled=cancelled,
        )
        return Submitted.model_validate(data)

    def status(
        self, deployment_id: str, request_id: str, cancelled: Cancelled = never
    ) -> RequestStatus:
        _, data = self.call("GET", _req(deployment_id, request_id, "status"), cancelled=cancelled)
        return RequestStatus.model_validate(data)

    def result(
        self, deployment_id: str, request_id: str, cancelled: Cancelled = never
    ) -> RequestResult:
        _, data = self.call("GET", _req(deployment_id, request_id, "result"), cancelled=cancelled)
        result = RequestResult.model_validate(data)
        result._shape = shape(data, depth=4)
        result._keys = tuple(str(k) for k in data) if isinstance(data, dict) else ()
        return result

    def cancel(self, deployment_id: str, request_id: str) -> str:
        """Ask to cancel; returns RunComfy's answer, lower-case: cancellation_requested,
        not_cancellable, cancelled... (`outcome` first: seed 004 sends status "completed"
        with outcome "cancelled")."""
        _, data = self.call("POST", _req(deployment_id, request_id, "cancel"))
        data = data if isinstance(data, dict) else {}
        return str(data.get("outcome") or data.get("status") or "").strip().lower()


def _q(value: str) -> str:
    return quote(value, safe="")


def _dep(deployment_id: str) -> str:
    return f"/prod/v2/deployments/{_q(deployment_id)}"


def _req(deployment_id: str, request_id: str, what: str) -> str:
    return f"/prod/v1/deployments/{_q(deployment_id)}/requests/{_q(request_id)}/{what}"


def check_overrides(overrides: Any, graph: dict[str, Any]) -> None:
    """Raise WorkflowError unless every override names a node and a settable input of graph."""
    if not isinstance(overrides, dict):
        raise WorkflowError("Overrides must be an object keyed by node id.")
    workflow = Workflow(graph, "the deployment's workflow")
    for nid, change in overrides.items():
        if str(nid) not in graph:  # RunComfy matches ids only: a title would be ignored
            raise WorkflowError(
                f"The deployment's workflow has no node {nid!r}, so that override would be "
                f"ignored. Its nodes: {workflow.describe_nodes()}."
            )
        if not isinstance(change, dict) or set(change) != {"inputs"} or not isinstance(
            change["inputs"], dict
        ):
            raise WorkflowError(f'The override for node {nid} must be {{"inputs": {{...}}}}.')
        for name in change["inputs"]:
            workflow.input_ref(f"{nid}.{name}")  # unknown or linked input: says which


def diff_overrides(base: dict[str, Any], graph: dict[str, Any]) -> dict[str, Any]:
    """The overrides that turn the deployment's workflow `base` into `graph`."""
    overrides: dict[str, Any] = {}
    for nid, node in graph.items():
        theirs = (base.get(nid) or {}).get("class_type")
        if theirs and theirs != node.get("class_type"):
            raise WorkflowError(
                f"This workflow does not match the deployment's: its node {nid} is a "
                f"{node.get('class_type')}, the deployment's is a {theirs}. Use the "
                "deployment's own workflow, or send the whole workflow instead of overrides."
            )
        old = (base.get(nid) or {}).get("inputs", {}) if nid in base else None
        changed = {
            name: value
            for name, value in node.get("inputs", {}).items()
            if old is None or name not in old or old[name] != value
        }
        if changed:
            overrides[nid] = {"inputs": changed}
    return overrides


def image_value(name: str, data: bytes) -> str:
    """The host's image as a data URI, within RunComfy's limits."""
    size = len(data)
    if size > DATA_URI_MAX:
        raise WorkflowError(
            f"The input image {name!r} is {size / 2**20:.1f} MB; RunComfy Serverless takes at "
            f"most {DATA_URI_MAX // 2**20} MB inline. Upload it somewhere public and pass its "
            "https:// URL instead: set the loader's image input to the URL (CLI: --set "
            "NODE.image=https://...), with no input image. URLs take up to 50 MB."
        )
    if size > DATA_URI_RECOMMENDED:
        log.warning(
            "input image %s is %d KB, above RunComfy's recommended 256 KB for data URIs; "
            "the submit will be slower (a public URL is better for large images)",
            name, size // 1024,
        )
    return data_uri(name, data)


@dataclass
class _Request:
    deployment_id: str
    request_id: str
    out_dir: Path
    submitted: float
    position: int | None = None
    running: bool = False
    workflow: Workflow | None = None  # its output nodes decide which files come back
    picked: tuple[str, ...] = ()


class RunComfyServerlessBackend(Backend):
    """Jobs on one RunComfy Serverless deployment."""

    name = "runcomfy-serverless"
    capabilities = Capabilities(cancel=True, live_progress=False, previews=False, uploads=True)

    def __init__(
        self,
        client: RunComfyServerless,
        deployment_id: str,
        *,
        send_workflow: bool = False,
        poll_interval: float = 2.0,
        job_timeout: float = 3600.0,
        lost_after: float = 60.0,
        partner_key: str | None = None,
    ) -> None:
        self.client = client
        self.deployment_id = deployment_id
        # Billed by partner (API) nodes; sent in extra_data [seed 004], kept out of messages.
        self.partner_key = (partner_key or "").strip() or None
        self.client.http.add_secret(self.partner_key)
        self.send_workflow = send_workflow  # send the job's whole graph, not just overrides
        self.poll_interval = poll_interval
        self.job_timeout = job_timeout
        self.lost_after = lost_after
        self.fetcher = UrlFetcher("RunComfy")

    def check(self) -> str:
        d = self.client.deployment(self.deployment_id, payload=False)
        hardware = ", ".join(d.hardware) or "?"
        state = d.status or "ready"
        return f"RunComfy Serverless deployment {d.name or d.id} ({state}, {hardware})"

    def workflow(self) -> Workflow:
        """The deployment's workflow, so a host can offer its inputs."""
        return Workflow(self.client.workflow_of(self.deployment_id), name=self.deployment_id)

    # ---- start: build the body, check it, submit ----
    def start(self, job: Job, ctx: JobContext) -> _Request:
        ctx.raise_if_cancelled()
        loaders.check(job)  # WorkflowError before anything is read or sent
        files = {f.node_id: image_value(f.name, f.data)
                 for f in loaders.prepare(job.workflow, job.all_media())}
        graph = job.workflow.bind(job.bindings, files=files)
        cancelled = ctx.is_cancelled
        extra = {"api_key_comfy_org": self.partner_key} if self.partner_key else None
        if self.send_workflow:
            sent = self.client.submit(
                self.deployment_id, workflow_api_json=graph, extra_data=extra, cancelled=cancelled
            )
        else:
            overrides = diff_overrides(self.client.workflow_of(self.deployment_id), graph)
            sent = self._submit_overrides(overrides, extra, cancelled)
        ctx.emit(JobQueued(ctx.job_id))
        return _Request(self.deployment_id, sent.request_id, job.out_dir, time.monotonic(),
                        workflow=job.workflow, picked=tuple(job.bindings.outputs))

    def _submit_overrides(
        self, overrides: dict[str, Any], extra: dict[str, Any] | None, cancelled: Cancelled
    ) -> Submitted:
        if overrides:
            return self.client.submit(
                self.deployment_id, overrides=overrides, extra_data=extra, cancelled=cancelled
            )
        # Nothing changed: send the stored workflow whole ([guess] an empty body is refused,
        # docs/WIRE.md §3.2).
        graph = self.client.workflow_of(self.deployment_id)
        return self.client.submit(
            self.deployment_id, workflow_api_json=graph, extra_data=extra, cancelled=cancelled
        )

    # ---- finish: poll status, fetch the result, save outputs ----
    def finish(self, handle: Any, ctx: JobContext) -> list[Path]:
        request: _Request = handle
        result = self._wait(request, ctx)
        if result.state == FAILED:
            raise _failure(result.error, self.client.http.redact)
        if result.state in CANCELLED:
            raise ExecutionFailed("The request was cancelled on RunComfy (not from this app).")
        return self._download(request, result, ctx)

    def _wait(self, request: _Request, ctx: JobContext) -> RequestResult:
        lost = Unreachable("RunComfy Serverless", self.lost_after)
        cancelled = ctx.is_cancelled
        while True:
            if ctx.cancelled:
                raise CancelledByUser(self._cancel(request))  # says what RunComfy answered
            if time.monotonic() - request.submitted > self.job_timeout:
                answer = self._cancel(request)
                limit = self.job_timeout
                within = f"{limit / 60:g} min" if limit >= 60 else f"{limit:g} s"
                raise ServerError(
                    f"The RunComfy request did not finish within {within}, so ComfyRelay "
                    f"asked RunComfy to cancel it: {answer} Check the deployment's instances "
                    "and queue."
                )
            try:
                state = self.client.status(request.deployment_id, request.request_id, cancelled)
                result = self._over(request, state, cancelled)
                if result is not None:
                    return result
                lost.ok()
            except CancelledByUser:
                continue  # the loop cancels on the server
            except (ConnectionFailed, ServerError) as exc:
                if not transient(exc):
                    raise
                lost.failed(exc)
            else:
                self._report(request, state, ctx)
            wait(ctx, self.poll_interval)

    def _over(
        self, request: _Request, state: RequestStatus, cancelled: Cancelled
    ) -> RequestResult | None:
        """The result once the request is over, else None (poll again)."""
        if state.state not in TERMINAL:
            return None
        if state.state == FAILED and state.error:  # [guess] the status already says why
            return RequestResult(request_id=request.request_id, status=FAILED, error=state.error)
        result = self.client.result(request.deployment_id, request.request_id, cancelled)
        if result.state in TERMINAL:  # the result decides (runcomfy-cli finish_inference_result)
            return result
        if state.state == FAILED or state.state in CANCELLED:
            # `failed` and `cancelled` at the status endpoint are final (runcomfy-cli
            # src/poll.rs, runcomfy-mcp runcomfy_client.py): never wait out the job timeout
            # for the result to agree.
            return result.model_copy(update={"status": state.state})
        return None  # done, but the result is not ready yet

    def _report(self, request: _Request, state: RequestStatus, ctx: JobContext) -> None:
        if state.state == "in_queue" and state.queue_position != request.position:
            request.position = state.queue_position
            ctx.emit(JobQueued(ctx.job_id, state.queue_position))
        elif state.state == "in_progress" and not request.running:
            request.running = True
            ctx.emit(JobProgress(ctx.job_id, 0.0, message="Running on RunComfy"))

    def _download(self, request: _Request, result: RequestResult, ctx: JobContext) -> list[Path]:
        files = result.files()
        if not files:
            keys = ", ".join(result._keys) or "nothing"
            raise ExecutionFailed(
                f"RunComfy reports request {request.request_id} {result.status or 'finished'} "
                f"but sent back no output files: its result held keys: {keys} (no file URLs; "
                f"shape {result._shape}). Check that the deployment's workflow saves its "
                "results (a SaveImage, SaveVideo... node), or that a LoRA deployment's "
                "pipeline returns images."
            )
        if request.workflow is not None:  # output nodes' files; previews only if alone
            produced = [Produced(nid, (nid, file, animated), _file_type(file))
                        for nid, file, animated in files]
            files = [p.item for p in results(produced, request.workflow, request.picked)]
        paths = []
        for node_id, file, animated in files:
            name = str(file.get("filename") or "")
            path = self.fetcher.save(
                file["url"], request.out_dir, name, str(file.get("subfolder") or "")
            )
            paths.append(path)
            kind = media_kind(name or path.name, str(file.get("format") or ""))
            ctx.emit(JobOutput(ctx.job_id, path, node_id, kind, animated or kind == "video"))
        return paths

    def _cancel(self, request: _Request) -> str:
        """Ask RunComfy to cancel; what to tell the user about its answer."""
        try:
            answer = self.client.cancel(request.deployment_id, request.request_id)
        except ComfyRelayError as exc:
            log.warning("could not cancel the RunComfy request: %s", exc)
            return (
                f"The cancel could not be confirmed with RunComfy ({exc}); the job may still "
                "run and be billed."
            )
        log.info("RunComfy cancel of %s: %s", request.request_id, answer or "no answer")
        return cancel_message(answer)

    def close(self) -> None:
        self.fetcher.close()
        self.client.close()


def cancel_message(answer: str) -> str:
    """What the user is told for RunComfy's answer to a cancel (lower-case, as cancel()
    returns it)."""
    known = CANCEL_MESSAGES.get(answer)
    if known:
        return known
    said = f"answered {answer!r}" if answer else "gave no answer"
    return f"RunComfy {said} to the cancel; the job may still finish and be billed."


def _failure(error: Any, clean: Callable[[str], str] = str) -> ExecutionFailed:
    """RunComfy's own words for a failed job, whatever the shape of its `error`: text, an
    object, or a list of objects (go-runcomfyserverless request.go: [{errorCode, error,
    debugInfo}]). runcomfy-cli prints it as JSON; we make it a sentence."""
    parts = [p for p in map(_error_part, error if isinstance(error, list) else [error]) if p[0]]
    if not parts:
        return ExecutionFailed(
            "RunComfy reports the job failed but gave no reason. Check the request on the "
            "RunComfy dashboard."
        )
    text = clean("; ".join(p[0] for p in parts))
    node_id, node_type = next(((p[1], p[2]) for p in parts if p[1]), ("", ""))
    where = "the job failed"
    if node_id:
        where = f"node {node_id}{f' ({node_type})' if node_type else ''} failed"
    return ExecutionFailed(f"RunComfy: {where}: {text}", node_id, node_type)


def _error_part(error: Any) -> tuple[str, str, str]:
    """(text, node id, node type) of one error; text "" when it holds nothing."""
    if error is None or error == "" or error == {}:
        return "", "", ""
    if not isinstance(error, dict):
        return _squash(error if isinstance(error, str) else json.dumps(error, default=str)), "", ""
    # [guess] {error_type, node_id, node_type, error_message}; {error_code, error_message} as
    # RunComfy's error bodies (docs/WIRE.md §2.3); {errorCode, error, debugInfo}
    # (go-runcomfyserverless request.go).
    message = _field(error, "error_message", "exception_message", "message", "error", "detail")
    kind = _field(error, "error_type", "exception_type")
    code = _field(error, "errorCode", "error_code", "code")
    debug = next((str(error[k]) for k in ("debugInfo", "debug_info", "traceback")
                  if error.get(k)), "")
    text = f"{kind}: {message}" if kind and message else message or kind
    notes = "; ".join(n for n in (f"error code {code}" if code else "", _last_line(debug)) if n)
    if not text:  # nothing but a code or a traceback: those, else the object as JSON
        text, notes = notes or _squash(json.dumps(error, default=str)), ""
    return (f"{text} ({notes})" if notes else text), _field(error, "node_id"), _field(
        error, "node_type", "class_type")


def _field(error: dict[str, Any], *keys: str) -> str:
    """The first of `keys` that holds something, as short text."""
    for key in keys:
        value = error.get(key)
        if value not in (None, "", [], {}):
            return _squash(value if isinstance(value, str) else json.dumps(value, default=str))
    return ""


def _last_line(text: str) -> str:
    """A traceback's last line names the exception; the rest is noise in a message."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return _squash(lines[-1], 160) if lines else ""


def _squash(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _file_type(file: dict[str, Any]) -> str:
    """ComfyUI's own file type ("output", "temp") when the result carries it [guess: the
    seeds show `outputs` in ComfyUI's history shape, which has it]; else "" (the node's
    class decides)."""
    kind = file.get("type")
    return kind if kind in ("output", "temp") else ""
