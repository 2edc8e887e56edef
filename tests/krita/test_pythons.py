"""The Krita plugin's vendored core runs under every Python its Linux zip serves: 3.10
(Krita 5.2's official builds), 3.11 (Debian 12's Krita), 3.12 (Ubuntu 24.04's), 3.13 (Krita
5.3 and 6.0). Krita's own builds cannot be installed here, so their Python is: each run
starts that Python without its site folder, with only the unpacked plugin importable, and
sends a canvas through the invert workflow on the ComfyUI test server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.imaging import gradient_png, is_inverse
from tests.krita.test_package import PROMISED
from tests.paths import WORKFLOWS
from tests.pythons import MISSING, find_python
from tests.servers.comfyui import ComfyTestServer

SCRIPT = Path(__file__).resolve().parent / "scripts" / "core_job.py"


@pytest.fixture
def plugin(plugin_data: Path) -> Path:
    """The Linux zip, unpacked as Krita's Import Python Plugin does."""
    return plugin_data / "krita" / "pykrita"


@pytest.mark.parametrize("python", sorted(PROMISED["linux-x64"][2]))
def test_the_plugins_core_runs_a_job_under_each_python_it_serves(
    python: str, plugin: Path, tmp_path: Path
) -> None:
    interpreter = find_python(python)
    if interpreter is None:
        pytest.fail(MISSING.format(python))
    canvas = gradient_png()
    (tmp_path / "canvas.png").write_bytes(canvas)
    payload = {"workflow": str(WORKFLOWS / "invert_api.json"),
               "image": str(tmp_path / "canvas.png"), "out": str(tmp_path / "out"),
               "report": str(tmp_path / "report.json")}
    with ComfyTestServer(tmp_path / "server", node_delay=0.0) as server:
        (tmp_path / "in.json").write_text(json.dumps({**payload, "url": server.url}))
        proc = subprocess.run([interpreter, "-S", str(SCRIPT), str(tmp_path / "in.json")],
                              env={"PYTHONPATH": str(plugin), "PYTHONDONTWRITEBYTECODE": "1"},
                              capture_output=True, text=True, timeout=120)
    assert (tmp_path / "report.json").exists(), proc.stderr[-3000:]
    r = json.loads((tmp_path / "report.json").read_text())
    assert "exception" not in r, r.get("exception")
    assert r["python"] == python
    tag = python.replace(".", "")
    vendor = plugin / "comfyrelay_krita" / "vendor" / "pydantic_core"
    assert r["compiled"] == str(vendor / f"_pydantic_core.cpython-{tag}-x86_64-linux-gnu.so")
    assert r["final"] == "JobFinished", r["message"]
    (result,) = r["outputs"]
    assert is_inverse(canvas, Path(result))
    assert Image.open(result).size == Image.open(tmp_path / "canvas.png").size
