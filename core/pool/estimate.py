"""Time and cost before a run: the jobs spread over the workers as the pool would send them
(each to the worker that finishes it soonest), priced by each worker's `Price`.

Nothing is guessed: a worker with no seconds per job (neither measured nor in the pool file)
or a paid worker with no price is named as unknown, and the total is then a lower bound.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .poolfile import WorkerSpec


@dataclass(frozen=True)
class WorkerShare:
    """One worker's part of an estimate."""

    name: str
    jobs: int
    seconds: float  # when its last job ends, from the start
    cost: float | None  # None: its price is unknown


@dataclass(frozen=True)
class Estimate:
    jobs: int
    seconds: float  # the whole run, start to last result
    cost: float | None  # None when some used worker's price is unknown
    shares: tuple[WorkerShare, ...]
    unknown: tuple[str, ...] = ()  # what is missing, in words

    def per_job(self) -> float | None:
        return None if self.cost is None or not self.jobs else self.cost / self.jobs

    def lines(self) -> list[str]:
        """What `--estimate` prints and the pool's box shows."""
        cost = "unknown" if self.cost is None else f"${self.cost:.2f}"
        out = [f"Estimate: {self.jobs} job(s) in about {duration(self.seconds)}, cost {cost}"]
        out += [f"  {s.name}: {s.jobs} job(s), {duration(s.seconds)}, "
                f"{'cost unknown' if s.cost is None else f'${s.cost:.2f}'}"
                for s in self.shares]
        out += [f"  unknown: {u}" for u in self.unknown]
        return out


def duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{seconds:.1f} s"


def estimate(specs: Sequence[WorkerSpec], jobs: int,
             measured: Mapping[str, float] | None = None) -> Estimate:
    """`jobs` over `specs`; `measured` seconds per job by worker name beat the file's."""
    times = {s.name: (measured or {}).get(s.name) or s.seconds_per_job for s in specs}
    unknown = [f"{s.name}: seconds per job (give seconds_per_job in the pool file, or run "
               "once to measure)" for s in specs if times[s.name] is None]
    timed = [s for s in specs if times[s.name] is not None]
    counts, ends = _schedule(timed, times, jobs)
    shares, total, missing = [], 0.0, False
    run_seconds = max(ends.values(), default=0.0)
    for spec in timed:
        n = counts[spec.name]
        cost = _cost(spec, n, times[spec.name] or 0.0, run_seconds)
        if n and cost is None:
            missing = True
            unknown.append(f"{spec.name}: price ({spec.price.basis}; give price_per_hour or "
                           "price_per_second in the pool file)")
        total += cost or 0.0
        shares.append(WorkerShare(spec.name, n, ends[spec.name], cost))
    # A worker with no time may still take jobs: only a free one leaves the cost known.
    missing = missing or any(times[s.name] is None and s.price.per_second != 0 for s in specs)
    cost_all = None if missing else total
    return Estimate(jobs, run_seconds, cost_all, tuple(shares), tuple(unknown))


def _schedule(specs: Sequence[WorkerSpec], times: Mapping[str, float | None],
              jobs: int) -> tuple[dict[str, int], dict[str, float]]:
    """Each job to the slot that frees first (what the pool does when jobs are alike)."""
    counts = {s.name: 0 for s in specs}
    ends = {s.name: 0.0 for s in specs}
    slots = [(0.0 + (s.price.startup_seconds if not s.price.while_up else 0.0), i, s)
             for i, s in enumerate(specs) for _ in range(s.slots)]
    heapq.heapify(slots)
    for _ in range(jobs if slots else 0):
        free_at, order, spec = heapq.heappop(slots)
        end = free_at + (times[spec.name] or 0.0)
        counts[spec.name] += 1
        ends[spec.name] = max(ends[spec.name], end)
        heapq.heappush(slots, (end, order, spec))
    return counts, ends


def _cost(spec: WorkerSpec, jobs: int, seconds: float, run_seconds: float) -> float | None:
    """Per second of work and a cold start per slot used (Serverless, ComfyICU), or per
    second of the whole run for a machine billed while it is up."""
    if not jobs:
        return 0.0
    if spec.price.while_up:
        return spec.price.cost(run_seconds)
    return spec.price.cost(jobs * seconds, starts=min(jobs, spec.slots))
