"""Shared fixtures: a ComfyUI to talk to (the test server, or a real one via COMFYUI_URL).

The test server runs once per version profile (tests/servers/comfyui.py: old = 0.3.44,
current = 0.3.64, new = the job routes); a real server only once, as what it is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers.comfyui import PROFILES, ComfyTestServer

REAL_URL = os.environ.get("COMFYUI_URL", "").rstrip("/")


@dataclass
class ComfyTarget:
    """The server contract tests talk to; `server` is None for a real ComfyUI."""

    url: str
    server: ComfyTestServer | None
    profile: str = "real"

    @property
    def real(self) -> bool:
        return self.server is None


@pytest.fixture(params=PROFILES)
def comfy_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ComfyTestServer]:
    with ComfyTestServer(tmp_path / "server", profile=request.param) as server:
        yield server


@pytest.fixture(params=["real"] if REAL_URL else PROFILES)
def comfy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ComfyTarget]:
    """A real ComfyUI when COMFYUI_URL is set, else the test server in each profile."""
    if REAL_URL:
        yield ComfyTarget(REAL_URL, None)
        return
    with ComfyTestServer(tmp_path / "server", profile=request.param) as server:
        yield ComfyTarget(server.url, server, request.param)
