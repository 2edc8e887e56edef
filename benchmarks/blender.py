"""Blender: how long the add-on holds the main thread during a job, and what it costs to get a
3840×2160 render out of Blender as upload bytes, per format and compression level.

One fresh bpy process (benchmarks/blender_side.py), set up exactly as tests/blender does: the
built extension zip installed into a temporary user folder, only bpy importable. The ComfyUI
test server runs here, in the host process, as a real ComfyUI would run elsewhere.

Responsiveness: every pump of the add-on's timer during a whole job (upload, queue, progress,
download, import), split into the import of the result (Blender loading and decoding the
image: Blender's own work, whatever the add-on does) and everything else (the add-on's own
work, which must stay under 10 ms a slice). The save of the source when Run is pressed is a
main-thread slice too; it is the encode cost, reported on its own row. A job pumps fewer
than 100 times, so its p99 (nearest rank) is its longest slice; the median is over the jobs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from build_addons import build_blender
from tests import workflows
from tests.blender.conftest import bpy_env, link_bpy_only
from tests.paths import WORKFLOWS
from tests.servers.comfyui import ComfyTestServer

from .table import Row, percentile, row

SIDE = Path(__file__).resolve().parent / "blender_side.py"
SIZES = ((1920, 1080), (3840, 2160))
ENCODE_SIZE = (3840, 2160)
NODE_DELAY = 0.3  # seconds per node: a few progress events and previews per job
BUDGET_MS = 10.0
PASSES_SIZE = (3840, 2160)
PASSES_BUDGET_MS = 100.0  # Run pressed, beyond Blender's own render of image and passes
TIMEOUT = 600  # seconds for the whole bpy process; a normal run takes 2-3 minutes


def run(repeats: int, workdir: Path) -> list[Row]:
    report = measure(repeats, workdir)
    rows: list[Row] = []
    for size, jobs in report["responsiveness"].items():
        rows += responsiveness_rows(size, jobs)
    return rows + encode_rows(report["encode"]) + passes_rows(report["passes"])


def measure(repeats: int, workdir: Path) -> dict[str, Any]:
    """Run blender_side.py once against the test server; its raw report."""
    zip_path, bpy_path, io = bpy_folders(workdir)
    payload: dict[str, Any] = {
        "zip": str(zip_path),
        "out": str(io / "report.json"),
        "output": str(io / "output"),
        "workflow": str(WORKFLOWS / "invert_api.json"),
        "sizes": SIZES,
        "encode_size": ENCODE_SIZE,
        "repeats": repeats,
        "passes_size": PASSES_SIZE,
        "passes_repeats": min(repeats, 3),  # a 4K Cycles render each
        "passes_workflow": str(workdir / "passes_api.json"),
    }
    passes = workflows.passes("Render", "Depth", "Normal")
    Path(payload["passes_workflow"]).write_text(json.dumps(passes.graph))
    with ComfyTestServer(workdir / "server", node_delay=NODE_DELAY) as server:
        payload["url"] = server.url
        return run_bpy([str(SIDE)], payload, io, bpy_path, TIMEOUT)


def bpy_folders(workdir: Path) -> tuple[Path, Path, Path]:
    """The built extension zip, a folder where only bpy is importable, and the bpy
    process's own folder (with output/), as tests/blender sets them up."""
    (zip_path,) = build_blender(workdir / "dist", ["linux-x64"])
    bpy_path = link_bpy_only(workdir / "bpy-only")
    io = workdir / "blender"
    (io / "output").mkdir(parents=True)
    return zip_path, bpy_path, io


def run_bpy(script: list[str], payload: dict[str, Any], io: Path, bpy_path: Path,
            timeout: float) -> dict[str, Any]:
    """Run `script` (a path and its arguments) in a fresh bpy process on `payload`; the
    report it wrote to payload["out"]."""
    (io / "in.json").write_text(json.dumps(payload))
    proc = subprocess.run([sys.executable, "-S", *script, str(io / "in.json")],
                          env=bpy_env(io, bpy_path), capture_output=True, text=True,
                          timeout=timeout)
    out = Path(payload["out"])
    if not out.exists():
        raise RuntimeError(f"bpy wrote no report (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(out.read_text())
    if "exception" in report:
        raise RuntimeError(f"inside bpy:\n{report['exception']}")
    return report


def responsiveness_rows(size: str, jobs: list[dict[str, Any]]) -> list[Row]:
    """Per job: the longest and p99 slice of everything else, the longest import, the save;
    each row the median over the jobs."""
    other = [[(whole - imported) * 1000 for whole, imported in job["pumps"]] for job in jobs]
    imports = [max(imported * 1000 for _, imported in job["pumps"]) for job in jobs]
    case = f"blender {size}"
    return [
        within_budget(f"{case}: everything else, longest", [max(o) for o in other]),
        within_budget(f"{case}: everything else, p99", [percentile(o, 99) for o in other]),
        row("responsiveness", f"{case}: import of the result, longest", imports, "ms"),
        row("responsiveness", f"{case}: saving the render, once",
            [job["save"] * 1000 for job in jobs], "ms"),
        within_budget(f"{case}: pressing Run apart from the save",
                      [(job["press"] - job["save"]) * 1000 for job in jobs]),
        row("responsiveness", f"{case}: pumps per job", [len(o) for o in other], "pumps"),
    ]


def within_budget(case: str, runs: list[float]) -> Row:
    return row("responsiveness", case, runs, "ms", f"< {BUDGET_MS:g} ms", lambda v: v < BUDGET_MS)


def passes_rows(runs: list[dict[str, Any]]) -> list[Row]:
    """Image, depth and normal from one fresh render: what pressing Run costs the main
    thread beyond Blender's render job, which renders and writes all three."""
    width, height = PASSES_SIZE
    case = f"blender {width}×{height} image + depth + normal"
    beyond = [(r["press"] - r["render"]) * 1000 for r in runs]
    return [
        row("responsiveness", f"{case}: Run pressed, beyond Blender's render", beyond, "ms",
            f"< {PASSES_BUDGET_MS:g} ms", lambda v: v < PASSES_BUDGET_MS),
        row("responsiveness", f"{case}: Blender's render job (1 sample)",
            [r["render"] * 1000 for r in runs], "ms"),
    ]


def encode_rows(encode: dict[str, Any]) -> list[Row]:
    width, height = ENCODE_SIZE
    rows = []
    for name, runs in encode["cases"].items():
        used = " (add-on)" if name == f"PNG level {encode['fast_png']}" else ""
        case = f"blender {width}×{height} {name}{used}"
        rows.append(row("encode", f"{case}: time", [s * 1000 for s, _ in runs], "ms"))
        rows.append(row("encode", f"{case}: size", [b / 1e6 for _, b in runs], "MB"))
    return rows
