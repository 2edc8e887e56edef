"""A pool of three ComfyUI test servers (each in its own process, each job about 0.5 s):
60 jobs over the three against the ideal bound (total work ÷ slots), and the same 60 jobs on
one of them, for the speed-up."""

from __future__ import annotations

import io
import os
import time
from contextlib import ExitStack
from pathlib import Path

from comfyrelay import BackendSettings, InputFile, Job, JobRunner, load_credentials, make_backend
from comfyrelay.jobs import events as ev
from comfyrelay.jobs.job import MediaInput
from PIL import Image

from tests.workflows import invert

from .serve import server
from .table import Row, row

JOBS = 60
JOB_SECONDS = 0.5  # 3 nodes of node_delay each
SERVERS = 3


def frame(n: int) -> bytes:
    """A distinct small PNG per job, so no server answers from its cache."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (n % 256, n // 256, 9)).save(buf, "PNG")
    return buf.getvalue()


def timed(urls: list[str], workdir: Path, tag: str) -> float:
    backend = make_backend(BackendSettings.of("pool", servers=urls) if len(urls) > 1 else
                           BackendSettings.of("comfyui", url=urls[0]), load_credentials())
    runner = JobRunner(backend, max_in_flight=2)  # one server alone: the host's own two
    jobs = [Job(workflow=invert(), out_dir=workdir / tag,
                media=(MediaInput(None, InputFile(f"{tag}_{n}.png", frame(n))),))
            for n in range(JOBS)]
    try:
        began = time.perf_counter()
        for job in jobs:
            runner.submit(job)
        events = runner.wait_idle(timeout=600, interval=0.005)
        took = time.perf_counter() - began
    finally:
        runner.close()
    done = sum(isinstance(e, ev.JobFinished) for e in events)
    if done != JOBS:
        raise RuntimeError(f"{done} of {JOBS} jobs finished")
    return took


def run(repeats: int, workdir: Path) -> list[Row]:
    os.environ["COMFYRELAY_CONFIG_DIR"] = str(workdir / "config")  # the pool's measured times
    pooled, alone = [], []
    with ExitStack() as stack:
        urls = [stack.enter_context(server("comfyui", str(workdir / f"s{n}"), "--node-delay",
                                           str(JOB_SECONDS / 3)))["url"]
                for n in range(SERVERS)]
        for r in range(min(repeats, 3)):  # a repeat is about 40 s
            pooled.append(timed(urls, workdir, f"pool{r}"))
            alone.append(timed(urls[:1], workdir, f"one{r}"))
    ideal = JOBS * JOB_SECONDS / SERVERS
    what = f"pool, {JOBS} jobs of {JOB_SECONDS} s"
    return [
        row("pool", f"{what} on {SERVERS} servers: total", pooled, "s"),
        row("pool", f"{what}: ÷ ideal {ideal:.0f} s (work ÷ slots)",
            [p / ideal for p in pooled], "×", "< 1.15", lambda v: v < 1.15),
        row("pool", f"{what}: one server ÷ {SERVERS} servers (speed-up)",
            [a / p for a, p in zip(alone, pooled, strict=True)], "×", "≈ 3",
            lambda v: v > 2.6),
    ]
