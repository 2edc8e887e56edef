"""The pool back end: one job list over several workers (ComfyUI servers, RunComfy machines
or Serverless, ComfyICU, the Comfy API), each any existing kind with its own slots.

The runner hands the pool many jobs at once (`parallel`); start() only queues a job here and
finish() waits for its result, so results still reach the host in job order. A dispatcher
thread sends each job to the worker that will finish it soonest (its measured seconds per job
and what it holds), moves the job when its worker fails or stalls past a limit derived from
its own measured time, and keeps the first result only: each try downloads into a staging
folder of its own, and only the winner's files are moved into the job's folder.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import queue
import shutil
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CancelledByUser, ComfyRelayError, ExecutionFailed
from ..jobs.backend_api import Backend, Capabilities, ComfyUIServer, JobContext
from ..jobs.events import (
    Event,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobOutput,
    JobPreview,
    JobProgress,
    JobQueued,
)
from ..jobs.job import Job
from .poolfile import WorkerSpec
from .times import record_times
from .workers import Attempt, Worker

log = logging.getLogger(__name__)

# Errors that say the worker, not the job, went wrong: the job is moved to another worker.
WORKER_ERRORS = {"ConnectionFailed", "ServerRestarted", "ServerError", "RateLimited",
                 "AuthenticationFailed", "MachineError"}
# A job that failed this many tries (at least twice the workers), each on a worker error,
# fails with the last one: the job itself (too large an upload, say) must not take every
# worker out of the run.
MAX_TRIES = 3
STAGING = ".comfyrelay-pool"  # inside the job's folder: each try's own downloads
TICK = 0.02  # seconds between the dispatcher's rounds when nothing wakes it
CANCEL_WAIT = 12.0  # seconds a cancelled job waits for its worker to confirm
CHECK_WAIT = 20.0  # seconds the start-up check of the workers may take


ALL = Capabilities()


class AllWorkersDown(ComfyRelayError):
    """Every worker failed or was unreachable: the jobs left are not run."""


class CostCapReached(ComfyRelayError):
    """The next job would pass the cost cap (`--max-cost`): it and the rest are not sent."""


@dataclass(frozen=True)
class WorkerView:
    """One worker as the CLI and both hosts show it."""

    name: str
    state: str  # idle, up, resting, down
    done: int
    in_flight: int
    failed_over: int
    seconds_per_job: float | None
    note: str = ""

    def line(self) -> str:
        spj = "" if self.seconds_per_job is None else f", {self.seconds_per_job:.2f} s/job"
        moved = f", {self.failed_over} moved away" if self.failed_over else ""
        why = f" ({self.note})" if self.note and self.state != "up" else ""
        return (f"{self.name}: {self.state}{why}, {self.done} done, {self.in_flight} in "
                f"flight{moved}{spj}")


@dataclass(frozen=True)
class PoolView:
    workers: tuple[WorkerView, ...] = ()
    spent: float | None = 0.0  # money so far, None when a used worker's price is unknown
    notes: tuple[str, ...] = ()  # workers skipped at start, the cost cap, all down


class PoolJob:
    """The handle start() returns. Its outcome is written once by the dispatcher, then
    `done` is set; finish() (the runner's thread) reads it only after that."""

    def __init__(self, index: int, job: Job, ctx: JobContext) -> None:
        self.index = index
        self.job = job
        self.ctx = ctx
        self.done = threading.Event()
        self.outputs: list[JobOutput] = []
        self.error: JobFailed | None = None
        self.cancel_message = ""
        self.cancel_sent = 0.0  # when the dispatcher cancelled its tries
        self.staging: Path | None = None  # the winning try's folder

    def __lt__(self, other: PoolJob) -> bool:  # the pending heap: earliest job first
        return self.index < other.index


class PoolBackend(Backend):
    """Owned by the runner's worker thread (start/finish); its dispatcher thread owns the
    workers, the pending jobs and every try; `view()` may be read from any thread."""

    name = "pool"

    def __init__(self, specs: Sequence[WorkerSpec], build: Callable[[WorkerSpec], Backend], *,
                 capabilities: Capabilities = ALL,
                 max_cost: float | None = None, times: Path | None = None) -> None:
        self.workers = [Worker(spec, build(spec)) for spec in specs]
        self._max_tries = max(MAX_TRIES, 2 * len(self.workers))
        self.capabilities = capabilities
        self.max_cost = max_cost
        self.times = times  # the folder that keeps measured seconds per job; None: not kept
        self._workflow = ""  # the last job's workflow, whose times are kept
        capacity = sum(w.capacity for w in self.workers)
        # Enough jobs to keep every worker busy while early ones wait for their turn.
        self.parallel = max(2 * capacity, capacity + 8)
        self._incoming: queue.Queue[PoolJob] = queue.Queue()
        self._pending: list[PoolJob] = []  # a heap by job index
        self._jobs: dict[int, PoolJob] = {}  # sent to the pool, not yet done
        self._tries: dict[int, list[Attempt]] = {}
        self._count = 0
        self._out_dirs: set[Path] = set()  # where tries stage their files
        self._stopped_by: ComfyRelayError | None = None  # all down, or the cost cap
        self._notes: list[str] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # guards _view only
        self._view = PoolView(tuple(_view_of(w) for w in self.workers))
        self._thread: threading.Thread | None = None

    # ---- the runner's side ----
    def check(self) -> str:
        answers = _check_all(self.workers)
        good = [f"{w.name}: {a}" for w, a in answers.items() if not isinstance(a, Exception)]
        if not good:
            raise AllWorkersDown("No worker of the pool answers: " + "; ".join(
                f"{w.name}: {a}" for w, a in answers.items()))
        bad = [f"{w.name} unreachable ({a})" for w, a in answers.items()
               if isinstance(a, Exception)]
        # A plain first line; each worker's whole answer on a line of its own under it.
        good = [line.replace("\n", " · ") for line in good]
        ready = f"{len(good)} of {len(self.workers)}" if bad else f"all {len(good)}"
        return (f"Pool of {len(self.workers)} workers: {ready} ready.\n"
                + "\n".join(good + bad))

    def start(self, job: Job, ctx: JobContext) -> PoolJob:
        ctx.raise_if_cancelled()
        self._ensure_thread()
        self._count += 1
        handle = PoolJob(self._count, job, ctx)
        self._incoming.put(handle)
        self._wake.set()
        return handle

    def finish(self, handle: Any, ctx: JobContext) -> list[Path]:
        job: PoolJob = handle
        while not job.done.wait(0.25):  # bounded: the dispatcher moves or ends every job
            ctx.idle()
            if ctx.cancelled:
                self._wake.set()
            if self._stop.is_set() and not job.done.wait(CANCEL_WAIT):
                raise CancelledByUser("The pool was closed before this job ended.")
        if job.cancel_message:
            raise CancelledByUser(job.cancel_message)
        if job.error is not None:
            raise _error_of(job.error)
        return self._deliver(job, ctx)

    def comfyui_server(self) -> ComfyUIServer | None:
        return next((s for w in self.workers if (s := w.backend.comfyui_server()) is not None),
                    None)

    @property
    def server_version(self) -> str:
        return ", ".join(sorted({v for w in self.workers if (v := w.backend.server_version)}))

    def view(self) -> PoolView:
        with self._lock:
            return self._view

    def members(self) -> list[Backend]:
        return [w.backend for w in self.workers]

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(CANCEL_WAIT + 10)
        else:
            for worker in self.workers:
                worker.close()

    # ---- delivering a result (the runner's thread) ----
    def _deliver(self, job: PoolJob, ctx: JobContext) -> list[Path]:
        """Move the winning try's files into the job's folder and report them."""
        paths = []
        for output in job.outputs:
            target = _free_name(job.job.out_dir / output.path.name)
            shutil.move(str(output.path), target)
            paths.append(target)
            ctx.emit(dataclasses.replace(output, job_id=ctx.job_id, path=target))
        if job.staging is not None:  # this try's own folder only: others may be writing
            shutil.rmtree(job.staging, ignore_errors=True)
        return paths

    # ---- the dispatcher thread ----
    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="comfyrelay-pool",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            self._open_workers()
            while not self._stop.is_set():
                self._round()
                self._wake.wait(TICK)
                self._wake.clear()
        except Exception:  # a bug must end the jobs visibly, not leave finish() waiting
            log.exception("the pool's dispatcher failed")
            self._stopped_by = AllWorkersDown("The pool stopped on an internal error.")
            for job in list(self._jobs.values()):
                heapq.heappush(self._pending, job)
            self._end_pending()
        finally:
            for worker in self.workers:
                worker.close()
            for folder in self._out_dirs:  # no try writes any more: drop what is left
                shutil.rmtree(folder / STAGING, ignore_errors=True)
            if self.times is not None and self._workflow:
                record_times(self.times, self._workflow,
                             [(w.spec, w.spj) for w in self.workers if w.spj and w.done > 1])

    def _round(self) -> None:
        now = time.monotonic()
        self._take_new()
        for worker in self.workers:
            self._route(worker, now)
        self._check_stalls(now)
        self._check_cancels(now)
        self._dispatch(now)
        self._publish()

    def _open_workers(self) -> None:
        """Ask every worker at once; one that does not answer is skipped and named."""
        for worker, answer in _check_all(self.workers).items():
            if isinstance(answer, Exception):
                worker.state, worker.note = "down", str(answer)
                self._notes.append(f"Skipped {worker.name}: it did not answer ({answer}).")
            else:
                worker.open()
        self._publish()

    def _take_new(self) -> None:
        while True:
            try:
                job = self._incoming.get_nowait()
            except queue.Empty:
                return
            self._jobs[job.index] = job
            self._tries[job.index] = []
            self._workflow = job.job.workflow.name
            heapq.heappush(self._pending, job)

    def _route(self, worker: Worker, now: float) -> None:
        """The worker's events: progress goes on at once, files wait for the job's end."""
        if worker.runner is None:
            return
        for event in worker.runner.poll():
            inner = getattr(event, "job_id", "")
            attempt = worker.live.get(inner)
            if attempt is None:  # a try moved away or ended: a late duplicate, dropped
                if inner in worker.abandoned and _final(event):
                    shutil.rmtree(worker.abandoned.pop(inner).staging, ignore_errors=True)
                continue
            self._on_event(attempt, event, now)

    def _on_event(self, attempt: Attempt, event: Event, now: float) -> None:
        job = self._jobs.get(attempt.job_index)
        worker = attempt.worker
        if job is None:
            return
        if isinstance(event, (JobProgress, JobPreview, JobQueued)):
            job.ctx.emit(dataclasses.replace(event, job_id=job.ctx.job_id))
        elif isinstance(event, JobOutput):
            attempt.outputs.append(event)
        elif isinstance(event, JobFinished):
            worker.live.pop(attempt.inner_id)
            worker.measured(attempt, now)
            job.outputs, job.staging = attempt.outputs, attempt.staging
            self._complete(job)
        elif isinstance(event, JobFailed) and event.error_type in WORKER_ERRORS \
                and not job.ctx.cancelled and len(self._tries[job.index]) < self._max_tries:
            worker.live.pop(attempt.inner_id)
            shutil.rmtree(attempt.staging, ignore_errors=True)
            self._worker_failed(worker, event.message, now, moved=[job])
        elif isinstance(event, (JobFailed, JobCancelled)):
            worker.live.pop(attempt.inner_id)
            shutil.rmtree(attempt.staging, ignore_errors=True)
            if job.ctx.cancelled:
                job.cancel_message = getattr(event, "message", "") or "Cancelled."
            elif isinstance(event, JobFailed):
                job.error = event
            else:  # cancelled by someone else than us: run it again elsewhere
                heapq.heappush(self._pending, job)
                return
            self._complete(job)

    def _worker_failed(self, worker: Worker, why: str, now: float, moved: list[PoolJob]) -> None:
        """The worker failed or stalled: every job it holds goes back to the queue."""
        worker.failed(why, now)
        for inner, attempt in list(worker.live.items()):
            worker.live.pop(inner)
            worker.abandoned[inner] = attempt
            if worker.runner is not None:
                worker.runner.cancel(inner)  # a late duplicate is cancelled where it can be
            job = self._jobs.get(attempt.job_index)
            if job is not None and job not in moved:
                moved.append(job)
        for job in moved:
            worker.failed_over += 1
            heapq.heappush(self._pending, job)
        log.info("pool: %s failed (%s); %d job(s) moved", worker.name, why, len(moved))

    def _check_stalls(self, now: float) -> None:
        for worker in self.workers:
            late = [a for a in worker.live.values() if (d := a.deadline()) is not None and now > d]
            if late:
                self._worker_failed(worker, f"a job took over {now - late[0].dispatched:.0f} s, "
                                    "past its limit", now, moved=[])

    def _check_cancels(self, now: float) -> None:
        for job in list(self._jobs.values()):
            if not job.ctx.cancelled or job.done.is_set():
                continue
            tries = [a for a in self._tries[job.index] if a.inner_id in a.worker.live]
            if not tries or (job.cancel_sent and now - job.cancel_sent > CANCEL_WAIT):
                job.cancel_message = job.cancel_message or "Cancelled."
                self._complete(job)
            elif not job.cancel_sent:
                job.cancel_sent = now
                for attempt in tries:
                    if attempt.worker.runner is not None:
                        attempt.worker.runner.cancel(attempt.inner_id)

    def _dispatch(self, now: float) -> None:
        while self._pending:
            job = self._pending[0]
            if job.done.is_set() or job.ctx.cancelled:
                heapq.heappop(self._pending)
                continue
            if self._stopped_by is None:
                self._stopped_by = self._why_stop(now)
            if self._stopped_by is not None:
                self._end_pending()
                return
            worker = self._soonest(now)
            if worker is None or len(worker.live) >= worker.capacity:
                return  # the soonest worker is full, or all rest: wait for it
            if self._over_cap(worker, now):
                continue
            heapq.heappop(self._pending)
            self._send(job, worker, now)

    def _soonest(self, now: float) -> Worker | None:
        usable = [w for w in self.workers if w.usable(now)]
        if not usable:
            return None
        known = [w.spj for w in self.workers if w.spj is not None]
        default = statistics.median(known) if known else 1.0
        return min(usable, key=lambda w: (w.finish_time(default), len(w.live)))

    def _why_stop(self, now: float) -> ComfyRelayError | None:
        if all(w.state == "down" for w in self.workers):
            why = "; ".join(f"{w.name}: {w.note}" for w in self.workers)
            return AllWorkersDown(f"All workers of the pool are down ({why}). The jobs left were "
                                  "not run; the results so far are kept.")
        return None

    def _over_cap(self, worker: Worker, now: float) -> bool:
        """Would sending one more job to `worker` pass the cost cap? Then stop sending."""
        if self.max_cost is None:
            return False
        spent = self._spent(now) or 0.0
        committed = sum(self._job_cost(w) * len(w.live) for w in self.workers)
        if spent + committed + self._job_cost(worker) <= self.max_cost + 1e-9:
            return False
        self._stopped_by = CostCapReached(
            f"Stopped sending jobs: the next one would pass --max-cost ${self.max_cost:.2f} "
            f"(spent about ${spent:.2f}, ${committed:.2f} more in flight). The results so "
            "far are kept.")
        self._notes.append(str(self._stopped_by))
        return True

    def _job_cost(self, worker: Worker) -> float:
        """One more job's cost on `worker`: its seconds at its price (a machine's share of
        its time while up); a first job adds the cold start."""
        price = worker.spec.price
        spj = worker.spj or worker.spec.seconds_per_job or 0.0
        if price.per_second is None:
            return 0.0
        if price.while_up:
            return price.per_second * spj / worker.spec.slots
        cold = price.startup_seconds if worker.done + len(worker.live) < worker.spec.slots else 0
        return price.per_second * (spj + cold)

    def _spent(self, now: float) -> float | None:
        total = 0.0
        for worker in self.workers:
            price = worker.spec.price
            used = worker.done or worker.live
            if not used:
                continue
            if price.per_second is None:
                return None
            if price.while_up:
                total += price.per_second * (now - worker.opened)
            else:
                starts = min(worker.done, worker.spec.slots)
                total += price.cost(worker.busy_seconds, starts=starts) or 0.0
        return total

    def _send(self, job: PoolJob, worker: Worker, now: float) -> None:
        assert worker.runner is not None
        tries = self._tries[job.index]
        self._out_dirs.add(job.job.out_dir)
        staging = job.job.out_dir / STAGING / f"{job.ctx.job_id}-{len(tries) + 1}"
        inner = worker.runner.submit(dataclasses.replace(job.job, out_dir=staging))
        attempt = Attempt(job.index, worker, inner, staging, now, len(worker.live))
        worker.live[inner] = attempt
        tries.append(attempt)

    def _complete(self, job: PoolJob) -> None:
        """The job's one outcome: its other tries are cancelled and their files dropped."""
        for attempt in self._tries.pop(job.index, []):
            worker = attempt.worker
            if attempt.inner_id in worker.live:
                worker.live.pop(attempt.inner_id)
                worker.abandoned[attempt.inner_id] = attempt
                if worker.runner is not None:
                    worker.runner.cancel(attempt.inner_id)
        self._jobs.pop(job.index, None)
        job.done.set()

    def _end_pending(self) -> None:
        assert self._stopped_by is not None
        while self._pending:
            job = heapq.heappop(self._pending)
            if job.done.is_set():
                continue
            job.error = JobFailed(job.ctx.job_id, str(self._stopped_by),
                                  error_type=type(self._stopped_by).__name__)
            self._tries.setdefault(job.index, [])
            self._complete(job)

    def _publish(self) -> None:
        view = PoolView(tuple(_view_of(w) for w in self.workers),
                        self._spent(time.monotonic()), tuple(self._notes))
        with self._lock:
            self._view = view


def _view_of(worker: Worker) -> WorkerView:
    return WorkerView(worker.name, worker.state, worker.done, len(worker.live),
                      worker.failed_over, worker.spj, worker.note)


def _final(event: Event) -> bool:
    return isinstance(event, (JobFinished, JobFailed, JobCancelled))


def _check_all(workers: Sequence[Worker]) -> dict[Worker, str | Exception]:
    """Each worker's check(), all at once on threads of their own, bounded in time."""
    answers: dict[Worker, str | Exception] = {}

    def ask(worker: Worker) -> None:
        try:
            answers[worker] = worker.backend.check()
        except Exception as exc:  # any failure means: skip it, and say why
            answers[worker] = exc

    threads = [threading.Thread(target=ask, args=(w,), name="comfyrelay-pool-check",
                                daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + CHECK_WAIT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return {w: answers.get(w, TimeoutError(f"no answer within {CHECK_WAIT:.0f} s"))
            for w in workers}


def _error_of(event: JobFailed) -> ComfyRelayError:
    if event.error_type == CostCapReached.__name__:
        return CostCapReached(event.message)
    if event.error_type == AllWorkersDown.__name__:
        return AllWorkersDown(event.message)
    return ExecutionFailed(event.message, event.node_id, event.node_type)


def _free_name(path: Path) -> Path:
    """`path`, or `name_1.ext`, ... when a file of that name is there (two servers number
    their outputs alike)."""
    candidate, n = path, 1
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}_{n}{path.suffix}")
        n += 1
    return candidate
