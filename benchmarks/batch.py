"""Pipelined batch: 50 frames of 1920×1080 through one ComfyUI, and 50 Serverless jobs.

ComfyUI: the host's runner (two in flight: the next upload overlaps the current run) against
the ideal bound max(sum of server time, sum of transfer time) and against one at a time.
Server time is what the server's history says each prompt took (execution_start to
execution_success); transfer time is one upload plus one download of a frame through the
same client, measured on the idle server. Serverless: 4 in flight against 4 instances with a
fixed run time, against the ideal jobs × run time ÷ 4 and against one at a time.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import requests
from comfyrelay import Bindings, ComfyUIBackend, InputFile, Job, JobRunner, Workflow
from comfyrelay.comfyui.client import ComfyClient
from comfyrelay.comfyui.protocol import OutputFile
from comfyrelay.jobs import events as ev
from comfyrelay.net import ratelimit
from comfyrelay.runcomfy.serverless import RunComfyServerless, RunComfyServerlessBackend
from PIL import Image

from tests.paths import WORKFLOWS

from .serve import SEEDED, server
from .table import Row, row

FRAMES = 50
NODE_DELAY = 0.05  # seconds per node: 3 nodes, plus the real invert of a 1080p frame
RUN_TIME = 0.2  # seconds per Serverless job
INSTANCES = 4


def frames(count: int, width: int = 1920, height: int = 1080) -> list[bytes]:
    """Distinct render-like frames (gradient plus grain), so no upload or run is cached."""
    rng = np.random.default_rng(0)
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    base = np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=-1)
    out = []
    for n in range(count):
        grain = rng.normal(0, 3, base.shape).astype(np.float32)
        pixels = np.clip(base + grain + n, 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(buf, "PNG", compress_level=1)
        out.append(buf.getvalue())
    return out


def run_all(runner: JobRunner, jobs: list[Job], timeout: float = 600) -> float:
    started = time.perf_counter()
    for job in jobs:
        runner.submit(job)
    events = runner.wait_idle(timeout=timeout, interval=0.005)
    elapsed = time.perf_counter() - started
    finished = [e for e in events if isinstance(e, ev.JobFinished)]
    if len(finished) != len(jobs):
        failed = [e for e in events if isinstance(e, (ev.JobFailed, ev.JobCancelled))]
        raise RuntimeError(f"{len(finished)} of {len(jobs)} jobs finished: {failed[:3]}")
    return elapsed


def server_seconds(url: str, since: set[str]) -> float:
    """Sum of execution_start → execution_success over prompts not in `since`."""
    history = requests.get(f"{url}/history", timeout=30).json()
    total = 0.0
    for prompt_id, entry in history.items():
        if prompt_id in since:
            continue
        stamps = {name: data["timestamp"] for name, data in entry["status"]["messages"]}
        total += (stamps["execution_success"] - stamps["execution_start"]) / 1000
    return total


def transfer_seconds(url: str, frame: bytes, output: OutputFile, workdir: Path) -> float:
    client = ComfyClient(url)
    started = time.perf_counter()
    client.upload(f"transfer-{time.monotonic_ns()}.png", frame)
    client.download(output, workdir)
    elapsed = time.perf_counter() - started
    client.close()
    return elapsed


def comfyui_batch(workdir: Path, pngs: list[bytes], max_in_flight: int,
                  url: str) -> tuple[float, float]:
    """(wall time, server time) of one batch through a fresh runner."""
    seen = set(requests.get(f"{url}/history", timeout=30).json())
    workflow = Workflow.load(WORKFLOWS / "invert_api.json")
    stamp = time.monotonic_ns()
    jobs = [Job(workflow, workdir / f"out-{stamp}-{n}",
                image=InputFile(f"frame-{stamp}-{n}.png", data)) for n, data in enumerate(pngs)]
    runner = JobRunner(ComfyUIBackend(url), max_in_flight=max_in_flight)
    try:
        wall = run_all(runner, jobs)
    finally:
        runner.close()
    return wall, server_seconds(url, seen)


def comfyui_rows(repeats: int, workdir: Path) -> list[Row]:
    pngs = frames(FRAMES)
    piped: list[float] = []
    ratio_ideal: list[float] = []
    ratio_seq: list[float] = []
    ideal_runs: list[float] = []
    with server("comfyui", str(workdir / "server"), "--node-delay", str(NODE_DELAY)) as info:
        url = info["url"]
        comfyui_batch(workdir, pngs[:2], 2, url)  # warm-up
        some_output = OutputFile(filename=next(Path(info["output"]).glob("*.png")).name)
        for _ in range(repeats):
            wall, server_time = comfyui_batch(workdir, pngs, 2, url)
            seq, _ = comfyui_batch(workdir, pngs, 1, url)
            transfer = FRAMES * transfer_seconds(url, pngs[0], some_output, workdir)
            ideal = max(server_time, transfer)
            piped.append(wall)
            ideal_runs.append(ideal)
            ratio_ideal.append(wall / ideal)
            ratio_seq.append(wall / seq)
    what = f"{FRAMES}×1920×1080"
    return [
        row("batch", f"{what} pipelined (2 in flight): total", piped, "s"),
        row("batch", f"{what}: ideal max(server, transfer)", ideal_runs, "s"),
        row("batch", f"{what}: pipelined ÷ ideal", ratio_ideal, "×",
            "< 1.25", lambda v: v < 1.25),
        row("batch", f"{what}: pipelined ÷ sequential", ratio_seq, "×", "< 1", lambda v: v < 1),
    ]


def serverless_batch(info: dict[str, str], workdir: Path, in_flight: int) -> float:
    api = RunComfyServerless((info["token"],), api_url=info["url"])
    backend = RunComfyServerlessBackend(api, info["deployment"], poll_interval=0.03)
    workflow = Workflow(SEEDED, "seeded")
    stamp = time.monotonic_ns()
    jobs = [Job(workflow, workdir / f"sl-{stamp}-{n}", bindings=Bindings(seed=n))
            for n in range(FRAMES)]
    runner = JobRunner(backend, max_in_flight=in_flight)
    try:
        return run_all(runner, jobs)
    finally:
        runner.close()


def serverless_rows(repeats: int, workdir: Path) -> list[Row]:
    # The test server answers at once; RunComfy's own request rate is not what is measured.
    ratelimit.configure("runcomfy", 1000.0, 1000)
    four: list[float] = []
    ratio_ideal: list[float] = []
    ratio_seq: list[float] = []
    ideal = FRAMES * RUN_TIME / INSTANCES
    args = ("--run-time", str(RUN_TIME), "--instances", str(INSTANCES))
    with server("serverless", *args) as info:
        for _ in range(repeats):
            wall = serverless_batch(info, workdir, INSTANCES)
            seq = serverless_batch(info, workdir, 1)
            four.append(wall)
            ratio_ideal.append(wall / ideal)
            ratio_seq.append(wall / seq)
    what = f"Serverless {FRAMES} jobs, {RUN_TIME} s each, 4 in flight"
    return [
        row("batch", f"{what}: total", four, "s"),
        row("batch", f"{what}: ÷ ideal {ideal:.1f} s", ratio_ideal, "×",
            "< 1.5", lambda v: v < 1.5),
        row("batch", f"{what}: ÷ one at a time", ratio_seq, "×", "< 0.4", lambda v: v < 0.4),
    ]


def run(repeats: int, workdir: Path) -> list[Row]:
    # A ComfyUI repeat is two 50-frame batches (about two minutes here): three are enough
    # for a median.
    return comfyui_rows(min(repeats, 3), workdir) + serverless_rows(repeats, workdir)
