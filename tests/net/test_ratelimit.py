"""The shared token bucket and the 429 wait-and-retry."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from comfyrelay import InputFile, Job, JobRunner
from comfyrelay.errors import CancelledByUser, RateLimited
from comfyrelay.jobs import events as ev
from comfyrelay.net.ratelimit import RetryPolicy, TokenBucket, bucket

from tests.hosted import finals, machine_api
from tests.imaging import gradient_png
from tests.runcomfy.test_machine import machine_backend
from tests.servers.runcomfy import RunComfyTestServer
from tests.workflows import invert


def test_bucket_allows_a_burst_then_the_average_rate() -> None:
    limiter = TokenBucket(rate=20.0, burst=3)
    start = time.monotonic()
    for _ in range(3):
        limiter.acquire()
    assert time.monotonic() - start < 0.03  # the burst
    for _ in range(4):
        limiter.acquire()
    assert time.monotonic() - start == pytest.approx(4 / 20, abs=0.06)


def test_bucket_is_shared_by_every_caller_in_the_process() -> None:
    assert bucket("runcomfy") is bucket("runcomfy")
    limiter = TokenBucket(rate=50.0, burst=1)
    stamps: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(5):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=take) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stamps[-1] - stamps[0] >= 14 / 50 - 0.02  # 15 requests at 50/s, whatever the thread


def test_waiting_for_the_bucket_is_cancellable() -> None:
    limiter = TokenBucket(rate=0.1, burst=1)
    limiter.acquire()
    flag = threading.Event()
    threading.Timer(0.1, flag.set).start()
    start = time.monotonic()
    with pytest.raises(CancelledByUser):
        limiter.acquire(flag.is_set)
    assert time.monotonic() - start < 0.5


def test_server_rate_limit_is_respected_without_429(rc: RunComfyTestServer) -> None:
    rc.rate, rc.burst = 20.0, 3
    bucket("runcomfy").configure(19.0, 2)  # the default shape (a little under), sped up
    api = machine_api(rc)
    for _ in range(12):
        api.machines()
    assert rc.rate_limited == 0


@pytest.mark.fault
def test_429_without_retry_after_backs_off_and_gives_up_only_after_the_total(
    rc: RunComfyTestServer,
) -> None:
    rc.retry_after = None
    rc.storm(count=3)
    api = machine_api(rc)
    assert api.machines() == []
    assert rc.rate_limited == 3
    rc.storm(seconds=5)
    api.policy = RetryPolicy(first=0.05, cap=0.1, total=0.3)
    with pytest.raises(RateLimited, match="Wait a few minutes"):
        api.machines()


@pytest.mark.fault
def test_429_storm_slows_a_machine_job_but_does_not_fail_it(
    rc: RunComfyTestServer, tmp_path: Path
) -> None:
    backend = machine_backend(rc, idle_stop=None)
    runner = JobRunner(backend)
    rc.storm(seconds=0.6)
    image = InputFile("a.png", gradient_png())
    runner.submit(Job(workflow=invert(), out_dir=tmp_path, image=image))
    done = finals(runner.wait_idle(20))
    assert isinstance(done[0], ev.JobFinished), done
    assert rc.rate_limited > 3 and len(rc.called("POST", "/servers")) == 1
    runner.close()
