"""Shared fixtures: a ComfyUI to talk to (the test server, or a real one via COMFYUI_URL)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers.comfyui import ComfyTestServer


@dataclass
class ComfyTarget:
    """The server contract tests talk to; `server` is None for a real ComfyUI."""

    url: str
    server: ComfyTestServer | None

    @property
    def real(self) -> bool:
        return self.server is None


@pytest.fixture
def comfy_server(tmp_path: Path) -> Iterator[ComfyTestServer]:
    with ComfyTestServer(tmp_path / "server") as server:
        yield server


@pytest.fixture
def comfy(tmp_path: Path) -> Iterator[ComfyTarget]:
    """A real ComfyUI when COMFYUI_URL is set, else the test server."""
    url = os.environ.get("COMFYUI_URL")
    if url:
        yield ComfyTarget(url.rstrip("/"), None)
        return
    with ComfyTestServer(tmp_path / "server") as server:
        yield ComfyTarget(server.url, server)
