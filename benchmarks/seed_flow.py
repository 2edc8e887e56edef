"""The minimal flow of seed 001 (RunComfy's ComfyUI Backend API page), as a baseline.

requests for upload, queue, history and view; websocket-client for progress. One deviation
from the page: the socket is opened before the prompt is queued, as ComfyUI's own
websockets_api_example does, because the page's order can miss a fast job's last message
and wait forever. No validation, no retries, no timeouts beyond the socket's: the least a
client can do.
"""

from __future__ import annotations

import json
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import websocket


def run(url: str, graph: dict[str, Any], image: Path, out_dir: Path,
        lap: Callable[[str], None] = lambda step: None) -> list[Path]:
    """The flow; `lap(step)` is called as each step ends (benchmarks/overhead_steps.py)."""
    with image.open("rb") as f:
        files = [("image", (image.name, f, "application/octet-stream"))]
        uploaded = requests.post(f"{url}/upload/image", data={"overwrite": "true"},
                                 files=files, timeout=30).json()
    graph = json.loads(json.dumps(graph))
    graph["1"]["inputs"]["image"] = uploaded["name"]
    lap("upload")

    client_id = str(uuid.uuid4())
    ws = websocket.WebSocket()
    ws.connect(f"ws://{url.split('://', 1)[1]}/ws?clientId={client_id}", timeout=30)
    lap("socket connect")
    try:
        queued = requests.post(f"{url}/prompt", json={"prompt": graph, "client_id": client_id},
                               timeout=30).json()
        prompt_id = queued["prompt_id"]
        lap("queue")
        while True:
            message = ws.recv()
            if isinstance(message, str):
                data = json.loads(message)
                if data["type"] == "executing" and data["data"]["node"] is None \
                        and data["data"]["prompt_id"] == prompt_id:
                    break
        lap("wait for the end")
    finally:
        ws.close()

    history = requests.get(f"{url}/history/{prompt_id}", timeout=30).json()[prompt_id]
    lap("history")
    saved = []
    for node_output in history["outputs"].values():
        for item in node_output.get("images", []):
            query = urllib.parse.urlencode(
                {"filename": item["filename"], "subfolder": item["subfolder"],
                 "type": item["type"]})
            data = requests.get(f"{url}/view?{query}", timeout=30).content
            path = out_dir / Path(item["filename"]).name
            path.write_bytes(data)
            saved.append(path)
    lap("download")
    return saved
