"""The comfy-api back end (Comfy API v2) against the REAL comfy-api-proxy from PyPI (pinned in
pyproject's test extra) in front of the ComfyUI test server, and against a strict server
that follows the spec (tests/servers/comfy_api.py) for what the proxy does not do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import tomllib
from comfyrelay import (
    KINDS,
    HostSettings,
    InputFile,
    Job,
    JobRunner,
    Workflow,
    load_credentials,
    make_backend,
)
from comfyrelay.cli.main import main
from comfyrelay.comfyapi import assets as comfyapi_assets
from comfyrelay.comfyapi.api import ComfyApi
from comfyrelay.comfyapi.api_backend import ComfyApiBackend
from comfyrelay.comfyapi.errors import node_problems
from comfyrelay.comfyapi.events import frames
from comfyrelay.comfyapi.wire import Output, output_kind
from comfyrelay.config import save_credentials
from comfyrelay.errors import AuthenticationFailed, ComfyRelayError, RateLimited, WorkflowError
from comfyrelay.jobs import events as ev
from comfyrelay.kinds import rebuild_key
from comfyrelay.net.ratelimit import RetryPolicy, TokenBucket

from tests.hosted import FAST, assert_no_secret_logged, finals
from tests.imaging import gradient_png, is_inverse
from tests.paths import ROOT, WORKFLOWS
from tests.servers.api_proxy import proxy
from tests.servers.api_shim import ApiShim
from tests.servers.comfy_api import ComfyApiTestServer
from tests.servers.comfyui import ComfyTestServer
from tests.workflows import failing, invert, slow

KEY = "comfy-api-key-SECRET"
PARTNER = "partner-key-SECRET"
MY_SECRETS = (KEY, PARTNER, "wrong-key-SECRET")


@pytest.fixture(autouse=True)
def no_env_keys(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """No key from the environment, and none of ours in any log line."""
    for name in ("COMFY_API_KEY", "COMFY_ORG_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    yield
    assert_no_secret_logged(caplog, MY_SECRETS)


# ---- the real comfy-api-proxy in front of the ComfyUI test server ----
@pytest.fixture
def comfy(tmp_path: Path) -> Iterator[ComfyTestServer]:
    with ComfyTestServer(tmp_path / "comfy", node_delay=0.6) as server:
        yield server


@pytest.fixture
def proxy_url(comfy: ComfyTestServer, tmp_path: Path) -> Iterator[str]:
    with proxy(comfy.url, tmp_path) as url:
        yield url


def api(url: str, key: str = "", **kw: Any) -> ComfyApi:
    return ComfyApi(url, key, limiter=TokenBucket(1000.0, 1000), policy=FAST, **kw)


def backend(url: str, key: str = "", **kw: Any) -> ComfyApiBackend:
    options = {"poll_interval": 0.1, "cancel_confirm": 1.0, **kw}
    return ComfyApiBackend(api(url, key, secrets=(PARTNER,)), **options)


def run(b: ComfyApiBackend, *jobs: Job, timeout: float = 30) -> list[ev.Event]:
    runner = JobRunner(b)
    for job in jobs:
        runner.submit(job)
    events = runner.wait_idle(timeout)
    runner.close()
    return events


def invert_job(out: Path, png: bytes) -> Job:
    return Job(workflow=invert(), out_dir=out, image=InputFile("render.png", png))


# ---- against the real proxy ----
def test_proxy_runs_the_job_with_progress_previews_and_inverted_pixels(
    comfy: ComfyTestServer, proxy_url: str, tmp_path: Path
) -> None:
    png = gradient_png()
    events = run(backend(proxy_url), invert_job(tmp_path / "out", png))
    (final,) = finals(events)
    assert isinstance(final, ev.JobFinished), final
    (path,) = final.outputs
    assert path.parent == tmp_path / "out" and is_inverse(png, path)
    outputs = [e for e in events if isinstance(e, ev.JobOutput)]
    assert [(o.node_id, o.kind) for o in outputs] == [("3", "image")]
    progress = [e for e in events if isinstance(e, ev.JobProgress) and e.node_id]
    assert progress and all(0.0 <= p.fraction <= 1.0 for p in progress)
    previews = [e for e in events if isinstance(e, ev.JobPreview)]
    assert previews and previews[0].data[:3] in (b"\x89PN", b"\xff\xd8\xff")  # PNG or JPEG
    # The loader got the uploaded asset: the proxy rewrote the reference to a file name.
    (sent,) = comfy.prompts
    assert isinstance(sent["prompt"]["1"]["inputs"]["image"], str)


def test_second_run_uploads_nothing(
    comfy: ComfyTestServer, proxy_url: str, tmp_path: Path
) -> None:
    comfy.node_delay = 0.0
    png = gradient_png()
    with ApiShim(proxy_url) as shim:
        b = backend(shim.url, live_events=False)
        events = run(b, invert_job(tmp_path / "a", png), invert_job(tmp_path / "b", png))
        assert [type(e) for e in finals(events)] == [ev.JobFinished, ev.JobFinished], events
        assert len(shim.calls("POST", "/api/v2/assets")) == 1  # the bytes went once
        heads = [p for p in shim.log if p.method == "HEAD"]
        assert [p.status for p in heads] == [404, 200]  # checked by hash both times
        assert [p.status for p in shim.calls("POST", "/api/v2/assets/from-hash")] == [200]
        assert (b.inputs.uploads, b.inputs.reused) == (1, 1)
    for final in finals(events):
        assert isinstance(final, ev.JobFinished) and is_inverse(png, final.outputs[0])


def test_without_blake3_the_server_hash_is_remembered(
    comfy: ComfyTestServer, proxy_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The add-ons ship no blake3: a repeat upload becomes a by-hash check all the same."""
    comfy.node_delay = 0.0
    monkeypatch.setattr(comfyapi_assets, "blake3", None)
    png = gradient_png(40, 30)
    with ApiShim(proxy_url) as shim:
        b = backend(shim.url, live_events=False)
        events = run(b, invert_job(tmp_path / "a", png), invert_job(tmp_path / "b", png))
        assert [type(e) for e in finals(events)] == [ev.JobFinished, ev.JobFinished], events
        assert len(shim.calls("POST", "/api/v2/assets")) == 1
        assert [p.status for p in shim.log if p.method == "HEAD"] == [200]  # only the repeat
        assert (b.inputs.uploads, b.inputs.reused) == (1, 1)


def test_cancel_is_asked_and_its_outcome_reported_honestly(
    comfy: ComfyTestServer, proxy_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """comfy-api-proxy 0.1.6 in front of ComfyUI 0.3.64 cannot cancel (its cancel calls a
    route that version lacks): the job is still cancelled for the user, and the log says
    the server did not confirm."""
    runner = JobRunner(backend(proxy_url, cancel_confirm=8.0))
    job_id = runner.submit(Job(workflow=slow(blurs=4), out_dir=tmp_path / "out"))
    events: list[ev.Event] = []
    deadline = time.monotonic() + 20
    while not any(isinstance(e, ev.JobProgress) for e in events):
        assert time.monotonic() < deadline, events
        events += runner.wait_idle(0.05)
    runner.cancel(job_id)
    events += runner.wait_idle(30)
    runner.close()
    (final,) = finals(events)
    assert isinstance(final, ev.JobCancelled)
    assert not (tmp_path / "out").exists()  # nothing saved
    assert "did not confirm the cancel" in caplog.text
    assert "ended as succeeded" in caplog.text  # what the proxy really did
    assert comfy.wait_idle(10)
    (entry,) = comfy.history.values()
    assert entry["status"]["status_str"] == "success"


def test_wrong_key_is_refused_clearly(comfy: ComfyTestServer, tmp_path: Path) -> None:
    comfy.node_delay = 0.0
    with proxy(comfy.url, tmp_path, token=KEY) as url:
        wrong = backend(url, "wrong-key-SECRET")
        with pytest.raises(AuthenticationFailed) as caught:
            wrong.check()
        assert "refused the API key (401" in str(caught.value)
        assert "wrong-key-SECRET" not in str(caught.value)
        (final,) = finals(run(wrong, invert_job(tmp_path / "w", gradient_png())))
        assert isinstance(final, ev.JobFailed) and final.error_type == "AuthenticationFailed"
        assert comfy.prompts == []
        right = backend(url, KEY)
        assert "key accepted" in right.check()
        (final,) = finals(run(right, invert_job(tmp_path / "r", gradient_png())))
        assert isinstance(final, ev.JobFinished), final


def test_lost_submit_answer_retried_with_the_same_key_runs_once(
    comfy: ComfyTestServer, proxy_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    comfy.node_delay = 0.0
    png = gradient_png()
    with ApiShim(proxy_url) as shim:
        shim.lose_answers[("POST", "/api/v2/jobs")] = 1
        (final,) = finals(run(backend(shim.url, live_events=False),
                              invert_job(tmp_path / "out", png)))
        assert isinstance(final, ev.JobFinished), final
        assert is_inverse(png, final.outputs[0])
        submits = shim.calls("POST", "/api/v2/jobs")
        assert [s.status for s in submits] == [201, 422]  # the retry was refused as a reuse
        keys = {s.headers["Idempotency-Key"] for s in submits}
        assert len(keys) == 1
    assert len(comfy.prompts) == 1  # one job on the server
    assert "not sent again" in caplog.text


def test_event_stream_dropped_mid_job_still_completes_by_polling(
    comfy: ComfyTestServer, proxy_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    png = gradient_png()
    with ApiShim(proxy_url) as shim:
        shim.cut_events_after = 40  # inside the first event
        (final,) = finals(run(backend(shim.url), invert_job(tmp_path / "out", png)))
        assert isinstance(final, ev.JobFinished), final
        assert is_inverse(png, final.outputs[0])
        assert len(shim.calls("GET", next(p.path for p in shim.log
                                          if p.path.endswith("/events")))) >= 2
    assert "event stream dropped" in caplog.text


def test_partner_key_rides_extra_data_and_nowhere_else(
    comfy: ComfyTestServer, proxy_url: str, tmp_path: Path
) -> None:
    comfy.node_delay = 0.0
    with ApiShim(proxy_url) as shim:
        b = backend(shim.url, partner_key=PARTNER, live_events=False)
        (final,) = finals(run(b, invert_job(tmp_path / "out", gradient_png())))
        assert isinstance(final, ev.JobFinished), final
        assert all(PARTNER not in p.path + p.query for p in shim.log)
    (sent,) = comfy.prompts
    assert sent["extra_data"]["api_key_comfy_org"] == PARTNER


def test_validation_errors_name_the_node(
    comfy: ComfyTestServer, proxy_url: str, tmp_path: Path
) -> None:
    graph = invert().graph
    graph["3"]["inputs"]["images"] = ["9", 0]  # no node 9
    (final,) = finals(run(backend(proxy_url), Job(workflow=Workflow(graph, "broken"),
                                                  out_dir=tmp_path)))
    assert isinstance(final, ev.JobFailed) and final.error_type == "PromptRejected"
    assert "422 invalid_workflow" in final.message


def test_a_node_failing_at_run_time_is_named(
    comfy: ComfyTestServer, proxy_url: str, tmp_path: Path
) -> None:
    comfy.node_delay = 0.0
    (final,) = finals(run(backend(proxy_url), Job(workflow=failing(), out_dir=tmp_path / "o",
                                                  image=InputFile("in.png", gradient_png()))))
    assert isinstance(final, ev.JobFailed) and final.error_type == "ExecutionFailed"
    assert final.node_id == "4" and "Node 4 (ImageToMask) failed" in final.message


@pytest.mark.fault
def test_comfyui_restarted_mid_job_ends_clearly(
    comfy: ComfyTestServer, proxy_url: str, tmp_path: Path
) -> None:
    """The proxy then reports the job `expired` ([spec] JobStatus): its result is gone."""
    comfy.faults.restart_during_run = True
    (final,) = finals(run(backend(proxy_url), invert_job(tmp_path / "o", gradient_png())))
    assert isinstance(final, ev.JobFailed) and final.error_type == "ServerRestarted"
    assert "expired" in final.message and "Run it again" in final.message


def test_ui_format_is_refused_by_the_proxy(proxy_url: str) -> None:
    client = api(proxy_url)
    with pytest.raises(WorkflowError, match="workflow_format_ui"):
        client.submit({"nodes": [], "links": [], "1": {"class_type": "X"}})


# ---- against the strict spec server (what the proxy does not cover) ----
@pytest.fixture
def strict() -> Iterator[ComfyApiTestServer]:
    with ComfyApiTestServer(api_key=KEY) as server:
        yield server


def strict_run(server: ComfyApiTestServer, tmp: Path, **kw: Any) -> tuple[ev.Event, list[ev.Event]]:
    png = gradient_png()
    events = run(backend(server.base, KEY, **kw), invert_job(tmp / "out", png))
    (final,) = finals(events)
    if isinstance(final, ev.JobFinished):
        assert is_inverse(png, final.outputs[0])
    return final, events


def test_strict_postjobs_402_insufficient_credits(strict: ComfyApiTestServer,
                                                  tmp_path: Path) -> None:
    """[spec] postJobs 402 insufficient_credits."""
    strict.knobs.insufficient_credits = True
    final, _ = strict_run(strict, tmp_path)
    assert isinstance(final, ev.JobFailed)
    assert "insufficient credits" in final.message and "Add credits" in final.message


@pytest.mark.parametrize("knob", ["queue_full", "not_ready", "starting_503"])
def test_strict_postjobs_back_off_answers_are_waited_out(
    strict: ComfyApiTestServer, tmp_path: Path, knob: str
) -> None:
    """[spec] postJobs 429 queue_full / deployment_not_ready with Retry-After ("back off and
    retry"); a 503 with Retry-After while starting is [inferred]. The same key every time."""
    setattr(strict.knobs, knob, 2)
    started = time.monotonic()
    final, _ = strict_run(strict, tmp_path)
    assert isinstance(final, ev.JobFinished), final
    assert time.monotonic() - started >= 2 * strict.knobs.retry_after
    posts = [r for r in strict.requests if r.method == "POST" and r.path.endswith("/jobs")]
    assert len(posts) == 3 and len({r.body for r in posts}) == 1


def test_strict_queue_full_for_too_long_says_so(strict: ComfyApiTestServer,
                                                tmp_path: Path) -> None:
    """[spec] postJobs 429 queue_full, past our patience."""
    strict.knobs.queue_full = 1000
    client = api(strict.base, KEY)
    client.policy = RetryPolicy(first=0.01, cap=0.05, total=0.5)
    strict.knobs.retry_after = 0.1
    with pytest.raises(RateLimited, match="queue stayed full"):
        client.submit(invert().graph)


def test_strict_getjob_rate_limited_is_honoured(strict: ComfyApiTestServer,
                                                tmp_path: Path) -> None:
    """[spec] getJob 429 rate_limited (RateLimited response) with Retry-After."""
    strict.knobs.rate_limited = 3
    final, _ = strict_run(strict, tmp_path, live_events=False)
    assert isinstance(final, ev.JobFinished), final


def test_strict_invalid_workflow_lists_each_node(strict: ComfyApiTestServer,
                                                 tmp_path: Path) -> None:
    """[spec] postJobs 422 invalid_workflow, ErrorEnvelope details.node_errors shape."""
    graph = invert().graph
    graph["3"]["inputs"]["filename_prefix"] = "not-a-choice"
    runner_events = run(backend(strict.base, KEY), Job(workflow=Workflow(graph, "bad"),
                                                       out_dir=tmp_path))
    (final,) = finals(runner_events)
    assert isinstance(final, ev.JobFailed) and final.error_type == "PromptRejected"
    assert "node 3" in final.message and "filename_prefix" in final.message


def test_strict_confirmed_cancel(strict: ComfyApiTestServer, tmp_path: Path,
                                 caplog: pytest.LogCaptureFixture) -> None:
    """[spec] cancelJob: canceling, then canceled."""
    strict.knobs.run_time = 5.0
    runner = JobRunner(backend(strict.base, KEY))
    job_id = runner.submit(invert_job(tmp_path / "out", gradient_png()))
    events: list[ev.Event] = []
    while not any(isinstance(e, ev.JobProgress) for e in events):
        events += runner.wait_idle(0.05)
    runner.cancel(job_id)
    (final,) = finals(events + runner.wait_idle(10))
    runner.close()
    assert isinstance(final, ev.JobCancelled)
    assert "confirmed the cancel" in caplog.text
    (job,) = strict.jobs.values()
    assert job.status == "canceled"


def test_strict_replayed_submit_older_spec_text(strict: ComfyApiTestServer,
                                                tmp_path: Path) -> None:
    """Older 2.0.0 text of postJobs: same key replays the recorded job (Idempotency-Replayed)."""
    strict.knobs.replay = True
    strict.knobs.lose_first_submit = True
    final, _ = strict_run(strict, tmp_path, live_events=False)
    assert isinstance(final, ev.JobFinished), final
    assert len(strict.jobs) == 1


def test_strict_relative_links_under_a_mount_prefix(tmp_path: Path) -> None:
    """[spec] JobUrls: host-relative links carry the mount prefix; resolved against the
    origin, not the base URL."""
    with ComfyApiTestServer(api_key=KEY, prefix="/deployment/dep-1") as server:
        server.knobs.relative_links = True
        final, events = strict_run(server, tmp_path)
        assert isinstance(final, ev.JobFinished), final
        assert any(isinstance(e, ev.JobPreview) for e in events)
        paths = {r.path for r in server.requests}
        assert all(p.startswith("/deployment/dep-1/api/v2/") for p in paths)


def test_strict_storage_links_get_no_credentials(strict: ComfyApiTestServer,
                                                 tmp_path: Path) -> None:
    """[spec] Output.url may be a signed storage URL on another origin: no key goes there."""
    strict.knobs.storage_origin = True
    final, _ = strict_run(strict, tmp_path)
    assert isinstance(final, ev.JobFinished), final
    (fetched,) = strict.file_requests
    assert fetched.authorization == ""


def test_strict_video_labelled_image_is_saved_as_video(strict: ComfyApiTestServer,
                                                       tmp_path: Path) -> None:
    """[proxy] labels SaveVideo's mp4 type "image": the content type decides the kind."""
    strict.knobs.output_content_type = "video/mp4"
    strict.knobs.output_type = "image"
    png = gradient_png()
    events = run(backend(strict.base, KEY), invert_job(tmp_path / "out", png))
    (output,) = [e for e in events if isinstance(e, ev.JobOutput)]
    assert output.kind == "video"


@pytest.mark.fault
@pytest.mark.parametrize("shape", [{"3": {"images": [{"filename": "x.png"}]}},
                                   ["ComfyUI_00001_.png"], [{"node_id": "3", "name": "x.png"}]])
def test_strict_unexpected_output_shapes_fail_clearly(
    strict: ComfyApiTestServer, tmp_path: Path, shape: Any
) -> None:
    strict.knobs.output_shape = shape
    final, _ = strict_run(strict, tmp_path, live_events=False)
    assert isinstance(final, ev.JobFailed), final
    assert "outputs" in final.message
    assert ("x.png" in final.message) or ("ComfyUI_00001_" in final.message)


def test_strict_wrong_key(strict: ComfyApiTestServer, tmp_path: Path) -> None:
    """[spec] bearerAuth / Unauthorized: 401 unauthorized."""
    b = backend(strict.base, "wrong-key-SECRET")
    (final,) = finals(run(b, invert_job(tmp_path / "out", gradient_png())))
    assert isinstance(final, ev.JobFailed) and "401 unauthorized" in final.message
    assert all("wrong-key-SECRET" not in r.path + r.query for r in strict.requests)


# ---- small pieces ----
def test_sse_frames_are_parsed_across_piece_boundaries() -> None:
    stream = [b"event: sta", b"tus\ndata: {\"status\":", b" \"running\"}\r\n\r\n: keepalive\n\n",
              b"data: a\ndata: b\n\nevent: x\nid: 7\ndata: 1\n\n"]
    got = [(f.event, f.data) for f in frames(stream)]
    assert got == [("status", '{"status": "running"}'), ("message", "a\nb"), ("x", "1")]


def test_node_problems_in_both_shapes() -> None:
    spec = node_problems({"12": [{"field": "model", "reason": "missing_input"}]})
    assert [(p.node_id, p.input_name, p.reason) for p in spec] == [("12", "model",
                                                                    "missing_input")]
    comfy = node_problems({"3": {"class_type": "SaveImage", "errors": [
        {"type": "x", "message": "Bad", "details": "why", "extra_info": {"input_name": "n"}}]}})
    assert [(p.node_id, p.class_type, p.input_name, p.reason) for p in comfy] == [
        ("3", "SaveImage", "n", "Bad: why")]


def test_output_kind_prefers_the_content_type() -> None:
    assert output_kind(Output(type="image", content_type="video/webm")) == "video"
    assert output_kind(Output(type="audio", content_type="")) == "audio"
    assert output_kind(Output(type="latent", content_type="application/octet-stream")) == "file"


def test_logs_keep_keys_out(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = api("http://127.0.0.1:9", KEY)
    assert client.http.redact(f"echo {KEY}") == "echo [token]"
    assert client.http.session.headers["Authorization"] == f"Bearer {KEY}"


# ---- settings, credentials and the command line ----
def test_the_pinned_proxy_is_the_one_tested() -> None:
    test_extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["test"]
    assert f"comfy-api-proxy=={version('comfy-api-proxy')}" in test_extra


def test_host_settings_build_the_backend_and_keys_come_from_env_or_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert KINDS.labels()["comfy-api"] == "Comfy API (Comfy Cloud)"
    assert KINDS.kind_fields("comfy-api") == ["ca_api_key", "ca_partner_key", "ca_api_url"]
    cloud = HostSettings(backend="comfy-api")
    assert cloud.backend_settings().settings.api_url == "https://cloud.comfy.org"
    with pytest.raises(ComfyRelayError, match="COMFY_API_KEY"):
        make_backend(cloud.backend_settings(), cloud.credentials())
    save_credentials({"comfy_api_key": KEY, "comfy_org_api_key": PARTNER})
    creds = load_credentials()
    assert (creds["comfy_api_key"], creds["comfy_org_api_key"]) == (KEY, PARTNER)
    assert KEY in creds.secrets() and PARTNER in creds.secrets() and KEY not in repr(creds)
    b = make_backend(cloud.backend_settings(), cloud.credentials())
    assert isinstance(b, ComfyApiBackend) and b.partner_key == PARTNER
    b.close()
    local = HostSettings(backend="comfy-api", ca_api_url="http://127.0.0.1:8189",
                         ca_api_key="typed-SECRET")
    assert local.credentials()["comfy_api_key"] == "typed-SECRET"
    monkeypatch.setenv("COMFY_API_KEY", "env-SECRET")
    assert load_credentials()["comfy_api_key"] == "env-SECRET"
    other = local.model_copy(update={"ca_api_key": "other-SECRET"})
    assert rebuild_key(local.backend_settings(), local.credentials()) != rebuild_key(
        other.backend_settings(), other.credentials())


def test_cli_run_and_check_through_the_proxy(
    comfy: ComfyTestServer, proxy_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    comfy.node_delay = 0.0
    image = tmp_path / "in.png"
    image.write_bytes(gradient_png())
    assert main(["comfy-api", "check", "--api-url", proxy_url]) == 0
    assert "comfy-api-proxy" in capsys.readouterr().out
    code = main(["run", str(WORKFLOWS / "invert_api.json"), "--backend", "comfy-api",
                 "--api-url", proxy_url, "--image", str(image), "--out", str(tmp_path / "out")])
    assert code == 0
    (saved,) = (tmp_path / "out").iterdir()
    assert is_inverse(image.read_bytes(), saved)
