"""Seconds per job that pool runs measured, per worker and workflow, kept in the config folder
(`pool_times.json`), so the next `--estimate` and the hosts' box use measured times rather
than only the pool file's guesses. Read and written whole; the last run to close wins."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from ..config import write_private_json
from .poolfile import WorkerSpec

log = logging.getLogger(__name__)
TIMES_FILE = "pool_times.json"
KEEP = 200  # workers × workflows kept, newest last: the file stays small


def ident(spec: WorkerSpec) -> str:
    """The worker whatever name the file gives it: its kind and settings."""
    kind, settings = spec.key
    return f"{kind} {settings}"


def _read(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # a broken file only loses the measurements
        log.warning("ignoring %s: %s", path, exc)
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float)) and v > 0}


def measured_times(folder: Path, specs: Sequence[WorkerSpec], workflow: str) -> dict[str, float]:
    """Seconds per job by worker name, for the workers earlier runs of `workflow` measured."""
    known = _read(folder / TIMES_FILE)
    found = {s.name: known.get(f"{workflow}\n{ident(s)}") for s in specs}
    return {name: seconds for name, seconds in found.items() if seconds}


def record_times(folder: Path, workflow: str,
                 measured: Sequence[tuple[WorkerSpec, float]]) -> None:
    """Keep what this run measured (failures are logged: a cache, never worth a crash)."""
    if not measured:
        return
    path = folder / TIMES_FILE
    known = _read(path)
    for spec, seconds in measured:
        key = f"{workflow}\n{ident(spec)}"
        known.pop(key, None)
        known[key] = round(seconds, 4)
    try:
        write_private_json(path, dict(list(known.items())[-KEEP:]))
    except OSError as exc:
        log.warning("could not keep the pool's measured times in %s: %s", path, exc)
