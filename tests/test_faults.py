"""Bad input and misbehaving servers: a clear error or the result, never a hang, nothing
written outside the output folder, no prompt sent twice."""

from __future__ import annotations

import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from comfyrelay import ComfyUIBackend, InputFile, Job, JobRunner
from comfyrelay import events as ev
from comfyrelay.client import ComfyClient
from comfyrelay.errors import AuthenticationFailed, ConnectionFailed, ServerError, UploadTooLarge

from tests import workflows
from tests.imaging import gradient_png, is_inverse
from tests.servers.comfyui import ComfyTestServer

PNG = gradient_png(64, 48)


def run_one(backend: ComfyUIBackend, job: Job, timeout: float = 30) -> tuple[ev.Event, list]:
    runner = JobRunner(backend)
    runner.submit(job)
    events = runner.wait_idle(timeout=timeout)
    busy = runner.busy
    runner.close()
    assert not busy, "the job did not end in time"
    final = [e for e in events if isinstance(e, ev.FINAL_EVENTS)]
    return final[0], events


def invert_job(out: Path) -> Job:
    return Job(workflows.invert(), out, image=InputFile("render.png", PNG))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_server_names_the_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    final, _ = run_one(ComfyUIBackend(url), invert_job(tmp_path))
    assert isinstance(final, ev.JobFailed)
    assert url in final.message and "running" in final.message
    with pytest.raises(ConnectionFailed):
        ComfyUIBackend(url).check()


def test_token_is_required_and_sent_on_http_and_websocket(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "tok-SECRET-123"
    with ComfyTestServer(tmp_path / "s", token=secret) as server:
        with pytest.raises(AuthenticationFailed) as err:
            ComfyUIBackend(server.url, token="wrong").check()
        assert "token" in str(err.value) and "wrong" not in str(err.value)
        final, events = run_one(
            ComfyUIBackend(server.url, token=secret), invert_job(tmp_path / "o")
        )
        assert isinstance(final, ev.JobFinished)
        assert any(isinstance(e, ev.JobProgress) for e in events)  # the socket was let in
    assert secret not in caplog.text
    assert all(secret not in repr(e) for e in events)


class EchoingProxy(BaseHTTPRequestHandler):
    """A misconfigured proxy that answers 502 and echoes the request headers back."""

    def do_GET(self) -> None:
        body = f"Bad gateway. Request was: {dict(self.headers)}".encode()
        self.send_response(502)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_server_echoing_the_token_does_not_put_it_in_the_error() -> None:
    secret = "tok-ECHOED-456"
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), EchoingProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ServerError) as err:
            ComfyUIBackend(f"http://127.0.0.1:{proxy.server_port}", token=secret).check()
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert "502" in str(err.value) and "Bad gateway" in str(err.value)
    assert secret not in str(err.value)


def test_oversized_upload_says_size_and_limit(tmp_path: Path) -> None:
    with ComfyTestServer(tmp_path / "s", max_upload_size=4096) as server:
        with pytest.raises(UploadTooLarge) as err:
            ComfyClient(server.url).upload("big.png", b"x" * 20000)
        assert "big.png" in str(err.value) and "--max-upload-size" in str(err.value)
        final, _ = run_one(
            ComfyUIBackend(server.url),
            Job(workflows.invert(), tmp_path / "o", image=InputFile("big.png", b"x" * 20000)),
        )
        assert isinstance(final, ev.JobFailed) and "too large" in final.message
        assert server.prompts == []  # nothing was queued


def test_dropped_websocket_recovers_result_from_history(
    comfy_server: ComfyTestServer, tmp_path: Path
) -> None:
    comfy_server.faults.drop_ws_after_frames = 3
    final, _ = run_one(ComfyUIBackend(comfy_server.url), invert_job(tmp_path))
    assert isinstance(final, ev.JobFinished)
    assert is_inverse(PNG, final.outputs[0])
    assert len(comfy_server.prompts) == 1  # never submitted twice


def test_silent_websocket_falls_back_to_history(
    comfy_server: ComfyTestServer, tmp_path: Path
) -> None:
    comfy_server.faults.silent_ws = True
    backend = ComfyUIBackend(comfy_server.url, history_interval=0.3)
    final, _ = run_one(backend, invert_job(tmp_path))
    assert isinstance(final, ev.JobFinished) and is_inverse(PNG, final.outputs[0])


@pytest.mark.parametrize(
    "hostile",
    [
        "../../evil.png",
        "/tmp/abs.png",
        "a\x00b.png",
        "CON.png",
        "y" * 300 + ".png",
        "..\\..\\win.png",
    ],
)
def test_hostile_output_names_stay_in_the_output_folder(
    comfy_server: ComfyTestServer, tmp_path: Path, hostile: str
) -> None:
    comfy_server.faults.hostile_filename = hostile
    out = tmp_path / "deep" / "out"
    final, _ = run_one(ComfyUIBackend(comfy_server.url), invert_job(out))
    assert isinstance(final, ev.JobFinished), final
    written = [
        p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(tmp_path / "server")
    ]
    assert written and all(p.resolve().is_relative_to(out.resolve()) for p in written)
    assert is_inverse(PNG, final.outputs[0])


def test_server_restart_mid_job_is_reported(comfy_server: ComfyTestServer, tmp_path: Path) -> None:
    comfy_server.node_delay = 0.5
    runner = JobRunner(ComfyUIBackend(comfy_server.url, history_interval=0.3))
    runner.submit(Job(workflows.slow(blurs=4, size=64), tmp_path))
    events: list[ev.Event] = []
    deadline = time.monotonic() + 20
    while not any(isinstance(e, ev.JobProgress) for e in events) and time.monotonic() < deadline:
        events += runner.poll()
        time.sleep(0.02)
    comfy_server.restart()
    events += runner.wait_idle(timeout=30)
    runner.close()
    final = [e for e in events if isinstance(e, ev.FINAL_EVENTS)]
    assert isinstance(final[0], ev.JobFailed)
    assert "restarted" in final[0].message and final[0].error_type == "ServerRestarted"


def test_truncated_download_fails_clearly_and_leaves_nothing(
    comfy_server: ComfyTestServer, tmp_path: Path
) -> None:
    comfy_server.faults.truncate_downloads = True
    out = tmp_path / "out"
    final, _ = run_one(ComfyUIBackend(comfy_server.url), invert_job(out))
    assert isinstance(final, ev.JobFailed) and "truncated" in final.message
    assert not out.exists() or not any(out.rglob("*.*"))


@pytest.mark.parametrize("route", ["/prompt", "/upload/image", "/view", "/history"])
def test_server_errors_end_the_job_with_the_route(
    comfy_server: ComfyTestServer, tmp_path: Path, route: str
) -> None:
    comfy_server.faults.http_errors[route] = 500
    backend = ComfyUIBackend(comfy_server.url, history_interval=0.2, lost_after=1.0)
    final, _ = run_one(backend, invert_job(tmp_path))
    assert isinstance(final, ev.JobFailed)
    assert "500" in final.message or "Lost contact" in final.message
    assert len(comfy_server.prompts) <= 1


def test_unknown_messages_and_bad_binary_frames_are_ignored(
    comfy_server: ComfyTestServer, tmp_path: Path
) -> None:
    comfy_server.faults.unknown_ws_messages = True
    final, _ = run_one(ComfyUIBackend(comfy_server.url), invert_job(tmp_path))
    assert isinstance(final, ev.JobFinished)


def test_previews_reach_the_host(comfy_server: ComfyTestServer, tmp_path: Path) -> None:
    _, events = run_one(ComfyUIBackend(comfy_server.url), invert_job(tmp_path))
    previews = [e for e in events if isinstance(e, ev.JobPreview)]
    assert previews and previews[0].data[:4] in (
        b"\x89PNG",
        b"\xff\xd8\xff\xe0",
        b"\xff\xd8\xff\xdb",
    )


def test_close_during_a_job_returns_promptly(comfy_server: ComfyTestServer, tmp_path: Path) -> None:
    comfy_server.node_delay = 1.0
    runner = JobRunner(ComfyUIBackend(comfy_server.url))
    runner.submit(Job(workflows.slow(blurs=5, size=64), tmp_path))
    time.sleep(0.5)
    closer = threading.Thread(target=runner.close)
    t0 = time.monotonic()
    closer.start()
    closer.join(10)
    assert not closer.is_alive() and time.monotonic() - t0 < 5
