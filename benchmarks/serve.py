"""Test servers in their own process, so their work does not share the client's GIL.

    python -m benchmarks.serve comfyui ROOT [--node-delay S] [--previews]
    python -m benchmarks.serve serverless [--run-time S] [--instances N]

Prints one JSON line ({"url": ..., plus what a client needs}) and serves until stdin closes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVERLESS_TOKEN = "bench-serverless-token"

# A seeded graph with no input image: each Serverless job differs only by its seed override.
SEEDED: dict[str, Any] = {
    "1": {"class_type": "EmptyLatentImage",
          "inputs": {"width": 512, "height": 512, "batch_size": 1}},
    "2": {"class_type": "KSampler", "_meta": {"title": "Sampler"},
          "inputs": {"seed": 1, "steps": 20, "latent_image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "out"}},
}


@contextmanager
def server(kind: str, *args: str) -> Iterator[dict[str, Any]]:
    """Start `kind` in a child process; yield what it printed; stop it on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.serve", kind, *args],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {kind} test server did not start")
        yield json.loads(line)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _serve(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("comfyui", "serverless"))
    parser.add_argument("root", nargs="?", default="")
    parser.add_argument("--node-delay", type=float, default=0.0)
    parser.add_argument("--previews", action="store_true")
    parser.add_argument("--run-time", type=float, default=0.2)
    parser.add_argument("--instances", type=int, default=4)
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        if args.kind == "comfyui":
            from tests.servers.comfyui import ComfyTestServer

            comfy = stack.enter_context(
                ComfyTestServer(Path(args.root), node_delay=args.node_delay,
                                previews=args.previews)
            )
            info: dict[str, Any] = {"url": comfy.url, "output": str(comfy.output_dir)}
        else:
            from tests.servers.runcomfy import RunComfyTestServer

            rc = stack.enter_context(RunComfyTestServer(
                tokens=(SERVERLESS_TOKEN,), run_time=args.run_time, instances=args.instances,
                rate=1000.0, burst=1000,
            ))
            info = {"url": rc.url, "deployment": rc.add_deployment(SEEDED),
                    "token": SERVERLESS_TOKEN}
        print(json.dumps(info), flush=True)
        sys.stdin.read()  # until the parent closes our stdin


if __name__ == "__main__":
    _serve(sys.argv[1:])
