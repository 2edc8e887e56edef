"""Fixtures for the hosted back ends: test servers, a private config folder, fast limits,
and a check that no secret reaches any log line. The conftest.py of each test folder that
uses them imports the fixtures (tests/test_config.py imports `isolated` itself)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from comfyrelay import HostEvent, HostSession
from comfyrelay.comfyicu.icu_backend import ComfyICU
from comfyrelay.jobs import events as ev
from comfyrelay.net import ratelimit
from comfyrelay.net.ratelimit import RetryPolicy
from comfyrelay.runcomfy.api import RunComfyServer
from comfyrelay.runcomfy.machine import Timing
from comfyrelay.runcomfy.serverless import RunComfyServerless

from tests.servers.comfyicu import ComfyICUTestServer
from tests.servers.comfyui import ComfyTestServer
from tests.servers.runcomfy import RunComfyTestServer

TOKENS = ("rc-token-one-SECRET", "rc-token-two-SECRET")
ICU_KEY = "icu-key-SECRET"
SECRETS = (*TOKENS, ICU_KEY)
FAST = RetryPolicy(first=0.02, factor=2.0, cap=0.2, total=30.0)
# Machine polls for tests: the test server's machines start at once, so a machine not
# found or not Ready within seconds is a failure, said within the tests' own waits.
FAST_MACHINE = Timing(poll_first=0.05, poll_max=0.1, ready_timeout=10.0, not_found_grace=5.0)


@pytest.fixture(autouse=True)
def isolated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """Own config folder, fast shared buckets, and no secret in any log record."""
    monkeypatch.setenv("COMFYRELAY_CONFIG_DIR", str(tmp_path / "config"))
    for name in ("RUNCOMFY_USER_ID", "RUNCOMFY_API_TOKEN", "RUNCOMFY_API_TOKEN2",
                 "COMFYICU_API_KEY", "COMFYUI_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(ratelimit.DEFAULTS, "runcomfy", (200.0, 50))
    monkeypatch.setitem(ratelimit.DEFAULTS, "comfyicu", (200.0, 50))
    monkeypatch.setattr(ratelimit, "_buckets", {})
    monkeypatch.setattr("comfyrelay.runcomfy.api._working_token", {})
    caplog.set_level(logging.DEBUG)
    yield
    assert_no_secret_logged(caplog, SECRETS)


def assert_no_secret_logged(caplog: pytest.LogCaptureFixture, secrets: tuple[str, ...]) -> None:
    """No secret in any log record (message or traceback), at any level."""
    for record in caplog.records:
        line = record.getMessage() + (record.exc_text or "")
        for secret in secrets:
            assert secret not in line, f"a secret leaked into the log: {record.name}"


@pytest.fixture
def comfy(tmp_path: Path) -> Iterator[ComfyTestServer]:
    with ComfyTestServer(tmp_path / "machine") as server:
        yield server


@pytest.fixture
def rc(comfy: ComfyTestServer) -> Iterator[RunComfyTestServer]:
    with RunComfyTestServer(comfy.url, tokens=TOKENS) as server:
        yield server


@pytest.fixture
def icu() -> Iterator[ComfyICUTestServer]:
    with ComfyICUTestServer(api_key=ICU_KEY) as server:
        yield server


def machine_api(rc: RunComfyTestServer, tokens: tuple[str, ...] = TOKENS) -> RunComfyServer:
    return RunComfyServer(rc.user_id, tokens, api_url=rc.url, policy=FAST)


def serverless_api(rc: RunComfyTestServer) -> RunComfyServerless:
    return RunComfyServerless(TOKENS, api_url=rc.url, policy=FAST)


def icu_api(icu: ComfyICUTestServer) -> ComfyICU:
    return ComfyICU(ICU_KEY, api_url=icu.url + "/api/v1", policy=FAST)


def no_secret_in_requests(server: RunComfyTestServer | ComfyICUTestServer) -> None:
    """Tokens travel only in the Authorization header: never in a path or query."""
    for r in [*server.requests, *server.file_requests]:
        for secret in SECRETS:
            assert secret not in r.path and secret not in r.query


def finals(events: list[ev.Event]) -> list[ev.Event]:
    """The events that end a job (finished, failed, cancelled), in order."""
    return [e for e in events if isinstance(e, ev.FINAL_EVENTS)]


def wait_for(done: Callable[[], object], timeout: float = 10.0,
             message: str = "not reached in time") -> None:
    """Poll `done` until it is true; fail the test if `timeout` seconds pass first."""
    end = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < end, message
        time.sleep(0.01)


def pump_until(session: HostSession, done: Callable[[], bool], seen: list[HostEvent] | None = None,
               timeout: float = 20.0) -> None:
    """Pump `session` as a host's timer does until `done`; its events go into `seen`."""
    end = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < end, f"not reached in time; view: {session.view}"
        session.pump(seen.append if seen is not None else lambda _: None)
        time.sleep(0.02)
