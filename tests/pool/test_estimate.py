"""Time and cost before a run: what is unknown is named, and the figure is within 10 % of
what the RunComfy test server bills for the same run (Serverless and a machine)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from comfyrelay import KINDS, Bindings, Job, JobRunner, Workflow, load_credentials, make_backend
from comfyrelay.jobs import events as ev
from comfyrelay.kinds import BackendSettings
from comfyrelay.pool.estimate import estimate
from comfyrelay.pool.pool_backend import PoolBackend
from comfyrelay.pool.poolfile import load_specs

from tests.hosted import FAST_MACHINE, TOKENS, isolated  # noqa: F401  (isolated: autouse)
from tests.pool import helpers as h
from tests.servers.comfyui import ComfyTestServer
from tests.servers.runcomfy import RunComfyTestServer

SEEDED: dict[str, Any] = {
    "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64,
                                                       "batch_size": 1}},
    "2": {"class_type": "KSampler", "_meta": {"title": "Sampler"},
          "inputs": {"seed": 1, "steps": 2, "latent_image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "out"}},
}


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCOMFY_USER_ID", "user-0001")
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", TOKENS[0])


def specs_of(tmp_path: Path, workers: list[dict[str, Any]]) -> Any:
    path = h.pool_file(tmp_path / "pool.json", workers)
    return load_specs([path], [], KINDS, load_credentials())


def test_a_free_pool_costs_nothing_and_spreads_the_time(tmp_path: Path) -> None:
    specs = specs_of(tmp_path, [
        {"kind": "comfyui", "url": "http://127.0.0.1:1", "seconds_per_job": 2.0},
        {"kind": "comfyui", "url": "http://127.0.0.1:2", "seconds_per_job": 1.0}])
    guess = estimate(specs, 30)
    assert guess.cost == 0.0 and guess.unknown == ()
    assert [s.jobs for s in guess.shares] == [10, 20]  # the faster one takes twice as many
    assert guess.seconds == pytest.approx(20.0)


def test_unknown_price_and_time_are_named_not_guessed(tmp_path: Path, tokens: None) -> None:
    specs = specs_of(tmp_path, [
        {"kind": "comfyui", "url": "http://127.0.0.1:1"},
        {"kind": "runcomfy-serverless", "deployment_id": "dep-1", "seconds_per_job": 3}])
    guess = estimate(specs, 10)
    assert guess.cost is None
    text = "\n".join(guess.lines())
    assert "cost unknown" in text
    assert "comfyui http://127.0.0.1:1: seconds per job" in text
    assert "runcomfy-serverless dep-1: price" in text and "price_per_second" in text


@pytest.fixture
def serverless() -> Iterator[RunComfyTestServer]:
    with RunComfyTestServer(tokens=TOKENS, instances=2, run_time=0.3, cold_start=0.5,
                            rate=1000.0, burst=1000) as rc:
        yield rc


def seeded_jobs(tmp_path: Path, count: int) -> list[Job]:
    return [Job(workflow=Workflow(SEEDED, "seeded"), out_dir=tmp_path / "out",
                bindings=Bindings(seed=n)) for n in range(count)]


def test_serverless_estimate_within_ten_percent_of_the_bill(
    serverless: RunComfyTestServer, tmp_path: Path, tokens: None
) -> None:
    dep = serverless.add_deployment(SEEDED)
    price = 0.0011  # dollars per GPU second, from the pool file
    worker = {"kind": "runcomfy-serverless", "deployment_id": dep, "api_url": serverless.url,
              "poll_interval": 0.05, "slots": 2, "price_per_second": price,
              "startup_seconds": 0.5, "seconds_per_job": 0.3}
    guess = estimate(specs_of(tmp_path, [worker]), 12)
    runner = JobRunner(make_backend(BackendSettings.of(
        "pool", files=[str(tmp_path / "pool.json")]), load_credentials()))
    try:
        _, events = h.run_all(runner, seeded_jobs(tmp_path, 12))
    finally:
        runner.close()
    assert sum(isinstance(e, ev.JobFinished) for e in events) == 12
    billed = serverless.serverless_billed * price
    print(f"\nServerless: estimate ${guess.cost:.5f}, billed ${billed:.5f}")
    assert guess.cost is not None and abs(guess.cost - billed) <= 0.10 * billed


def machine_run(tmp_path: Path, count: int, start: int) -> tuple[PoolBackend, float]:
    backend = make_backend(BackendSettings.of("pool", files=[str(tmp_path / "pool.json")]),
                           load_credentials())
    assert isinstance(backend, PoolBackend)
    backend.workers[0].backend.timing = FAST_MACHINE
    runner = JobRunner(backend)
    began = time.monotonic()
    try:
        _, events = h.run_all(runner, h.jobs(tmp_path, count, start))
    finally:
        runner.close()  # stops the machine launched for the pool
    assert sum(isinstance(e, ev.JobFinished) for e in events) == count
    return backend, time.monotonic() - began


def test_machine_estimate_within_ten_percent_of_the_bill(tmp_path: Path, tokens: None) -> None:
    with ComfyTestServer(tmp_path / "machine", node_delay=0.5 / 3, previews=False) as comfy, \
            RunComfyTestServer(comfy.url, tokens=TOKENS, rate=1000.0, burst=1000) as rc:
        hourly = 1.44
        worker = {"kind": "runcomfy-machine", "workflow_version_id": "ver-1",
                  "api_url": rc.url, "price_per_hour": hourly, "duration": 600}
        specs = specs_of(tmp_path, [worker])
        first, _ = machine_run(tmp_path, 6, 0)  # measures the seconds per job
        measured = {w.name: w.seconds_per_job for w in first.view().workers
                    if w.seconds_per_job}
        guess = estimate(specs, 20, measured)
        machines_before = set(rc.machines)
        machine_run(tmp_path, 20, 100)
        (second,) = set(rc.machines) - machines_before
        billed = rc.billed_seconds(second) * hourly / 3600
    print(f"\nmachine: estimate ${guess.cost:.5f}, billed ${billed:.5f}")
    assert guess.cost is not None and abs(guess.cost - billed) <= 0.10 * billed


def test_free_workers_with_no_time_yet_cost_nothing_and_say_the_time_is_unknown(
    tmp_path: Path
) -> None:
    guess = estimate(specs_of(tmp_path, [{"kind": "comfyui", "url": "http://127.0.0.1:1"}]), 5)
    assert guess.cost == 0.0
    assert guess.unknown == ("comfyui http://127.0.0.1:1: seconds per job (give "
                             "seconds_per_job in the pool file, or run once to measure)",)
