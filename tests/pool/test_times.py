"""Measured seconds per job are kept per worker and workflow, so the next estimate of that
workflow uses them; a broken file only loses them."""

from __future__ import annotations

import os
from pathlib import Path

from comfyrelay import KINDS, load_credentials
from comfyrelay.pool.poolfile import load_specs
from comfyrelay.pool.times import TIMES_FILE, measured_times, record_times


def test_times_are_kept_per_worker_and_workflow(tmp_path: Path) -> None:
    specs = load_specs([], ["http://127.0.0.1:1", "http://127.0.0.1:2"], KINDS,
                       load_credentials())
    record_times(tmp_path, "invert", [(specs[0], 0.52)])
    assert measured_times(tmp_path, specs, "invert") == {"comfyui http://127.0.0.1:1": 0.52}
    assert measured_times(tmp_path, specs, "upscale") == {}
    if os.name == "posix":
        assert (tmp_path / TIMES_FILE).stat().st_mode & 0o077 == 0


def test_a_broken_times_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / TIMES_FILE).write_text("{not json")
    specs = load_specs([], ["http://127.0.0.1:1"], KINDS, load_credentials())
    assert measured_times(tmp_path, specs, "invert") == {}
    record_times(tmp_path, "invert", [(specs[0], 1.5)])  # and replaced by the next run
    assert measured_times(tmp_path, specs, "invert") == {"comfyui http://127.0.0.1:1": 1.5}
