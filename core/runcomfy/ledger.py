"""The ledger of RunComfy machines this tool launched: they cost money until stopped.

A small JSON file in the user's config folder, so a machine launched by one session (or one
host) is still known to the next one and can be shown, reused or stopped. No secrets here.

Blender, Krita and the CLI may write it at the same time: each change (read, modify, write)
holds a lock across processes, on machines.json.lock beside it, so none is lost. Writes
replace the file atomically, so reading needs no lock.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..config import config_dir, write_private_json
from ..net.filelock import file_lock

log = logging.getLogger(__name__)
LEDGER_FILE = "machines.json"
_lock = threading.Lock()  # one writer thread per process contends for the file lock


class LedgerEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    server_id: str
    user_id: str = ""
    workflow_version_id: str = ""
    server_type: str = ""
    launched_at: float  # epoch seconds
    estimated_duration: int = 0  # seconds, as last sent to RunComfy
    expected_stop: float | None = None  # epoch seconds when RunComfy will stop it
    ready_at: float | None = None  # billing starts here
    status: str = "Starting"
    api_url: str = ""  # which API launched it (prod, beta or a test server)

    def time_left(self, now: float | None = None) -> float | None:
        """Seconds until the expected stop; None while unknown."""
        if self.expected_stop is None:
            return None
        return max(0.0, self.expected_stop - (time.time() if now is None else now))


class Ledger:
    """The ledger file. Any thread of any process may call; see the module docstring."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / LEDGER_FILE
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    @classmethod
    def in_folder(cls, config: Path | None) -> Ledger:
        """The ledger in `config` (a test's or a host's own folder), else the user's."""
        return cls(config / LEDGER_FILE if config is not None else None)

    def entries(self) -> list[LedgerEntry]:
        return list(self._read().values())

    def get(self, server_id: str) -> LedgerEntry | None:
        return self._read().get(server_id)

    def add(self, entry: LedgerEntry) -> None:
        with self._changing():
            data = self._read()
            data[entry.server_id] = entry
            self._write(data)

    def update(self, server_id: str, **fields: Any) -> LedgerEntry | None:
        with self._changing():
            data = self._read()
            entry = data.get(server_id)
            if entry is None:
                return None
            data[server_id] = entry.model_copy(update=fields)
            self._write(data)
            return data[server_id]

    def remove(self, server_id: str) -> None:
        with self._changing():
            data = self._read()
            if data.pop(server_id, None) is not None:
                self._write(data)

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """One change at a time, across threads and processes."""
        with _lock, file_lock(self.lock_path):
            yield

    def _read(self) -> dict[str, LedgerEntry]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            # Keep the damaged file for the user; machines are still found by the list call.
            log.warning("machine ledger %s is unreadable (%s); ignoring it", self.path, exc)
            return {}
        found: dict[str, LedgerEntry] = {}
        for item in raw.get("machines", []) if isinstance(raw, Mapping) else []:
            try:
                entry = LedgerEntry.model_validate(item)
            except ValidationError:
                continue
            found[entry.server_id] = entry
        return found

    def _write(self, data: dict[str, LedgerEntry]) -> None:
        body = {"version": 1, "machines": [e.model_dump() for e in data.values()]}
        write_private_json(self.path, body)
