"""The real comfy-api-proxy (PyPI, pinned in pyproject's test extra) as a child process.

    with proxy(comfy.url, tmp_path) as url:  # http://127.0.0.1:<free port>
        ...
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def proxy(comfy_url: str, log_dir: Path, token: str | None = None) -> Iterator[str]:
    """comfy-api-proxy on a free loopback port in front of comfy_url, once /api/v2/health
    answers; stopped (then killed) on exit. Its log goes to log_dir."""
    exe = Path(sys.executable).parent / "comfy-api-proxy"
    port = free_port()
    command = [str(exe), "run", "--comfyui", comfy_url, "--host", "127.0.0.1",
               "--port", str(port)]
    if token:
        command += ["--token", token]
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"comfy-api-proxy-{port}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"comfy-api-proxy exited: {log_path.read_text()[-2000:]}")
            try:
                if requests.get(url + "/api/v2/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("comfy-api-proxy did not answer /api/v2/health in 30 s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
