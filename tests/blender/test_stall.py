"""How long the main thread stalls during a 1920×1080 job (issue 4 asks for the figure).

Measured in the pump itself (Session.pump times each call, as bpy.app.timers would make it),
plus the one-off save of the Render Result when Run is pressed and the PNG decode on first
display. Printed with -s; the bounds only catch regressions.
"""

from __future__ import annotations

from pathlib import Path

from tests.blender.conftest import RunBlender
from tests.paths import WORKFLOWS
from tests.servers.comfyui import ComfyTestServer


def test_main_thread_stall_with_a_1080p_render(run_blender: RunBlender, tmp_path: Path) -> None:
    with ComfyTestServer(tmp_path / "server") as server:
        r = run_blender("stall", url=server.url, workflow=str(WORKFLOWS / "invert_api.json"))
    assert r["run_error"] == "" and r["status"].startswith("Done"), r
    assert r["size"] == [1920, 1080]
    ms = {k: round(r[k] * 1000, 1) for k in ("max_pump", "capture", "decode", "total")}
    print(
        f"\n1920×1080 job: longest pump {ms['max_pump']} ms over {r['pumps']} pumps; "
        f"saving the render {ms['capture']} ms; first decode of the result {ms['decode']} ms; "
        f"whole run {ms['total']} ms"
    )
    assert r["max_pump"] < 0.25
    assert r["capture"] < 2.0
