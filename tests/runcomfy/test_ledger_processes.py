"""The machine ledger shared by processes (Blender, Krita and the CLI at once): no change is
lost, whichever process makes it.

The workers run in fresh interpreters ('spawn'), so they live at module level, and every
wait on them has a deadline.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from dataclasses import replace
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any

from comfyrelay.net import ratelimit
from comfyrelay.runcomfy.api import RunComfyServer
from comfyrelay.runcomfy.ledger import Ledger, LedgerEntry
from comfyrelay.runcomfy.machine import MachineOptions, RunComfyMachineBackend

from tests.hosted import FAST, FAST_MACHINE, TOKENS
from tests.servers.runcomfy import RunComfyTestServer

PROCESSES = 3
CHANGES = 50  # entries each worker adds (and then updates)
DEADLINE = 40.0  # seconds for all workers together
# Three processes launch at once: network errors while starting are waited out a little
# longer than in test_machines, and the watchdog looks often.
QUICK = replace(FAST_MACHINE, unreachable_grace=1.0, watch_interval=0.05)


# ---- workers (in their own processes) ----
def _start_together(barrier: Any) -> None:
    """Wait until every worker has imported everything, so their writes overlap."""
    barrier.wait(timeout=30)


def add_and_update(path: str, worker: int, barrier: Any, results: Any) -> None:
    ledger = Ledger(Path(path))
    _start_together(barrier)
    for n in range(CHANGES):
        server_id = f"w{worker}-{n}"
        ledger.add(LedgerEntry(server_id=server_id, launched_at=time.time()))
        ledger.update(server_id, status="Ready")
    results.put((worker, "done"))


def launch_and_stop(
    url: str, user_id: str, path: str, worker: int, barrier: Any, results: Any
) -> None:
    """Launch three machines (each its own workflow, so none is reused), wait until they
    are Ready, stop two; report which were launched and which stopped."""
    ratelimit.configure("runcomfy", 500.0, 100)  # the test server allows it
    backends = [
        RunComfyMachineBackend(
            RunComfyServer(user_id, TOKENS, api_url=url, policy=FAST),
            MachineOptions(workflow_version_id=f"ver-w{worker}-{n}", duration=600,
                           idle_stop=None, stop_on_close=False),
            ledger=Ledger(Path(path)),
            timing=QUICK,
        )
        for n in range(3)
    ]
    _start_together(barrier)
    try:
        for backend in backends:
            backend.ensure_ready()
        for backend in backends[:2]:
            backend.stop()
        results.put((worker, [b.server_id for b in backends], [b.server_id for b in backends[:2]]))
    except Exception as exc:
        results.put((worker, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        for backend in backends:
            backend.close()


# ---- the parent ----
def run_workers(target: Any, args: tuple[Any, ...]) -> list[Any]:
    """Run PROCESSES workers with the same arguments (and their number); return what each
    reported, in worker order. Fails, and ends them, past the deadline."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    workers: list[SpawnProcess] = [
        ctx.Process(target=target, args=(*args, n, barrier, results), daemon=True)
        for n in range(PROCESSES)
    ]
    for w in workers:
        w.start()
    end = time.monotonic() + DEADLINE
    try:
        reports = [results.get(timeout=max(0.1, end - time.monotonic())) for _ in workers]
        for w in workers:
            w.join(max(0.1, end - time.monotonic()))
        assert all(w.exitcode == 0 for w in workers), [w.exitcode for w in workers]
    finally:
        for w in workers:
            if w.is_alive():
                w.terminate()
                w.join(5)
        results.close()
    return [report[1:] for report in sorted(reports)]


def ledger_ids(path: Path) -> list[str]:
    """The server ids as written in the file (a dict would hide a duplicate)."""
    return [m["server_id"] for m in json.loads(path.read_text())["machines"]]


def test_concurrent_changes_from_three_processes_are_all_kept(tmp_path: Path) -> None:
    path = tmp_path / "machines.json"
    run_workers(add_and_update, (str(path),))
    ids = ledger_ids(path)
    assert sorted(ids) == sorted(f"w{w}-{n}" for w in range(PROCESSES) for n in range(CHANGES))
    assert all(e.status == "Ready" for e in Ledger(path).entries())
    assert (tmp_path / "machines.json.lock").exists()


def test_processes_launching_and_stopping_machines_leave_a_true_ledger(
    rc: RunComfyTestServer, tmp_path: Path
) -> None:
    rc.rate, rc.burst = 1000.0, 200
    rc.workflows += [{"workflow_id": f"wf-w{w}-{n}", "workflow_name": "Invert",
                      "version_id": f"ver-w{w}-{n}"} for w in range(PROCESSES) for n in range(3)]
    path = tmp_path / "machines.json"
    started = time.monotonic()
    reports = run_workers(launch_and_stop, (rc.url, rc.user_id, str(path)))
    assert time.monotonic() - started < DEADLINE

    assert all(isinstance(r[0], list) for r in reports), reports  # no worker failed
    launched = [sid for r in reports for sid in r[0]]
    stopped = {sid for r in reports for sid in r[1]}
    assert len(set(launched)) == 3 * PROCESSES and len(stopped) == 2 * PROCESSES
    assert len(rc.called("POST", "/servers")) == 3 * PROCESSES  # each launch sent once
    kept = [sid for sid in launched if sid not in stopped]
    ids = ledger_ids(path)
    assert sorted(ids) == sorted(kept)  # each kept machine once; the stopped ones gone
    ledger = Ledger(path)
    for sid in kept:
        entry = ledger.get(sid)
        assert entry is not None and entry.status == "Ready" and entry.ready_at is not None
        assert rc.machines[sid].stopped is None
    assert all(rc.machines[sid].stopped is not None for sid in stopped)
