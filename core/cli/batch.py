"""Many jobs from the command line (`comfyrelay batch`, and `run` over a pool): the inputs a
folder or a glob names, the estimate before anything is sent, per-worker progress, results
named after their inputs and in input order, and the cost beside the estimate at the end."""

from __future__ import annotations

import glob
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ..config import Credentials, config_dir
from ..errors import PLAIN_CANCEL, ComfyRelayError
from ..jobs import events as ev
from ..jobs.backend_api import Backend
from ..jobs.job import Job
from ..jobs.runner import JobRunner
from ..kinds import KINDS, BackendSettings
from ..pool.estimate import Estimate, estimate
from ..pool.kind import NAME as POOL
from ..pool.kind import PoolKind, PoolSettings, pool_lines
from ..pool.pool_backend import PoolBackend
from ..pool.times import measured_times
from . import signals

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".exr", ".bmp"}
CANCEL_WAIT = 30.0  # as `run`: how long a cancel may wait for the servers to confirm
PROGRESS_EVERY = 2.0  # seconds between two per-worker progress reports


def find_inputs(pattern: str) -> list[Path]:
    """The images a folder holds, or a glob matches, sorted by name (the job order)."""
    folder = Path(pattern).expanduser()
    found = sorted(folder.iterdir()) if folder.is_dir() else sorted(
        Path(p) for p in glob.glob(str(folder)))
    images = [p for p in found if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        raise ComfyRelayError(f"--images {pattern}: no image files there "
                              f"({', '.join(sorted(IMAGE_SUFFIXES))}).")
    return images


def pool_estimate(choice: BackendSettings, credentials: Credentials, jobs: int,
                  workflow: str) -> Estimate:
    """The estimate of `jobs` of `workflow` on the pool `choice` names, its workers checked
    first; seconds per job measured by earlier runs of that workflow beat the pool file's."""
    kind = KINDS.get(POOL)
    assert isinstance(kind, PoolKind) and isinstance(choice.settings, PoolSettings)
    specs = kind.specs(choice.settings, credentials)
    return estimate(specs, jobs, measured_times(config_dir(), specs, workflow))


def before_run(choice: BackendSettings, credentials: Credentials, jobs: int, workflow: str,
               err: TextIO) -> Estimate | None:
    """The estimate, said before anything is sent; refuses a cap that cannot be kept."""
    if choice.kind != POOL:
        return None
    guess = pool_estimate(choice, credentials, jobs, workflow)
    cap = getattr(choice.settings, "max_cost", None)
    if cap is not None and guess.cost is None:
        raise ComfyRelayError("--max-cost needs the price and seconds per job of every worker "
                              "that may bill: " + "; ".join(guess.unknown))
    if cap is not None and guess.cost is not None and guess.cost > cap:
        signals.write(err, f"The estimate (${guess.cost:.2f}) passes --max-cost ${cap:.2f}: "
                      "jobs are sent only while the cost stays under it.\n")
    return guess


@dataclass
class Outcome:
    """What a batch ended with, in job order (the command's main thread fills it)."""

    finished: list[tuple[str, tuple[Path, ...]]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    cancelled: int = 0
    stopped: signals.Signalled | None = None


Namer = Callable[[str, tuple[Path, ...]], tuple[Path, ...]]


def run_jobs(backend: Backend, jobs: Sequence[tuple[str, Job]], namer: Namer,
             err: TextIO | None = None, out: TextIO | None = None) -> Outcome:
    """Run every job (`label`, job) to its end; print each result's paths in job order."""
    err, out = err or sys.stderr, out or sys.stdout
    runner = JobRunner(backend, max_in_flight=2)
    labels = {runner.submit(job): label for label, job in jobs}
    outcome = Outcome()
    report = _Progress(backend, err)
    with signals.Guard() as guard:
        try:
            try:
                _wait(runner, guard, labels, outcome, namer, report, out, None)
            except signals.Signalled as stop:
                outcome.stopped = stop
                runner.cancel()
                signals.write(err, signals.cancelling_note(stop) + "\n")
                _wait(runner, guard, labels, outcome, namer, report, out, CANCEL_WAIT)
            guard.closing()
            runner.close()
        except signals.Stop as stop:
            signals.write(err, f"Stopped waiting ({stop.why}): jobs may go on on the servers.\n")
            outcome.stopped = outcome.stopped or signals.Signalled(stop.signum)
    report.show(force=True)
    # A machine still billing is always named; a stopped one only after a signal.
    left = signals.machine_note(backend, say_stopped=outcome.stopped is not None)
    if left:
        signals.write(err, left + "\n")
    return outcome


def _wait(runner: JobRunner, guard: signals.Guard, labels: dict[str, str], outcome: Outcome,
          namer: Namer, report: _Progress, out: TextIO, timeout: float | None) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    with guard.polled():
        while runner.busy:
            guard.check()
            if deadline is not None and time.monotonic() > deadline:
                return
            for event in runner.wait_idle(timeout=0.1):
                _take(event, labels, outcome, namer, out)
            report.show()


def _take(event: ev.Event, labels: dict[str, str], outcome: Outcome, namer: Namer,
          out: TextIO) -> None:
    if isinstance(event, ev.JobFinished):
        label = labels[event.job_id]
        paths = namer(label, event.outputs)
        outcome.finished.append((label, paths))
        for path in paths:
            signals.write(out, f"{path}\n")
    elif isinstance(event, ev.JobFailed):
        outcome.failed.append((labels[event.job_id], event.message))
    elif isinstance(event, ev.JobCancelled):
        outcome.cancelled += 1


class _Progress:
    """Per-worker progress on stderr while a pool runs (main thread only)."""

    def __init__(self, backend: Backend, err: TextIO) -> None:
        self.pool = backend if isinstance(backend, PoolBackend) else None
        self.err = err
        self.last = 0.0
        self.shown: list[str] = []

    def show(self, force: bool = False) -> None:
        if self.pool is None or (not force and time.monotonic() - self.last < PROGRESS_EVERY):
            return
        self.last = time.monotonic()
        lines = pool_lines(self.pool)
        if lines != self.shown:
            self.shown = lines
            signals.write(self.err, "".join(f"  {line}\n" for line in lines))


def named_after(out_dir: Path) -> Namer:
    """Results renamed after their input: `frame_001.png`, or `frame_001_2.png` for a
    job's second file; never over a file already there."""
    def name(label: str, paths: tuple[Path, ...]) -> tuple[Path, ...]:
        stem = Path(label).stem
        renamed = []
        for n, path in enumerate(paths, 1):
            base = stem if len(paths) == 1 else f"{stem}_{n}"
            target = _free(out_dir / f"{base}{path.suffix}", path)
            if target != path:
                path.replace(target)
            renamed.append(target)
        return tuple(renamed)
    return name


def _free(target: Path, own: Path) -> Path:
    candidate, n = target, 1
    while candidate.exists() and candidate != own:
        candidate = target.with_name(f"{target.stem}-{n}{target.suffix}")
        n += 1
    return candidate


def cost_line(guess: Estimate | None, backend: Backend) -> str:
    """"Cost: $0.42 (estimate $0.40)": what the run cost beside what was expected."""
    spent = backend.view().spent if isinstance(backend, PoolBackend) else None
    real = "unknown" if spent is None else f"${spent:.2f}"
    planned = "" if guess is None else (
        f" (estimate {'unknown' if guess.cost is None else f'${guess.cost:.2f}'})")
    return f"Cost: {real}{planned}"


def summary(outcome: Outcome, guess: Estimate | None, backend: Backend, err: TextIO) -> int:
    """The end: failures (each reason once), the cost beside the estimate; the exit code."""
    reasons: dict[str, list[str]] = {}
    for label, message in outcome.failed:
        reasons.setdefault(message, []).append(label)
    for message, labels in reasons.items():
        signals.write(err, f"error: {message} ({len(labels)} job(s): {', '.join(labels[:5])}"
                      f"{', …' if len(labels) > 5 else ''})\n")
    done = len(outcome.finished)
    signals.write(err, f"Done: {done} job(s) finished, {len(outcome.failed)} failed, "
                  f"{outcome.cancelled} cancelled.\n")
    if isinstance(backend, PoolBackend):
        signals.write(err, cost_line(guess, backend) + "\n")
    if outcome.stopped is not None:
        if not outcome.cancelled and not outcome.finished:
            signals.write(err, PLAIN_CANCEL + "\n")
        return outcome.stopped.exit_code
    return 1 if outcome.failed else 0
