"""Transfer: a 3840×2160 PNG up and down through ComfyRelay and through curl, same server;
and the client's peak memory while it streams a 200 MB output to disk.

Memory is measured in a child process (so nothing else this process holds counts): its
resident size sampled every 2 ms during the download, less the size before it, and
tracemalloc's peak of Python allocations. Holding the whole file would cost at least 200 MB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

from comfyrelay.comfyui.client import ComfyClient
from comfyrelay.comfyui.protocol import OutputFile

from .batch import frames
from .serve import ROOT, server
from .table import Row, row

BIG_MB = 200
MEMORY_LIMIT_MB = 32

MEMORY_CHILD = """
import json, sys, threading, time, tracemalloc
from pathlib import Path
from comfyrelay.comfyui.client import ComfyClient
from comfyrelay.comfyui.protocol import OutputFile

def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

url, name, out = sys.argv[1:4]
client = ComfyClient(url)
client.system_stats()  # connection pool and imports warm before the baseline
before = peak = resident()
done = threading.Event()

def sample():
    global peak
    while not done.is_set():
        peak = max(peak, resident())
        time.sleep(0.002)

sampler = threading.Thread(target=sample)
sampler.start()
tracemalloc.start()
path = client.download(OutputFile(filename=name), Path(out))
traced = tracemalloc.get_traced_memory()[1]
done.set()
sampler.join()
print(json.dumps({"rss_growth": peak - before, "traced_peak": traced,
                  "size": path.stat().st_size}))
"""


def curl(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run(["curl", "-sS", "--fail", "-o", os.devnull, *args], check=True, timeout=120)
    return time.perf_counter() - started


def relay_upload(client: ComfyClient, data: bytes) -> float:
    started = time.perf_counter()
    client.upload(f"up-{time.monotonic_ns()}.png", data)
    return time.perf_counter() - started


def relay_download(client: ComfyClient, name: str, out: Path) -> float:
    started = time.perf_counter()
    path = client.download(OutputFile(filename=name), out)
    elapsed = time.perf_counter() - started
    path.unlink()
    return elapsed


def throughput_rows(repeats: int, workdir: Path, url: str, output: Path) -> list[Row]:
    (png,) = frames(1, 3840, 2160)
    source = workdir / "uhd.png"
    source.write_bytes(png)
    (output / "uhd.png").write_bytes(png)
    view = f"{url}/view?" + urllib.parse.urlencode({"filename": "uhd.png", "type": "output"})
    mb = len(png) / 2**20
    client = ComfyClient(url)
    runs: dict[str, list[float]] = {k: [] for k in ("up", "curl up", "down", "curl down")}
    for _ in range(max(repeats, 3)):
        runs["up"].append(mb / relay_upload(client, png))
        form = f"image=@{source};filename=c-{time.monotonic_ns()}.png"
        runs["curl up"].append(mb / curl("-F", form, f"{url}/upload/image"))
        runs["down"].append(mb / relay_download(client, "uhd.png", workdir / "down"))
        runs["curl down"].append(mb / curl(view))
    client.close()
    what = f"3840×2160 PNG ({mb:.1f} MB)"
    ratio_up = [a / b for a, b in zip(runs["up"], runs["curl up"], strict=True)]
    ratio_down = [a / b for a, b in zip(runs["down"], runs["curl down"], strict=True)]
    return [
        row("transfer", f"{what} upload: ComfyRelay", runs["up"], "MB/s"),
        row("transfer", f"{what} upload: curl", runs["curl up"], "MB/s"),
        row("transfer", "upload: ComfyRelay ÷ curl", ratio_up, "×", "> 0.5", lambda v: v > 0.5),
        row("transfer", f"{what} download: ComfyRelay", runs["down"], "MB/s"),
        row("transfer", f"{what} download: curl", runs["curl down"], "MB/s"),
        row("transfer", "download: ComfyRelay ÷ curl", ratio_down, "×",
            "> 0.5", lambda v: v > 0.5),
    ]


def memory_rows(repeats: int, workdir: Path, url: str, output: Path) -> list[Row]:
    with (output / "big.bin").open("wb") as f:
        for _ in range(BIG_MB):
            f.write(os.urandom(2**20))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rss: list[float] = []
    traced: list[float] = []
    for n in range(max(1, min(repeats, 3))):
        out = workdir / f"big-{n}"
        proc = subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD, url, "big.bin", str(out)],
            capture_output=True, text=True, env=env, timeout=300, check=True,
        )
        report = json.loads(proc.stdout)
        if report["size"] != BIG_MB * 2**20:
            raise RuntimeError(f"the 200 MB download came back with {report['size']} bytes")
        rss.append(report["rss_growth"] / 2**20)
        traced.append(report["traced_peak"] / 2**20)
        for path in out.rglob("*"):
            path.unlink()
    limit = f"< {MEMORY_LIMIT_MB} MB"
    return [
        row("transfer", f"streaming {BIG_MB} MB: peak resident growth", rss, "MB",
            limit, lambda v: v < MEMORY_LIMIT_MB),
        row("transfer", f"streaming {BIG_MB} MB: peak Python allocations", traced, "MB",
            limit, lambda v: v < MEMORY_LIMIT_MB),
    ]


def run(repeats: int, workdir: Path) -> list[Row]:
    with server("comfyui", str(workdir / "server")) as info:
        output = Path(info["output"])
        return (throughput_rows(repeats, workdir, info["url"], output)
                + memory_rows(repeats, workdir, info["url"], output))
