"""RunComfy machines still running from earlier sessions (or launched elsewhere), found at
start-up so the user can stop or reuse them: they cost money until stopped."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .api import Machine, RunComfyServer
from .ledger import Ledger, LedgerEntry


@dataclass(frozen=True)
class RunningMachine:
    """A machine found running at start-up: ours (in the ledger) or not. Frozen: any thread
    may read it."""

    machine: Machine
    entry: LedgerEntry | None

    @property
    def in_ledger(self) -> bool:
        return self.entry is not None

    def time_left(self, now: float | None = None) -> float | None:
        stop = self.machine.stop_epoch() or (self.entry.expected_stop if self.entry else None)
        return None if stop is None else max(0.0, stop - (time.time() if now is None else now))


def find_running(
    server: RunComfyServer, ledger: Ledger, *, grace: float = 120.0
) -> list[RunningMachine]:
    """Machines still running from earlier sessions, so the user can stop or reuse them.

    Ledger entries RunComfy no longer knows are dropped (stopped at their end time, or on
    the dashboard); machines RunComfy lists that the ledger lacks are reported too.
    """
    listed = {m.server_id: m for m in server.machines()}
    found: list[RunningMachine] = []
    for entry in ledger.entries():
        if entry.api_url and entry.api_url != server.api_url:
            continue
        machine = listed.pop(entry.server_id, None) or server.machine(entry.server_id)
        if machine is None or machine.status in ("stopped", "deleted", "terminated"):
            if time.time() - entry.launched_at > grace:  # not the brief 404 after launch
                ledger.remove(entry.server_id)
            continue
        found.append(RunningMachine(machine, entry))
    found += [RunningMachine(m, None) for m in listed.values() if not m.failed]
    return found
