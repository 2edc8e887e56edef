"""The docker's widgets under both Qt bindings: PyQt6 (Krita 6, from PyPI) and PyQt5
(Krita 5, Debian's), built offscreen outside Krita from the installed plugin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "scripts" / "qt_widgets.py"
# Debian's PyQt5 is built for the system Python; PyQt6 comes from PyPI into the test venv.
PYTHONS = {"PyQt6": sys.executable, "PyQt5": "/usr/bin/python3"}


@pytest.mark.parametrize("binding", ["PyQt6", "PyQt5"])
def test_docker_widgets_build_and_work(binding: str, krita_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "qt.json"
    pykrita = krita_data / "krita" / "pykrita"
    command = [PYTHONS[binding], str(SCRIPT), str(pykrita), binding, str(out)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert out.exists(), proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert "error" not in r, r["error"]
    assert r["binding"] == binding and r["qt6"] == (binding == "PyQt6")
    assert {"Run", "Cancel", "Check connection"} <= set(r["buttons"])
    assert r["kind_buttons"] == ["+30 min", "Launch", "Stop"]  # the machine kind's, as built
    # A kind the test suite registered: listed, its own field shown, its back end built.
    assert r["kinds"][-1] == "echo-test" and "comfyui" in r["kinds"]
    assert r["extra_fields"] == ["echo_prefix"]
    assert r["extra_backend"] == "Echo back end (echo)"
    assert r["fields"] == ["token", "url"]  # ComfyUI's fields only
    assert r["icu_fields"] == ["icu_accelerator", "icu_api_key", "icu_api_url", "icu_workflow"]
    assert "ComfyICU API key is missing" in r["problem"]  # said at once, nothing sent
    assert r["status"] == "No workflow" and not r["run_enabled"]
    assert "ComfyICU API key is missing" in r["run_tip"]  # why Run waits, on hover
    assert r["stored_backend"] == "comfyicu"
    assert r["classes"] == {"1.seed": "SeedField", "1.steps": "NumberField",
                            "1.denoise": "NumberField", "1.sampler_name": "ChoiceField",
                            "1.tiled": "BoolField", "1.notes": "TextField"}
    assert r["flagged"] == ["1.sampler_name", "1.steps"]  # not listed; below the minimum
    assert r["denoise"] == 0.8 and r["next_seed"] == 6  # the slider; increment
    # The default app: the inputs people change, in words; Customize takes Steps out.
    assert r["default_labels"] == ["Seed", "Steps", "Strength", "Sampler"]
    assert r["app_labels"] == ["Seed", "Strength", "Sampler"]
    # Customize also picks which output nodes' files come back, kept with the app view.
    assert r["output_boxes"] == ["2", "3"]
    assert r["picked_outputs"] == ["3"] and r["saved_outputs"] == ["3"]
    # A labelled source per loader: the pick kept for the workflow, a mask loader's
    # selection, a sound's own file; the region beside them.
    assert r["source_labels"] == ["Picture", "Area", "Sound"]
    assert r["source_shown"] == ["Active layer", "Selection as mask",
                                 "Keep (the workflow's file)"]
    # LoadImage also takes the canvas with its mask, Animation and Each frame; a mask
    # loader none of them.
    assert r["source_items"] == [7, 4, 1]
    assert r["region_items"] == ["Whole canvas", "Selection's bounds and a margin"]
    assert r["region_visible"]
