"""Jobs on a Comfy API v2 server: Comfy Cloud, a Comfy deployment, or comfy-api-proxy.

start() uploads the input as an asset (once per distinct bytes) and submits; finish() polls
the job ([spec] "poll-first": getJob is the source of truth), shows the live stream's
progress and previews meanwhile, and saves the outputs from the links the job gives.
The wire facts this rests on, with their sources: docs/WIRE.md §5.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..errors import (
    CancelledByUser,
    ComfyRelayError,
    ConnectionFailed,
    ExecutionFailed,
    ServerError,
    ServerRestarted,
    transient,
)
from ..jobs import loaders
from ..jobs.backend_api import Backend, Capabilities, JobContext
from ..jobs.events import JobOutput, JobPreview, JobProgress, JobQueued
from ..jobs.job import Job
from ..jobs.outputs import Produced, results
from ..jobs.workflow import MEDIA_LOADERS, Workflow, node_title
from ..net.downloads import Unreachable
from .api import ComfyApi
from .assets import Inputs
from .events import EventStream, wait_briefly
from .wire import Job as ApiJob
from .wire import Output, PreviewEvent, Progress, StatusEvent, output_kind

log = logging.getLogger(__name__)

DEFAULT_API = "https://cloud.comfy.org"  # [spec] servers: Comfy Cloud (docs/WIRE.md §5.1)
EXPIRED_CHECKS = 3
FIRST_POLL = 0.05  # seconds after the submit; each next poll waits 1.5 times longer


@dataclass
class _Submitted:
    """One job on the server, as finish() follows it. Thread: the runner's worker."""

    job: ApiJob
    graph: dict[str, Any]
    out_dir: Path
    submitted: float
    position: int | None = None
    progressed: bool = False
    doubts: int = 0  # polls that said `expired`, before we believe it
    polls: int = 0
    workflow: Workflow | None = None  # its output nodes decide which files come back
    picked: tuple[str, ...] = ()

    def title(self, node_id: str, fallback: str = "") -> str:
        """The node's title ("12:5": its subgraph's); else `fallback` (the class)."""
        title = node_title(self.graph, node_id)
        return fallback if title == node_id and fallback else title


class ComfyApiBackend(Backend):
    """Any Comfy API v2 server. Thread: the runner's worker (check() uses its own client)."""

    name = "comfy-api"
    capabilities = Capabilities(cancel=True, live_progress=True, previews=True, uploads=True)

    def __init__(
        self,
        client: ComfyApi,
        *,
        partner_key: str = "",
        live_events: bool = True,
        poll_interval: float = 1.0,
        job_timeout: float = 3600.0,
        lost_after: float = 60.0,
        cancel_confirm: float = 10.0,
    ) -> None:
        self.client = client
        self.partner_key = partner_key.strip()  # [spec] extra_data (docs/WIRE.md §5.2)
        self.live_events = live_events
        self.poll_interval = poll_interval
        self.job_timeout = job_timeout
        self.lost_after = lost_after
        self.cancel_confirm = cancel_confirm  # how long to wait for the server to confirm
        self.inputs = Inputs(client)

    def check(self) -> str:
        probe = self.client.copy()
        try:
            health = probe.health()
            # [spec] headAssetByHash needs the key like every operation: a 401 says the key is
            # wrong, a 200 or 404 that it was taken (blake3 of no bytes: nothing to find);
            # docs/WIRE.md §5.1.
            probe.has_blob("blake3:" + EMPTY_BLAKE3)
        finally:
            probe.close()
        what = "comfy-api-proxy" if health and health.get("upstream") else "Comfy API"
        key = "key accepted" if self.client.api_key else "no key needed"
        return f"Connected to the {what} at {self.client.base_url} ({key})"

    # ---- start: input asset, graph, submit ----
    def start(self, job: Job, ctx: JobContext) -> _Submitted:
        ctx.raise_if_cancelled()
        cancelled = ctx.is_cancelled
        loaders.check(job)  # WorkflowError before anything is read or sent
        graph = job.workflow.bind(job.bindings)
        for file in loaders.prepare(job.workflow, job.all_media()):
            # [spec] AssetReference goes where the loader's file name would go
            # (docs/WIRE.md §5.6); the same bytes are found by their hash, not sent again.
            reference = self.inputs.reference(file.name, file.data, cancelled)
            node = graph[file.node_id]
            node["inputs"][MEDIA_LOADERS[node["class_type"]]] = reference
            ctx.raise_if_cancelled()
        ctx.raise_if_cancelled()
        extra = {"api_key_comfy_org": self.partner_key} if self.partner_key else None
        submitted = self.client.submit(graph, extra_data=extra, cancelled=cancelled)
        log.info("Comfy API job %s %s", submitted.id, submitted.status or "submitted")
        ctx.emit(JobQueued(ctx.job_id, submitted.queue_position))
        return _Submitted(submitted, graph, job.out_dir, time.monotonic(),
                          position=submitted.queue_position, workflow=job.workflow,
                          picked=tuple(job.bindings.outputs))

    # ---- finish: poll, show live events, save outputs ----
    def finish(self, handle: Any, ctx: JobContext) -> list[Path]:
        run: _Submitted = handle
        stream = None
        if self.live_events and not ctx.cancelled:
            stream = EventStream(self.client, self.client.job_url(run.job, "events")).start()
        try:
            final = self._wait(run, ctx, stream)
        finally:
            if stream is not None:
                stream.close()
        if final.status == "succeeded":
            return self._download(run, final, ctx)
        if final.status == "failed":
            raise _failure(final)
        if final.status == "canceled":
            raise ExecutionFailed(
                f"The Comfy API job {final.id} was cancelled on the server (not from this app)."
            )
        raise ServerRestarted(
            f"The Comfy API job {final.id} expired on the server ({final.status}): its result "
            "is gone (the server restarted, or the job passed its retention). Run it again."
        )

    def _wait(self, run: _Submitted, ctx: JobContext, stream: EventStream | None) -> ApiJob:
        lost = Unreachable("the Comfy API", self.lost_after)
        url = self.client.job_url(run.job, "self")
        next_poll = 0.0
        while True:
            ctx.idle()
            if ctx.cancelled:
                self._cancel(run, ctx)
                raise CancelledByUser()
            if time.monotonic() - run.submitted > self.job_timeout:
                self._cancel(run, ctx)
                raise ServerError(
                    f"The Comfy API job {run.job.id} did not finish within "
                    f"{self.job_timeout / 60:.0f} min; asked the server to cancel it."
                )
            now = time.monotonic()
            if now >= next_poll:
                # Soon after the submit, then backing off to poll_interval: a short job is
                # seen done at once, a long one is not asked about more than it needs.
                next_poll = now + min(self.poll_interval, FIRST_POLL * 1.5**run.polls)
                run.polls += 1
                job = self._poll(url, lost, ctx)
                if job is not None and job.status == "expired" and run.doubts < EXPIRED_CHECKS:
                    # [proxy] derives `expired` from "in neither /history nor /queue", two
                    # requests apart: a job finishing between them looks expired for a moment
                    # (docs/WIRE.md §5.3).
                    run.doubts += 1
                    next_poll = now + 0.3
                elif job is not None:
                    self._report(run, job, ctx)
                    if job.terminal:
                        # The stream's last previews may trail the status: take what came.
                        for event in wait_briefly(stream, 0.05 if stream else 0.0):
                            self._live(run, event, ctx)
                        return job
            for event in wait_briefly(stream, min(0.25, max(0.01, next_poll - now))):
                if self._live(run, event, ctx):
                    next_poll = 0.0  # the stream says it ended: ask the job now

    def _poll(self, url: str, lost: Unreachable, ctx: JobContext) -> ApiJob | None:
        try:
            job = self.client.get_job(url, ctx.is_cancelled)
        except CancelledByUser:
            return None  # the loop cancels on the server
        except (ConnectionFailed, ServerError) as exc:
            if getattr(exc, "status", None) == 404:
                raise ServerRestarted(
                    f"The Comfy API at {self.client.base_url} no longer knows this job (404): "
                    "it restarted or the job expired, and its result is lost. Run it again."
                ) from None
            if not transient(exc):
                raise
            lost.failed(exc)
            return None
        lost.ok()
        return job

    def _report(self, run: _Submitted, job: ApiJob, ctx: JobContext) -> None:
        """Polled state the host has not seen yet: queue position, the start of running."""
        self._status(run, StatusEvent(status=job.status, queue_position=job.queue_position), ctx)
        if job.progress is not None and job.progress.value > 0 and not job.terminal:
            self._progress(run, job.progress, ctx)

    def _live(self, run: _Submitted, event: BaseModel, ctx: JobContext) -> bool:
        """Show one live event; True when it says the job reached a terminal state."""
        if isinstance(event, StatusEvent):
            self._status(run, event, ctx)
            return event.status in ("succeeded", "canceled", "failed", "expired")
        if isinstance(event, Progress):
            self._progress(run, event, ctx)
        elif isinstance(event, PreviewEvent) and event.data_base64:
            try:
                data = base64.b64decode(event.data_base64, validate=True)
            except (binascii.Error, ValueError):
                return False
            ctx.emit(JobPreview(ctx.job_id, data, event.content_type or "image/jpeg",
                                event.node_id))
        return False  # `output` events only hint: the polled job.outputs are authoritative

    def _status(self, run: _Submitted, event: StatusEvent, ctx: JobContext) -> None:
        if event.status == "queued" and event.queue_position != run.position:
            run.position = event.queue_position
            ctx.emit(JobQueued(ctx.job_id, event.queue_position))
        elif event.status == "running" and not run.progressed:
            run.progressed = True
            ctx.emit(JobProgress(ctx.job_id, 0.0, message="Running on the Comfy API"))

    def _progress(self, run: _Submitted, progress: Progress, ctx: JobContext) -> None:
        run.progressed = True
        node = progress.current_node
        ctx.emit(JobProgress(
            ctx.job_id, min(1.0, max(0.0, progress.value)), node,
            run.title(node, progress.current_node_class) if node else "",
            progress.step or 0, progress.steps or 0, progress.message,
        ))

    def _download(self, run: _Submitted, job: ApiJob, ctx: JobContext) -> list[Path]:
        if not job.outputs:
            raise ExecutionFailed(
                f"The Comfy API says job {job.id} succeeded but lists no outputs, so there is "
                "nothing to save. Does the workflow end in a SaveImage (or another output) node?"
            )
        unusable = [o for o in job.outputs if not (o.url or o.id)]
        if unusable:
            raise ServerError(
                f"The Comfy API listed outputs of job {job.id} with neither a link nor an "
                f"asset id, so they cannot be fetched: {_names(unusable)}."
            )
        outputs = list(job.outputs)
        if run.workflow is not None:  # output nodes' files; previews only if alone
            produced = [Produced(o.node_id, o) for o in outputs]
            outputs = [p.item for p in results(produced, run.workflow, run.picked)]
        paths = []
        for index, output in enumerate(outputs):
            ctx.raise_if_cancelled()
            if not output.url:
                output = output.model_copy(update={"url": self.client.get_asset(output.id).url})
            path = self.client.download(output, run.out_dir, index)
            paths.append(path)
            ctx.emit(JobOutput(ctx.job_id, path, output.node_id, output_kind(output)))
        return paths

    # ---- cancel ----
    def _cancel(self, run: _Submitted, ctx: JobContext) -> None:
        """Ask the server to cancel, then wait (bounded) for it to say `canceled`, and log
        honestly when it does not ([proxy] 0.1.6 in front of ComfyUI 0.3.64 cannot cancel:
        its cancel calls a route that ComfyUI version lacks, and the job runs to its end;
        docs/WIRE.md §5.8, §5.10)."""
        try:
            job = self.client.cancel(self.client.job_url(run.job, "cancel"))
        except ComfyRelayError as exc:
            log.warning("could not ask the Comfy API to cancel job %s: %s", run.job.id, exc)
            return
        deadline = time.monotonic() + self.cancel_confirm
        url = self.client.job_url(run.job, "self")
        while not job.terminal and time.monotonic() < deadline:
            ctx.idle()
            time.sleep(0.2)
            try:
                job = self.client.get_job(url)
            except ComfyRelayError:
                break
        if job.status == "canceled":
            log.info("the Comfy API confirmed the cancel of job %s", job.id)
            return
        state = (f"it ended as {job.status}" if job.terminal
                 else f"it is still {job.status} after {self.cancel_confirm:g} s")
        log.warning(
            "the Comfy API did not confirm the cancel of job %s: %s. Cancelled here (nothing is "
            "saved), but the server may run it to its end (and bill for it).", job.id, state,
        )

    def close(self) -> None:
        self.client.close()


# blake3 of zero bytes, a hash no server can be asked to mint from.
EMPTY_BLAKE3 = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


def _names(outputs: list[Output]) -> str:
    return ", ".join(repr(o.model_dump(exclude_defaults=True))[:120] for o in outputs[:3])


def _failure(job: ApiJob) -> ExecutionFailed:
    error = job.error
    if error is None:
        return ExecutionFailed(f"The Comfy API reports job {job.id} failed without details.")
    where = f"Node {error.node_id} ({error.class_type or '?'}) failed" if error.node_id else (
        "The job failed")
    code = f" [{error.code}]" if error.code else ""
    return ExecutionFailed(
        f"{where}{code}: {error.message or 'no message'}", error.node_id, error.class_type
    )
