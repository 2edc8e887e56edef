"""Real bpy (the PyPI `bpy` module) in a fresh process per check, with the built zip installed.

Each check is a function in scripts/blender_checks.py. Its process sees only bpy and the
modules bpy itself needs (numpy, zstandard), not the test venv's site-packages, so the core's
dependencies must come from the wheels the extension bundles, as in a real Blender. Blender's
user folders point into the test's temporary directory: nothing touches ~/.config/blender.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from build_addons import build_blender
from tests.servers.comfyui import ComfyTestServer

SCRIPTS = Path(__file__).resolve().parent / "scripts"
SITE = Path(sysconfig.get_paths()["purelib"])
# bpy and what bpy itself imports (cattrs and attrs since 5.2), never the core's own needs.
BPY_ONLY = ("bpy", "numpy", "numpy.libs", "zstandard", "cattrs", "attrs", "cattr")

RunBlender = Callable[..., dict[str, Any]]


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (SITE / "bpy").is_dir():
        pytest.fail("bpy is not installed: `bash tests/run.sh` installs it")
    (zip_path,) = build_blender(tmp_path_factory.mktemp("dist"), ["linux-x64"])
    return zip_path


def link_bpy_only(folder: Path, site: Path = SITE) -> Path:
    """Fill `folder` with links to the bpy in `site` and its own dependencies, and nothing
    else."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in BPY_ONLY:
        if (site / name).exists():
            (folder / name).symlink_to(site / name)
    return folder


def bpy_env(io: Path, bpy_path: Path) -> dict[str, str]:
    """The environment of a bpy process: only bpy importable, Blender's user folders and
    temporary files under `io` (which must exist), no token from the caller's shell."""
    env = {
        **os.environ,
        "BLENDER_USER_RESOURCES": str(io / "user"),
        "PYTHONPATH": str(bpy_path),
        "PYTHONDONTWRITEBYTECODE": "1",
        "TMPDIR": str(io / "tmp"),
    }
    (io / "tmp").mkdir(exist_ok=True)
    env.pop("COMFYUI_TOKEN", None)
    return env


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ComfyTestServer]:
    with ComfyTestServer(tmp_path / "server", node_delay=0.0) as srv:
        yield srv


def uploaded(server: ComfyTestServer) -> list[Path]:
    """The PNGs the server received, by name."""
    return sorted(p for p in server.input_dir.iterdir() if p.suffix == ".png")


@pytest.fixture(scope="session")
def bpy_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding links to bpy and its own dependencies, and nothing else."""
    return link_bpy_only(tmp_path_factory.mktemp("bpy-only"))


@pytest.fixture
def run_blender(extension_zip: Path, bpy_path: Path, tmp_path: Path) -> RunBlender:
    """run_blender(check, **payload) -> the report the check wrote."""
    return blender_runner(extension_zip, bpy_path, tmp_path)


def blender_runner(
    extension_zip: Path, bpy_path: Path, tmp_path: Path, python: str = sys.executable
) -> RunBlender:
    """A function that runs one check (a function of `script` in scripts/) in the bpy linked
    from `bpy_path`, with `python` (the one that bpy release needs). Its report also holds
    what bpy printed, under "log"."""

    def run(check: str, timeout: float = 240, script: str = "blender_checks.py",
            **given: Any) -> dict[str, Any]:
        io = tmp_path / f"blender-{check}"
        (io / "output").mkdir(parents=True)
        out = io / "result.json"
        payload = {"zip": str(extension_zip), "out": str(out), "output": str(io / "output")}
        payload |= given
        (io / "in.json").write_text(json.dumps(payload))
        env = bpy_env(io, bpy_path)
        command = [python, "-S", str(SCRIPTS / script), check]
        proc = subprocess.run(
            [*command, str(io / "in.json")],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if not out.exists():
            log = (proc.stdout + proc.stderr)[-4000:]
            pytest.fail(f"bpy wrote no report (exit {proc.returncode}):\n{log}")
        report: dict[str, Any] = json.loads(out.read_text())
        if "exception" in report:
            pytest.fail(f"inside bpy:\n{report['exception']}\n{proc.stderr[-3000:]}")
        report["output"] = str(io / "output")
        report["log"] = proc.stdout + proc.stderr
        return report

    return run
