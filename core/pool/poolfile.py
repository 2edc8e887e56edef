"""The pool file (`--pool pool.json`, or the pool kind's host field): the workers a pool
runs on, each an existing back-end kind with its slots and price, checked whole before
anything is sent.

```json
{"workers": [
  {"kind": "comfyui", "url": "http://127.0.0.1:8188", "slots": 1},
  {"kind": "runcomfy-serverless", "deployment_id": "DEP", "slots": 4,
   "price_per_second": 0.0005, "startup_seconds": 20, "seconds_per_job": 6}
]}
```

Every key other than the pool's own (below) is one of the kind's settings (`url`,
`deployment_id`, `server_id`, `workflow_version_id`, `hourly_price`, ...); a key the kind
does not have is refused, naming the worker.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import Credentials
from ..errors import ComfyRelayError
from ..jobs.backend_api import Backend
from ..jobs.backend_kind import BackendKind, KindSettings, Price

# The keys a worker entry has for the pool itself; the rest are the kind's settings.
POOL_KEYS = {"kind", "name", "slots", "price_per_hour", "price_per_second", "startup_seconds",
             "seconds_per_job"}


class Registry(Protocol):
    """What the pool needs of the registry of kinds (core/kinds.py, passed in from above)."""

    def get(self, name: str) -> BackendKind[Any]: ...


class WorkerEntry(BaseModel):
    """One worker as the file gives it."""

    model_config = ConfigDict(extra="allow")  # the kind's settings, checked against it

    kind: str
    name: str = ""
    slots: int = Field(default=1, ge=1, le=64)
    price_per_hour: float | None = Field(default=None, ge=0)
    price_per_second: float | None = Field(default=None, ge=0)
    startup_seconds: float = Field(default=0.0, ge=0)  # a cold start, billed per instance
    seconds_per_job: float | None = Field(default=None, gt=0)  # for estimates before a run

    def settings_values(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class PoolFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workers: list[WorkerEntry]


@dataclass(frozen=True)
class WorkerSpec:
    """A checked worker: its kind, settings, slots and price, and a name to report it by."""

    name: str
    kind: str
    settings: KindSettings
    slots: int
    price: Price
    seconds_per_job: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        """What makes two workers the same worker (a duplicate)."""
        return self.kind, self.settings.model_dump_json()


def read_entries(path: Path) -> list[WorkerEntry]:
    """The file's workers; ComfyRelayError naming the file (and entry) when it is malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ComfyRelayError(f"Cannot read the pool file {path}: {exc.strerror or exc}.") from None
    except json.JSONDecodeError as exc:
        raise ComfyRelayError(f"The pool file {path} is not JSON: {exc}.") from None
    try:
        return PoolFile.model_validate(data).workers
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ComfyRelayError(f"The pool file {path}: {where}: {first['msg']}.") from None


def comfyui_entries(urls: Sequence[str]) -> list[WorkerEntry]:
    """Several `--server URL`: one ComfyUI worker each, one slot."""
    return [WorkerEntry(kind="comfyui", url=url) for url in urls]  # type: ignore[call-arg]


def check_entries(entries: Sequence[tuple[str, WorkerEntry]], registry: Registry,
                  credentials: Credentials) -> list[WorkerSpec]:
    """Every worker checked before anything is sent: a known kind, its own settings only, no
    duplicate, and what building it needs (credentials, ids). `entries` are (where, entry):
    "pool.json worker 2". Raises ComfyRelayError naming the first bad entry."""
    specs: list[WorkerSpec] = []
    seen: dict[tuple[str, str], str] = {}
    for where, entry in entries:
        spec = _spec(where, entry, registry)
        if spec.key in seen:
            raise ComfyRelayError(f"{where} ({spec.name}) duplicates {seen[spec.key]}: "
                                  "list each worker once and give it more slots instead.")
        seen[spec.key] = where
        _try_build(where, spec, registry, credentials)
        specs.append(spec)
    if not specs:
        raise ComfyRelayError("The pool has no workers.")
    return specs


def _spec(where: str, entry: WorkerEntry, registry: Registry) -> WorkerSpec:
    try:
        kind = registry.get(entry.kind)
    except ComfyRelayError as exc:
        raise ComfyRelayError(f"{where}: {exc}") from None
    values = entry.settings_values()
    unknown = sorted(set(values) - set(kind.settings_model.model_fields))
    if unknown:
        raise ComfyRelayError(
            f"{where} ({kind.name}): unknown key(s) {', '.join(unknown)}; a {kind.label} worker "
            f"takes {', '.join(sorted(POOL_KEYS | set(kind.settings_model.model_fields)))}.")
    try:
        settings = kind.settings_model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ComfyRelayError(f"{where} ({kind.name}): {'.'.join(map(str, first['loc']))}: "
                              f"{first['msg']}.") from None
    name = entry.name or _describe(kind.name, values)
    return WorkerSpec(name, kind.name, settings, entry.slots,
                      _price(entry, kind.price(settings)), entry.seconds_per_job)


def _describe(kind: str, values: dict[str, Any]) -> str:
    """"comfyui http://…:8188": the kind and the value that tells the worker apart."""
    for key in ("url", "deployment_id", "server_id", "workflow_version_id", "workflow_id"):
        if values.get(key):
            return f"{kind} {values[key]}"
    return kind


def _price(entry: WorkerEntry, own: Price) -> Price:
    """The file's price wins over the kind's (a machine per hour; Serverless per second)."""
    if entry.price_per_hour is not None:
        return Price(entry.price_per_hour / 3600.0, entry.startup_seconds,
                     "per hour (pool file)", while_up=own.while_up)
    if entry.price_per_second is not None:
        return Price(entry.price_per_second, entry.startup_seconds,
                     "per second, cold starts included (pool file)", while_up=own.while_up)
    if entry.startup_seconds and own.known:
        return Price(own.per_second, entry.startup_seconds, own.basis, own.while_up)
    return own


def _try_build(where: str, spec: WorkerSpec, registry: Registry, credentials: Credentials) -> None:
    """Build it once (no network) for what it needs: a missing token or id is named here."""
    try:
        built = registry.get(spec.kind).build(spec.settings, credentials, None)
    except ComfyRelayError as exc:
        raise ComfyRelayError(f"{where} ({spec.name}): {exc}") from None
    built.close()


def load_specs(paths: Sequence[Path], urls: Sequence[str], registry: Registry,
               credentials: Credentials) -> list[WorkerSpec]:
    """The workers of every pool file and every `--server` URL, checked together."""
    entries: list[tuple[str, WorkerEntry]] = []
    for path in paths:
        entries += [(f"{path} worker {n}", e) for n, e in enumerate(read_entries(path), 1)]
    entries += [(f"--server {e.settings_values()['url']}", e) for e in comfyui_entries(urls)]
    return check_entries(entries, registry, credentials)


def expand(specs: Sequence[WorkerSpec], registry: Registry, keep: bool) -> list[WorkerSpec]:
    """Each entry as the workers its kind runs it on (BackendKind.pool_workers): a RunComfy
    machine entry with `slots: 3` is three machines, named "... #1" to "... #3". `keep`:
    the run's --keep-machine."""
    out: list[WorkerSpec] = []
    for spec in specs:
        parts = registry.get(spec.kind).pool_workers(spec.settings, spec.slots, keep)
        for n, (settings, slots) in enumerate(parts, 1):
            name = spec.name if len(parts) == 1 else f"{spec.name} #{n}"
            out.append(dataclasses.replace(spec, name=name, settings=settings, slots=slots))
    return out


Builder = Callable[[WorkerSpec], Backend]


def builder(registry: Registry, credentials: Credentials, config: Path | None) -> Builder:
    """Builds each worker's back end through its kind (called when the pool starts)."""
    def build(spec: WorkerSpec) -> Backend:
        return registry.get(spec.kind).build(spec.settings, credentials, config)
    return build
