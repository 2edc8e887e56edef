"""One job through the Krita plugin's own vendored core, outside Krita:
`python -S core_job.py IN.json`.

The test puts only the unpacked plugin on PYTHONPATH and starts Python without its site
folder, so pydantic, requests and the rest come from the plugin's vendor/ folder, as they
do in the Python a Krita build embeds. Writes a JSON report to IN's "report" path.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any


def run(payload: dict[str, Any]) -> dict[str, Any]:
    from comfyrelay_krita.core import core  # puts vendor/ on sys.path first

    settings = core.BackendSettings.of("comfyui", url=payload["url"])
    runner = core.JobRunner(core.make_backend(settings, core.Credentials()))
    graph = json.loads(Path(payload["workflow"]).read_text(encoding="utf-8"))
    canvas = core.InputFile("canvas.png", Path(payload["image"]).read_bytes())
    runner.submit(core.Job(core.Workflow(graph, "invert"), Path(payload["out"]),
                           core.Bindings(), canvas))
    events = runner.wait_idle(60)
    runner.close()
    final = [e for e in events if isinstance(e, core.FINAL_EVENTS)][-1]
    return {
        "python": "{}.{}".format(*sys.version_info[:2]),
        "compiled": sys.modules["pydantic_core._pydantic_core"].__file__,
        "final": type(final).__name__,
        "message": getattr(final, "message", ""),
        "outputs": [str(p) for p in getattr(final, "outputs", ())],
    }


def main() -> None:
    payload = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    try:
        report = run(payload)
    except Exception:
        report = {"exception": traceback.format_exc()}
    Path(payload["report"]).write_text(json.dumps(report), encoding="utf-8")


if __name__ == "__main__":
    main()
