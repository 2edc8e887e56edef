"""A 12-frame batch through the invert workflow over two ComfyUI servers of different
versions: every output the inverse of its frame, in frame order, both servers used.

Against real servers when COMFYUI_POOL_URLS names two (comma-separated, e.g. 0.3.64 and
0.3.44 built from source); otherwise against two test servers in the `current` (0.3.64) and
`old` (0.3.44) profiles, so the test always runs:

    COMFYUI_POOL_URLS=http://127.0.0.1:8199,http://127.0.0.1:8198 \\
        .venv/bin/python -m pytest -s tests/system/test_pool_servers.py
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from comfyrelay import BackendSettings, JobRunner, load_credentials, make_backend
from comfyrelay.jobs import events as ev
from comfyrelay.pool.pool_backend import PoolBackend

from tests.imaging import is_inverse
from tests.pool import helpers as h
from tests.servers.comfyui import ComfyTestServer

REAL_URLS = [u.strip().rstrip("/") for u in os.environ.get("COMFYUI_POOL_URLS", "").split(",")
             if u.strip()]


@pytest.fixture
def urls(tmp_path: Path) -> Iterator[list[str]]:
    if REAL_URLS:
        assert len(REAL_URLS) == 2, "COMFYUI_POOL_URLS names two servers"
        yield REAL_URLS
        return
    with ExitStack() as stack:
        yield [stack.enter_context(ComfyTestServer(tmp_path / profile, profile=profile,
                                                   node_delay=0.05)).url
               for profile in ("current", "old")]


def test_twelve_frames_over_two_versions_come_back_inverted_in_order(
    urls: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMFYRELAY_CONFIG_DIR", str(tmp_path / "config"))  # measured times
    backend = make_backend(BackendSettings.of("pool", servers=urls), load_credentials())
    assert isinstance(backend, PoolBackend)
    runner = JobRunner(backend)
    batch = h.jobs(tmp_path, 12)
    try:
        ids, events = h.run_all(runner, batch, timeout=300)
    finally:
        runner.close()
    ends = h.finals(events)
    assert [e.job_id for e in ends] == ids
    assert all(isinstance(e, ev.JobFinished) for e in ends), ends
    for job, end in zip(batch, ends, strict=True):
        assert isinstance(end, ev.JobFinished) and len(end.outputs) == 1
        assert is_inverse(job.media[0].file.read(), end.outputs[0])
    used = {w.name: w.done for w in backend.view().workers}
    print(f"\n{'real' if REAL_URLS else 'test'} servers: {used}; versions "
          f"{backend.server_version or '?'}")
    assert all(n > 0 for n in used.values()) and sum(used.values()) == 12
