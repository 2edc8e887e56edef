"""The plugin in a full Krita window (under Xvfb): docker registered, layer above the active
one, and one Edit › Undo removes a result."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

GUI_PLUGIN = Path(__file__).resolve().parent / "gui_plugin"
XVFB_RUN = shutil.which("xvfb-run")
KRITA = shutil.which("krita")
NEEDS = "needs krita and xvfb-run: `bash tests/run.sh` installs them (apt: krita, xvfb)"


def test_docker_layer_and_undo_in_a_window(krita_data: Path, tmp_path: Path) -> None:
    assert XVFB_RUN and KRITA, NEEDS
    data = tmp_path / "data"
    shutil.copytree(krita_data, data)  # the installed plugin, plus the test-only driver
    shutil.copytree(GUI_PLUGIN, data / "krita" / "pykrita", dirs_exist_ok=True)
    config = tmp_path / "config"
    config.mkdir()
    # What ticking the boxes in the Python Plugin Manager writes.
    (config / "kritarc").write_text(
        "[python]\nenable_comfyrelay_krita=true\nenable_comfyrelay_gui_check=true\n"
    )
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    out = tmp_path / "gui.json"
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(data),
        "XDG_CONFIG_HOME": str(config),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_RUNTIME_DIR": str(runtime),
        "COMFYRELAY_TEST_OUT": str(out),
    }
    env.pop("QT_QPA_PLATFORM", None)  # Krita's GUI insists on xcb: Xvfb provides it
    command = [str(XVFB_RUN), "-a", str(KRITA), "--nosplash"]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    if not out.exists():
        pytest.fail(f"Krita wrote no result (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    result = json.loads(out.read_text())
    assert "error" not in result, result.get("error")
    # Above the active layer (Background); a job's second output above its first.
    assert result["after_add"] == ["Top", "second", "result", "Background"]
    assert result["bounds"] == [5, 6, 8, 4]
    # Each undo step removes exactly one result layer, its pixels with it.
    assert result["after_undo"] == [["Top", "result", "Background"], ["Top", "Background"]]
    assert result["docker"], "Settings › Dockers › ComfyRelay is missing"
    assert {"Run", "Cancel", "Check connection"} <= set(result["buttons"])
