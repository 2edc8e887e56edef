"""The host session: everything Blender and Krita share between their UI and the runner.

It holds the back end (BackendSlot: built from the settings, each kind's Controls), the
workflows opened (WorkflowOpener), the bookkeeping of a run's jobs, preview coalescing, and
the `View` a host binds its widgets to. A host keeps only what needs the host: pixels out of
it, results into it, widgets, settings storage, and the UI timer that calls pump().
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..config import Credentials
from ..errors import ComfyRelayError, WorkflowError
from ..jobs.backend_api import Backend, Capabilities
from ..jobs.events import FINAL_EVENTS, ConnectionChecked, Event, JobPreview
from ..jobs.job import Job, MediaInput
from ..jobs.runner import JobRunner
from ..jobs.workflow import Bindings, Workflow
from ..kinds import BackendSettings
from .backend_slot import BackendSlot
from .history import RunRecord
from .runs import HostEvent, Run, RunEnded
from .settings import HostSettings
from .status import Flag, RunStatus, Status, attention_line
from .view import View
from .workflows import WorkflowOpener

RUN_UNDER_WAY = "A run is in progress: wait for it, or Cancel it."
WORKFLOW_TIPS = {
    Status.NO_WORKFLOW: "Choose a workflow first.",
    Status.CONVERTING: "Wait: the workflow is being converted with the server's node "
                       "definitions.",
    Status.NOT_OPENED: "The workflow could not be opened: choose another, or fix it and "
                       "reload it.",
}


class HostSession:
    """One per add-on instance. Owned by the host's UI thread: call every method there,
    except submit(), which a render thread may call. Network work runs on the runner's
    thread, the kinds' action threads and the conversion threads, so no method here waits
    for a server, except close(): the host quits, so it waits up to 2 s for the runner and
    may stop a machine launched here before it returns."""

    def __init__(self, *, max_in_flight: int = 1, config: Path | None = None) -> None:
        self.slot = BackendSlot(max_in_flight=max_in_flight, config=config)
        self.workflows = WorkflowOpener()
        self.run: Run | None = None
        self.view = View()
        self._shown = RunStatus()
        self._workflow_path = ""  # the workflow chosen: a run's messages belong to it
        self._flags: list[Flag] = []  # its values the server would refuse
        self._checking = False
        self._holds: Counter[str] = Counter()  # job id -> results the host is still placing
        self._held: list[Event] = []  # final events waiting for their job's results
        self._submit_lock = threading.Lock()  # submit() and poll() take turns

    # ---- the back end ----
    def configure(self, settings: BackendSettings, credentials: Credentials) -> None:
        """Use these settings: a new back end when what it connects to changed, live tuning
        when only what the kind tunes did. Waits (for pump) while busy."""
        self.slot.configure(settings, credentials)
        self._apply()
        self._refresh_view()

    @property
    def backend(self) -> Backend | None:
        return self.slot.backend

    @property
    def runner(self) -> JobRunner | None:
        return self.slot.runner

    @property
    def capabilities(self) -> Capabilities:
        return self.slot.capabilities

    @property
    def busy(self) -> bool:
        """A run or a connection check is under way."""
        return self.run is not None or self._checking

    @property
    def active(self) -> bool:
        """Something shown is still changing: the host's timer should keep ticking."""
        return self.busy or self.slot.active or self.converting > 0

    def _apply(self) -> None:
        if self.slot.apply(self.busy):
            self.workflows.forget()  # another server may know other nodes
            # What the old back end said is not about this one, its complaints about the
            # values included: the workflow is opened again, so the hosts retype its fields
            # from the new server (WorkflowOpened) and flag what that one would refuse.
            self._shown.clear()
            self._shown.disconnected()
            self._flags = []
            self._reopen()

    def _reopen(self) -> None:
        """The chosen workflow opened with the new back end's server (if any)."""
        if not self._workflow_path:
            return
        with contextlib.suppress(WorkflowError):  # open_workflow() said why (Not opened)
            self.open_workflow(self._workflow_path)

    def require_runner(self) -> JobRunner:
        return self.slot.require_runner()

    def act(self, kind: str, action: str, target: str = "") -> str:
        """A button of a kind's box (View.controls); returns the kind the host must now show
        as chosen in its settings, else "" (then configure() as after any change)."""
        chosen = self.slot.act(kind, action, target, busy=self.busy)
        self._refresh_view()
        return chosen

    def scan_leftovers(self, settings: HostSettings) -> bool:
        """Things earlier sessions left running cost money: look for them (at start-up), in
        the background. False when no kind could ask (no credentials)."""
        found = self.slot.scan(settings)
        self._refresh_view()
        return found

    def check(self) -> None:
        """Check the connection off the UI thread; the answer shows in the view."""
        try:
            runner = self.require_runner()
        except ComfyRelayError as exc:
            self._shown.checked(False, str(exc))
        else:
            runner.check_connection()
            self._checking = True
            self._shown.checked(None, "Checking…")
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
        server. Another path than before clears what the runs said (the View)."""
        self._choose(path)
        server = self.backend.comfyui_server() if self.backend is not None else None
        try:
            api = self.workflows.open(path, server, refresh)
        except WorkflowError as exc:
            self._shown.chosen(Status.NOT_OPENED, str(exc))
            self._refresh_view()
            raise
        if api is None:
            self._shown.converting_file()
        else:
            self._shown.chosen(Status.READY)  # its fields are typed later; it can run now
        self._refresh_view()
        return api

    def close_workflow(self) -> None:
        """No workflow is chosen any more (the host's field was emptied)."""
        self._choose("")
        self._shown.chosen(Status.NO_WORKFLOW)
        self._refresh_view()

    def _choose(self, path: str) -> None:
        if path != self._workflow_path:
            self._workflow_path, self._flags = path, []
            # A run under way keeps saying how it goes, and then how it ended (its results
            # land anyway); the next switch clears that.
            if self.run is None:
                self._shown.clear()

    def flag_values(self, flags: Sequence[Flag]) -> None:
        """The chosen workflow's values the server would refuse, as the host's fields show
        them (apps.flags()); the status line names them and Run waits until none is left.
        Call it whenever the fields are checked, with [] when all check out."""
        self._flags = list(flags)
        self._refresh_view()

    @property
    def workflow_path(self) -> str:
        """The workflow chosen last (open_workflow), "" for none."""
        return self._workflow_path

    @property
    def flags(self) -> list[Flag]:
        return list(self._flags)

    @property
    def converting(self) -> int:
        """Conversions under way (the host's timer keeps ticking for them)."""
        return self.workflows.converting

    def is_converting(self, path: str) -> bool:
        """open_workflow() still works on `path`: its WorkflowOpened has not come yet."""
        return self.workflows.is_converting(path)

    def workflow(self, path: str) -> Workflow | None:
        """The workflow to run from `path`, without asking any server: the one open_workflow()
        gave while the file is unchanged, else an API-format file read now. None for a
        UI-format file not converted (open_workflow() it); WorkflowError while it is being
        converted."""
        return self.workflows.workflow(path)

    def check_values(self, workflow: Workflow, bindings: Bindings,
                     media: Sequence[MediaInput] | None = None) -> None:
        """Raise InvalidValues for values the server would refuse (not in its list, out of
        range), with the closest valid ones, when its node definitions are known; with the
        run's `media` (bytes not read), also for loaders that cannot take them and loaders
        left unbound whose file the server lacks."""
        self.workflows.check_values(workflow, bindings, media)

    # ---- runs ----
    def start_run(self, label: str, *, data: Any = None, noun: str = "", feeding: bool = False,
                  workflow_path: str = "", bindings: Bindings | None = None) -> Run:
        """Open a run; submit() its jobs. `workflow_path` and `bindings` go into its history
        entry. Raises ComfyRelayError when there is no back end or a run is under way."""
        self.require_runner()
        if self.run is not None:
            raise ComfyRelayError(RUN_UNDER_WAY)
        self.run = Run(label, data, noun, feeding, workflow_path, bindings or Bindings(),
                       cost_before=self.slot.cost())
        self._shown.started(self.run, feeding)
        self._refresh_view()
        return self.run

    def submit(self, run: Run, job: Job, tag: Any = None) -> str:
        """Queue one job of `run` (any thread); "" when the run was cancelled or failed."""
        with self._submit_lock:
            runner = self.runner
            if run.cancelled or run.failed or runner is None or run is not self.run:
                return ""
            job_id = runner.submit(job)
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
        self._shown.refused(message)
        self._refresh_view()

    def cancel(self, detail: str = "") -> None:
        """Cancel the run; `detail` adds to "Cancelling…" what else the host does."""
        run = self.run
        if run is None:
            return
        run.cancelled = True
        if self.runner is not None:
            self.runner.cancel()
        self._shown.cancelling(detail)
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
        runner = self.runner
        if runner is not None:
            with self._submit_lock:
                events = runner.poll()
            for event in _latest_preview_only(events):
                self._note(event)
                if isinstance(event, FINAL_EVENTS) and self._holds[event.job_id]:
                    self._held.append(event)
                else:
                    self._deliver(event, handle)
        for opened in self.workflows.answers():
            if opened.path == self._workflow_path:  # not one the user has left since
                self._shown.opened(opened.error)
            handle(opened)
        ready = [e for e in self._held if not self._holds[getattr(e, "job_id", "")]]
        self._held = [e for e in self._held if e not in ready]
        for event in ready:
            self._deliver(event, handle)
        run = self.run
        if run is not None and run.over and not any(j in self._holds for j in run.jobs):
            self.run = None
            self._shown.ended(run)
            handle(RunEnded(run, self._record(run)))
        self._apply()
        self._refresh_view()

    def _deliver(self, event: Event, handle: Callable[[HostEvent], None]) -> None:
        handle(event)
        if isinstance(event, FINAL_EVENTS) and self.run is not None:
            self.run.open_jobs.discard(event.job_id)

    def _note(self, event: Event) -> None:
        """What an event changes in the view and the run's bookkeeping."""
        if isinstance(event, ConnectionChecked):
            self._checking = False
        if self._shown.note(self.run, event) and self.runner is not None:
            self.runner.cancel()  # a job of several failed: so would the others

    def _record(self, run: Run) -> RunRecord | None:
        """The run's history entry, when it gave results."""
        version = self.backend.server_version if self.backend is not None else ""
        return run.record(self.slot.kind, version, self.slot.cost(),
                          self.slot.estimate(len(run.jobs)))

    def close(self) -> None:
        """The host quits: cancel, and close the back end now (a machine launched here is
        stopped)."""
        self.slot.close()
        self.run = None

    # ---- the view ----
    def _refresh_view(self) -> None:
        caps = self.capabilities
        running = self.run is not None
        run_tip, rerun_tip = self._run_tip(), self._rerun_tip()
        self.view = View(
            **self._shown.view_fields(running, attention_line(self._flags)),
            problem=self.slot.problem,
            previews=caps.previews,
            progress_known=caps.live_progress or not running,
            cancel_tip="" if caps.cancel else "This back end cannot cancel a run once it is sent.",
            can_run=not run_tip,
            run_tip=run_tip,
            can_rerun=not rerun_tip,
            rerun_tip=rerun_tip,
            can_cancel=running and caps.cancel and not (self.run and self.run.cancelled),
            can_check=not self._checking,
            controls=self.slot.views(),
        )

    def _rerun_tip(self) -> str:
        """Why Run Again cannot start now; "" when it can. It sends a past run's own workflow
        and values: the chosen workflow's state and flags do not stop it."""
        if self.run is not None:
            return RUN_UNDER_WAY
        if self.backend is None:
            return self.slot.problem or "Choose a back end."
        return ""

    def _run_tip(self) -> str:
        """Why Run cannot start now; "" when it can."""
        rerun_tip = self._rerun_tip()
        if rerun_tip:
            return rerun_tip
        if self._shown.workflow in WORKFLOW_TIPS:
            return WORKFLOW_TIPS[self._shown.workflow]
        return attention_line(self._flags)


def _latest_preview_only(events: list[Event]) -> list[Event]:
    """Drop previews superseded within the same batch: decoding each would only cost time."""
    last = max((i for i, e in enumerate(events) if isinstance(e, JobPreview)), default=-1)
    return [e for i, e in enumerate(events) if not isinstance(e, JobPreview) or i == last]
