"""What a host hears from its session beside the runner's events: a run (one press of Run)
with its bookkeeping, the end of a run with its history entry, and a workflow opened."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..comfyui.nodes import NodeDefs
from ..jobs.events import Event, JobOutput
from ..jobs.workflow import Bindings, Workflow, WorkflowInput
from .history import RunRecord, new_run_record


@dataclass(eq=False)
class Run:
    """One press of Run: one job, or several (an animation's frames, `noun` "frame").

    Jobs may be added from another thread through HostSession.submit(); everything else
    belongs to the UI thread.
    """

    label: str
    data: Any = None  # the host's own: the document, the target object, ...
    noun: str = ""  # several jobs: "frame" makes "Frame 12: running"
    feeding: bool = False  # more jobs may still come (a render is running)
    workflow_path: str = ""  # for its history entry
    bindings: Bindings = field(default_factory=Bindings)
    started: float = field(default_factory=time.time)
    cost_before: float | None = None  # the machine's cost so far when the run started
    seed: int | None = None  # the seed its first job used
    jobs: dict[str, Any] = field(default_factory=dict)  # job id -> the host's tag (a frame)
    open_jobs: set[str] = field(default_factory=set)
    outputs: list[JobOutput] = field(default_factory=list)
    finished: int = 0  # jobs that ended well
    failed: bool = False
    cancelled: bool = False
    # What the back end said about cancels beyond "Cancelled." (RunComfy: the job may still
    # finish and be billed), each once, in order.
    cancel_notes: list[str] = field(default_factory=list)

    @property
    def over(self) -> bool:
        return not self.feeding and not self.open_jobs

    def record(self, backend: str, server_version: str, cost_now: float | None,
               estimate: float | None = None) -> RunRecord | None:
        """Its history entry, what made its results (to see again or run again); None when
        it gave none. `cost_now`: the back end's cost so far, when it knows; `estimate`:
        what its jobs were expected to cost."""
        if not self.outputs or not backend:
            return None
        cost = None
        if cost_now is not None and self.cost_before is not None:
            cost = cost_now - self.cost_before
        return new_run_record(
            workflow_name=self.label, workflow_path=self.workflow_path, bindings=self.bindings,
            seed=self.seed if self.seed is not None else self.bindings.seed_value(),
            backend=backend, server_version=server_version, started=self.started,
            ended=time.time(), cost=cost, estimate=estimate,
            outputs=[output.path for output in self.outputs],
        )

    def where(self, job_id: str) -> str:
        """"Frame 12: " for a job of a run of several, else nothing."""
        return f"{self.noun.capitalize()} {self.jobs.get(job_id)}: " if self.noun else ""


@dataclass(frozen=True)
class RunEnded:
    """Every job of `run` has ended and the host has placed its results. `record` is the
    run's history entry when it gave results (hosts keep it in the document)."""

    run: Run
    record: RunRecord | None = None


@dataclass(frozen=True)
class WorkflowOpened:
    """What open_workflow() found out in the background: the workflow (converted from UI
    format if need be) with its inputs typed from the server's node definitions (`typed`
    False: the server could not be asked, plain fields), or `error` saying why not."""

    path: str
    workflow: Workflow | None = None
    inputs: tuple[WorkflowInput, ...] = ()
    error: str = ""
    defs: NodeDefs | None = field(default=None, repr=False, compare=False)  # for the checks

    @property
    def typed(self) -> bool:
        return self.defs is not None


HostEvent = Event | RunEnded | WorkflowOpened
