"""The host session: everything Blender and Krita share between their UI and the runner.

It owns the job runner and its back end (rebuilt when the settings change, tuned live where
a rebuild would stop a paid machine), the RunComfy machine actions and the start-up scan for
machines left running, the bookkeeping of a run's jobs, preview coalescing, and the `View`
a host binds its widgets to. A host keeps only what needs the host: pixels out of it,
results into it, widgets, settings storage, and the UI timer that calls pump().
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..backends import BackendSettings, make_backend, rebuild_key, runcomfy_server
from ..comfyui.convert import conversion_defs, to_api
from ..comfyui.fields import check_values, server_defs, typed_inputs
from ..comfyui.nodes import NodeDefs
from ..config import Credentials
from ..errors import PLAIN_CANCEL, ComfyRelayError, WorkflowError
from ..jobs.backend import Backend, Capabilities, ComfyUIServer
from ..jobs.events import (
    FINAL_EVENTS,
    ConnectionChecked,
    Event,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobOutput,
    JobPreview,
    JobProgress,
    JobQueued,
    JobStarted,
)
from ..jobs.job import Job
from ..jobs.runner import JobRunner
from ..jobs.workflow import Bindings, Workflow, ui_needs_server
from ..jobs.workflow_file import WorkflowSource, read_workflow_file
from ..runcomfy.ledger import Ledger
from ..runcomfy.machine import MachineState, RunComfyMachineBackend
from .history import RunRecord, new_run_record
from .machines import MachinePanel, leftover_line, status_lines
from .runs import HostEvent, Run, RunEnded, WorkflowOpened
from .view import LeftoverRow, View

log = logging.getLogger(__name__)
IDLE_MACHINE = (MachineState.NONE, MachineState.STOPPED)  # nothing to stop, nothing billed
BEING_CONVERTED = ("The workflow is being converted with the server's node definitions: "
                   "press Run again once its inputs are listed.")


class HostSession:
    """One per add-on instance. Owned by the host's UI thread: call every method there,
    except submit(), which a render thread may call. Network work runs on the runner's
    thread, the machine actions' threads and open_workflow()'s, so no method here waits for
    a server, except close(): the host quits, so it waits up to 2 s for the runner and may
    stop a machine launched here before it returns."""

    def __init__(self, *, max_in_flight: int = 1, ledger: Ledger | None = None) -> None:
        self.max_in_flight = max_in_flight
        self.ledger = ledger
        self.runner: JobRunner | None = None
        self.run: Run | None = None
        self.machine_actions = MachinePanel()
        self.leftover_scan = MachinePanel()
        self.view = View()
        self._settings: tuple[BackendSettings, Credentials] | None = None  # the last given
        self._pending = False  # they are not applied yet (the back end was busy)
        self._key: Any = None
        self._problem = "Choose a back end."
        self._reuse_id = ""  # a running machine the user chose to reuse
        self._attach = False  # attach to that machine once its back end is built
        self._checking = False
        self._state: dict[str, Any] = {}  # what the next View shows, set by events
        self._holds: Counter[str] = Counter()  # job id -> results the host is still placing
        self._held: list[Event] = []  # final events waiting for their job's results
        self._submit_lock = threading.Lock()  # submit() and poll() take turns
        # From open_workflow()'s threads: the server asked, the file's mtime, the answer.
        self._opened: queue.Queue[tuple[ComfyUIServer, float, WorkflowOpened]] = queue.Queue()
        self._converted: dict[str, tuple[float, Workflow]] = {}  # path -> (mtime, workflow)
        # (path, server) of each open_workflow() thread under way: one per path and server,
        # so a changed server still gets its own.
        self._converting: set[tuple[str, ComfyUIServer]] = set()
        self._defs: NodeDefs | None = None  # the server's node definitions, once known

    # ---- the back end ----
    def configure(self, settings: BackendSettings, credentials: Credentials) -> None:
        """Use these settings: a new back end when what it connects to changed, live tuning
        when only the price or the machine's times did. Waits (for pump) while busy."""
        self._settings, self._pending = (settings, credentials), True
        self._apply()
        self._refresh_view()

    @property
    def backend(self) -> Backend | None:
        return self.runner.backend if self.runner is not None else None

    @property
    def machine(self) -> RunComfyMachineBackend | None:
        backend = self.backend
        return backend if isinstance(backend, RunComfyMachineBackend) else None

    @property
    def capabilities(self) -> Capabilities:
        backend = self.backend
        return backend.capabilities if backend is not None else Capabilities()

    @property
    def busy(self) -> bool:
        """A run or a connection check is under way."""
        return self.run is not None or self._checking

    @property
    def active(self) -> bool:
        """Something shown is still changing: the host's timer should keep ticking."""
        machine = self.machine
        running = machine is not None and machine.status().state not in IDLE_MACHINE
        return (self.busy or self.machine_actions.working or self.leftover_scan.working
                or running or self._keeps_backend() or self.converting > 0)

    def _keeps_backend(self) -> bool:
        """A job, a machine action or a launch is under way: the back end must stay."""
        machine = self.machine
        return self.busy or self.machine_actions.working or bool(machine and machine.preparing)

    def _apply(self) -> None:
        if not self._pending or self._settings is None or self._keeps_backend():
            return  # pump() applies them once idle
        settings, credentials = self._settings
        self._pending = False
        if self._reuse_id and settings.kind == "runcomfy-machine":
            machine = settings.runcomfy_machine.model_copy(update={"server_id": self._reuse_id})
            settings = settings.model_copy(update={"runcomfy_machine": machine})
        try:
            key = rebuild_key(settings, credentials)
            if self.runner is not None and key == self._key:
                self._tune(settings)
                return
            backend = make_backend(settings, credentials, ledger=self.ledger)
        except (ComfyRelayError, ValueError) as exc:  # pydantic errors are ValueErrors
            self._retire()
            self._problem = str(exc)
            return
        self._retire()
        self._problem = ""
        self._converted.clear()  # another server may know other nodes
        self._defs = None
        self.runner, self._key = JobRunner(backend, max_in_flight=self.max_in_flight), key
        if self._attach and isinstance(backend, RunComfyMachineBackend):
            self.machine_actions.launch(backend)  # attach to the machine chosen for reuse
        self._attach = False

    def _tune(self, settings: BackendSettings) -> None:
        machine = self.machine
        if machine is not None:
            m = settings.runcomfy_machine
            machine.tune(hourly_price=m.hourly_price, idle_stop=m.idle_stop, duration=m.duration)

    def _retire(self) -> None:
        """Close the old back end on a thread: closing a machine back end stops its machine."""
        old, self.runner, self._key = self.runner, None, None
        if old is not None:
            threading.Thread(target=old.close, name="comfyrelay-close", daemon=True).start()

    def require_runner(self) -> JobRunner:
        if self.runner is None:
            raise ComfyRelayError(self._problem or "Choose a back end.")
        return self.runner

    def check(self) -> None:
        """Check the connection off the UI thread; the answer shows in the view."""
        try:
            runner = self.require_runner()
        except ComfyRelayError as exc:
            self._state.update(connection=str(exc), connected=False)
        else:
            runner.check_connection()
            self._checking = True
            self._state.update(connection="Checking…", connected=None)
        self._refresh_view()

    # ---- workflows ----
    def open_workflow(self, path: str, *, refresh: bool = False) -> Workflow | None:
        """Open the workflow in `path` for its fields. An API-format file comes back at once
        with plain fields; a UI-format file or a ComfyUI image comes back as None. Either
        way, when a ComfyUI server is set up, a WorkflowOpened event follows from pump(),
        with the workflow (converted if need be) and its inputs typed from the server's node
        definitions; `refresh` asks the server again (new custom nodes, new models). While
        that server works on `path` (is_converting()), opening it again starts nothing more.
        Raises WorkflowError for a file that holds no workflow, or a UI file without a
        server."""
        stamp = _mtime(path)  # before the read: a file saved meanwhile is read again
        source = read_workflow_file(path)
        api = Workflow(source.prompt, source.name) if source.prompt is not None else None
        server = self.backend.comfyui_server() if self.backend is not None else None
        if server is None:
            if api is None:
                raise WorkflowError(ui_needs_server(source.name))
            return api
        if (path, server) not in self._converting:
            self._converting.add((path, server))
            threading.Thread(
                target=self._open, args=(path, stamp, source, api, server, refresh),
                name="comfyrelay-open", daemon=True,
            ).start()
        if api is None:
            self._state["status"] = f"Converting {source.name} with the server's node definitions…"
            self._refresh_view()
        return api

    def _open(self, path: str, stamp: float, source: WorkflowSource, api: Workflow | None,
              server: ComfyUIServer, refresh: bool) -> None:
        """open_workflow()'s thread: the workflow with its inputs typed, or the error."""
        try:
            workflow, defs = _with_defs(source, api, server, refresh)
            event = WorkflowOpened(path, workflow, tuple(typed_inputs(workflow, defs)), defs=defs)
        except ComfyRelayError as exc:
            event = WorkflowOpened(path, error=str(exc))
        except Exception as exc:  # a bug must still end the conversion, and reach the user
            log.exception("opening %s failed", path)
            event = WorkflowOpened(path, error=f"Unexpected error: {type(exc).__name__}: {exc}")
        self._opened.put((server, stamp, event))

    @property
    def converting(self) -> int:
        """open_workflow() threads under way (the host's timer keeps ticking for them)."""
        return len(self._converting)

    def is_converting(self, path: str) -> bool:
        """open_workflow() still works on `path`: its WorkflowOpened has not come yet."""
        return any(p == path for p, _ in self._converting)

    def workflow(self, path: str) -> Workflow | None:
        """The workflow to run from `path`, without asking any server: the one open_workflow()
        gave while the file is unchanged, else an API-format file read now. None for a
        UI-format file not converted (open_workflow() it); WorkflowError while it is being
        converted."""
        mtime, opened = self._converted.get(path, (None, None))
        if opened is not None and mtime == _mtime(path):
            return opened
        source = read_workflow_file(path)
        if source.prompt is not None:
            return Workflow(source.prompt, source.name)
        if self.is_converting(path):
            raise WorkflowError(BEING_CONVERTED)
        return None

    def check_values(self, workflow: Workflow, bindings: Bindings) -> None:
        """Raise InvalidValues for values the server would refuse (not in its list, out of
        range), with the closest valid ones, when its node definitions are known."""
        workflow.check(bindings)
        if self._defs is not None:
            check_values(workflow, bindings, self._defs)

    # ---- runs ----
    def start_run(self, label: str, *, data: Any = None, noun: str = "", feeding: bool = False,
                  workflow_path: str = "", bindings: Bindings | None = None) -> Run:
        """Open a run; submit() its jobs. `workflow_path` and `bindings` go into its history
        entry. Raises ComfyRelayError when there is no back end or a run is under way."""
        self.require_runner()
        if self.run is not None:
            raise ComfyRelayError("A run is in progress: wait for it, or Cancel it.")
        machine = self.machine
        self.run = Run(label, data, noun, feeding, workflow_path, bindings or Bindings(),
                       cost_before=machine.status().cost if machine is not None else None)
        self._state.update(status="Rendering…" if feeding else "Sending…", error="",
                           error_node="", progress=0.0, node="", step="",
                           seed=self.run.bindings.seed_value())
        self._refresh_view()
        return self.run

    def submit(self, run: Run, job: Job, tag: Any = None) -> str:
        """Queue one job of `run` (any thread); "" when the run was cancelled or failed."""
        with self._submit_lock:
            if run.cancelled or run.failed or self.runner is None or run is not self.run:
                return ""
            job_id = self.runner.submit(job)
            run.jobs[job_id] = tag
            run.open_jobs.add(job_id)
            return job_id

    def end_feed(self, run: Run) -> None:
        """No more jobs will come for `run` (its render ended)."""
        run.feeding = False

    def refuse(self, message: str, run: Run | None = None) -> None:
        """Nothing could be sent (no render, a bad value): say why; a run opened for it is
        dropped with whatever it had queued."""
        if run is not None:
            run.feeding, run.failed = False, True
            if self.runner is not None:
                self.runner.cancel()
            if self.run is run and not run.open_jobs:
                self.run = None
        self._state.update(status="Not started", error=message, error_node="")
        self._refresh_view()

    def cancel(self, status: str = "Cancelling…") -> None:
        run = self.run
        if run is None:
            return
        run.cancelled = True
        if self.runner is not None:
            self.runner.cancel()
        self._state["status"] = status
        self._refresh_view()

    def hold(self, job_id: str) -> None:
        """The host places one of the job's results in the background (decoding it): its
        final event and its run's end wait for release()."""
        self._holds[job_id] += 1

    def release(self, job_id: str) -> None:
        self._holds[job_id] -= 1
        if self._holds[job_id] <= 0:
            del self._holds[job_id]

    # ---- the pump (UI timer) ----
    def pump(self, handle: Callable[[HostEvent], None]) -> None:
        """Apply what arrived and hand each event to `handle`, in order: previews coalesced
        (only the newest of a batch), a job's final event only once its results are placed,
        then RunEnded once the whole run is."""
        if self.runner is not None:
            with self._submit_lock:
                events = self.runner.poll()
            for event in _latest_preview_only(events):
                self._note(event)
                if isinstance(event, FINAL_EVENTS) and self._holds[event.job_id]:
                    self._held.append(event)
                else:
                    self._deliver(event, handle)
        while not self._opened.empty():
            self._opened_one(*self._opened.get(), handle)
        ready = [e for e in self._held if not self._holds[getattr(e, "job_id", "")]]
        self._held = [e for e in self._held if e not in ready]
        for event in ready:
            self._deliver(event, handle)
        run = self.run
        if run is not None and run.over and not any(j in self._holds for j in run.jobs):
            self.run = None
            self._ended(run)
            handle(RunEnded(run, self._record(run)))
        self._apply()
        self._refresh_view()

    def _opened_one(self, server: ComfyUIServer, stamp: float, opened: WorkflowOpened,
                    handle: Callable[[HostEvent], None]) -> None:
        self._converting.discard((opened.path, server))
        if opened.workflow is not None:
            self._converted[opened.path] = (stamp, opened.workflow)
        if opened.defs is not None:
            self._defs = opened.defs
        if opened.error:
            self._state.update(status="Not opened", error=opened.error, error_node="")
        elif str(self._state.get("status", "")).startswith("Converting"):
            self._state["status"] = "Ready"
        handle(opened)

    def _deliver(self, event: Event, handle: Callable[[HostEvent], None]) -> None:
        handle(event)
        if isinstance(event, FINAL_EVENTS) and self.run is not None:
            self.run.open_jobs.discard(event.job_id)

    def _note(self, event: Event) -> None:
        """What an event changes in the view and the run's bookkeeping."""
        if isinstance(event, ConnectionChecked):
            self._checking = False
            self._state.update(connected=event.ok, connection=event.message)
            return
        run = self.run
        if run is None or event.job_id not in run.jobs:
            return  # a job of a run already closed
        where = run.where(event.job_id)
        if isinstance(event, JobStarted):
            run.seed = event.seed if run.seed is None else run.seed
            self._state.update(seed=event.seed, status=f"{where}Sending…")
        elif isinstance(event, JobQueued):
            ahead = f" ({event.position} ahead)" if event.position else ""
            self._state["status"] = f"{where}Queued{ahead}"
        elif isinstance(event, JobProgress):
            self._progress(run, event, where)
        elif isinstance(event, JobOutput):
            run.outputs.append(event)
        elif isinstance(event, JobFinished):
            run.finished += 1
        elif isinstance(event, JobFailed):
            self._failed(run, event, where)
        elif isinstance(event, JobCancelled):
            run.cancelled = True
            note = event.message
            if note and note != PLAIN_CANCEL and note not in run.cancel_notes:
                run.cancel_notes.append(note)

    def _progress(self, run: Run, event: JobProgress, where: str) -> None:
        done = len(run.jobs) - len(run.open_jobs)
        fraction = (done + event.fraction) / max(len(run.jobs), 1) if run.noun else event.fraction
        self._state.update(
            progress=fraction,
            node=f"{event.node_title} ({event.node_id})" if event.node_id else "",
            step=f"step {event.value}/{event.max}" if event.max else "",
            status=event.message or f"{where}Running",
        )

    def _failed(self, run: Run, event: JobFailed, where: str) -> None:
        run.failed = True
        node = ""
        if event.node_id:
            node = f"node {event.node_id}" + (f" ({event.node_type})" if event.node_type else "")
        self._state.update(error=f"{where}{event.message}", error_node=node)
        if run.noun and self.runner is not None:
            self.runner.cancel()  # the same workflow would fail on every other job too

    def _ended(self, run: Run) -> None:
        self._state.update(node="", step="")
        total = len(run.jobs)
        count = f" after {run.finished} of {total} {run.noun}s" if run.noun else ""
        # The service's answers to cancels (the user may still be billed), also when a failed
        # frame cancelled the others.
        notes = " ".join(run.cancel_notes)
        if run.failed:
            self._state["status"] = f"Failed{count}" + (f". {notes}" if notes else "")
        elif notes:
            self._state["status"] = f"Cancelled{count}. {notes}" if count else notes
        elif run.cancelled:
            self._state["status"] = f"Cancelled{count}"
        else:
            done = (f"{run.finished} of {total} {run.noun}s" if run.noun
                    else f"{len(run.outputs)} result(s)")
            self._state.update(status=f"Done: {done}", progress=1.0)

    def _record(self, run: Run) -> RunRecord | None:
        """The run's history entry: what made its results, to see again or run again."""
        if not run.outputs or self._settings is None:
            return None
        machine = self.machine
        cost_now = machine.status().cost if machine is not None else None
        cost = None
        if cost_now is not None and run.cost_before is not None:
            cost = cost_now - run.cost_before
        version = self.backend.server_version if self.backend is not None else ""
        seed = run.seed if run.seed is not None else run.bindings.seed_value()
        return new_run_record(
            workflow_name=run.label, workflow_path=run.workflow_path, bindings=run.bindings,
            seed=seed, backend=self._settings[0].kind, server_version=version,
            started=run.started, ended=time.time(), cost=cost,
            outputs=[output.path for output in run.outputs],
        )

    # ---- RunComfy machines ----
    def launch(self) -> None:
        self.machine_actions.launch(self._require_machine())

    def stop(self) -> None:
        """Stop the machine; one chosen for reuse is forgotten (it cannot run jobs again),
        so the next back end launches its own."""
        self.machine_actions.stop(self._require_machine())
        if self._reuse_id:
            self._reuse_id = ""
            self._resync()

    def extend(self, minutes: int) -> None:
        self.machine_actions.extend(self._require_machine(), minutes)

    def _require_machine(self) -> RunComfyMachineBackend:
        machine = self.machine
        if machine is None:
            raise ComfyRelayError(self._problem or "Choose the RunComfy machine back end.")
        return machine

    def scan_leftovers(self, credentials: Credentials, api_url: str = "") -> bool:
        """Machines left running by earlier sessions cost money: look for them (at start-up),
        in the background. False when there are no RunComfy credentials to ask with."""
        if not (credentials.runcomfy_user_id and credentials.runcomfy_tokens):
            return False
        self.leftover_scan.scan(runcomfy_server(credentials, api_url), self.ledger)
        return True

    def stop_leftover(self, server_id: str) -> None:
        self.leftover_scan.stop_leftover(server_id, self.ledger)

    def reuse(self, server_id: str) -> None:
        """Send the next jobs to a machine found running. The host then chooses the machine
        back end in its settings and calls configure()."""
        if self._keeps_backend():
            raise ComfyRelayError("Wait for the current job or machine action to end.")
        self._reuse_id, self._attach = server_id, True
        self._resync()

    def _resync(self) -> None:
        """Apply the last settings again (once idle): the reused machine changed."""
        self._pending = True

    def close(self) -> None:
        """The host quits: cancel, and close the back end now (a machine launched here is
        stopped)."""
        runner, self.runner = self.runner, None
        if runner is not None:
            runner.close(timeout=2.0)
        self.run = None
        self.leftover_scan.close()

    # ---- the view ----
    def _refresh_view(self) -> None:
        self.view = self._build_view()

    def _build_view(self) -> View:
        caps = self.capabilities
        running = self.run is not None
        view = replace(
            View(),
            **self._state,
            problem=self._problem,
            previews=caps.previews,
            progress_known=caps.live_progress or not running,
            cancel_tip="" if caps.cancel else "This back end cannot cancel a run once it is sent.",
            can_run=not running,
            can_cancel=running and caps.cancel and not (self.run and self.run.cancelled),
            can_check=not self._checking,
        )
        return self._machine_view(view)

    def _machine_view(self, view: View) -> View:
        machine = self.machine
        chosen = self._settings is not None and self._settings[0].kind == "runcomfy-machine"
        lines: list[str] = []
        state = MachineState.NONE
        if machine is not None:
            status = machine.status()
            lines, state = status_lines(status), status.state
            message = self.machine_actions.message
            if message and message not in lines:
                lines.append(message)
        elif chosen:
            lines = [self._problem or "Set up the RunComfy machine in the settings."]
        free = machine is not None and not self.machine_actions.working
        launching = bool(machine and machine.preparing)
        in_use = machine.server_id if machine is not None else ""
        found = [m for m in self.leftover_scan.leftovers or [] if m.machine.server_id != in_use]
        return replace(
            view,
            machine=chosen,
            machine_lines=tuple(lines),
            can_launch=free and not launching and state in (*IDLE_MACHINE, MachineState.ERROR),
            can_stop=free and state not in IDLE_MACHINE,  # also while it launches
            can_extend=free and state is MachineState.READY,
            leftovers=tuple(LeftoverRow(m.machine.server_id, leftover_line(m)) for m in found),
            leftover_message=self.leftover_scan.message,
            can_act_on_leftovers=not self.leftover_scan.working,
        )


def _with_defs(source: WorkflowSource, api: Workflow | None, server: ComfyUIServer,
               refresh: bool) -> tuple[Workflow, NodeDefs | None]:
    """The workflow and the server's node definitions, fetched first (again on `refresh`):
    a UI-format file is converted with the same ones its fields are typed from."""
    if api is not None:
        return api, server_defs(server, refresh=refresh)  # None: plain fields
    assert source.workflow is not None  # a file holds one or the other
    defs = conversion_defs(server.url, token=server.token, refresh=refresh)
    return Workflow(to_api(source.workflow, defs), source.name), defs


def _mtime(path: str) -> float:
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return -1.0


def _latest_preview_only(events: list[Event]) -> list[Event]:
    """Drop previews superseded within the same batch: decoding each would only cost time."""
    last = max((i for i, e in enumerate(events) if isinstance(e, JobPreview)), default=-1)
    return [e for i, e in enumerate(events) if not isinstance(e, JobPreview) or i == last]
