"""Animated results in a full Krita window under Xvfb: one animated layer per result,
made the way measured not to crash Krita (issue 25)."""

from __future__ import annotations

from tests.krita.conftest import RunKrita


def test_a_24_frame_result_imported_30_times_without_a_crash(run_gui: RunKrita) -> None:
    r = run_gui("repeated_import", frames=24, times=30, timeout=900)
    assert r["can_animate"]
    assert r["bad"] == [] and r["good"] == 30  # each: 24 keyframes, each its own frame
    assert r["layers"] == [f"result {n}" for n in range(30, 0, -1)] + ["Background"]
    assert r["animated"][:30] == [True] * 30
    assert r["clip_end"] >= 23 and r["fps"] == 12  # an unanimated document takes the clip's
