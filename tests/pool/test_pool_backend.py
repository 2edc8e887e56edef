"""The pool back end over ComfyUI test servers: jobs spread to the ideal bound, results once
each and in order when a server dies or restarts mid-run, the speed-up over one server, and
a soak with nothing leaking."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest
from comfyrelay import BackendSettings, JobRunner, load_credentials, make_backend
from comfyrelay.jobs import events as ev
from comfyrelay.pool.pool_backend import STAGING, PoolBackend

from benchmarks import serve
from tests.pool import helpers as h
from tests.servers.comfyui import ComfyTestServer


def pool(urls: list[str]) -> PoolBackend:
    backend = make_backend(BackendSettings.of("pool", servers=urls), load_credentials())
    assert isinstance(backend, PoolBackend)
    return backend


def timed_run(root: Path, urls: list[str], count: int) -> tuple[float, list[ev.Event]]:
    runner = JobRunner(pool(urls))
    try:
        began = time.monotonic()
        _, events = h.run_all(runner, h.jobs(root, count))
        return time.monotonic() - began, events
    finally:
        runner.close()


def assert_each_once_in_order(events: list[ev.Event], count: int, out: Path) -> None:
    """What a user checks: one result per job, the right frame, in job order, nothing else
    left in the folder."""
    ends = h.finals(events)
    assert [type(e).__name__ for e in ends] == ["JobFinished"] * count
    frames = [h.frame_of(e.outputs[0]) for e in ends if isinstance(e, ev.JobFinished)]
    assert frames == list(range(count))
    files = sorted(p for p in out.iterdir())
    assert len(files) == count and not (out / STAGING).exists()
    outputs = [e for e in events if isinstance(e, ev.JobOutput)]
    assert len(outputs) == count and len({e.path for e in outputs}) == count


def test_sixty_jobs_on_three_servers_finish_near_the_ideal_bound(tmp_path: Path) -> None:
    with h.servers(tmp_path, 3) as found:
        took, events = timed_run(tmp_path, [s.url for s in found], 60)
    ideal = 60 * h.JOB_SECONDS / 3  # total work over the slots
    print(f"\n60 jobs on 3 servers: {took:.2f} s, ideal {ideal:.2f} s, "
          f"ratio {took / ideal:.3f}")
    assert took <= 1.15 * ideal
    assert_each_once_in_order(events, 60, tmp_path / "out")
    assert all(len(s.prompts) >= 15 for s in found)  # every server did its share


def test_one_server_is_about_three_times_slower(tmp_path: Path) -> None:
    with h.servers(tmp_path / "three", 3) as found:
        pooled, _ = timed_run(tmp_path / "three", [s.url for s in found], 30)
    with h.servers(tmp_path / "one", 1) as found:
        alone, events = timed_run(tmp_path / "one", [found[0].url], 30)
    print(f"\n30 jobs: 3 servers {pooled:.2f} s, 1 server {alone:.2f} s, "
          f"speed-up {alone / pooled:.2f}x")
    assert 2.6 <= alone / pooled <= 3.3
    assert_each_once_in_order(events, 30, tmp_path / "one" / "out")


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_killed_and_a_restarted_server_lose_no_job_and_repeat_none(tmp_path: Path) -> None:
    with ExitStack() as stack:
        kept = stack.enter_context(ComfyTestServer(tmp_path / "kept", node_delay=0.5 / 3,
                                                   previews=False, float32_pixels=False))
        restarted = stack.enter_context(ComfyTestServer(
            tmp_path / "restarted", node_delay=0.5 / 3, previews=False, float32_pixels=False))
        victim = ComfyTestServer(tmp_path / "victim", node_delay=0.5 / 3, previews=False,
                                 float32_pixels=False).__enter__()
        backend = pool([kept.url, restarted.url, victim.url])
        runner = JobRunner(backend)
        began = time.monotonic()
        try:
            ids = [runner.submit(job) for job in h.jobs(tmp_path, 60)]
            wait_for(lambda: sum(w.done for w in backend.view().workers) >= 15)
            victim.__exit__(None, None, None)  # gone mid-job: its port closes
            restarted.restart()  # forgets its queue and running job
            events = runner.wait_idle(timeout=120)
            took = time.monotonic() - began
        finally:
            runner.close()
        print(f"\nkilled + restarted: 60 jobs in {took:.1f} s; "
              + "; ".join(w.line() for w in backend.view().workers))
        assert_each_once_in_order(events, 60, tmp_path / "out")
        assert [e.job_id for e in h.finals(events)] == ids
        view = {w.name.split()[-1]: w for w in backend.view().workers}
        assert view[victim.url].state == "down" and view[victim.url].failed_over >= 1
        assert view[restarted.url].failed_over >= 1 and view[restarted.url].done > 0


def test_a_server_down_at_start_is_skipped_and_named(tmp_path: Path) -> None:
    with h.servers(tmp_path, 1) as found:
        dead = "http://127.0.0.1:9"  # the discard port: nothing listens
        backend = pool([found[0].url, dead])
        runner = JobRunner(backend)
        try:
            _, events = h.run_all(runner, h.jobs(tmp_path, 4))
        finally:
            runner.close()
    assert_each_once_in_order(events, 4, tmp_path / "out")
    notes = backend.view().notes
    assert any(dead in n and "Skipped" in n for n in notes), notes


def test_all_servers_down_ends_the_jobs_left_keeping_the_results(tmp_path: Path) -> None:
    server = ComfyTestServer(tmp_path / "only", node_delay=0.5 / 3, previews=False,
                             float32_pixels=False).__enter__()
    backend = pool([server.url])
    runner = JobRunner(backend)
    try:
        for job in h.jobs(tmp_path, 12):
            runner.submit(job)
        wait_for(lambda: backend.view().workers[0].done >= 3)
        server.__exit__(None, None, None)
        events = runner.wait_idle(timeout=60)
    finally:
        runner.close()
    ends = h.finals(events)
    done = [e for e in ends if isinstance(e, ev.JobFinished)]
    failed = [e for e in ends if isinstance(e, ev.JobFailed)]
    assert len(done) >= 3 and len(done) + len(failed) == 12
    assert all(f.outputs[0].exists() for f in done)
    assert "All workers of the pool are down" in failed[-1].message
    assert "results so far are kept" in failed[-1].message


def test_cancel_ends_every_job_and_leaves_no_staging(tmp_path: Path) -> None:
    with h.servers(tmp_path, 2) as found:
        backend = pool([s.url for s in found])
        runner = JobRunner(backend)
        try:
            for job in h.jobs(tmp_path, 10):
                runner.submit(job)
            wait_for(lambda: sum(w.in_flight for w in backend.view().workers) >= 2)
            runner.cancel()
            events = runner.wait_idle(timeout=30)
        finally:
            runner.close()
        assert all(s.wait_idle() for s in found)
    ends = h.finals(events)
    assert len(ends) == 10 and all(isinstance(e, ev.JobCancelled) for e in ends)
    assert not (tmp_path / "out" / STAGING).exists()


def counts() -> tuple[float, int, int, int]:
    """Resident memory (MB), threads, open file descriptors and sockets of this process."""
    gc.collect()
    status = Path("/proc/self/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    fds = os.listdir("/proc/self/fd")
    sockets = 0
    for fd in fds:
        with contextlib.suppress(OSError):  # the listing's own descriptor, closed already
            sockets += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return rss / 1024, threading.active_count(), len(fds), sockets


def test_soak_a_thousand_jobs_leak_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)  # pytest would keep every debug record in memory
    # The servers run in processes of their own: what is measured is the client's process.
    with ExitStack() as stack:
        urls = [stack.enter_context(serve.server("comfyui", str(tmp_path / f"s{n}")))["url"]
                for n in range(3)]
        timed_run(tmp_path / "warm", urls, 30)  # first-use costs (imports, caches) first
        before = counts()
        took, events = timed_run(tmp_path, urls, 1000)
        wait_for(lambda: counts()[1] <= before[1], timeout=10)
        after = counts()
    print(f"\nsoak: 1000 jobs in {took:.1f} s; RSS {before[0]:.1f} -> {after[0]:.1f} MB, "
          f"threads {before[1]} -> {after[1]}, fds {before[2]} -> {after[2]}, "
          f"sockets {before[3]} -> {after[3]}")
    assert len([e for e in h.finals(events) if isinstance(e, ev.JobFinished)]) == 1000
    assert after[0] - before[0] < 20
    assert after[1] <= before[1] and after[2] <= before[2] and after[3] <= before[3]


def test_a_stalled_server_has_its_jobs_moved_and_the_late_copy_cancelled(
    tmp_path: Path
) -> None:
    with h.servers(tmp_path, 2) as (good, slow):
        backend = pool([good.url, slow.url])
        runner = JobRunner(backend)
        began = time.monotonic()
        try:
            for job in h.jobs(tmp_path, 24):
                runner.submit(job)
            wait_for(lambda: backend.view().workers[1].done >= 3)
            slow.node_delay = 20.0  # still answering, but its jobs now take a minute
            events = runner.wait_idle(timeout=90)
            took = time.monotonic() - began
        finally:
            runner.close()
        cancels = [r for r in slow.seen if r in ("POST /interrupt", "POST /api/interrupt",
                                                "POST /queue", "POST /api/queue")]
    print(f"\nstalled server: 24 jobs in {took:.1f} s; "
          + "; ".join(w.line() for w in backend.view().workers))
    assert_each_once_in_order(events, 24, tmp_path / "out")
    assert backend.view().workers[1].failed_over >= 1 and cancels  # moved, and cancelled there
    assert took < 45  # not the minute the stalled server would take per job


def test_the_check_says_how_many_workers_are_ready_then_each_answer(tmp_path: Path) -> None:
    with h.servers(tmp_path, 1) as found:
        dead = "http://127.0.0.1:9"  # the discard port: nothing listens
        backend = pool([found[0].url, dead])
        try:
            summary, *details = backend.check().splitlines()
        finally:
            backend.close()
    assert summary == "Pool of 2 workers: 1 of 2 ready."  # what a host's line shows
    assert len(details) == 2 and any(dead in line for line in details)
    assert any(line.count("Connected to ComfyUI") == 1 and found[0].url in line
               for line in details)  # a worker's whole answer, on its own line
