"""Where a trivial job's time goes, step by step: ComfyRelay beside the seed's minimal flow.

A 64×64 invert, timed per step on both clients, taking turns job by job against one server:

- ComfyRelay: its ComfyUIBackend's client calls are wrapped with timers (bind, upload, queue,
  the wait for the end, history, download); "runner hand-off" is what the runner and the
  host's poll add around the back end (submit() to the final event, minus start + finish).
- The seed flow (benchmarks/seed_flow.py) is re-run here with a timer per step; it opens
  its socket per job, where ComfyRelay keeps one open.

Each client uploads the same pixels under its own file name (overhead.inputs, as
benchmarks/overhead.py does). ComfyUI caches only the last prompt's nodes, so two clients
sending one graph in turn would see the second served from cache; with a name each, every
job runs for real, for every client.

    .venv/bin/python -m benchmarks.overhead_steps [--url http://127.0.0.1:8199] [--jobs 30]

Without --url (or $COMFYUI_URL) it starts the test server. run(repeats, workdir) is the
benchmark suite's interface.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from comfyrelay import ComfyUIBackend, InputFile, Job, JobRunner, Workflow
from comfyrelay.jobs import events as ev

from tests.paths import WORKFLOWS

from . import overhead, seed_flow
from .serve import server
from .table import Row, render, row

Steps = dict[str, float]  # step -> seconds, for one job


class StepTimer:
    """Adds the time spent in wrapped methods to named steps."""

    def __init__(self) -> None:
        self.steps: Steps = defaultdict(float)

    def wrap(self, owner: Any, method: str, step: str) -> None:
        original = getattr(owner, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.steps[step] += time.perf_counter() - started

        setattr(owner, method, timed)

    def take(self) -> Steps:
        steps, self.steps = dict(self.steps), defaultdict(float)
        return steps


class RelayClient:
    """One JobRunner and ComfyUIBackend for every job, as a host keeps them."""

    def __init__(self, url: str, image: Path) -> None:
        self.backend = ComfyUIBackend(url)
        self.runner = JobRunner(self.backend)
        self.workflow = Workflow.load(WORKFLOWS / "invert_api.json")
        self.image = InputFile(image.name, image.read_bytes())
        self.timer = StepTimer()
        client = self.backend.client
        for method, step in (("upload", "upload"), ("queue_prompt", "queue"),
                             ("history", "history"), ("download", "download"),
                             ("queue", "queue checks"), ("open_events", "socket connect")):
            self.timer.wrap(client, method, step)
        self.timer.wrap(self.workflow, "bind", "bind")
        self.timer.wrap(self.backend, "start", "backend start")
        self.timer.wrap(self.backend, "finish", "backend finish")

    def __call__(self, out: Path) -> Steps:
        started = time.perf_counter()
        self.runner.submit(Job(self.workflow, out, image=self.image))
        final = self._final()
        total = time.perf_counter() - started
        if not isinstance(final, ev.JobFinished):
            raise RuntimeError(f"ComfyRelay job ended with {final}")
        steps = self.timer.take()
        start, finish = steps.pop("backend start"), steps.pop("backend finish")
        inside_finish = sum(steps.get(s, 0.0) for s in ("history", "download", "queue checks"))
        steps["wait for the end"] = finish - inside_finish
        steps["runner hand-off"] = total - start - finish
        steps["start, rest"] = start - sum(
            steps.get(s, 0.0) for s in ("bind", "upload", "queue", "socket connect"))
        steps["total"] = total
        return steps

    def _final(self) -> ev.Event:
        """Poll as benchmarks/overhead.py does: every millisecond, until the final event."""
        while True:
            for event in self.runner.poll():
                if isinstance(event, ev.FINAL_EVENTS):
                    return event
            time.sleep(0.001)  # a host's timer would tick far less often

    def close(self) -> None:
        self.runner.close()


def seed_steps(url: str, graph: dict[str, Any], image: Path, out: Path) -> Steps:
    """benchmarks/seed_flow.run, step by step (same requests, same order)."""
    steps: Steps = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        steps[name] = now - clock
        clock = now

    begin = clock
    seed_flow.run(url, graph, image, out, lap)
    steps["total"] = time.perf_counter() - begin
    return steps


STEPS = ("bind", "upload", "socket connect", "queue", "start, rest", "wait for the end",
         "queue checks", "history", "download", "runner hand-off", "total")


def measure(url: str, workdir: Path, jobs: int) -> dict[str, dict[str, list[float]]]:
    """Per client, per step: the milliseconds of each job, the clients taking turns."""
    images = overhead.inputs(workdir, ("relay", "seed"))
    graph = Workflow.load(WORKFLOWS / "invert_api.json").graph
    relay = RelayClient(url, images["relay"])
    clients: dict[str, Callable[[Path], Steps]] = {
        "comfyrelay": relay,
        "seed 001": lambda out: seed_steps(url, graph, images["seed"], out),
    }
    found: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in clients}
    try:
        for n in range(jobs + 2):  # the first two warm up connections and caches
            for name, client in clients.items():
                out = workdir / f"{n}-{name.replace(' ', '_')}"
                out.mkdir(parents=True)
                steps = client(out)
                if n >= 2:
                    for step in STEPS:
                        found[name][step].append(steps.get(step, 0.0) * 1000)
    finally:
        relay.close()
    return found


def rows(found: dict[str, dict[str, list[float]]]) -> list[Row]:
    out = []
    for name, steps in found.items():
        for step in STEPS:
            values = steps.get(step) or [0.0]
            out.append(row("overhead steps", f"{name}: {step}", values, "ms"))
    return out


@contextlib.contextmanager
def target(url: str | None, workdir: Path) -> Iterator[str]:
    if url:
        yield url.rstrip("/")
        return
    with server("comfyui", str(workdir / "server")) as info:
        yield str(info["url"])


def compare(url: str, repeats: int, workdir: Path) -> list[Row]:
    """benchmarks/overhead.py's three direct clients, side by side, against `url` (which may
    be a real ComfyUI), each with its own image name: per repeat the median of JOBS_PER_RUN
    jobs each (overhead.medians), and the ratios. Needs comfy-api-simplified (the bench
    extra)."""
    images = overhead.inputs(workdir, ("relay", "seed", "simplified"))
    relay, close = overhead.comfyrelay_client(url, images["relay"])
    clients = {"comfyrelay": relay, "seed 001": overhead.seed_client(url, images["seed"]),
               "simplified": overhead.simplified_client(url, images["simplified"])}
    try:
        medians = overhead.medians(clients, repeats, workdir)
    finally:
        close()
    out = [row("overhead", f"64×64 invert per job: {name}", v, "ms") for name, v in medians.items()]
    for other in ("seed 001", "simplified"):
        ratios = [a / b for a, b in zip(medians["comfyrelay"], medians[other], strict=True)]
        out.append(row("overhead", f"ComfyRelay ÷ {other}", ratios, "×"))
    return out


def run(repeats: int, workdir: Path) -> list[Row]:
    with target(os.environ.get("COMFYUI_URL"), workdir) as url:
        return rows(measure(url, workdir, jobs=10 * repeats))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overhead_steps")
    parser.add_argument("--url", default=os.environ.get("COMFYUI_URL"))
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--compare", type=int, default=0, metavar="REPEATS",
                        help="also time overhead.py's three clients side by side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-steps-") as work, \
            target(args.url, Path(work)) as url:
        found = measure(url, Path(work), args.jobs)
        compared = compare(url, args.compare, Path(work)) if args.compare else []
    print(render(rows(found) + compared))
    relay, seed = found["comfyrelay"]["total"], found["seed 001"]["total"]
    print(f"\nmedian per job: comfyrelay {statistics.median(relay):.2f} ms, seed "
          f"{statistics.median(seed):.2f} ms, ratio "
          f"{statistics.median(relay) / statistics.median(seed):.3f}")


if __name__ == "__main__":
    main()
