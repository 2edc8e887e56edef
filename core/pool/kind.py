"""The pool kind: one job list over the workers of a pool file, each built through the
registry's own kinds. The registry passes itself in (`PoolKind(lambda: KINDS)`), so this
layer never imports core/kinds.py."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from ..config import Credentials, config_dir
from ..errors import ComfyRelayError
from ..jobs.backend_api import Backend, Capabilities
from ..jobs.backend_kind import (
    UNKNOWN,
    After,
    BackendKind,
    CliOption,
    Controls,
    ControlsView,
    KindSettings,
    Price,
    Setting,
)
from .estimate import estimate
from .pool_backend import PoolBackend
from .poolfile import Registry, WorkerSpec, builder, expand, load_specs

NAME = "pool"


class PoolSettings(KindSettings):
    files: list[str] = Field(default_factory=list)  # pool files
    servers: list[str] = Field(default_factory=list)  # ComfyUI URLs, one slot each
    max_cost: float | None = Field(default=None, ge=0)
    keep: bool = False  # --keep-machine: the pool's machines are left running at the end


class PoolKind(BackendKind[PoolSettings]):
    name = NAME
    label = "Pool of workers"
    settings_model = PoolSettings
    fields = (
        Setting("pool_file", "Pool file", hint="pool.json: workers with kind, URL or ids, "
                "slots, price"),
        Setting("pool_max_cost", "Max cost", 0.0, "stop sending jobs before the cost passes "
                "this", special="no cap"),
    )
    cli_options = (
        CliOption("--pool", "a pool file (workers with kind, URL or ids, slots, price); "
                  "repeatable", dest="pools", action="append", default=None,
                  metavar="POOL.json"),
        CliOption("--max-cost", "stop sending jobs before the estimate or the running total "
                  "would pass this many dollars", type=float, metavar="DOLLARS"),
        CliOption("--estimate", "print the time and cost the jobs would take, run nothing",
                  default=False, action="store_true"),
    )

    def __init__(self, registry: Callable[[], Registry]) -> None:
        self._registry = registry  # late: the registry holds this kind

    def from_fields(self, values: Mapping[str, Any]) -> PoolSettings:
        path = str(values["pool_file"]).strip()
        cap = float(values["pool_max_cost"]) or None
        return PoolSettings(files=[path] if path else [], max_cost=cap)

    def from_args(self, args: argparse.Namespace) -> PoolSettings:
        servers = getattr(args, "server", None) or []
        return PoolSettings(files=list(getattr(args, "pools", None) or []),
                            servers=list(servers) if len(servers) > 1 else [],
                            max_cost=getattr(args, "max_cost", None),
                            keep=bool(getattr(args, "keep_machine", False)))

    def specs(self, settings: PoolSettings, credentials: Credentials) -> list[WorkerSpec]:
        """The workers, checked (unknown kind, duplicate, missing credential: refused), each
        entry as the workers its kind runs it on (a machine entry: a machine per slot)."""
        if not settings.files and not settings.servers:
            raise ComfyRelayError("Choose a pool file (workers with kind, URL or ids, slots, "
                                  "price).")
        registry = self._registry()
        checked = load_specs([Path(f).expanduser() for f in settings.files], settings.servers,
                             registry, credentials)
        return expand(checked, registry, settings.keep)

    def build(self, settings: PoolSettings, credentials: Credentials,
              config: Path | None) -> Backend:
        specs = self.specs(settings, credentials)
        registry = self._registry()
        kinds = [registry.get(s.kind).capabilities for s in specs]
        return PoolBackend(specs, builder(registry, credentials, config),
                           capabilities=_common(kinds), max_cost=settings.max_cost,
                           times=config if config is not None else config_dir())

    def price(self, settings: PoolSettings) -> Price:
        return UNKNOWN  # per worker: see estimate()

    def controls(self, config: Path | None) -> Controls:
        return PoolControls()


def _common(caps: list[Capabilities]) -> Capabilities:
    """What every worker can do (a job may land on any of them)."""
    return Capabilities(cancel=all(c.cancel for c in caps),
                        live_progress=all(c.live_progress for c in caps),
                        previews=all(c.previews for c in caps),
                        uploads=all(c.uploads for c in caps))


class PoolControls(Controls):
    """The pool's box in both hosts: per worker, jobs done, in flight, moved away; then the
    estimate per job and the money spent. Owned by the host's UI thread; reads the pool's
    view, which its dispatcher publishes whole."""

    def __init__(self) -> None:
        self._pool: PoolBackend | None = None
        self._problem = ""

    def bind(self, backend: Backend | None, chosen: str, problem: str) -> None:
        ours = chosen == NAME
        self._pool = backend if ours and isinstance(backend, PoolBackend) else None
        self._problem = problem if ours else ""

    def view(self) -> ControlsView:
        if self._pool is None:
            lines = (self._problem,) if self._problem else ()
            return ControlsView("Pool", lines) if lines else ControlsView()
        return ControlsView("Pool", tuple(pool_lines(self._pool)))

    def act(self, action: str, target: str = "", *, busy: bool = False) -> After:
        return After.NOTHING  # the box has no buttons

    @property
    def active(self) -> bool:
        return self._pool is not None  # jobs move between workers by themselves

    def cost(self) -> float | None:
        return None if self._pool is None else self._pool.view().spent

    def estimate(self, jobs: int) -> float | None:
        """From the pool file's seconds per job and prices: what was planned before Run."""
        if self._pool is None:
            return None
        return estimate([w.spec for w in self._pool.workers], jobs).cost


def pool_lines(pool: PoolBackend) -> list[str]:
    """Per-worker progress, the estimate per job and the spending: the CLI and the hosts."""
    view = pool.view()
    lines = [w.line() for w in view.workers]
    measured = {w.name: w.seconds_per_job for w in view.workers if w.seconds_per_job}
    guess = estimate([w.spec for w in pool.workers], 1, measured)
    per_job = guess.per_job()
    lines.append("Estimate per job: " + ("cost unknown" if per_job is None
                                         else f"${per_job:.4f}") +
                 ("" if view.spent is None else f"; spent ${view.spent:.2f}"))
    lines += list(view.notes)
    return lines
