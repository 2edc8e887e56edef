"""Krita's Animation source: the longest main-thread slice while a 48-frame 1920×1080
playback range is read and sent (target < 100 ms), in a full Krita window under Xvfb (the
animated document is made with importAnimation, which needs the window).

Slices are wall time on Krita's main thread: the Run press, then each pump of the docker's
timer until the job is handed to the runner (a frame read per pump; the MP4 is encoded on
the runner's thread, not timed here).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests import workflows
from tests.krita.conftest import GUI_PLUGIN, install_plugin, run_in_window
from tests.servers.comfyui import ComfyTestServer

from .table import Row, row

FRAMES, SIZE = 48, (1920, 1080)
TARGET_MS = 100.0


def run(repeats: int, workdir: Path) -> list[Row]:
    data = install_plugin(workdir / "dist", workdir / "xdg-data")
    shutil.copytree(GUI_PLUGIN, data / "krita" / "pykrita", dirs_exist_ok=True)
    flow = workdir / "video_invert.json"
    flow.write_text(json.dumps(workflows.video_invert().graph))
    found = []
    with ComfyTestServer(workdir / "server", node_delay=0.0) as server:
        for n in range(max(1, min(repeats, 3))):  # each run builds a 48-frame 1080p document
            payload = {"url": server.url, "workflow": str(flow), "frames": FRAMES,
                       "width": SIZE[0], "height": SIZE[1]}
            found.append(in_krita_window(data, workdir / f"run-{n}", payload))
    label = f"krita Animation source, {FRAMES} × {SIZE[0]}×{SIZE[1]}"
    return [
        row("responsiveness", f"{label}: longest main-thread slice",
            [max([r["press_ms"], *r["pump_ms"]]) for r in found], "ms", f"< {TARGET_MS:g} ms",
            lambda v: v < TARGET_MS),
        row("responsiveness", f"{label}: reading one frame, longest",
            [max(r["read_ms"]) for r in found], "ms"),
        row("responsiveness", f"{label}: Run pressed", [r["press_ms"] for r in found], "ms"),
        row("responsiveness", f"{label}: read and sent, whole",
            [r["total_s"] for r in found], "s"),
    ]


def in_krita_window(data: Path, io: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """gui_checks.read_and_send_bench in a fresh Krita under Xvfb; what it reported."""
    return run_in_window(data, io, "gui_checks:read_and_send_bench", payload, timeout=900,
                         screen="1920x1080x24")
