"""Texture from Cameras: the time Blender spends on its side of a texturing run (meshes,
surfaces, the outside-visible area and camera placement, projecting each view, baking),
not the renders nor the jobs, for 3, 6 and 12 views into 1024² and 6 views into 2048².

One fresh bpy process runs tests/blender/scripts/texturing_checks.py's `benchmark` check,
set up as tests/blender does (the built extension zip installed, only bpy importable):
Suzanne subdivided twice (15,744 triangles as rendered), 512×512 Cycles views, the identity
workflow on the ComfyUI test server running here. Issue 21's target: under 20 s for 6
views at 2048² on 2 cores (numpy's own work is single-threaded here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.blender.conftest import SCRIPTS
from tests.paths import WORKFLOWS
from tests.servers.comfyui import ComfyTestServer

from .blender import bpy_folders, run_bpy
from .table import Row, row

CASES = ((3, 1024), (6, 1024), (12, 1024), (6, 2048))
TARGET_S = 20.0
RENDER = 512
TIMEOUT = 1200  # seconds for the whole bpy process


def run(repeats: int, workdir: Path) -> list[Row]:
    report = measure(max(1, min(repeats, 2)), workdir)  # each run renders every view
    rows = []
    for views, size in CASES:
        runs = report["runs"][f"{views}x{size}"]
        target = f"< {TARGET_S:g} s" if (views, size) == (6, 2048) else ""
        case = f"blender texturing {views} views into {size}²"
        rows.append(row("texturing", f"{case}: Blender side", [r["blender"] for r in runs],
                        "s", target, (lambda v: v < TARGET_S) if target else None))
        rows.append(row("texturing", f"{case}: of which set-up (visible area, placement)",
                        [r["setup"] for r in runs], "s"))
    return rows


def measure(repeats: int, workdir: Path) -> dict[str, Any]:
    """Run the benchmark check once against the test server; its raw report."""
    zip_path, bpy_path, io = bpy_folders(workdir)
    payload: dict[str, Any] = {
        "zip": str(zip_path), "out": str(io / "report.json"), "output": str(io / "output"),
        "workflow": str(WORKFLOWS / "identity_api.json"), "cases": CASES,
        "repeats": repeats, "render": RENDER,
    }
    with ComfyTestServer(workdir / "server") as server:
        payload["url"] = server.url
        return run_bpy([str(SCRIPTS / "texturing_checks.py"), "benchmark"], payload, io,
                       bpy_path, TIMEOUT)
