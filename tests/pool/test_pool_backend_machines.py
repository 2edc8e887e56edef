"""A RunComfy machine entry with `slots: N` in a pool file: up to N machines, launched as
jobs need them, each one in the ledger with its idle stop, all stopped at the end unless the
entry says `"keep": true` (then each is named with how to stop it)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from comfyrelay import BackendSettings, JobRunner, load_credentials, make_backend
from comfyrelay.cli import signals
from comfyrelay.jobs import events as ev
from comfyrelay.pool.pool_backend import PoolBackend
from comfyrelay.runcomfy.ledger import Ledger
from comfyrelay.runcomfy.machine import RunComfyMachineBackend

from tests.hosted import FAST_MACHINE, TOKENS, wait_for
from tests.pool import helpers as h
from tests.servers.runcomfy import RunComfyTestServer

# The watchdog (the idle stop) looks often here.
WATCHED = replace(FAST_MACHINE, unreachable_grace=0.5, watch_interval=0.05)


@pytest.fixture(autouse=True)
def tokens(rc: RunComfyTestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCOMFY_USER_ID", rc.user_id)
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", TOKENS[0])


def machine_pool(tmp_path: Path, rc: RunComfyTestServer, **entry: Any) -> PoolBackend:
    """A pool of one RunComfy machine entry with 3 slots on the test server, fast polls."""
    path = h.pool_file(tmp_path / "pool.json", [{
        "kind": "runcomfy-machine", "name": "rc", "workflow_version_id": "ver-1",
        "api_url": rc.url, "slots": 3, "price_per_hour": 1.0, "duration": 600, **entry}])
    backend = make_backend(BackendSettings.of("pool", files=[str(path)]), load_credentials())
    assert isinstance(backend, PoolBackend)
    for worker in backend.workers:
        assert isinstance(worker.backend, RunComfyMachineBackend)
        worker.backend.timing = WATCHED
    return backend


def machines_of(pool: PoolBackend) -> list[RunComfyMachineBackend]:
    found = [w.backend for w in pool.workers if isinstance(w.backend, RunComfyMachineBackend)]
    assert len(found) == len(pool.workers)
    return found


def frames_in_order(events: list[ev.Event], count: int) -> None:
    ends = h.finals(events)
    assert [type(e).__name__ for e in ends] == ["JobFinished"] * count, ends
    assert [h.frame_of(e.outputs[0]) for e in ends if isinstance(e, ev.JobFinished)] == \
        list(range(count))


def test_six_jobs_on_three_slots_launch_three_machines_all_stopped_at_the_end(
    tmp_path: Path, rc: RunComfyTestServer
) -> None:
    pool = machine_pool(tmp_path, rc)
    assert [w.name for w in pool.workers] == ["rc #1", "rc #2", "rc #3"]
    runner = JobRunner(pool)
    try:
        _, events = h.run_all(runner, h.jobs(tmp_path, 6))
        frames_in_order(events, 6)
        assert len(rc.called("POST", "/servers")) == 3  # not 1 (shared), not 6
        ids = {m.server_id for m in machines_of(pool)}
        assert len(ids) == 3 and ids == set(rc.machines)  # each worker its own machine
        assert {e.server_id for e in Ledger().entries()} == ids  # every one in the ledger
        assert all(w.done >= 1 for w in pool.view().workers)
    finally:
        runner.close()
    assert all(m.stopped is not None for m in rc.machines.values())
    assert Ledger().entries() == []
    assert signals.machine_note(pool, say_stopped=False) == ""


def test_each_machine_has_its_idle_stop(tmp_path: Path, rc: RunComfyTestServer) -> None:
    pool = machine_pool(tmp_path, rc, idle_stop=0.3)
    runner = JobRunner(pool)
    try:
        _, events = h.run_all(runner, h.jobs(tmp_path, 3))
        frames_in_order(events, 3)
        assert len(rc.machines) == 3
        # Before the run ends: each watchdog stops its own machine once it idles.
        wait_for(lambda: all(m.stopped is not None for m in rc.machines.values()), 10)
        wait_for(lambda: Ledger().entries() == [], 5)
    finally:
        runner.close()


def test_fewer_jobs_than_slots_launch_no_more_machines_and_keep_leaves_them_named(
    tmp_path: Path, rc: RunComfyTestServer
) -> None:
    pool = machine_pool(tmp_path, rc, keep=True, idle_stop=None)
    runner = JobRunner(pool)
    try:
        _, events = h.run_all(runner, h.jobs(tmp_path, 2))
        frames_in_order(events, 2)
    finally:
        runner.close()
    assert len(rc.called("POST", "/servers")) == 2  # two jobs: two machines, not three
    assert all(m.stopped is None for m in rc.machines.values())  # kept
    assert {e.server_id for e in Ledger().entries()} == set(rc.machines)
    note = signals.machine_note(pool)
    for server_id in rc.machines:
        assert f"RunComfy machine {server_id} is still running and billing" in note
        assert f"comfyrelay machines stop {server_id}" in note
