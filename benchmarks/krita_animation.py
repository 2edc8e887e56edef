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
import subprocess
from pathlib import Path
from typing import Any

from tests import workflows
from tests.krita.conftest import GUI_PLUGIN, KRITA, SCRIPTS, XVFB_RUN, install_plugin
from tests.krita.conftest import kritarunner_environ as krita_environ
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
    if not (XVFB_RUN and KRITA):
        raise RuntimeError("needs krita and xvfb-run (apt: krita, xvfb)")
    (io / "config").mkdir(parents=True)
    (io / "config" / "kritarc").write_text(
        "[python]\nenable_comfyrelay_krita=true\nenable_comfyrelay_gui_check=true\n")
    out = io / "result.json"
    (io / "in.json").write_text(json.dumps({**payload, "out": str(out)}))
    environ = krita_environ(data, io, SCRIPTS)
    environ.pop("QT_QPA_PLATFORM", None)  # the GUI needs xcb: Xvfb provides it
    environ["COMFYRELAY_TEST_OUT"] = str(out)
    environ["COMFYRELAY_TEST_CHECK"] = "gui_checks:read_and_send_bench"
    proc = subprocess.run([XVFB_RUN, "-a", "-s", "-screen 0 1920x1080x24", KRITA,
                           "--nosplash"], env=environ, capture_output=True, text=True,
                          timeout=900)
    if not out.exists():
        raise RuntimeError(f"Krita wrote no result (exit {proc.returncode}):\n"
                           f"{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    if "error" in result:
        raise RuntimeError(f"inside Krita:\n{result['error']}")
    return result
