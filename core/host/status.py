"""What a host shows of the run under way and of the connection, as typed fields: set by the
runner's events and the session's own steps, read into each View."""

from __future__ import annotations

from dataclasses import asdict, dataclass
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


@dataclass
class RunStatus:
    """Owned by the UI thread (the session's pump)."""

    status: str = "Idle"
    error: str = ""
    error_node: str = ""
    progress: float = 0.0
    node: str = ""
    step: str = ""
    seed: int | None = None
    connection: str = "Not checked"
    connected: bool | None = None
    converting: bool = False  # `status` says a workflow is being converted

    def view_fields(self) -> dict[str, Any]:
        """The View's fields this holds."""
        fields = asdict(self)
        del fields["converting"]
        return fields

    def started(self, run: Run, feeding: bool) -> None:
        self.status = "Rendering…" if feeding else "Sending…"
        self.error = self.error_node = self.node = self.step = ""
        self.progress, self.seed, self.converting = 0.0, run.bindings.seed_value(), False

    def refused(self, message: str) -> None:
        self.status, self.error, self.error_node = "Not started", message, ""
        self.converting = False  # the status no longer says so

    def converting_file(self, name: str) -> None:
        self.status = f"Converting {name} with the server's node definitions…"
        self.converting = True

    def opened(self, error: str) -> None:
        """A workflow's conversion ended (with `error`, or well)."""
        if error:
            self.status, self.error, self.error_node = "Not opened", error, ""
        elif self.converting:
            self.status = "Ready"
        self.converting = False

    def note(self, run: Run | None, event: Event) -> bool:
        """What an event changes; True when the run's other jobs must be cancelled (a job of
        several failed: the same workflow would fail on every other one too)."""
        if isinstance(event, ConnectionChecked):
            self.connected, self.connection = event.ok, event.message
            return False
        if run is None or event.job_id not in run.jobs:
            return False  # a job of a run already closed
        where = run.where(event.job_id)
        if isinstance(event, JobStarted):
            run.seed = event.seed if run.seed is None else run.seed
            self.seed, self.status = event.seed, f"{where}Sending…"
        elif isinstance(event, JobQueued):
            ahead = f" ({event.position} ahead)" if event.position else ""
            self.status = f"{where}Queued{ahead}"
        elif isinstance(event, JobProgress):
            self._progress(run, event, where)
        elif isinstance(event, JobOutput):
            run.outputs.append(event)
        elif isinstance(event, JobFinished):
            run.finished += 1
        elif isinstance(event, JobFailed):
            return self._failed(run, event, where)
        elif isinstance(event, JobCancelled):
            run.cancelled = True
            if event.message not in (PLAIN_CANCEL, "", *run.cancel_notes):
                run.cancel_notes.append(event.message)
        return False

    def _progress(self, run: Run, event: JobProgress, where: str) -> None:
        done = len(run.jobs) - len(run.open_jobs)
        self.progress = ((done + event.fraction) / max(len(run.jobs), 1) if run.noun
                         else event.fraction)
        self.node = f"{event.node_title} ({event.node_id})" if event.node_id else ""
        self.step = f"step {event.value}/{event.max}" if event.max else ""
        self.status = event.message or f"{where}Running"

    def _failed(self, run: Run, event: JobFailed, where: str) -> bool:
        run.failed = True
        node = ""
        if event.node_id:
            node = f"node {event.node_id}" + (f" ({event.node_type})" if event.node_type else "")
        self.error, self.error_node = f"{where}{event.message}", node
        return bool(run.noun)

    def ended(self, run: Run) -> None:
        self.node = self.step = ""
        total = len(run.jobs)
        count = f" after {run.finished} of {total} {run.noun}s" if run.noun else ""
        # The service's answers to cancels (the user may still be billed), also when a failed
        # frame cancelled the others.
        notes = " ".join(run.cancel_notes)
        if run.failed:
            self.status = f"Failed{count}" + (f". {notes}" if notes else "")
        elif notes:
            self.status = f"Cancelled{count}. {notes}" if count else notes
        elif run.cancelled:
            self.status = f"Cancelled{count}"
        else:
            done = (f"{run.finished} of {total} {run.noun}s" if run.noun
                    else f"{len(run.outputs)} result(s)")
            self.status, self.progress = f"Done: {done}", 1.0
