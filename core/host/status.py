"""What a host shows of the workflow, the run under way and the connection, as typed fields:
set by the runner's events and the session's own steps, read into each View.

One status vocabulary (Status) for both hosts, every workflow format and every back end. The
status line is the word, then what it is about after a dash ("Queued — 2 ahead", "Done — 1
result"); while values need attention it is the attention line instead. A run's messages
and the progress bar belong to the workflow and back end they came from: clear() drops them
when either changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..errors import PLAIN_CANCEL
from ..jobs.events import (
    ConnectionChecked,
    Event,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobOutput,
    JobProgress,
    JobQueued,
    JobStarted,
)
from .runs import Run


class Status(str, Enum):
    """Every word the status line starts with (README, "The status line"). A str Enum, not
    StrEnum: the core also runs on Python 3.10 (Krita's embedded Python)."""

    NO_WORKFLOW = "No workflow"  # none chosen yet
    CONVERTING = "Converting…"  # a UI-format workflow, with the server's node definitions
    NOT_OPENED = "Not opened"  # the workflow could not be read or converted: the error says
    READY = "Ready"  # open, its values check out, nothing ran yet
    ATTENTION = "Needs attention"  # values the server would refuse: the line names them
    RENDERING = "Rendering…"  # the host renders what it sends (Blender's frames)
    SENDING = "Sending…"  # uploading and queueing
    QUEUED = "Queued"
    RUNNING = "Running"
    CANCELLING = "Cancelling…"
    DONE = "Done"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    NOT_STARTED = "Not started"  # Run was refused: the error says why

    def __str__(self) -> str:  # the word, on every Python version
        return self.value


NOT_CHECKED = "Not checked"


@dataclass(frozen=True)
class Flag:
    """A value the server would refuse, as its field shows it (`label`: its word label)."""

    key: str  # "node_id.input"
    label: str
    problem: str


def attention_line(flags: Sequence[Flag]) -> str:
    """"1 input needs attention: Checkpoint — the server has no checkpoints"; "" for none."""
    if not flags:
        return ""
    count = "1 input needs" if len(flags) == 1 else f"{len(flags)} inputs need"
    return f"{count} attention: " + "; ".join(f"{f.label} — {f.problem}" for f in flags)


def status_line(state: Status, detail: str = "") -> str:
    return f"{state.value} — {detail}" if detail else state.value


def connection_lines(message: str) -> tuple[str, str]:
    """A check's answer split into its plain first line and the details under it (what the
    server lacks and what is done instead)."""
    summary, _, details = message.strip().partition("\n")
    return summary.strip(), details.strip()


@dataclass
class RunStatus:
    """Owned by the UI thread (the session's pump)."""

    workflow: Status = Status.NO_WORKFLOW  # NO_WORKFLOW, CONVERTING, NOT_OPENED or READY
    state: Status = Status.READY  # of the runs in this workflow and back end
    detail: str = ""  # what the state is about: "2 ahead", "frame 3"
    error: str = ""
    error_node: str = ""
    progress: float = 0.0
    progress_shown: bool = False  # a run started in this workflow and back end
    node: str = ""
    step: str = ""
    seed: int | None = None
    connection: str = NOT_CHECKED
    connection_details: str = ""
    connected: bool | None = None

    def view_fields(self, running: bool, attention: str) -> dict[str, Any]:
        """The View's fields this holds; `attention` names the values the server would
        refuse, said while nothing runs."""
        state, line = self.state, status_line(self.state, self.detail)
        # A run that ended with no workflow chosen (Run Again from the history, a host
        # with no workflow of its own) still says how it ended.
        ran = self.state != Status.READY
        if not running and (self.workflow in (Status.CONVERTING, Status.NOT_OPENED)
                            or (self.workflow == Status.NO_WORKFLOW and not ran)):
            state, line = self.workflow, str(self.workflow)
        elif not running and attention:
            state, line = Status.ATTENTION, attention
        return {
            "status": line, "state": state, "attention": attention, "error": self.error,
            "error_node": self.error_node, "progress": self.progress if self.progress_shown
            else 0.0, "progress_shown": self.progress_shown, "node": self.node,
            "step": self.step, "seed": self.seed, "connection": self.connection,
            "connection_details": self.connection_details, "connected": self.connected,
        }

    # ---- the workflow and the back end ----
    def clear(self) -> None:
        """Another workflow or back end: what the runs said belongs to the old one."""
        self.state, self.detail, self.error, self.error_node = Status.READY, "", "", ""
        self.progress, self.progress_shown, self.node, self.step = 0.0, False, "", ""
        self.seed = None

    def disconnected(self) -> None:
        """Another back end: the connection is not checked yet."""
        self.connection, self.connection_details, self.connected = NOT_CHECKED, "", None

    def chosen(self, state: Status, error: str = "") -> None:
        """The workflow chosen: NO_WORKFLOW, CONVERTING, NOT_OPENED (with `error`), READY."""
        self.workflow = state
        if error:
            self.error, self.error_node = error, ""

    def converting_file(self) -> None:
        self.chosen(Status.CONVERTING)

    def opened(self, error: str) -> None:
        """The workflow's conversion ended (with `error`, or well)."""
        self.chosen(Status.NOT_OPENED if error else Status.READY, error)

    def checked(self, ok: bool | None, message: str) -> None:
        self.connected = ok
        self.connection, self.connection_details = connection_lines(message)

    # ---- runs ----
    def started(self, run: Run, feeding: bool) -> None:
        self._say(Status.RENDERING if feeding else Status.SENDING)
        self.error = self.error_node = self.node = self.step = ""
        self.progress, self.seed = 0.0, run.bindings.seed_value()
        self.progress_shown = True

    def refused(self, message: str) -> None:
        self._say(Status.NOT_STARTED)
        self.error, self.error_node = message, ""
        self.progress, self.progress_shown = 0.0, False

    def cancelling(self, detail: str = "") -> None:
        self._say(Status.CANCELLING, detail)

    def note(self, run: Run | None, event: Event) -> bool:
        """What an event changes; True when the run's other jobs must be cancelled (a job of
        several failed: the same workflow would fail on every other one too)."""
        if isinstance(event, ConnectionChecked):
            self.checked(event.ok, event.message)
            return False
        if run is None or event.job_id not in run.jobs:
            return False  # a job of a run already closed
        where = _where(run, event.job_id)
        if isinstance(event, JobStarted):
            run.seed = event.seed if run.seed is None else run.seed
            self.seed = event.seed
            self._going(Status.SENDING, where)
        elif isinstance(event, JobQueued):
            ahead = f"{event.position} ahead" if event.position else ""
            self._going(Status.QUEUED, ", ".join(d for d in (where, ahead) if d))
        elif isinstance(event, JobProgress):
            self._progress(run, event, where)
        elif isinstance(event, JobOutput):
            run.outputs.append(event)
        elif isinstance(event, JobFinished):
            run.finished += 1
        elif isinstance(event, JobFailed):
            return self._failed(run, event)
        elif isinstance(event, JobCancelled):
            run.cancelled = True
            if event.message not in (PLAIN_CANCEL, "", *run.cancel_notes):
                run.cancel_notes.append(event.message)
        return False

    def _say(self, state: Status, detail: str = "") -> None:
        self.state, self.detail = state, detail

    def _progress(self, run: Run, event: JobProgress, where: str) -> None:
        done = len(run.jobs) - len(run.open_jobs)
        self.progress = ((done + event.fraction) / max(len(run.jobs), 1) if run.noun
                         else event.fraction)
        self.node = f"{event.node_title} ({event.node_id})" if event.node_id else ""
        self.step = f"step {event.value}/{event.max}" if event.max else ""
        self._going(Status.RUNNING, ", ".join(d for d in (where, event.message) if d))

    def _going(self, state: Status, detail: str) -> None:
        """How the run goes; a late event (queued, started, progress) must not hide a
        cancel."""
        if self.state != Status.CANCELLING:
            self._say(state, detail)

    def _failed(self, run: Run, event: JobFailed) -> bool:
        run.failed = True
        node = ""
        if event.node_id:
            node = f"node {event.node_id}" + (f" ({event.node_type})" if event.node_type else "")
        self.error, self.error_node = f"{run.where(event.job_id)}{event.message}", node
        return bool(run.noun)

    def ended(self, run: Run) -> None:
        self.node = self.step = ""
        total = len(run.jobs)
        count = f"after {run.finished} of {total} {run.noun}s" if run.noun else ""
        # The service's answers to cancels (the user may still be billed), also when a failed
        # frame cancelled the others.
        notes = " ".join(run.cancel_notes)
        said = ". ".join(d for d in (count, notes) if d)
        if run.failed:
            self._say(Status.FAILED, said)
        elif run.cancelled or notes:
            self._say(Status.CANCELLED, said)
        else:
            done = (f"{run.finished} of {total} {run.noun}s" if run.noun
                    else _results(len(run.outputs)))
            self._say(Status.DONE, done)
            self.progress = 1.0


def _where(run: Run, job_id: str) -> str:
    """"frame 12" for a job of a run of several, else nothing."""
    return f"{run.noun} {run.jobs.get(job_id)}" if run.noun else ""


def _results(count: int) -> str:
    return f"{count} result" + ("" if count == 1 else "s")
