"""The history of runs kept inside a document, so it travels with the .blend or .kra.

A host stores history_to_json() in the document (a .blend string property, a .kra
annotation) and reads it back with history_from_json(), which never fails: damaged data gives
an empty history and a log line. Entries hold the workflow's input values only, never a
setting or a token, and bindings_for_rerun() gives back exactly what a run used.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..jobs.media import media_kind
from ..jobs.workflow import MAX_SEED, Bindings

log = logging.getLogger(__name__)
MAX_RUNS = 50  # a document keeps its last 50 runs
HISTORY_VERSION = 1
# Inputs of some custom and partner nodes take a key; a document may be shared, so such
# values never go in, whatever the node.
SECRET_INPUT = re.compile(r"api[_-]?key|token|secret|passw(or)?d|credential|auth", re.IGNORECASE)


class RunRecord(BaseModel):
    """One run: what made the result, and where the result went."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    workflow_name: str
    workflow_path: str = ""
    bindings: Bindings  # prompt, denoise, "node.input" values; seed as used, random off
    seed: int | None = None  # the seed the run used, a random one included
    backend: str = ""  # the back end kind: comfyui, runcomfy-machine, ...
    server_version: str = ""
    started_at: float = 0.0  # epoch seconds
    seconds: float = 0.0  # time taken
    cost: float | None = None  # in the unit of the user's price, when known
    estimate: float | None = None  # what the run was expected to cost, when known
    outputs: list[str] = []  # result files
    frames: list[int] = []  # [first, last]: the host's frame range, for an animation run

    @field_validator("bindings")
    @classmethod
    def _no_secrets(cls, bindings: Bindings) -> Bindings:
        return without_secrets(bindings)

    def describe(self) -> str:
        """One line for a history list: "img2img · seed 42 · <back end> 0.3.64 · 12.5 s"."""
        when, seed, where, cost = self._facts()
        parts = [when, self.workflow_name, seed, where, f"{self.seconds:.1f} s", cost]
        return " · ".join(p for p in parts if p)

    def lines(self) -> list[str]:
        """The same, in short lines for a narrow list: what, when, which seed, on what."""
        when, seed, where, cost = self._facts()
        lines = [self.workflow_name, f"{when} · {self.seconds:.1f} s",
                 " · ".join(p for p in (seed, cost) if p), where]
        return [line for line in lines if line]

    def _facts(self) -> tuple[str, str, str, str]:
        """When, which seed, on what, at what cost; "" for what is not known."""
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.started_at))
        seed = f"seed {self.seed}" if self.seed is not None else ""
        where = " ".join(p for p in (self.backend, self.server_version) if p)
        cost = f"cost {self.cost:.2f}" if self.cost is not None else ""
        if self.estimate is not None:  # what was expected, beside what it came to
            cost = f"{cost} (estimate {self.estimate:.2f})" if cost else \
                f"estimate {self.estimate:.2f}"
        return when, seed, where, cost

    def image_output(self) -> str:
        """The run's first image file (for a thumbnail), or "" when it made none."""
        return next((p for p in self.outputs if media_kind(p) == "image"), "")


class RunHistory(BaseModel):
    """A document's runs, oldest first."""

    version: int = HISTORY_VERSION
    runs: list[RunRecord] = []

    def find(self, run_id: str) -> RunRecord | None:
        return next((r for r in self.runs if r.id == run_id), None)


def without_secrets(bindings: Bindings) -> Bindings:
    """The bindings less any value whose input name looks like a key or token."""
    secret = [k for k in bindings.values if SECRET_INPUT.search(k.rpartition(".")[2])]
    if not secret:
        return bindings
    log.info("History leaves out %d secret-looking input(s): %s", len(secret), ", ".join(secret))
    kept = {k: v for k, v in bindings.values.items() if k not in secret}
    return bindings.model_copy(update={"values": kept})


def new_run_record(
    *,
    workflow_name: str,
    workflow_path: str | Path | None,
    bindings: Bindings,
    seed: int | None,
    backend: str,
    server_version: str = "",
    started: float,
    ended: float,
    cost: float | None = None,
    estimate: float | None = None,
    outputs: Iterable[str | Path] = (),
) -> RunRecord:
    """The entry for a run that ended. `started` and `ended` are time.time() values; `seed`
    is the one the run used (JobStarted.seed), so a random seed is kept as a fixed one."""
    seed = seed if seed is not None else bindings.seed
    # Bindings refuse seeds above MAX_SEED when read back: such a seed lives in `seed` only.
    fits = seed is not None and 0 <= seed <= MAX_SEED
    used = bindings.model_copy(update={"seed": seed if fits else None, "random_seed": False})
    return RunRecord(
        workflow_name=workflow_name,
        workflow_path=str(workflow_path or ""),
        bindings=used,
        seed=seed,
        backend=backend,
        server_version=server_version,
        started_at=started,
        seconds=max(0.0, ended - started),
        cost=cost,
        estimate=estimate,
        outputs=[str(p) for p in outputs],
    )


def add_run(history: RunHistory, record: RunRecord, cap: int = MAX_RUNS) -> RunHistory:
    """A new history with `record` last, keeping the last `cap` runs."""
    return history.model_copy(update={"runs": [*history.runs, record][-cap:]})


def history_to_json(history: RunHistory) -> str:
    """Compact JSON for the document."""
    return history.model_dump_json()


def history_from_json(text: str | bytes | None) -> RunHistory:
    """The history stored in a document; empty if there is none or it is damaged (logged).
    Unreadable entries are dropped one by one, so one bad entry loses only itself."""
    if not text:
        return RunHistory()
    try:
        data: Any = json.loads(text)
    except (ValueError, TypeError):  # JSONDecodeError and bad UTF-8 are ValueErrors
        log.warning("The document's run history is not JSON; starting an empty one.")
        return RunHistory()
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        log.warning("The document's run history has no list of runs; starting an empty one.")
        return RunHistory()
    runs = []
    for raw in data["runs"]:
        try:
            runs.append(RunRecord.model_validate(raw))
        except ValidationError:
            log.warning("Dropped an unreadable entry of the document's run history.")
    return RunHistory(runs=runs[-MAX_RUNS:])


def record_run(stored: str | bytes | None, record: RunRecord, cap: int = MAX_RUNS) -> str:
    """What a host stores back after a run: the document's history with `record` added."""
    return history_to_json(add_run(history_from_json(stored), record, cap))


def bindings_for_rerun(record: RunRecord) -> Bindings:
    """The bindings that reproduce the run exactly: its values and seed, random off.
    ("Run again"; "Use these settings" puts the same into the fields.)"""
    seed = record.seed if record.seed is not None else record.bindings.seed
    return record.bindings.model_copy(update={"seed": seed, "random_seed": False})
