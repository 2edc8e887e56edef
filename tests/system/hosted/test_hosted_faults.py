"""The fault suite for the hosted back ends (RunComfy machine, Serverless, ComfyICU): every
route they call answering 500/502 (with error pages that echo the request headers, so the
token is in them), 429 storms, truncated and hostile outputs, non-JSON answers, a machine
failing mid-job, and no secret in any log line, message or saved file.

Each case ends with the result or a clear error naming what failed, within a bounded time,
and never sends a launch, an inference request or a run twice. The autouse `isolated`
fixture (conftest.py) also fails a test if a token reaches any log record (DEBUG, root).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from comfyrelay import Bindings, Job, JobRunner, Workflow
from comfyrelay.comfyicu.icu_backend import ComfyICU, ComfyICUBackend
from comfyrelay.errors import ServerError
from comfyrelay.jobs import events as ev
from comfyrelay.jobs.backend_api import Backend
from comfyrelay.net.ratelimit import RetryPolicy
from comfyrelay.runcomfy.ledger import Ledger
from comfyrelay.runcomfy.serverless import RunComfyServerlessBackend

from tests import workflows
from tests.hosted import (
    ICU_KEY,
    SECRETS,
    TOKENS,
    finals,
    icu_api,
    machine_api,
    serverless_api,
)
from tests.runcomfy.test_machine import machine_backend
from tests.runcomfy.test_serverless import SEEDED
from tests.servers.comfyicu import ComfyICUTestServer
from tests.servers.comfyui import ComfyTestServer
from tests.servers.runcomfy import RunComfyTestServer
from tests.system.test_faults import (
    HOSTILE_NAMES,
    HOSTILE_SUBFOLDERS,
    assert_only_in,
    cancel_and_close,
    events_until,
)

pytestmark = pytest.mark.fault

IMAGE_URL = "https://assets.example.com/cat.png"
USER = "/prod/api/users/user-0001"


def run(backend: Backend, job: Job, timeout: float = 20) -> tuple[ev.Event, list[ev.Event]]:
    """One job to its end, bounded: the runner and its close both get a deadline."""
    runner = JobRunner(backend)
    runner.submit(job)
    events = runner.wait_idle(timeout)
    busy = runner.busy
    closer = threading.Thread(target=runner.close)
    closer.start()
    closer.join(15)
    assert not busy, "the job did not end in time"
    assert not closer.is_alive(), "closing the runner hung"
    return finals(events)[0], events


def no_secret(tmp_path: Path, *texts: str) -> None:
    """No token in the given texts, nor in any file written (outputs, config, ledger)."""
    for secret in SECRETS:
        assert all(secret not in t for t in texts), "a secret reached a message"
        for path in tmp_path.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), f"a secret is in {path}"


def serverless(rc: RunComfyTestServer, dep: str, **kw: Any) -> RunComfyServerlessBackend:
    return RunComfyServerlessBackend(serverless_api(rc), dep, poll_interval=0.03,
                                     lost_after=1.0, **kw)


def seeded_job(out: Path) -> Job:
    return Job(workflow=Workflow(SEEDED, "seeded"), out_dir=out, bindings=Bindings(seed=3))


def icu_backend(icu: ComfyICUTestServer, **kw: Any) -> ComfyICUBackend:
    return ComfyICUBackend(icu_api(icu), "wf-icu", poll_interval=0.03, lost_after=1.0, **kw)


def icu_job(out: Path) -> Job:
    return Job(workflow=workflows.invert(), out_dir=out,
               bindings=Bindings(values={"1.image": IMAGE_URL}))


def image_job(out: Path) -> Job:
    from comfyrelay import InputFile

    from tests.imaging import gradient_png

    return Job(workflow=workflows.invert(), out_dir=out, image=InputFile("a.png", gradient_png()))


def files_in(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_file()] if out.exists() else []


# ---- 500 and 502 on every route ----

# name -> (method, path regex, what the message must name, or "" when the job finishes)
MACHINE_ROUTES = {
    "list machines": ("GET", r"/servers$", f"to GET {USER}/servers."),
    "launch": ("POST", r"/servers$", f"to POST {USER}/servers."),
    "machine state": ("GET", r"/servers/[^/]+$", f"to GET {USER}/servers/"),
    "extend": ("POST", r"/update-estimated-duration$", ""),  # logged; the job goes on
}


@pytest.mark.parametrize("status", [500, 502])
@pytest.mark.parametrize("route", list(MACHINE_ROUTES))
def test_machine_api_errors_on_each_route(
    rc: RunComfyTestServer, tmp_path: Path, route: str, status: int
) -> None:
    method, path, names = MACHINE_ROUTES[route]
    rc.inject(method, path, status, echo=True)
    backend = machine_backend(rc, idle_stop=None, duration=120, extend_margin=300)
    final, _ = run(backend, image_job(tmp_path / "out"))
    launches = len(rc.called("POST", "/servers"))
    if names:
        assert isinstance(final, ev.JobFailed), final
        assert f"{status} {names}" in final.message, final.message
        assert launches == (0 if route == "list machines" else 1)
    else:
        assert isinstance(final, ev.JobFinished), final
        assert launches == 1
    if route == "launch":
        assert "answer was lost" in final.message and "machines list" in final.message
    no_secret(tmp_path, repr(final))


def test_a_few_bad_gateways_while_the_machine_starts_do_not_fail_the_launch(
    rc: RunComfyTestServer, tmp_path: Path
) -> None:
    rc.inject("GET", r"/servers/[^/]+$", 502, count=3)
    backend = machine_backend(rc, idle_stop=None)
    final, _ = run(backend, image_job(tmp_path / "out"))
    assert isinstance(final, ev.JobFinished), final
    assert len(rc.called("POST", "/servers")) == 1


@pytest.mark.parametrize("status", [500, 502])
def test_machine_stop_error_keeps_the_machine_in_the_ledger(
    rc: RunComfyTestServer, status: int
) -> None:
    backend = machine_backend(rc, idle_stop=None)
    backend.ensure_ready()
    fault = rc.inject("DELETE", r"/servers/[^/]+$", status, echo=True)
    with pytest.raises(ServerError) as caught:
        backend.stop()
    assert f"{status} to DELETE {USER}/servers/{backend.server_id}" in str(caught.value)
    assert Ledger().get(backend.server_id) is not None  # still billed: not forgotten
    assert all(t not in str(caught.value) for t in TOKENS)
    fault.count = 0
    backend.close()  # stop_on_close: now it goes through
    assert rc.machines[backend.server_id].stopped is not None


@pytest.mark.parametrize("status", [500, 502])
def test_workflow_list_error_names_the_route(rc: RunComfyTestServer, status: int) -> None:
    rc.inject("GET", r"/workflows$", status, echo=True)
    with pytest.raises(ServerError) as caught:
        machine_api(rc).workflows()
    assert f"{status} to GET {USER}/workflows" in str(caught.value)
    assert all(t not in str(caught.value) for t in TOKENS)


@pytest.mark.parametrize("status", [500, 502])
def test_machine_comfyui_error_names_the_route_and_sends_one_prompt(
    rc: RunComfyTestServer, comfy: ComfyTestServer, tmp_path: Path, status: int
) -> None:
    comfy.faults.http_errors["/prompt"] = status
    final, _ = run(machine_backend(rc, idle_stop=None), image_job(tmp_path / "out"))
    assert isinstance(final, ev.JobFailed) and f"{status} to POST /prompt" in final.message
    assert comfy.prompts == [] and len(rc.called("POST", "/servers")) == 1


SERVERLESS_ROUTES = {
    "deployment": ("GET", r"/prod/v2/deployments/[^/]+$", "to GET /prod/v2/deployments/", 0),
    "submit": ("POST", r"/inference$", "to POST /prod/v1/deployments/", 1),
    "status": ("GET", r"/status$", "to GET /prod/v1/deployments/", 1),
    "result": ("GET", r"/result$", "to GET /prod/v1/deployments/", 1),
    "output file": ("GET", r"^/storage/", "could not be downloaded: the file storage", 1),
}


@pytest.mark.parametrize("status", [500, 502])
@pytest.mark.parametrize("route", list(SERVERLESS_ROUTES))
def test_serverless_errors_on_each_route(
    rc: RunComfyTestServer, tmp_path: Path, route: str, status: int
) -> None:
    method, path, names, submits = SERVERLESS_ROUTES[route]
    dep = rc.add_deployment(SEEDED)
    rc.inject(method, path, status, echo=True)
    t0 = time.monotonic()
    final, _ = run(serverless(rc, dep), seeded_job(tmp_path / "out"))
    assert time.monotonic() - t0 < 10
    assert isinstance(final, ev.JobFailed), final
    assert str(status) in final.message and names in final.message, final.message
    if route in ("status", "result"):
        assert "Lost contact with RunComfy Serverless" in final.message
    assert len(rc.called("POST", "/inference")) == submits  # never submitted twice
    assert files_in(tmp_path / "out") == []
    no_secret(tmp_path, repr(final))


@pytest.mark.parametrize("status", [500, 502])
def test_serverless_lost_submit_answer_is_not_sent_again(
    rc: RunComfyTestServer, tmp_path: Path, status: int
) -> None:
    """RunComfy took the request but the answer was lost: no request id, so the job fails;
    sending it again could run (and bill) it twice."""
    dep = rc.add_deployment(SEEDED)
    rc.inject("POST", r"/inference$", status, after=True)
    final, _ = run(serverless(rc, dep), seeded_job(tmp_path / "out"))
    assert isinstance(final, ev.JobFailed) and f"{status} to POST" in final.message
    assert len(rc.called("POST", "/inference")) == 1 and len(rc.inference) == 1


@pytest.mark.parametrize("status", [500, 502])
def test_serverless_cancel_error_still_ends_the_job(
    rc: RunComfyTestServer, tmp_path: Path, status: int
) -> None:
    rc.run_time = 5.0
    dep = rc.add_deployment(SEEDED)
    rc.inject("POST", r"/cancel$", status, echo=True)
    runner = JobRunner(serverless(rc, dep))
    job_id = runner.submit(seeded_job(tmp_path / "out"))
    events = events_until(runner, ev.JobQueued)
    after, busy, seconds = cancel_and_close(runner, job_id, timeout=5)
    events += after
    assert not busy and seconds < 3
    assert isinstance(finals(events)[0], ev.JobCancelled)
    assert len(rc.called("POST", "/cancel")) == 1 and len(rc.called("POST", "/inference")) == 1


ICU_ROUTES = {
    "create run": ("POST", r"/runs$", "to POST /workflows/wf-icu/runs"),
    "run state": ("GET", r"/runs/[^/]+$", "to GET /workflows/wf-icu/runs/"),
    "output file": ("GET", r"^/storage/", "could not be downloaded: the file storage"),
}


@pytest.mark.parametrize("status", [500, 502])
@pytest.mark.parametrize("route", list(ICU_ROUTES))
def test_comfyicu_errors_on_each_route(
    icu: ComfyICUTestServer, tmp_path: Path, route: str, status: int
) -> None:
    method, path, names = ICU_ROUTES[route]
    icu.inject(method, path, status, echo=True)
    t0 = time.monotonic()
    final, _ = run(icu_backend(icu), icu_job(tmp_path / "out"))
    assert time.monotonic() - t0 < 10
    assert isinstance(final, ev.JobFailed), final
    assert str(status) in final.message and names in final.message, final.message
    if route == "run state":
        assert "Lost contact with ComfyICU" in final.message
    assert len(icu.called("POST", "/runs")) == 1 and len(icu.runs) == (route != "create run")
    assert files_in(tmp_path / "out") == []
    no_secret(tmp_path, repr(final))


# ---- 429 storms (RunComfy's are in net/test_ratelimit.py and runcomfy/test_serverless.py) ----


def test_comfyicu_429_storm_slows_the_job_but_does_not_fail_it(
    icu: ComfyICUTestServer, tmp_path: Path
) -> None:
    icu.inject("", r"/runs", 429, count=8)  # both the create and the polls
    final, _ = run(icu_backend(icu), icu_job(tmp_path / "out"))
    assert isinstance(final, ev.JobFinished), final
    assert len(icu.runs) == 1 and len(icu.called("POST", "/runs")) > 1  # 429s: not acted on


def test_comfyicu_endless_429_gives_up_clearly_without_a_run(
    icu: ComfyICUTestServer, tmp_path: Path
) -> None:
    icu.inject("", r"/runs", 429)
    client = ComfyICU(ICU_KEY, api_url=icu.url + "/api/v1",
                      policy=RetryPolicy(first=0.02, cap=0.05, total=0.3))
    final, _ = run(ComfyICUBackend(client, "wf-icu"), icu_job(tmp_path / "out"))
    assert isinstance(final, ev.JobFailed) and final.error_type == "RateLimited"
    assert "too many (429)" in final.message and icu.runs == {}


# ---- truncated downloads, non-JSON answers ----


def test_truncated_serverless_output_fails_clearly_and_leaves_nothing(
    rc: RunComfyTestServer, tmp_path: Path
) -> None:
    rc.truncate_files = True
    final, _ = run(serverless(rc, rc.add_deployment(SEEDED)), seeded_job(tmp_path / "out"))
    assert isinstance(final, ev.JobFailed) and "truncated" in final.message, final
    assert files_in(tmp_path / "out") == [] and len(rc.called("POST", "/inference")) == 1


def test_truncated_comfyicu_output_fails_clearly_and_leaves_nothing(
    icu: ComfyICUTestServer, tmp_path: Path
) -> None:
    icu.truncate_files = True
    final, _ = run(icu_backend(icu), icu_job(tmp_path / "out"))
    assert isinstance(final, ev.JobFailed) and "truncated" in final.message, final
    assert files_in(tmp_path / "out") == [] and len(icu.runs) == 1


# ---- answers of an unexpected shape: a clear error naming what came back ----

# name -> (the result fields sent instead of `outputs`, what the message must show)
Reshape = Callable[[Any], dict[str, Any]]
SERVERLESS_SHAPES: dict[str, tuple[Reshape, str]] = {
    "outputs renamed": (lambda out: {"result": {"files": out}}, "result: {files: {"),
    # A list of files is read (LoRA-style results); a list of bare names is not.
    "outputs a list of names": (lambda out: {"outputs": ["out_00001_.png"]}, "outputs: [str]"),
    "no url": (lambda out: {"outputs": {"3": {"images": [{"filename": "a.png"}]}}},
               "outputs: {3: {images: [{filename: str}]}}"),
    # A node's text that is a URL is not a file (bare URLs count only in a LoRA's `output`).
    "a text node's URL": (lambda out: {"outputs": {"9": {"text": ["https://example.com/a"]}}},
                          "outputs: {9: {text: [str]}}"),
}


@pytest.mark.parametrize("case", list(SERVERLESS_SHAPES))
def test_serverless_unexpected_outputs_are_a_clear_error(
    rc: RunComfyTestServer, tmp_path: Path, case: str
) -> None:
    reshape, shown = SERVERLESS_SHAPES[case]
    rc.reshape_outputs = reshape
    final, _ = run(serverless(rc, rc.add_deployment(SEEDED)), seeded_job(tmp_path / "out"))
    assert isinstance(final, ev.JobFailed), final
    assert "sent back no output files" in final.message and shown in final.message, final.message
    assert "its result held keys: request_id, status" in final.message, final.message
    assert files_in(tmp_path / "out") == [] and len(rc.called("POST", "/inference")) == 1
    no_secret(tmp_path, repr(final))


ICU_SHAPES: dict[str, tuple[Reshape, str]] = {
    "outputs elsewhere": (lambda out: {"result": out}, "result: [{filename: str"),
    "output a string": (lambda out: {"output": "done"}, "output: str"),
    "output empty": (lambda out: {"output": []}, "output: []"),
}


@pytest.mark.parametrize("case", list(ICU_SHAPES))
def test_comfyicu_unexpected_outputs_are_a_clear_error(
    icu: ComfyICUTestServer, tmp_path: Path, case: str
) -> None:
    reshape, shown = ICU_SHAPES[case]
    icu.reshape_output = reshape
    final, _ = run(icu_backend(icu), icu_job(tmp_path / "out"))
    assert isinstance(final, ev.JobFailed), final
    assert final.error_type == "ExecutionFailed", final  # not a raw validation error
    assert "sent back no output files" in final.message and shown in final.message, final.message
    assert files_in(tmp_path / "out") == [] and len(icu.runs) == 1
    no_secret(tmp_path, repr(final))


def test_comfyicu_outputs_nested_by_node_are_still_saved(
    icu: ComfyICUTestServer, tmp_path: Path
) -> None:
    """`output` as ComfyUI's {node: {images: [...]}}: the files are found all the same."""
    icu.reshape_output = lambda out: {"output": {"3": {"images": out}}}
    final, _ = run(icu_backend(icu), icu_job(tmp_path / "out"))
    assert isinstance(final, ev.JobFinished), final
    assert len(final.outputs) == 1 and final.outputs[0].suffix == ".png"


@pytest.mark.parametrize("kind", ["machine", "serverless", "comfyicu"])
def test_captive_portal_html_is_a_clear_error(
    rc: RunComfyTestServer, icu: ComfyICUTestServer, tmp_path: Path, kind: str
) -> None:
    server = icu if kind == "comfyicu" else rc
    server.inject("", "", 200, html=True)
    backend: Backend
    if kind == "machine":
        backend, job = machine_backend(rc, idle_stop=None), image_job(tmp_path / "out")
    elif kind == "serverless":
        backend, job = serverless(rc, rc.add_deployment(SEEDED)), seeded_job(tmp_path / "out")
    else:
        backend, job = icu_backend(icu), icu_job(tmp_path / "out")
    final, _ = run(backend, job)
    assert isinstance(final, ev.JobFailed), final
    assert "not JSON" in final.message and "text/html" in final.message
    assert rc.called("POST", "/servers") == [] and rc.inference == {} and icu.runs == {}


# ---- hostile output names from the hosted services ----

HOSTED_NAMES = ["../../evil.png", "/tmp/abs.png", "a\x00b.png", "CON", "nul.png", "COM1.png",
                "LPT1", "dots.png. . ", "a:b.png", "y" * 300 + ".png"]


@pytest.mark.parametrize("name", HOSTED_NAMES)
def test_serverless_hostile_names_and_subfolders_stay_in_the_output_folder(
    rc: RunComfyTestServer, tmp_path: Path, name: str
) -> None:
    rc.output_name = name
    rc.output_subfolder = HOSTILE_SUBFOLDERS[HOSTED_NAMES.index(name) % len(HOSTILE_SUBFOLDERS)]
    out = tmp_path / "deep" / "out"
    final, _ = run(serverless(rc, rc.add_deployment(SEEDED)), seeded_job(out))
    assert isinstance(final, ev.JobFinished), final
    assert_only_in(out, tmp_path, ("machine", "config"))


@pytest.mark.parametrize("name", HOSTED_NAMES)
def test_names_taken_from_output_urls_stay_in_the_output_folder(
    rc: RunComfyTestServer, icu: ComfyICUTestServer, tmp_path: Path, name: str
) -> None:
    rc.output_name = icu.output_name = ""  # no filename given: the URL's name is used
    rc.url_name = icu.url_name = name
    out = tmp_path / "deep" / "out"
    final, _ = run(serverless(rc, rc.add_deployment(SEEDED)), seeded_job(out))
    assert isinstance(final, ev.JobFinished), final
    final, _ = run(icu_backend(icu), icu_job(out))
    assert isinstance(final, ev.JobFinished), final
    assert len(assert_only_in(out, tmp_path, ("machine", "config"))) == 2


@pytest.mark.parametrize("name", HOSTILE_NAMES[:8])
def test_comfyicu_hostile_names_stay_in_the_output_folder(
    icu: ComfyICUTestServer, tmp_path: Path, name: str
) -> None:
    icu.output_name = name
    out = tmp_path / "deep" / "out"
    final, _ = run(icu_backend(icu), icu_job(out))
    assert isinstance(final, ev.JobFinished), final
    assert_only_in(out, tmp_path, ("machine", "config"))


# ---- the machine failing or stopping mid-job ----


@pytest.mark.parametrize("state", ["Error", "Stopping", "gone"])
def test_machine_failing_mid_job_ends_it_naming_the_state(
    rc: RunComfyTestServer, comfy: ComfyTestServer, tmp_path: Path, state: str
) -> None:
    comfy.node_delay = 0.3
    backend = machine_backend(rc, idle_stop=None, state_interval=0.1)
    runner = JobRunner(backend)
    runner.submit(Job(workflow=workflows.slow(blurs=10, size=64), out_dir=tmp_path / "out"))
    events: list[ev.Event] = []
    deadline = time.monotonic() + 15
    while not any(isinstance(e, ev.JobQueued) for e in events) and time.monotonic() < deadline:
        events += runner.wait_idle(0.05)
    assert comfy.prompts, "the job never reached the machine"
    t0 = time.monotonic()
    if state == "gone":
        machine_api(rc).stop(backend.server_id)  # stopped on the dashboard
    else:
        rc.set_state(backend.server_id, state)
    events += runner.wait_idle(10)
    elapsed = time.monotonic() - t0
    busy = runner.busy
    closer = threading.Thread(target=runner.close)
    closer.start()
    closer.join(15)
    assert not busy and not closer.is_alive()
    final = finals(events)[0]
    assert isinstance(final, ev.JobFailed) and final.error_type == "MachineFailed", final
    expected = "no longer knows machine" if state == "gone" else f"went to '{state}' during"
    assert expected in final.message and backend.server_id in final.message
    assert elapsed < 5  # not a long "lost contact" wait
    assert len(comfy.prompts) == 1 and len(rc.called("POST", "/servers")) == 1
    status = backend.status()
    assert status.message == final.message
    if state != "Error":
        assert Ledger().get(backend.server_id) is None  # gone: nothing left to stop


# ---- credentials: no token in logs, messages or files, on success and failure ----


@pytest.mark.parametrize("kind", ["machine", "serverless", "comfyicu"])
def test_no_token_in_logs_messages_or_files(
    rc: RunComfyTestServer, icu: ComfyICUTestServer, tmp_path: Path,
    caplog: pytest.LogCaptureFixture, kind: str,
) -> None:
    """Success, then a refused token (401), then a 500 echoing the request headers; the
    autouse fixture checks every log record (DEBUG, root and comfyrelay) as well."""
    texts: list[str] = []

    def job(backend: Backend, out: str) -> ev.Event:
        if kind == "machine":
            made = image_job(tmp_path / out)
        elif kind == "serverless":
            made = seeded_job(tmp_path / out)
        else:
            made = icu_job(tmp_path / out)
        final, events = run(backend, made)
        texts.extend(repr(e) for e in events)
        return final

    def backend() -> Backend:
        if kind == "machine":
            return machine_backend(rc, idle_stop=None)
        if kind == "serverless":
            return serverless(rc, dep)
        return icu_backend(icu)

    dep = rc.add_deployment(SEEDED)
    assert isinstance(job(backend(), "ok"), ev.JobFinished)
    if kind == "comfyicu":
        icu.api_key = "another-key"
    else:
        rc.refused.update(TOKENS)
    refused = job(backend(), "refused")
    assert isinstance(refused, ev.JobFailed) and refused.error_type == "AuthenticationFailed"
    rc.refused.clear()
    icu.api_key = ICU_KEY
    (icu if kind == "comfyicu" else rc).inject("", r"^/(prod|api)/", 500, echo=True)
    echoed = job(backend(), "echoed")
    assert isinstance(echoed, ev.JobFailed) and "Request headers" in echoed.message
    assert any("Bearer [token]" in t for t in texts)  # the echo was there, redacted
    no_secret(tmp_path, *texts, caplog.text)


def test_token_checks_in_the_host_documents_are_part_of_the_suite() -> None:
    """The .blend and .kra checks live with their hosts (they need Blender and Krita):
    tests/blender/test_addon.py::test_render_is_inverted_and_token_stays_out_of_the_blend and
    tests/krita/test_plugin.py::test_docker_run_adds_a_layer_and_keeps_the_token_out_of_the_kra,
    both marked `fault`."""
    root = Path(__file__).resolve().parents[2]
    for path, name in (
        ("blender/test_addon.py", "test_render_is_inverted_and_token_stays_out_of_the_blend"),
        ("krita/test_plugin.py", "test_docker_run_adds_a_layer_and_keeps_the_token_out_of_the_kra"),
    ):
        text = (root / path).read_text(encoding="utf-8")
        assert f"@pytest.mark.fault\ndef {name}(" in text
