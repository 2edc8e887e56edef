"""The settings of a RunComfy machine back end: what to launch and how to keep the bill in
check (MachineOptions), and how often to ask RunComfy and how long to wait (Timing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MachineOptions:
    """What to launch and the cost-safety settings. Frozen, so any thread may read it: a live
    change (tune()) replaces the whole object, and a reader never sees half of a change."""

    workflow_version_id: str = ""  # empty: only reuse the running machine given by server_id
    server_type: str = "medium"
    duration: int = 3600  # seconds RunComfy runs a new machine before it stops it
    idle_stop: float | None = 900.0  # stop after this many seconds without jobs; None: never
    extend_margin: float = 600.0  # extend when a job runs with less time left than this
    extend_step: int = 1800  # seconds added each time
    stop_on_close: bool = True  # stop a machine launched here when the app closes
    hourly_price: float | None = None  # the user's price for server_type, for the cost shown
    # A machine of its own: never reuse one that another back end of this process holds
    # (a pool's machines, one per slot, would otherwise all share the first one).
    own_machine: bool = False


@dataclass(frozen=True)
class Timing:
    """Polling and grace periods, in seconds; tests shorten them. Frozen: any thread may
    read it."""

    poll_first: float = 2.0  # first delay between state polls while the machine starts
    poll_max: float = 15.0  # the delay grows up to this
    ready_timeout: float = 1200.0  # give up when not Ready after this long
    not_found_grace: float = 60.0  # RunComfy may not know a machine this long after launch
    unreachable_grace: float = 60.0  # network errors waited out while the machine starts
    watch_interval: float = 5.0  # the watchdog looks at the machine this often
    state_interval: float = 10.0  # and asks RunComfy for its state this often during a job

    def wait_ready_args(self) -> dict[str, Any]:
        """The keyword arguments of RunComfyServer.wait_ready."""
        return {"first_delay": self.poll_first, "max_delay": self.poll_max,
                "timeout": self.ready_timeout, "not_found_grace": self.not_found_grace,
                "unreachable_grace": self.unreachable_grace}
