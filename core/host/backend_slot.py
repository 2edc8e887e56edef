"""The host session's back end: built from the settings when what it connects to changes,
tuned live where a rebuild would stop something that bills, and each kind's Controls (a
machine's Launch / Stop, what earlier sessions left running) bound to it.

Nothing here names a kind: the registry (core/kinds.py) says what each one needs.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ..config import Credentials
from ..errors import ComfyRelayError
from ..jobs.backend_api import Backend, Capabilities
from ..jobs.backend_kind import After, Controls, ControlsView
from ..jobs.runner import JobRunner
from ..kinds import KINDS, BackendSettings, make_backend, rebuild_key
from .settings import HostSettings

NO_BACKEND = "Choose a back end."


class BackendSlot:
    """Owned by the host's UI thread, like the session that holds it. Building a back end
    does no network work; closing one runs on a thread of its own (a machine may stop)."""

    def __init__(self, *, max_in_flight: int = 1, config: Path | None = None) -> None:
        self.max_in_flight = max_in_flight
        self.config = config  # where back ends keep their files; None: the user's folder
        self.runner: JobRunner | None = None
        self.problem = NO_BACKEND  # why there is no back end; "" when there is one
        self.controls: dict[str, Controls] = {}
        for kind in KINDS:
            controls = kind.controls(config)
            if controls is not None:
                self.controls[kind.name] = controls
        self._given: tuple[BackendSettings, Credentials] | None = None  # the last configure()
        self._pending = False  # not applied yet: the back end was busy
        self._key: Any = None

    @property
    def backend(self) -> Backend | None:
        return self.runner.backend if self.runner is not None else None

    @property
    def kind(self) -> str:
        """The chosen kind's name ("" before configure())."""
        return self._given[0].kind if self._given is not None else ""

    @property
    def capabilities(self) -> Capabilities:
        backend = self.backend
        return backend.capabilities if backend is not None else Capabilities()

    @property
    def working(self) -> bool:
        """A kind's action (a launch, a stop) is under way: the back end must stay."""
        return any(c.working for c in self.controls.values())

    @property
    def active(self) -> bool:
        """Something a kind shows changes by itself: the host's timer keeps ticking."""
        return any(c.active for c in self.controls.values())

    def configure(self, settings: BackendSettings, credentials: Credentials) -> None:
        """Use these settings from the next apply()."""
        self._given, self._pending = (settings, credentials), True

    def require_runner(self) -> JobRunner:
        if self.runner is None:
            raise ComfyRelayError(self.problem or NO_BACKEND)
        return self.runner

    def apply(self, busy: bool) -> bool:
        """Apply the settings given last unless `busy` or a kind's action runs; True when a
        new back end (or none, on a problem) replaced the old one."""
        if not self._pending or self._given is None or busy or self.working:
            return False
        choice, credentials = self._given
        self._pending = False
        controls = self.controls.get(choice.kind)
        if controls is not None:
            choice = BackendSettings(choice.kind, controls.adjust(choice.settings))
        try:
            key = rebuild_key(choice, credentials)
            if self.runner is not None and key == self._key:
                KINDS.get(choice.kind).tune(self.runner.backend, choice.settings)
                return False
            backend = make_backend(choice, credentials, config=self.config)
        except (ComfyRelayError, ValueError) as exc:  # pydantic errors are ValueErrors
            self._retire()
            self.problem = str(exc)
            self._bind()
            return True
        self._retire()
        self.problem = ""
        self.runner, self._key = JobRunner(backend, max_in_flight=self.max_in_flight), key
        self._bind()
        return True

    def _bind(self) -> None:
        for controls in self.controls.values():
            controls.bind(self.backend, self.kind, self.problem)

    def _retire(self) -> None:
        """Close the old back end on a thread: closing a machine back end stops its machine."""
        old, self.runner, self._key = self.runner, None, None
        if old is not None:
            threading.Thread(target=old.close, name="comfyrelay-close", daemon=True).start()

    def act(self, kind: str, action: str, target: str = "", *, busy: bool = False) -> str:
        """A kind's button (`busy`: a run is under way); returns the kind the host must now
        show as chosen (Reuse a machine), else "". The back end follows at the next apply()."""
        controls = self.controls.get(kind)
        if controls is None:
            raise ComfyRelayError(f"{KINDS.get(kind).label} has no action {action!r}.")
        after = controls.act(action, target, busy=busy)
        if after is After.NOTHING:
            return ""
        self._pending = True
        return kind if after is After.CHOOSE else ""

    def scan(self, settings: HostSettings) -> bool:
        """Every kind with Controls looks for what earlier sessions left running, in the
        background; False when none could ask (no credentials)."""
        credentials = settings.credentials()
        asked = [c.scan(settings.backend_settings(name).settings, credentials)
                 for name, c in self.controls.items()]
        return any(asked)

    def cost(self) -> float | None:
        """What the chosen kind's back end has cost so far, when it knows."""
        controls = self.controls.get(self.kind)
        return controls.cost() if controls is not None else None

    def estimate(self, jobs: int) -> float | None:
        """What the chosen kind expected `jobs` jobs to cost, when it knows."""
        controls = self.controls.get(self.kind)
        return controls.estimate(jobs) if controls is not None else None

    def views(self) -> tuple[ControlsView, ...]:
        return tuple(c.view() for c in self.controls.values())

    def wait(self, timeout: float) -> None:
        """Wait for the kinds' actions under way (scripts and tests; never from a UI)."""
        for controls in self.controls.values():
            controls.wait(timeout)

    def close(self) -> None:
        """The host quits: close the back end now (a machine launched here is stopped)."""
        runner, self.runner = self.runner, None
        if runner is not None:
            runner.close(timeout=2.0)
        for controls in self.controls.values():
            controls.close()
