"""The machine ledger: a round trip with time left and an atomic file; a damaged file is
ignored, not fatal."""

from __future__ import annotations

import json
import time

import pytest
from comfyrelay.runcomfy.ledger import Ledger, LedgerEntry


def test_ledger_round_trip_time_left_and_atomic_file() -> None:
    ledger = Ledger()
    now = time.time()
    ledger.add(LedgerEntry(server_id="a", launched_at=now, expected_stop=now + 600,
                           workflow_version_id="v", server_type="large"))
    ledger.add(LedgerEntry(server_id="b", launched_at=now))
    ledger.update("a", status="Ready")
    assert [e.server_id for e in ledger.entries()] == ["a", "b"]
    a = ledger.get("a")
    assert a is not None and a.status == "Ready"
    left = a.time_left(now)
    assert left == pytest.approx(600)
    b = ledger.get("b")
    assert b is not None and b.time_left() is None
    ledger.remove("b")
    raw = json.loads(ledger.path.read_text())
    assert [m["server_id"] for m in raw["machines"]] == ["a"]
    assert not any(p.suffix == ".tmp" for p in ledger.path.parent.iterdir())
    assert "token" not in ledger.path.read_text().lower()


def test_damaged_ledger_is_ignored_not_fatal() -> None:
    ledger = Ledger()
    ledger.path.parent.mkdir(parents=True, exist_ok=True)
    ledger.path.write_text("{not json")
    assert ledger.entries() == []
