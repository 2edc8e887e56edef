"""One pool worker: an existing back end driven by a JobRunner of its own, with what the pool
learns of it (seconds per job, failures) and the jobs it holds.

Owned by the pool's dispatcher thread: every field is read and written there only; the
worker's back end is owned by its runner's thread (start()/finish() as for any back end).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..jobs.backend_api import Backend
from ..jobs.events import JobOutput
from ..jobs.runner import JobRunner
from .poolfile import WorkerSpec

EWMA = 0.3  # weight of the newest job in the measured seconds per job
PREFETCH = 1  # jobs queued on a worker beyond its slots, so it never waits for an upload
STALL_FACTOR = 3.0  # a job is stalled past this many times its worker's measured time...
STALL_MARGIN = 3.0  # ...plus these seconds (downloads, a slow answer)
BENCH = (1.0, 2.0, 4.0)  # seconds a failing worker rests before it gets jobs again
DOWN_AFTER = len(BENCH)  # consecutive failures that take a worker out of the run


@dataclass
class Attempt:
    """One try of a pool job on one worker (the dispatcher thread's, like its worker)."""

    job_index: int
    worker: Worker
    inner_id: str
    staging: Path
    dispatched: float
    ahead: int  # jobs the worker held when this one was sent
    outputs: list[JobOutput] = field(default_factory=list)

    def deadline(self) -> float | None:
        """When this try counts as stalled; None while its worker has no measured time."""
        spj = self.worker.spj
        if spj is None:
            return None
        rounds = self.ahead // self.worker.spec.slots + 1
        return self.dispatched + rounds * spj * STALL_FACTOR + STALL_MARGIN


class Worker:
    """A back end in the pool, its runner and its record (see the module for who owns it)."""

    def __init__(self, spec: WorkerSpec, backend: Backend) -> None:
        self.spec = spec
        self.backend = backend
        self.runner: JobRunner | None = None  # made when the worker answers at start
        self.spj: float | None = None  # measured here only (the file's is for estimates)
        self.state = "idle"  # idle (before the first job), up, resting, down
        self.note = ""  # why it rests or is down
        self.failures = 0  # in a row
        self.rest_until = 0.0
        self.live: dict[str, Attempt] = {}  # by inner job id
        self.abandoned: dict[str, Attempt] = {}  # moved away: their events are dropped
        self.done = 0
        self.failed_over = 0  # jobs moved away from this worker
        self.last_end = 0.0
        self.busy_seconds = 0.0  # measured work, for the running cost
        self.opened = 0.0  # when it started answering (a machine bills from then)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def capacity(self) -> int:
        return self.spec.slots + PREFETCH

    def open(self) -> None:
        self.runner = JobRunner(self.backend, max_in_flight=self.capacity)
        self.state, self.opened = "up", time.monotonic()

    def usable(self, now: float) -> bool:
        if self.state == "resting" and now >= self.rest_until:
            self.state = "up"
        return self.state == "up"

    def finish_time(self, default_spj: float) -> float:
        """Seconds until one more job sent now would end here."""
        spj = self.spj if self.spj is not None else default_spj
        return (len(self.live) + 1) / self.spec.slots * spj

    def measured(self, attempt: Attempt, now: float) -> None:
        """A job ended well: learn its time (from when a slot was free for it)."""
        began = attempt.dispatched if attempt.ahead < self.spec.slots else max(
            attempt.dispatched, self.last_end)
        seconds = max(0.001, now - began)
        # The first job also carried the worker's start-up (a machine's launch, the first
        # connection): the second one replaces it instead of averaging with it.
        first = self.spj is None or self.done == 1
        self.spj = seconds if first else EWMA * seconds + (1 - EWMA) * (self.spj or seconds)
        self.busy_seconds += seconds
        self.last_end = now
        self.done += 1
        self.failures = 0

    def failed(self, why: str, now: float) -> None:
        """It failed a job it should have run: rest, and after DOWN_AFTER in a row, out."""
        self.failures += 1
        self.note = why
        if self.failures >= DOWN_AFTER:
            self.state = "down"
        else:
            self.state, self.rest_until = "resting", now + BENCH[self.failures - 1]

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()
        else:
            self.backend.close()
