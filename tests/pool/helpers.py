"""What the pool's tests share: several ComfyUI test servers, distinct input images (the
server would serve a repeated graph from its cache), jobs run through a JobRunner."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from comfyrelay import Job, JobRunner
from comfyrelay.jobs import events as ev
from comfyrelay.jobs.job import InputFile, MediaInput
from PIL import Image

from tests import workflows
from tests.servers.comfyui import ComfyTestServer

JOB_SECONDS = 0.5  # each job's work on a test server
NODES = 3  # the invert workflow executes LoadImage, ImageInvert, SaveImage


@contextmanager
def servers(root: Path, count: int, job_seconds: float = JOB_SECONDS
            ) -> Iterator[list[ComfyTestServer]]:
    """`count` ComfyUI test servers on loopback, each job taking about `job_seconds`."""
    with ExitStack() as stack:
        found = [stack.enter_context(ComfyTestServer(root / f"s{n}",
                                                     node_delay=job_seconds / NODES,
                                                     previews=False, float32_pixels=False))
                 for n in range(count)]
        yield found


def frame(n: int, size: int = 16) -> bytes:
    """A small PNG that differs from every other frame (its first pixel holds `n`)."""
    image = Image.new("RGB", (size, size), (n % 256, (n // 256) % 256, 7))
    image.putpixel((1, 1), (255 - n % 256, 3, n // 65536 % 256))
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def frame_of(result: Path) -> int:
    """Which frame an inverted result came from (its first pixel, inverted back)."""
    with Image.open(result) as image:
        r, g, _ = image.convert("RGB").getpixel((0, 0))  # type: ignore[misc]
    return (255 - r) + 256 * (255 - g)


def jobs(root: Path, count: int, start: int = 0) -> list[Job]:
    out = root / "out"
    return [Job(workflow=workflows.invert(), out_dir=out,
                media=(MediaInput(None, InputFile(f"frame_{n:04d}.png", frame(n))),))
            for n in range(start, start + count)]


def pool_file(path: Path, workers: Sequence[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"workers": list(workers)}))
    return path


def run_all(runner: JobRunner, batch: Sequence[Job], timeout: float = 120.0
            ) -> tuple[list[str], list[ev.Event]]:
    """Submit every job and wait for their ends; the job ids in order, and every event."""
    ids = [runner.submit(job) for job in batch]
    deadline = time.monotonic() + timeout
    events: list[ev.Event] = []
    while runner.busy and time.monotonic() < deadline:
        events += runner.wait_idle(timeout=0.5)
    events += runner.poll()
    return ids, events


def finals(events: Sequence[ev.Event]) -> list[ev.Event]:
    return [e for e in events if isinstance(e, ev.FINAL_EVENTS)]
