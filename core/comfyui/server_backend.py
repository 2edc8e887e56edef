"""Running jobs on one ComfyUI server: upload, queue, follow events, fetch outputs.

What the server does on the wire, and which of it is known or guessed: docs/WIRE.md §1.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import (
    CancelledByUser,
    ComfyRelayError,
    ConnectionFailed,
    ExecutionFailed,
    PromptRejected,
    ServerError,
    ServerRestarted,
)
from ..jobs import loaders
from ..jobs.backend_api import Backend, Capabilities, ComfyUIServer, JobContext
from ..jobs.events import JobOutput, JobPreview, JobProgress, JobQueued
from ..jobs.job import Job
from ..jobs.loaders import LoaderFile
from ..jobs.outputs import Produced, results
from ..jobs.workflow import Workflow, node_title
from .client import MARKER, ComfyClient, EventSocket, new_id
from .protocol import (
    Executed,
    Executing,
    ExecutionCached,
    ExecutionError,
    ExecutionInterrupted,
    ExecutionSuccess,
    FeatureFlags,
    HistoryEntry,
    Preview,
    Progress,
    WsMessage,
    describe_outputs,
)

log = logging.getLogger(__name__)
_ENDING = (ExecutionSuccess, ExecutionError, ExecutionInterrupted)  # `executing null` follows


@dataclass
class _Run:
    """What the back end knows about one queued prompt."""

    prompt_id: str  # ours until queued, then the one the server answered with
    graph: dict[str, Any]
    out_dir: Path
    marker: str = ""  # ours, also in extra_data: finds the prompt if the answer is lost
    workflow: Workflow | None = None  # what the graph was bound from: its output nodes
    picked: tuple[str, ...] = ()  # the output nodes the user wants back; empty: the rule
    done: set[str] = field(default_factory=set)
    current: str = ""
    error: ExecutionError | None = None
    interrupted: bool = False
    ending: bool = False  # `executing {node: null}`: the history is written, fetch it now
    ended_at: float | None = None  # success, error or interrupt seen: the history follows
    last_poll: float = 0.0
    unreachable_since: float | None = None

    def title(self, node_id: str) -> str:
        return node_title(self.graph, node_id)  # subgraph ids ("12:5") too

    def fraction(self, step: float = 0.0) -> float:
        return min(1.0, (len(self.done) + step) / max(1, len(self.graph)))


class ComfyUIBackend(Backend):
    """Any ComfyUI server: local, remote, or a RunComfy machine's main_service_url."""

    name = "comfyui"
    capabilities = Capabilities()

    def __init__(
        self,
        url: str,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        history_interval: float = 2.0,
        lost_after: float = 30.0,
        partner_key: str | None = None,
    ) -> None:
        self.client = ComfyClient(url, token=token, headers=headers)
        # Billed by partner (API) nodes; sent in extra_data, kept out of every message.
        self.partner_key = (partner_key or "").strip() or None
        self.client.http.add_secret(self.partner_key)
        self.client_id = new_id()
        self.history_interval = history_interval  # poll /history this often when events are quiet
        self.lost_after = lost_after  # give up when the server stays unreachable this long
        self._socket: EventSocket | None = None
        self._next_connect = 0.0
        self._stash: dict[str, list[WsMessage]] = {}  # events of queued runs not yet awaited

    def comfyui_server(self) -> ComfyUIServer:
        return ComfyUIServer(self.client.url, self.client.token)

    def check(self) -> str:
        """The version on a first line, then the server's address and what it lacks with
        what is done instead; probed once."""
        # A client of its own: the check runs on another thread than the jobs. It shares
        # what it learns about the server with the jobs' client.
        probe = ComfyClient(
            self.client.url, token=self.client.token, headers=self.client.headers,
            traits=self.client.traits,
        )
        try:
            stats = probe.system_stats()
            lacks = probe.detect().lacks()
        finally:
            probe.close()
        # A plain first line (what hosts show); the rest under their details toggle.
        lines = [f"Connected to ComfyUI {stats.version} — ready.", f"Server: {self.client.url}"]
        if lacks:
            lines.append("This server lacks (ComfyRelay works around each): " + "; ".join(lacks))
        return "\n".join(lines)

    @property
    def server_version(self) -> str:
        """The server's ComfyUI version, once known (hosts keep it in the run history)."""
        return self.client.traits.version

    # ---- start: validate, upload, queue ----
    def start(self, job: Job, ctx: JobContext) -> _Run:
        ctx.raise_if_cancelled()
        if not self.client.traits.version:  # asked once per server, for the history
            with contextlib.suppress(ComfyRelayError):
                self.client.system_stats()
        loaders.check(job)  # fail before reading or uploading anything
        files = loaders.prepare(job.workflow, job.all_media())
        names, remembered = self._upload(files, ctx)
        graph = job.workflow.bind(job.bindings, files=names)
        ctx.raise_if_cancelled()
        self._connect()  # events of a fast prompt are only seen if the socket is already open
        ours = new_id()
        run = _Run(ours, graph, job.out_dir, marker=ours, workflow=job.workflow,
                   picked=tuple(job.bindings.outputs))
        try:
            self._queue(run)
        except PromptRejected:
            if not remembered:
                raise
            # A file this process sent earlier may be gone (another server now answers at
            # this address): send them all again, once.
            self.client.forget_uploads()
            names, _ = self._upload(files, ctx)
            run.graph = job.workflow.bind(job.bindings, files=names)
            self._queue(run)
        if self._socket is not None:  # its frames tell the end: no history read before then
            run.last_poll = time.monotonic()
        self._stash[run.prompt_id] = []
        ctx.emit(JobQueued(ctx.job_id))
        return run

    def _upload(self, files: list[LoaderFile], ctx: JobContext) -> tuple[dict[str, str], bool]:
        """Each loader's file on the server (sent once per content); True when any was
        known from before rather than sent now."""
        names, remembered = {}, False
        for file in files:
            ctx.raise_if_cancelled()
            names[file.node_id], known = self.client.upload_once(file.name, file.data)
            remembered = remembered or known
        return names, remembered

    def _queue(self, run: _Run) -> None:
        """Queue under our id, then follow the id the server answers with: servers before
        0.3.45 pick their own (docs/WIRE.md §1.2)."""
        extra: dict[str, Any] = {MARKER: run.marker}
        if self.partner_key:
            extra["api_key_comfy_org"] = self.partner_key
        try:
            queued = self.client.queue_prompt(run.graph, self.client_id, run.prompt_id, extra)
        except (ConnectionFailed, ServerError) as exc:
            # The answer may be lost after the server took the prompt: our marker tells.
            found = None if isinstance(exc, ServerError) and exc.status == 400 else self._find(run)
            if found is None:
                raise
            run.prompt_id = found
            return
        run.prompt_id = queued.prompt_id

    def _find(self, run: _Run) -> str | None:
        try:
            return self.client.find_marked(run.marker)
        except ComfyRelayError:
            return None

    # ---- finish: follow the run to its history entry ----
    def finish(self, handle: Any, ctx: JobContext) -> list[Path]:
        run: _Run = handle
        try:
            entry = self._wait(run, ctx)
            self._raise_for_status(run, entry)
            return self._download(run, entry, ctx)
        finally:
            self._stash.pop(run.prompt_id, None)

    def _wait(self, run: _Run, ctx: JobContext) -> HistoryEntry:
        for message in self._stash.get(run.prompt_id, []):
            self._apply(run, message, ctx)
        while True:
            ctx.idle()
            if ctx.cancelled:
                self._cancel(run)
                raise CancelledByUser()
            if not run.ending:  # its end may have come in stashed
                for message in self._receive(run, 0.25):
                    self._apply(run, message, ctx)
            now = time.monotonic()
            if run.ending or self._overdue(run, now):
                run.last_poll = now
                entry = self._poll(run)
                if entry is None and run.ending:  # not written after all: wait on, throttled
                    run.ending, run.ended_at = False, run.ended_at or now
                if entry is not None:
                    if not (run.ending or run.ended_at) and self._socket is not None:
                        # The history can beat the event stream: take its last frames
                        # (previews, final progress) before reporting the end.
                        for message in self._receive(run, 0.3):
                            self._apply(run, message, ctx)
                    return entry

    def _overdue(self, run: _Run, now: float) -> bool:
        """Time to ask the history: every history_interval, or soon after an ending frame
        whose `executing {node: null}` did not follow (a lost frame)."""
        since_poll = now - run.last_poll
        late = run.ended_at is not None and now - run.ended_at > 0.1 and since_poll > 0.25
        return late or since_poll > self.history_interval

    def _receive(self, run: _Run, timeout: float) -> list[WsMessage]:
        socket = self._connect()
        if socket is None:
            time.sleep(timeout)
            return []
        mine: list[WsMessage] = []
        try:
            for message in socket.receive(timeout):
                if isinstance(message, FeatureFlags):
                    self.client.traits.feature_flags = True
                    continue
                owner = message.prompt_id
                if owner is None or owner == run.prompt_id:
                    mine.append(message)
                    if isinstance(message, Executing) and message.node is None:
                        break  # the end: nothing to wait for (docs/WIRE.md §1.3)
                elif owner in self._stash:
                    self._stash[owner].append(message)
        except ConnectionFailed:
            log.info("event stream dropped; reconnecting and checking history")
            self._disconnect()
            run.last_poll = 0.0  # the end may have been missed: ask the history right away
        return mine

    def _apply(self, run: _Run, message: WsMessage, ctx: JobContext) -> None:
        """Turn one server message into progress for the host."""
        if isinstance(message, ExecutionCached):
            run.done.update(message.nodes)
        elif isinstance(message, Executing) and message.node is not None:
            if run.current:
                run.done.add(run.current)
            run.current = message.display_node or message.node  # the node a user placed
            self._progress(run, ctx, run.current)
        elif isinstance(message, Progress) and message.max > 0:
            node = message.node or run.current
            self._progress(run, ctx, node, message.value, message.max)
        elif isinstance(message, Executed):
            run.done.add(message.node)
        elif isinstance(message, Preview) and message.data:
            ctx.emit(JobPreview(ctx.job_id, message.data, message.mime, message.node_id or ""))
        if isinstance(message, ExecutionError):
            run.error = message
        elif isinstance(message, ExecutionInterrupted):
            run.interrupted = True
        if isinstance(message, Executing) and message.node is None:
            run.ending = True
        elif isinstance(message, _ENDING) and run.ended_at is None:
            run.ended_at = time.monotonic()

    def _progress(
        self, run: _Run, ctx: JobContext, node: str, value: int = 0, maximum: int = 0
    ) -> None:
        step = value / maximum if maximum else 0.0
        ctx.emit(JobProgress(ctx.job_id, run.fraction(step), node, run.title(node), value, maximum))

    def _poll(self, run: _Run) -> HistoryEntry | None:
        """The history entry once written; raise if the server forgot the prompt."""
        try:
            entry = self.client.history(run.prompt_id)
            if entry is None and not self._pending(run):
                # It may have finished between the two calls: ask once more.
                entry = self.client.history(run.prompt_id) or self._lost(run)
        except (ConnectionFailed, ServerError) as exc:
            self._unreachable(run, exc)
            return None
        run.unreachable_since = None
        return entry

    def _pending(self, run: _Run) -> bool:
        """Queued or running: asked of the job route where the server has it (a light
        answer), else read from the whole /queue."""
        if self.client.has_jobs_api():
            job = self.client.job(run.prompt_id)
            if job is not None:
                return job.active
        running, pending = self.client.queue()
        return run.prompt_id in running + pending

    def _lost(self, run: _Run) -> HistoryEntry:
        raise ServerRestarted(
            f"The ComfyUI server at {self.client.url} no longer knows this job: it was probably "
            "restarted, and its result is lost. Run the job again."
        )

    def _unreachable(self, run: _Run, exc: ComfyRelayError) -> None:
        now = time.monotonic()
        if run.unreachable_since is None:
            run.unreachable_since = now
        elif now - run.unreachable_since > self.lost_after:
            raise ConnectionFailed(
                f"Lost contact with the ComfyUI server at {self.client.url} for "
                f"{self.lost_after:.0f} s during the job ({exc}). Check the server; the job may "
                "still finish there."
            )

    def _raise_for_status(self, run: _Run, entry: HistoryEntry) -> None:
        if entry.status.status_str != "error":
            return
        error = run.error or _history_error(entry)
        if error is not None:
            node = error.node_id or ""
            title = f" '{run.title(node)}'" if node else ""
            raise ExecutionFailed(
                f"Node {node}{title} ({error.node_type}) failed: {error.exception_type}: "
                f"{error.exception_message}".strip(),
                node,
                error.node_type or "",
            )
        if run.interrupted or entry.status.last("execution_interrupted") is not None:
            raise ExecutionFailed(
                "The job was interrupted on the server (by someone else, or "
                "the server's Cancel). Run it again."
            )
        raise ExecutionFailed("The ComfyUI server reports the job failed without details.")

    def _download(self, run: _Run, entry: HistoryEntry, ctx: JobContext) -> list[Path]:
        files = entry.files()
        if files and run.workflow is not None:
            produced = [Produced(nid, file, file.type) for nid, file in files]
            files = [(p.node_id, p.item) for p in results(produced, run.workflow, run.picked)]
        if not files:
            raise ExecutionFailed(
                "The ComfyUI server finished the job but sent back no output files "
                f"({describe_outputs(entry.outputs)}). The workflow needs a node that saves "
                "files (SaveImage, PreviewImage, SaveVideo, SaveAudio...)."
            )
        paths = []
        for node_id, file in files:
            ctx.raise_if_cancelled()
            path = self._fetch(file, run.out_dir)
            paths.append(path)
            ctx.emit(JobOutput(ctx.job_id, path, node_id, file.kind, file.animated))
        return paths

    def _fetch(self, file: Any, out_dir: Path, attempts: int = 3) -> Path:
        for attempt in range(attempts):
            try:
                return self.client.download(file, out_dir)
            except ConnectionFailed:
                if attempt == attempts - 1:
                    raise
                log.info("download of an output broke off; retrying")
        raise AssertionError("unreachable")

    # ---- cancel ----
    def _cancel(self, run: _Run, confirm_within: float = 10.0) -> None:
        """Remove our prompt if it waits, interrupt it if it runs; never touch other prompts.

        Interrupts take effect at the server's next node or step, so wait (bounded) until the
        server has let go of the prompt: "Cancelled" then means the server stopped.
        """
        deadline = time.monotonic() + confirm_within
        try:
            if self.client.has_jobs_api():
                self.client.cancel_job(run.prompt_id)  # dequeue or interrupt, ours only
            else:
                self._dequeue_or_interrupt(run)
            while self._running(run) and time.monotonic() < deadline:
                time.sleep(0.1)
        except ComfyRelayError as exc:
            log.warning("could not cancel on the server: %s", exc)

    def _dequeue_or_interrupt(self, run: _Run) -> None:
        try:
            self.client.dequeue(run.prompt_id)
        except ComfyRelayError as exc:  # it may be running: still try the interrupt
            log.warning("could not remove the job from the server's queue: %s", exc)
        # Servers before 0.3.57 interrupt whatever runs: only when ours does (a narrow race
        # remains there, docs/WIRE.md §1.2).
        if self._running(run):
            self.client.interrupt(run.prompt_id)

    def _running(self, run: _Run) -> bool:
        if self.client.traits.jobs_api:
            job = self.client.job(run.prompt_id)
            return job is not None and job.active
        return run.prompt_id in self.client.queue()[0]

    # ---- event stream ----
    def _connect(self) -> EventSocket | None:
        """The open socket, or a new one; None while the server refuses (retried every 2 s)."""
        if self._socket is None and time.monotonic() >= self._next_connect:
            try:
                self._socket = self.client.open_events(self.client_id)
            except ConnectionFailed as exc:
                log.info("event stream unavailable: %s", exc)
                self._next_connect = time.monotonic() + 2.0
        return self._socket

    def _disconnect(self) -> None:
        if self._socket is not None:
            self._socket.close()
        self._socket = None

    def close(self) -> None:
        self._disconnect()
        self.client.close()


def _history_error(entry: HistoryEntry) -> ExecutionError | None:
    data = entry.status.last("execution_error")
    return ExecutionError.model_validate(data) if data is not None else None
