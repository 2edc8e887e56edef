"""Bad input and misbehaving servers: a clear error or the result, never a hang, nothing
written outside the output folder, no prompt sent twice. The hosted back ends' side is in
tests/system/hosted/test_hosted_faults.py; run the whole suite with `pytest -m fault`."""

from __future__ import annotations

import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from comfyrelay import ComfyUIBackend, InputFile, Job, JobRunner
from comfyrelay.comfyui.client import ComfyClient
from comfyrelay.errors import AuthenticationFailed, ConnectionFailed, ServerError, UploadTooLarge
from comfyrelay.jobs import events as ev
from comfyrelay.net import http
from comfyrelay.net.files import safe_name, safe_subfolder

from tests import workflows
from tests.hosted import wait_for
from tests.imaging import gradient_png, is_inverse
from tests.servers.comfyui import ComfyTestServer

pytestmark = pytest.mark.fault

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


def events_until(runner: JobRunner, kind: type[ev.Event], timeout: float = 10) -> list[ev.Event]:
    """The runner's events until one of `kind` (the job got that far), or the timeout."""
    events: list[ev.Event] = []
    deadline = time.monotonic() + timeout
    while not any(isinstance(e, kind) for e in events) and time.monotonic() < deadline:
        events += runner.wait_idle(0.05)
    return events


def cancel_and_close(
    runner: JobRunner, job_id: str, timeout: float
) -> tuple[list[ev.Event], bool, float]:
    """Cancel the job, wait for the runner; (events, still busy, seconds it took)."""
    t0 = time.monotonic()
    runner.cancel(job_id)
    events = runner.wait_idle(timeout)
    busy = runner.busy
    runner.close()
    return events, busy, time.monotonic() - t0


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


def test_input_read_when_sent_missing_file_is_a_clear_error_and_temporary_one_is_removed(
    comfy_server: ComfyTestServer, tmp_path: Path
) -> None:
    """Hosts hand over their saved render to be read on the runner's thread."""
    gone = InputFile.from_path(tmp_path / "deleted.png", read_now=False)
    final, _ = run_one(ComfyUIBackend(comfy_server.url),
                       Job(workflows.invert(), tmp_path / "o", image=gone))
    assert isinstance(final, ev.JobFailed)
    assert "Cannot read the input image" in final.message and "deleted.png" in final.message
    assert comfy_server.prompts == []
    saved = tmp_path / "render-1.png"
    saved.write_bytes(PNG)
    temporary = InputFile.from_path(saved, read_now=False, temporary=True)
    final, _ = run_one(ComfyUIBackend(comfy_server.url),
                       Job(workflows.invert(), tmp_path / "o", image=temporary))
    assert isinstance(final, ev.JobFinished) and is_inverse(PNG, final.outputs[0])
    assert not saved.exists()


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


HOSTILE_NAMES = [
    "../../evil.png",
    "/tmp/abs.png",
    "a\x00b.png",
    "y" * 300 + ".png",
    "..\\..\\win.png",
    "C:\\Windows\\evil.png",
    "CON",
    "CON.png",
    "nul",
    "NUL.tar.png",
    "aux.png",
    "COM1",
    "com1.png",
    "LPT1.png",
    "trailing.png. . ",
    "spaces   ",
    "a:b.png",
    "stream.png:evil",
]
HOSTILE_SUBFOLDERS = ["../../up", "/etc", "C:\\Windows", "..\\..\\x", "CON", "a/../../b",
                      "nul.d/AUX", "dots. . /x:y"]


def windows_safe(part: str) -> bool:
    """A path component Windows can create: no device name, no trailing dot or space,
    none of <>:"/\\|?* or control characters."""
    stem = part.split(".")[0].strip(" ").upper()
    reserved = stem in {"CON", "PRN", "AUX", "NUL"} or (
        len(stem) == 4 and stem[:3] in ("COM", "LPT") and stem[3] in "123456789"
    )
    bad = any(c in part for c in '<>:"/\\|?*') or any(ord(c) < 32 for c in part)
    return bool(part) and not reserved and not bad and not part.endswith((".", " "))


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_become_portable_safe_names(name: str) -> None:
    assert windows_safe(safe_name(name)) and len(safe_name(name)) <= 120


@pytest.mark.parametrize("subfolder", HOSTILE_SUBFOLDERS)
def test_hostile_subfolders_become_portable_safe_parts(subfolder: str) -> None:
    parts = safe_subfolder(subfolder)
    assert all(windows_safe(p) and p not in (".", "..") for p in parts)


def assert_only_in(out: Path, tmp_path: Path, servers: tuple[str, ...] = ("server",)) -> list[Path]:
    """Something was written, and every file written (apart from the test servers' own
    folders under tmp_path) is inside `out`, under portable names."""
    written = [
        p for p in tmp_path.rglob("*")
        if p.is_file() and not any(p.is_relative_to(tmp_path / s) for s in servers)
    ]
    assert written and all(p.resolve().is_relative_to(out.resolve()) for p in written), written
    assert all(windows_safe(part) for p in written for part in p.relative_to(out).parts)
    return written


@pytest.mark.parametrize("hostile", HOSTILE_NAMES)
def test_hostile_output_names_stay_in_the_output_folder(
    comfy_server: ComfyTestServer, tmp_path: Path, hostile: str
) -> None:
    comfy_server.faults.hostile_filename = hostile
    out = tmp_path / "deep" / "out"
    final, _ = run_one(ComfyUIBackend(comfy_server.url), invert_job(out))
    assert isinstance(final, ev.JobFinished), final
    assert assert_only_in(out, tmp_path)
    assert is_inverse(PNG, final.outputs[0])


@pytest.mark.parametrize("subfolder", HOSTILE_SUBFOLDERS)
def test_hostile_output_subfolders_stay_in_the_output_folder(
    comfy_server: ComfyTestServer, tmp_path: Path, subfolder: str
) -> None:
    comfy_server.faults.hostile_subfolder = subfolder
    comfy_server.faults.hostile_filename = "CON.png"
    out = tmp_path / "deep" / "out"
    final, _ = run_one(ComfyUIBackend(comfy_server.url), invert_job(out))
    assert isinstance(final, ev.JobFinished), final
    assert assert_only_in(out, tmp_path)
    assert is_inverse(PNG, final.outputs[0])


@pytest.mark.parametrize("hostile", ["..", ".", " . ", ""])
def test_unusable_output_name_is_a_clear_error(
    comfy_server: ComfyTestServer, tmp_path: Path, hostile: str
) -> None:
    comfy_server.faults.hostile_filename = hostile
    out = tmp_path / "out"
    final, _ = run_one(ComfyUIBackend(comfy_server.url), invert_job(out))
    assert isinstance(final, ev.JobFailed) and "unusable output file name" in final.message
    assert not out.exists() or not any(out.rglob("*"))
    assert len(comfy_server.prompts) == 1


def test_server_restart_mid_job_is_reported(comfy_server: ComfyTestServer, tmp_path: Path) -> None:
    comfy_server.node_delay = 0.5
    runner = JobRunner(ComfyUIBackend(comfy_server.url, history_interval=0.3))
    runner.submit(Job(workflows.slow(blurs=4, size=64), tmp_path))
    events = events_until(runner, ev.JobProgress, timeout=20)
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


SECRET = "tok-FAULT-SUITE-789"

# Every route the client calls, with what the user must see when it answers 500/502 each
# time: the job fails naming the route, or (an idempotent GET it can do without) succeeds.
JOB_ROUTES = {
    "/upload/image": ("fails", "POST /upload/image", 0),
    "/prompt": ("fails", "POST /prompt", 0),
    "/history": ("fails", "GET /history/", 1),  # after lost_after: "Lost contact ... (why)"
    "/view": ("fails", "GET /view", 1),
    "GET /queue": ("finishes", "", 1),  # only asked while the history is still empty
    "/ws": ("finishes", "", 1),  # no events: the history is polled instead
}


@pytest.mark.parametrize("status", [500, 502])
@pytest.mark.parametrize("route", list(JOB_ROUTES))
def test_server_errors_on_each_route_end_the_job_clearly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, route: str, status: int
) -> None:
    """Also with a front-door token and error pages that echo the request headers: the
    token is in no message, log line or file."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="comfyrelay")
    outcome, names, prompts = JOB_ROUTES[route]
    with ComfyTestServer(tmp_path / "server", token=SECRET) as server:
        server.faults.http_errors[route] = status
        server.faults.echo_headers = True
        backend = ComfyUIBackend(server.url, SECRET, history_interval=0.2, lost_after=1.0)
        t0 = time.monotonic()
        final, events = run_one(backend, invert_job(tmp_path / "out"), timeout=20)
        assert time.monotonic() - t0 < 10
        assert len(server.prompts) == prompts  # never a second prompt
    if outcome == "fails":
        assert isinstance(final, ev.JobFailed), final
        assert f"{status} to {names}" in final.message, final.message
    else:
        assert isinstance(final, ev.JobFinished), final
        assert is_inverse(PNG, final.outputs[0])
    assert SECRET not in caplog.text and all(SECRET not in repr(e) for e in events)
    assert all(SECRET.encode() not in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


@pytest.mark.parametrize("status", [500, 502])
def test_server_error_on_the_check_names_the_route(tmp_path: Path, status: int) -> None:
    with ComfyTestServer(tmp_path / "server", token=SECRET) as server:
        server.faults.http_errors["/system_stats"] = status
        server.faults.echo_headers = True
        with pytest.raises(ServerError) as err:
            ComfyUIBackend(server.url, SECRET).check()
    assert f"{status} to GET /system_stats" in str(err.value) and SECRET not in str(err.value)


@pytest.mark.parametrize("status", [500, 502])
@pytest.mark.parametrize("route", ["POST /queue", "/interrupt"])
def test_server_errors_while_cancelling_still_end_the_job(
    comfy_server: ComfyTestServer, tmp_path: Path, route: str, status: int
) -> None:
    comfy_server.node_delay = 0.3
    comfy_server.faults.http_errors[route] = status
    runner = JobRunner(ComfyUIBackend(comfy_server.url))
    job_id = runner.submit(Job(workflows.slow(blurs=6, size=64), tmp_path))
    events = events_until(runner, ev.JobProgress)
    after, busy, seconds = cancel_and_close(runner, job_id, timeout=15)
    events += after
    assert not busy and seconds < 5
    assert isinstance(next(e for e in events if isinstance(e, ev.FINAL_EVENTS)), ev.JobCancelled)
    assert len(comfy_server.prompts) == 1


@pytest.mark.parametrize("status", [500, 502])
def test_lost_answer_to_the_prompt_is_not_sent_again(
    comfy_server: ComfyTestServer, tmp_path: Path, status: int
) -> None:
    """The server queued the prompt but the proxy lost its answer: the client finds its own
    prompt id on the server and follows it instead of queueing it twice."""
    comfy_server.faults.answer_lost["/prompt"] = status
    final, _ = run_one(ComfyUIBackend(comfy_server.url, history_interval=0.2), invert_job(tmp_path))
    assert isinstance(final, ev.JobFinished), final
    assert len(comfy_server.prompts) == 1


def test_captive_portal_html_is_a_clear_error(tmp_path: Path) -> None:
    with ComfyTestServer(tmp_path / "server", token=SECRET) as server:
        server.faults.portal = True
        with pytest.raises(ServerError, match=r"not JSON.*text/html.*hotel Wi-Fi.*login page"):
            ComfyUIBackend(server.url, SECRET).check()
        final, _ = run_one(ComfyUIBackend(server.url, SECRET), invert_job(tmp_path / "out"))
        assert isinstance(final, ev.JobFailed)
        assert "/upload/image" in final.message and "not JSON" in final.message
        assert server.prompts == [] and SECRET not in final.message


def test_huge_history_answer_is_refused_in_bounded_time(
    comfy_server: ComfyTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http, "MAX_BODY", 2 * 2**20)
    comfy_server.faults.huge_json["/history"] = 5 * 2**20
    backend = ComfyUIBackend(comfy_server.url, history_interval=0.2, lost_after=1.0)
    t0 = time.monotonic()
    final, _ = run_one(backend, invert_job(tmp_path / "out"), timeout=20)
    assert isinstance(final, ev.JobFailed), final
    assert "larger than 2 MB" in final.message and "/history/" in final.message
    assert time.monotonic() - t0 < 10 and len(comfy_server.prompts) == 1


def test_big_object_info_is_read_but_a_never_ending_one_is_cut(
    comfy_server: ComfyTestServer,
) -> None:
    comfy_server.faults.huge_json["/object_info"] = 30 * 2**20  # a big install: accepted
    client = ComfyClient(comfy_server.url)
    assert len(client.object_info()["padding"]) > 29 * 2**20
    comfy_server.faults.huge_json.clear()
    comfy_server.faults.endless_json["/object_info"] = 0.0
    t0 = time.monotonic()
    with pytest.raises(ServerError, match=r"larger than 64 MB \(it did not end\)"):
        client.object_info()
    assert time.monotonic() - t0 < 15
    assert client.check().startswith("Connected")  # the client is still usable
    client.close()


def test_a_trickling_never_ending_answer_times_out(
    comfy_server: ComfyTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http, "BODY_SECONDS", 0.5)
    comfy_server.faults.endless_json["/system_stats"] = 0.05
    t0 = time.monotonic()
    with pytest.raises(ConnectionFailed, match=r"took more than 0\.5 s to send its answer to GET"):
        ComfyUIBackend(comfy_server.url).check()
    assert time.monotonic() - t0 < 3


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
    wait_for(lambda: comfy_server.running is not None)
    closer = threading.Thread(target=runner.close)
    t0 = time.monotonic()
    closer.start()
    closer.join(10)
    assert not closer.is_alive() and time.monotonic() - t0 < 5


# history outputs -> what the error must name
ODD_OUTPUTS = {
    "none": ({}, "no outputs at all"),
    "text only": ({"3": {"text": ["hello"]}}, "node 3: text"),
    "a name, not a list": ({"3": {"images": "inverted.png"}}, "node 3: images"),
    "a list, not an object": ({"3": ["inverted.png"]}, "node 3: list"),
    "not an object": (["inverted.png"], "outputs that are a list"),
}


@pytest.mark.parametrize("case", list(ODD_OUTPUTS))
def test_unexpected_output_shapes_end_in_an_error_naming_them(
    comfy_server: ComfyTestServer, tmp_path: Path, case: str
) -> None:
    outputs, shown = ODD_OUTPUTS[case]
    comfy_server.faults.odd_outputs = outputs
    final, _ = run_one(ComfyUIBackend(comfy_server.url), invert_job(tmp_path / "out"))
    assert isinstance(final, ev.JobFailed), final
    assert final.error_type == "ExecutionFailed", final
    assert "sent back no output files" in final.message and shown in final.message, final.message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_cancel_uses_the_job_route_or_interrupts_only_ours(
    comfy_server: ComfyTestServer, tmp_path: Path
) -> None:
    """Newer servers cancel by job id; others get a dequeue, then an interrupt only once
    /queue shows ours running (0.3.44's interrupt would stop anyone's prompt)."""
    comfy_server.node_delay = 0.5
    runner = JobRunner(ComfyUIBackend(comfy_server.url))
    job_id = runner.submit(Job(workflows.slow(), tmp_path / "out"))
    events_until(runner, ev.JobProgress)
    events, busy, _ = cancel_and_close(runner, job_id, timeout=15)
    final = next(e for e in events if isinstance(e, ev.FINAL_EVENTS))
    assert not busy and isinstance(final, ev.JobCancelled), final
    seen = [s for s in comfy_server.seen if "/queue" in s or "/interrupt" in s or "/cancel" in s]
    if comfy_server.profile == "new":
        assert [s for s in seen if s.startswith("POST")] == [
            s for s in seen if s.startswith("POST /api/jobs/") and s.endswith("/cancel")
        ] and seen
    else:
        cancel = seen[seen.index("POST /queue"):]  # (a periodic check may come before)
        assert cancel[:3] == ["POST /queue", "GET /queue", "POST /interrupt"], seen


def test_an_end_frame_before_the_history_does_not_flood_the_server(
    comfy_server: ComfyTestServer, tmp_path: Path
) -> None:
    comfy_server.faults.early_end = True
    comfy_server.node_delay = 0.2  # about 1.2 s of work after the stray frame
    final, _ = run_one(ComfyUIBackend(comfy_server.url), Job(workflows.slow(), tmp_path))
    assert isinstance(final, ev.JobFinished), final
    history_reads = [s for s in comfy_server.seen if s.startswith("GET /history/")]
    assert 2 <= len(history_reads) <= 10, len(history_reads)  # polled, throttled
