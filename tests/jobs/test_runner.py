"""The job runner's promises to hosts, with a scripted in-process back end."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from comfyrelay import Backend, Job, JobContext, JobRunner, Workflow
from comfyrelay.errors import CancelledByUser, ExecutionFailed
from comfyrelay.jobs import events as ev

from tests.paths import WORKFLOWS


class ScriptedBackend(Backend):
    """Each job 'runs' for `duration` seconds; records the order of start/finish calls."""

    def __init__(self, duration: float = 0.05, fail: set[str] | None = None) -> None:
        self.duration = duration
        self.fail = fail or set()
        self.calls: list[str] = []
        self.started = threading.Event()

    def check(self) -> str:
        return "scripted"

    def start(self, job: Job, ctx: JobContext) -> Any:
        self.calls.append(f"start {job.label}")
        return job

    def finish(self, handle: Any, ctx: JobContext) -> list[Path]:
        job: Job = handle
        self.calls.append(f"finish {job.label}")
        self.started.set()
        end = time.monotonic() + self.duration
        while time.monotonic() < end:
            ctx.idle()
            ctx.raise_if_cancelled()
            time.sleep(0.005)  # on purpose: a job that takes `duration`, checking for cancel
        self.calls.append(f"end {job.label}")
        if job.label in self.fail:
            raise ExecutionFailed("boom", node_id="2", node_type="ImageInvert")
        path = job.out_dir / f"{job.label}.png"
        path.write_bytes(b"x")
        ctx.emit(ev.JobOutput(ctx.job_id, path))
        return [path]


def make_job(tmp_path: Path, label: str) -> Job:
    return Job(Workflow.load(WORKFLOWS / "invert_api.json"), out_dir=tmp_path, label=label)


def finals(events: list[ev.Event]) -> list[ev.Event]:
    return [e for e in events if isinstance(e, ev.FINAL_EVENTS)]


def test_jobs_finish_in_submission_order(tmp_path: Path) -> None:
    runner = JobRunner(ScriptedBackend())
    ids = [runner.submit(make_job(tmp_path, str(n))) for n in range(3)]
    events = runner.wait_idle(timeout=10)
    runner.close()
    done = finals(events)
    assert [e.job_id for e in done if isinstance(e, ev.JobEvent)] == ids
    assert all(isinstance(e, ev.JobFinished) for e in done)
    outputs = [e for e in events if isinstance(e, ev.JobOutput)]
    assert [o.path.name for o in outputs] == ["0.png", "1.png", "2.png"]


def test_poll_never_blocks(tmp_path: Path) -> None:
    runner = JobRunner(ScriptedBackend(duration=1.0))
    runner.submit(make_job(tmp_path, "slow"))
    t0 = time.perf_counter()
    for _ in range(100):
        runner.poll()
    assert time.perf_counter() - t0 < 0.5  # a hundred polls while a job runs
    runner.cancel()
    runner.wait_idle(timeout=5)
    runner.close()


def test_pipelining_starts_the_next_job_before_the_current_finishes(tmp_path: Path) -> None:
    backend = ScriptedBackend(duration=0.3)
    runner = JobRunner(backend, max_in_flight=2)
    runner.submit(make_job(tmp_path, "0"))
    assert backend.started.wait(5)  # like a host that renders the next frame meanwhile
    for n in range(1, 3):
        runner.submit(make_job(tmp_path, str(n)))
    runner.wait_idle(timeout=10)
    runner.close()
    assert backend.calls.index("start 1") < backend.calls.index("end 0")
    assert [c for c in backend.calls if c.startswith("finish")] == [
        "finish 0",
        "finish 1",
        "finish 2",
    ]


def test_cancel_all_ends_every_job_and_runner_stays_usable(tmp_path: Path) -> None:
    backend = ScriptedBackend(duration=5.0)
    runner = JobRunner(backend)
    for n in range(3):
        runner.submit(make_job(tmp_path, str(n)))
    assert backend.started.wait(5)
    runner.cancel()
    events = runner.wait_idle(timeout=5)
    assert [type(e) for e in finals(events)] == [ev.JobCancelled] * 3
    backend.duration = 0.01
    runner.submit(make_job(tmp_path, "after"))
    assert isinstance(finals(runner.wait_idle(timeout=5))[0], ev.JobFinished)
    runner.close()


def test_cancel_one_job_leaves_the_others(tmp_path: Path) -> None:
    runner = JobRunner(ScriptedBackend(duration=0.2))
    first = runner.submit(make_job(tmp_path, "a"))
    second = runner.submit(make_job(tmp_path, "b"))
    runner.cancel(second)
    result = {
        e.job_id: type(e) for e in finals(runner.wait_idle(timeout=5)) if isinstance(e, ev.JobEvent)
    }
    runner.close()
    assert result == {first: ev.JobFinished, second: ev.JobCancelled}


def test_failure_names_the_node_and_next_job_still_runs(tmp_path: Path) -> None:
    runner = JobRunner(ScriptedBackend(fail={"bad"}))
    runner.submit(make_job(tmp_path, "bad"))
    runner.submit(make_job(tmp_path, "good"))
    done = finals(runner.wait_idle(timeout=5))
    runner.close()
    assert isinstance(done[0], ev.JobFailed) and done[0].node_id == "2"
    assert done[0].node_type == "ImageInvert" and "boom" in done[0].message
    assert isinstance(done[1], ev.JobFinished)


def test_random_seed_is_reported_when_the_job_starts(tmp_path: Path) -> None:
    runner = JobRunner(ScriptedBackend())
    job = make_job(tmp_path, "s")
    job.bindings.random_seed = True
    runner.submit(job)
    started = [e for e in runner.wait_idle(timeout=5) if isinstance(e, ev.JobStarted)]
    runner.close()
    assert started and started[0].seed is not None


def test_a_bug_in_a_back_end_fails_the_job_visibly(tmp_path: Path) -> None:
    class Broken(ScriptedBackend):
        def start(self, job: Job, ctx: JobContext) -> Any:
            raise KeyError("oops")

    runner = JobRunner(Broken())
    runner.submit(make_job(tmp_path, "x"))
    done = finals(runner.wait_idle(timeout=5))
    runner.close()
    assert isinstance(done[0], ev.JobFailed) and "KeyError" in done[0].message


def test_check_connection_reports_through_poll(tmp_path: Path) -> None:
    runner = JobRunner(ScriptedBackend())
    runner.check_connection()
    deadline = time.monotonic() + 5
    checked: list[ev.Event] = []
    while not checked and time.monotonic() < deadline:
        checked = [e for e in runner.poll() if isinstance(e, ev.ConnectionChecked)]
        time.sleep(0.01)
    runner.close()
    assert isinstance(checked[0], ev.ConnectionChecked)
    assert checked[0].ok and checked[0].message == "scripted"


def test_cancelled_error_from_backend_is_a_cancel(tmp_path: Path) -> None:
    class Cancels(ScriptedBackend):
        def finish(self, handle: Any, ctx: JobContext) -> list[Path]:
            raise CancelledByUser("Cancelled.")

    runner = JobRunner(Cancels())
    runner.submit(make_job(tmp_path, "x"))
    assert isinstance(finals(runner.wait_idle(timeout=5))[0], ev.JobCancelled)
    runner.close()
