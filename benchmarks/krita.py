"""Krita: how long the plugin holds Krita's main thread, and what the canvas costs to encode.

One fresh kritarunner (offscreen, set up as tests/krita do) runs benchmarks/krita_side.py
against the ComfyUI test server (invert_api.json: same-size result):

- responsiveness: every main-thread slice of whole jobs through the real docker at 1920×1080
  and 3840×2160 — each pump of its QTimer, split into importing the result (the decoded
  image becomes a layer) and everything else, and the one-off Run press (canvas pixels read).
  Encoding the canvas (runner's thread) and decoding results (decode thread) are timed apart.
- encode: reading a 3840×2160 canvas and encoding it in each format and level Qt offers.

The test server runs in this process, so on a small machine it competes with Krita for CPU;
the slices are wall time on Krita's main thread, which is what a painter feels.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops

from tests.krita.conftest import install_plugin, kritarunner_environ
from tests.paths import WORKFLOWS
from tests.servers.comfyui import ComfyTestServer

from .table import Row, percentile, row

SIDE = Path(__file__).resolve().parent / "krita_side.py"
CHECKS = Path(__file__).resolve().parent.parent / "tests" / "krita" / "scripts" / "krita_checks.py"
SIZES = [(1920, 1080), (3840, 2160)]
ENCODE_SIZE = (3840, 2160)
WARMUP = (64, 64)
# (format, quality); -1 is Qt's default, the plugin's png_bytes. For PNG, Qt maps quality to
# the zlib level as (100 - q) * 9 // 91: 100 -> 0 (stored), 80 -> 1, 60 -> 3, 50 -> 4, 0 -> 9.
# zlib levels 1-3 use its fast matcher, 4-9 the lazy one: 60 and 50 sit either side of that.
FORMATS = [("PNG", -1), ("PNG", 100), ("PNG", 80), ("PNG", 60), ("PNG", 50), ("PNG", 0),
           ("JPEG", 90), ("WEBP", 90)]
NODE_DELAY = 0.5  # s per node, in progress ticks: a job has progress to pump, as a real one
NOISE_SIGMA = 8  # grain on the gradients; flat or smooth canvases compress unrealistically
TARGET_MS = 10.0


def run(repeats: int, workdir: Path) -> list[Row]:
    data = install_plugin(mkdir(workdir / "dist"), mkdir(workdir / "xdg-data"))
    canvases = {size: write_canvas(workdir, *size) for size in {*SIZES, ENCODE_SIZE, WARMUP}}
    with ComfyTestServer(workdir / "server", node_delay=NODE_DELAY) as server:
        payload = {
            "url": server.url,
            "workflow": str(WORKFLOWS / "invert_api.json"),
            "results": str(workdir / "results"),
            "repeats": repeats,
            "job_timeout": 120,
            "warmup": str(canvases[WARMUP]),
            "sizes": [[w, h, str(canvases[(w, h)])] for w, h in SIZES],
            "encode_size": [*ENCODE_SIZE, str(canvases[ENCODE_SIZE])],
            "formats": FORMATS,
        }
        result = in_krita(data, workdir, payload)
    return responsiveness_rows(result["responsiveness"]) + encode_rows(result["encode"])


def mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_canvas(workdir: Path, width: int, height: int) -> Path:
    """Raw B, G, R, A bytes: three gradients with per-channel noise, opaque.

    Compresses roughly like a photo or a textured painting; a flat fill would make every
    encoder look free."""
    size = (width, height)
    ramp = Image.linear_gradient("L")
    gradients = [ramp.rotate(90).resize(size), ramp.resize(size),
                 Image.radial_gradient("L").resize(size)]
    # effect_noise is centred on 128: offset -128 adds it around the gradient's value.
    r, g, b = (ImageChops.add(c, Image.effect_noise(size, NOISE_SIGMA), 1.0, -128)
               for c in gradients)
    image = Image.merge("RGBA", (r, g, b, Image.new("L", size, 255)))
    path = workdir / f"canvas-{width}x{height}.bgra"
    path.write_bytes(image.tobytes("raw", "BGRA"))  # Krita's 8-bit RGBA byte order
    return path


def in_krita(data: Path, workdir: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """Run krita_side.bench in a fresh kritarunner; return what it reported."""
    kritarunner = shutil.which("kritarunner")
    if kritarunner is None:
        raise RuntimeError("kritarunner is missing: `bash tests/run.sh` installs Krita")
    io = mkdir(workdir / "krita")
    # A folder of its own: next to this file, `import krita` would find benchmarks/krita.py.
    scripts = mkdir(workdir / "scripts")
    shutil.copy(SIDE, scripts / SIDE.name)
    shutil.copy(CHECKS, scripts / CHECKS.name)  # its reporting and spin_until, reused
    out = io / "result.json"
    (io / "in.json").write_text(json.dumps({**payload, "out": str(out)}))
    command = [kritarunner, "-s", SIDE.stem, "-f", "bench"]
    proc = subprocess.run(command, env=kritarunner_environ(data, io, scripts),
                          capture_output=True, text=True, timeout=900)
    if not out.exists():
        log = (proc.stdout + proc.stderr)[-4000:]
        raise RuntimeError(f"kritarunner wrote no result (exit {proc.returncode}):\n{log}")
    result: dict[str, Any] = json.loads(out.read_text())
    if "error" in result:
        raise RuntimeError(f"inside Krita:\n{result['error']}")
    return result


def responsiveness_rows(jobs_by_size: dict[str, list[dict[str, Any]]]) -> list[Row]:
    rows: list[Row] = []
    for size, jobs in jobs_by_size.items():
        rows += job_rows(f"krita {size.replace('x', '×')}", jobs)
    return rows


def job_rows(label: str, jobs: list[dict[str, Any]]) -> list[Row]:
    """Per job: longest and p99 pump slice without the import, the import, the Run press.

    p99 is by nearest rank: with fewer than 50 pumps in a job it is that job's longest."""
    other = [[total - imported for total, imported in job["slices"]] for job in jobs]
    imports = [[imported for _, imported in job["slices"] if imported > 0] for job in jobs]
    parts = [job["parts"] for job in jobs]

    def ms(case: str, runs: list[float], target: bool = False) -> Row:
        check = (lambda v: v < TARGET_MS) if target else None
        return row("responsiveness", f"{label}: {case}", runs, "ms",
                   f"< {TARGET_MS:g} ms" if target else "", check)

    return [
        ms("everything else, longest", [max(s) for s in other], target=True),
        ms("everything else, p99", [percentile(s, 99) for s in other], target=True),
        ms("import of the result (making the layer), longest",
           [max(s, default=0.0) for s in imports]),
        ms("decoding the result, on a decode thread", [p["decode"] for p in parts]),
        ms("pressing Run apart from reading pixels, once",
           [p["press"] - p["read"] for p in parts], target=True),
        ms("reading pixels (Krita's own), once", [p["read"] for p in parts]),
        ms("PNG encoding, on the runner's thread", [p.get("encode", 0.0) for p in parts]),
        row("responsiveness", f"{label}: pump slices per job", [len(s) for s in other], ""),
        row("responsiveness", f"{label}: whole job", [j["job_ms"] / 1000 for j in jobs], "s"),
    ]


def encode_rows(found: dict[str, Any]) -> list[Row]:
    label = "krita {}×{}".format(*found["size"])
    rows = [row("encode", f"{label} reading the canvas: time", found["read_ms"], "ms")]
    for case in found["cases"]:
        if case.get("missing"):  # e.g. WEBP needs Debian's qt5-image-formats-plugins
            print(f"  krita: Qt here cannot write {case['format']}; skipped", file=sys.stderr)
            continue
        used = " (plugin)" if case["format"] == "PNG" and \
            case["quality"] == found["plugin_quality"] else ""
        name = f"{label} {format_name(case)}{used}"
        rows.append(row("encode", f"{name}: time", case["ms"], "ms"))
        rows.append(row("encode", f"{name}: size", [case["bytes"] / 1e6], "MB"))
    return rows


def format_name(case: dict[str, Any]) -> str:
    """E.g. "PNG quality 80 (zlib 1)"; the zlib level is checked against the file's header."""
    fmt, quality = case["format"], case["quality"]
    if fmt != "PNG":
        return f"{fmt} quality {quality}"
    level = 6 if quality < 0 else (100 - min(quality, 100)) * 9 // 91
    # zlib's header only says which band the level was in: 0-1, 2-5, 6, 7-9.
    band = 0 if level < 2 else 1 if level < 6 else 2 if level == 6 else 3
    zlib = f"zlib {level}" if case["flevel"] == band else "zlib level unconfirmed"
    return f"PNG {'default' if quality < 0 else f'quality {quality}'} ({zlib})"
