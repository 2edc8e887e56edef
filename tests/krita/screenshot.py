"""The README's pictures of the Krita docker, made in real Krita under Xvfb:

    .venv/bin/python -m tests.krita.screenshot [docs/krita-docker.png]

Starts the ComfyUI test server, installs the built plugin zip and a test-only plugin
(screenshot_plugin/) into a fresh Krita profile, and starts Krita on a 1920×1080 screen. The
test-only plugin paints a document, checks the connection, runs a model-free workflow from
the docker (so the history has an entry with a thumbnail), opens sd15_img2img_api.json
(its default app, typed by the server; the server lists no checkpoint, so the workflow's is
flagged) and grabs the docker at its default size: the first screen as Krita shows it
(docs/krita-docker.png) and the whole panel (…-full.png). It reports what the first screen
says (labels above the fold, status and connection lines) and whether the panel fits the
dock: no horizontal scroll bar, no part cut off, also with "All inputs" open and Customize
on. Exits non-zero when it does not (tests/krita/test_screenshot.py runs it too).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.krita.conftest import install_plugin, safe_asserts
from tests.paths import ROOT, WORKFLOWS
from tests.servers.comfyui import ComfyTestServer

PLUGIN = Path(__file__).resolve().parent / "screenshot_plugin"
NOISE = WORKFLOWS / "noise_api.json"
IMG2IMG = WORKFLOWS / "sd15_img2img_api.json"
DEFAULT_PNG = ROOT / "docs" / "krita-docker.png"
SCREEN = "1920x1080x24"  # a common screen; xvfb-run's default is 640x480


def kritarc(url: str, results: Path) -> str:
    """Both plugins enabled (as ticking them in the Python Plugin Manager does) and the
    docker's settings as an earlier session saved them."""
    return (
        "[python]\nenable_comfyrelay_krita=true\nenable_comfyrelay_screenshot=true\n\n"
        f"[ComfyRelay]\nbackend=comfyui\nurl={url}\nworkflow={IMG2IMG}\n"
        f"output_folder={results}\n"
    )


def profile(work: Path, url: str, installed: Path | None = None) -> dict[str, str]:
    """A fresh Krita profile in `work` with the plugins installed; its environment.
    `installed`: a data folder with the plugin already built and unpacked (the tests' one),
    copied instead of building the zip again."""
    data = work / "data"
    if installed is None:
        install_plugin(work / "dist", data)
    else:
        shutil.copytree(installed, data)
    shutil.copytree(PLUGIN, data / "krita" / "pykrita", dirs_exist_ok=True)
    config = work / "config"
    config.mkdir()
    (config / "kritarc").write_text(kritarc(url, work / "Pictures" / "ComfyRelay"))
    runtime = work / "runtime"
    runtime.mkdir(mode=0o700)
    ours = work / "comfyrelay"  # no app view saved: the workflow's default app
    env = {**os.environ, "XDG_DATA_HOME": str(data), "XDG_CONFIG_HOME": str(config),
           "XDG_CACHE_HOME": str(work / "cache"), "XDG_RUNTIME_DIR": str(runtime),
           "COMFYRELAY_CONFIG_DIR": str(ours)}
    env.pop("QT_QPA_PLATFORM", None)  # Krita's GUI insists on xcb: Xvfb provides it
    env.pop("COMFYUI_TOKEN", None)
    return env


def make_screenshot(png: Path, work: Path, timeout: float = 240,
                    installed: Path | None = None) -> dict[str, Any]:
    """Grab the docker into `png`; the measurements the plugin reported. `installed`: as for
    profile()."""
    xvfb, krita = shutil.which("xvfb-run"), shutil.which("krita")
    if not (xvfb and krita):
        raise RuntimeError("needs krita and xvfb-run (apt: krita xvfb)")
    out = work / "shot.json"
    with ComfyTestServer(work / "server", node_delay=0.05) as server:
        env = profile(work, server.url, installed)
        env["COMFYRELAY_SHOT"] = json.dumps({
            "png": str(png), "full_png": str(full_png(png)), "out": str(out),
            "run_first": str(NOISE), "workflow": str(IMG2IMG),
        })
        command = [xvfb, "-a", "-s", f"-screen 0 {SCREEN}", krita, "--nosplash"]
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if not out.exists():
        raise RuntimeError(f"Krita wrote no result (exit {proc.returncode}):\n"
                           f"{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    if "error" in result:
        raise RuntimeError(f"inside Krita:\n{result['error']}")
    result["safe_asserts"] = safe_asserts(proc.stderr)
    return result


def full_png(png: Path) -> Path:
    """Where the whole panel goes beside the first screen's picture."""
    return png.with_name(f"{png.stem}-full{png.suffix}")


def fits(result: dict[str, Any]) -> bool:
    """No sideways scrolling, and the panel no wider than what the dock shows of it."""
    widths = [result["panel_width"], result["panel_min_width"], *result["min_widths"].values()]
    return (not result["h_scrollbar_visible"] and result["h_scroll_range"] == 0
            and max(widths) <= result["viewport_width"])


def main() -> int:
    png = Path(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_PNG).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="comfyrelay-shot-") as work:
        result = make_screenshot(png, Path(work))
    print(json.dumps(result, indent=2))
    print(f"{png}: the docker {'fits' if fits(result) else 'DOES NOT FIT'} its dock")
    return 0 if fits(result) and result["ran"] and result["typed"] else 1


if __name__ == "__main__":
    sys.exit(main())
