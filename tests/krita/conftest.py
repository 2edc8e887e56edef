"""Running the real Krita headless: build the plugin zip, install it, call kritarunner.

Each check is a function in scripts/krita_checks.py run in a fresh kritarunner process
(QT_QPA_PLATFORM=offscreen) with its own Krita config; the first start of a session also
builds Krita's resource database (~8 s), later ones take about a second.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from build_addons import build_krita
from tests.servers.comfyui import ComfyTestServer

SCRIPTS = Path(__file__).resolve().parent / "scripts"
KRITARUNNER = shutil.which("kritarunner")

RunKrita = Callable[..., dict[str, Any]]


@pytest.fixture(scope="session")
def linux_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The linux-x64 plugin zip, built once per session: building vendors wheels (slow)."""
    (built,) = build_krita(tmp_path_factory.mktemp("dist"), ["linux-x64"])
    return built


@pytest.fixture(scope="session")
def plugin_data(linux_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """XDG_DATA_HOME with the built zip installed as a user would: krita/pykrita/.
    Shared by the session, so tests copy it before adding anything."""
    return unpack_plugin(linux_zip, tmp_path_factory.mktemp("xdg-data"))


@pytest.fixture(scope="session")
def krita_data(plugin_data: Path) -> Path:
    """plugin_data, for tests that run kritarunner on it."""
    if KRITARUNNER is None:
        pytest.fail("kritarunner is missing: `bash tests/run.sh` installs Krita")
    return plugin_data


def install_plugin(dist: Path, data: Path) -> Path:
    """Build the plugin zip into `dist` and extract it into `data`/krita/pykrita; return `data`."""
    (plugin_zip,) = build_krita(dist, ["linux-x64"])
    return unpack_plugin(plugin_zip, data)


def unpack_plugin(plugin_zip: Path, data: Path) -> Path:
    """Extract the zip into `data`/krita/pykrita, as Import Python Plugin does; return `data`."""
    with zipfile.ZipFile(plugin_zip) as zf:
        zf.extractall(data / "krita" / "pykrita")
    return data


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ComfyTestServer]:
    with ComfyTestServer(tmp_path / "server", node_delay=0.0) as srv:
        yield srv


def kritarunner_environ(data: Path, io: Path, scripts: Path,
                        extra: dict[str, str | None] | None = None) -> dict[str, str]:
    """The environment of a fresh kritarunner: offscreen, its own config, cache and runtime
    folders under `io`, the plugin from `data`, the check script importable from `scripts`."""
    runtime = io / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    pykrita = data / "krita" / "pykrita"
    extra = extra or {}  # the caller's own variables; None removes one
    environ = {
        **{k: v for k, v in os.environ.items() if k not in extra},
        **{k: v for k, v in extra.items() if v is not None},
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_DATA_HOME": str(data),
        "XDG_CONFIG_HOME": str(io / "config"),
        "XDG_CACHE_HOME": str(io / "cache"),
        "XDG_RUNTIME_DIR": str(runtime),
        # kritarunner imports the script by name; it does not search pykrita itself.
        "PYTHONPATH": os.pathsep.join([str(pykrita), str(scripts)]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "COMFYRELAY_TEST_IN": str(io / "in.json"),
    }
    environ.pop("PYTHONHOME", None)  # a venv's settings must not leak into Krita's Python
    return environ


@pytest.fixture
def run_krita(krita_data: Path, tmp_path: Path) -> RunKrita:
    """run_krita(function, env={...}, script=..., **payload) -> the dict the function
    reported. `script` is the module in scripts/ that holds `function`."""

    def run(function: str, timeout: float = 180, env: dict[str, str | None] | None = None,
            script: str = "krita_checks", **payload: Any) -> dict[str, Any]:
        io = tmp_path / f"krita-{function}"
        io.mkdir()
        out = io / "result.json"
        (io / "in.json").write_text(json.dumps({**payload, "out": str(out)}))
        environ = kritarunner_environ(krita_data, io, SCRIPTS, env)
        command = [str(KRITARUNNER), "-s", script, "-f", function]
        proc = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=timeout)
        if not out.exists():
            log = (proc.stdout + proc.stderr)[-4000:]
            pytest.fail(f"kritarunner wrote no result (exit {proc.returncode}):\n{log}")
        result: dict[str, Any] = json.loads(out.read_text())
        if "error" in result:
            pytest.fail(f"inside Krita:\n{result['error']}")
        result["config"] = str(io / "config")
        return result

    return run


GUI_PLUGIN = Path(__file__).resolve().parent / "gui_plugin"
XVFB_RUN = shutil.which("xvfb-run")
KRITA = shutil.which("krita")


class KritaFailed(RuntimeError):
    """Krita wrote no result (it crashed or never ran the check), or the check raised."""


def run_in_window(data: Path, io: Path, check: str, payload: dict[str, Any],
                  timeout: float = 300, screen: str = "") -> dict[str, Any]:
    """The dict `check` ("script:function" in scripts/) reported from inside a full Krita
    window under Xvfb, with `data` as its XDG data folder (the plugin and the test-only
    driver installed) and a config of its own in `io`. `screen`: Xvfb's, e.g. 1920x1080x24."""
    assert XVFB_RUN and KRITA, "needs krita and xvfb-run (apt: krita, xvfb)"
    (io / "config").mkdir(parents=True, exist_ok=True)
    (io / "config" / "kritarc").write_text(
        "[python]\nenable_comfyrelay_krita=true\nenable_comfyrelay_gui_check=true\n")
    out = io / "result.json"
    (io / "in.json").write_text(json.dumps({**payload, "out": str(out)}))
    environ = kritarunner_environ(data, io, SCRIPTS)
    environ.pop("QT_QPA_PLATFORM", None)  # Krita's GUI insists on xcb: Xvfb provides it
    environ["COMFYRELAY_TEST_OUT"] = str(out)
    environ["COMFYRELAY_TEST_CHECK"] = check
    command = [str(XVFB_RUN), "-a", *(["-s", f"-screen 0 {screen}"] if screen else []),
               str(KRITA), "--nosplash"]
    proc = subprocess.run(command, env=environ, capture_output=True, text=True,
                          timeout=timeout)
    if not out.exists():
        raise KritaFailed(f"Krita wrote no result (exit {proc.returncode}):\n"
                          f"{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    if "error" in result:
        raise KritaFailed(f"inside Krita:\n{result['error']}")
    result["log"] = proc.stderr  # Krita's own warnings (SAFE ASSERT ...) land here
    return result


def safe_asserts(log: str) -> list[str]:
    """Krita's recovered assertions in its log: each is a Krita API used out of turn."""
    return [line for line in log.splitlines() if "SAFE ASSERT" in line]


@pytest.fixture
def run_gui(krita_data: Path, tmp_path: Path) -> RunKrita:
    """run_gui(function, script=..., timeout=..., **payload) -> the dict `function` (in
    scripts/`script`.py) reported from inside a full Krita window under Xvfb, started here
    with its own config. A crash shows as no result and Krita's exit code."""

    def run(function: str, timeout: float = 300, script: str = "gui_checks",
            **payload: Any) -> dict[str, Any]:
        io = tmp_path / f"gui-{function}"
        io.mkdir()
        data = io / "data"
        shutil.copytree(krita_data, data)  # the installed plugin, plus the test-only driver
        shutil.copytree(GUI_PLUGIN, data / "krita" / "pykrita", dirs_exist_ok=True)
        try:
            return run_in_window(data, io, f"{script}:{function}", payload, timeout)
        except KritaFailed as exc:
            pytest.fail(str(exc))

    return run
