"""RunComfy Serverless: deployments, overrides checked before sending, queue states, outputs
saved at once, errors in 200 bodies, failed results, cancel, and 20 jobs with 4 in flight."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from comfyrelay import Bindings, Credentials, HostSession, InputFile, Job, JobRunner, Workflow
from comfyrelay.errors import ServerError, WorkflowError
from comfyrelay.jobs import events as ev
from comfyrelay.kinds import BackendSettings
from comfyrelay.runcomfy.serverless import (
    DATA_URI_MAX,
    DeploymentSpec,
    RequestResult,
    RunComfyServerlessBackend,
    _failure,
)
from PIL import Image

from tests.hosted import (
    TOKENS,
    finals,
    no_secret_in_requests,
    pump_until,
    serverless_api,
    wait_for,
)
from tests.imaging import gradient_png
from tests.servers.runcomfy import RunComfyTestServer
from tests.workflows import invert

SEEDED: dict[str, Any] = {
    "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512,
                                                       "batch_size": 1}},
    "2": {"class_type": "KSampler", "_meta": {"title": "Sampler"},
          "inputs": {"seed": 1, "steps": 20, "latent_image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "out"}},
}


def backend(rc: RunComfyTestServer, dep: str, **kw: Any) -> RunComfyServerlessBackend:
    return RunComfyServerlessBackend(serverless_api(rc), dep, poll_interval=0.03, **kw)


def saved_prompt(path: Path) -> dict[str, Any]:
    with Image.open(path) as image:
        return dict(json.loads(image.info["prompt"]))


def test_batch_of_20_with_4_in_flight_returns_20_results_in_order(
    rc: RunComfyTestServer, tmp_path: Path
) -> None:
    rc.instances, rc.run_time = 2, 0.1  # fewer instances than jobs in flight: some queue
    dep = rc.add_deployment(SEEDED)
    runner = JobRunner(backend(rc, dep), max_in_flight=4)
    wf = Workflow(SEEDED, "seeded")
    ids = [runner.submit(Job(workflow=wf, out_dir=tmp_path / f"j{n}", bindings=Bindings(seed=n)))
           for n in range(20)]
    events = runner.wait_idle(40)
    done = finals(events)
    assert [e.job_id for e in done] == ids
    assert all(isinstance(e, ev.JobFinished) for e in done), done
    for n, final in enumerate(done):
        assert isinstance(final, ev.JobFinished) and len(final.outputs) == 1
        assert saved_prompt(final.outputs[0])["2"]["inputs"]["seed"] == n
    bodies = [r.body for r in rc.called("POST", "/inference")]
    assert bodies[3] == {"overrides": {"2": {"inputs": {"seed": 3}}}}  # only what changed
    assert 2 <= rc.max_outstanding <= 4  # several in flight, never more than 4
    runner.close()
    assert all(not r.authorization for r in rc.file_requests)  # no token to file storage
    no_secret_in_requests(rc)


@pytest.mark.fault
def test_429_storm_slows_jobs_but_fails_none(rc: RunComfyTestServer, tmp_path: Path) -> None:
    dep = rc.add_deployment(SEEDED)
    runner = JobRunner(backend(rc, dep), max_in_flight=3)
    wf = Workflow(SEEDED, "seeded")
    rc.storm(count=25)  # every caller waits Retry-After (0.05 s) after each 429
    for n in range(6):
        runner.submit(Job(workflow=wf, out_dir=tmp_path, bindings=Bindings(seed=n)))
    done = finals(runner.wait_idle(40))
    assert len(done) == 6 and all(isinstance(e, ev.JobFinished) for e in done), done
    assert rc.rate_limited >= 25
    runner.close()


def test_unknown_override_is_refused_before_sending(rc: RunComfyTestServer) -> None:
    dep = rc.add_deployment(SEEDED)
    api = serverless_api(rc)
    with pytest.raises(WorkflowError, match=r"no node '9'.*1 \(EmptyLatentImage\), 2 \(Sampler\)"):
        api.submit(dep, overrides={"9": {"inputs": {"seed": 1}}})
    with pytest.raises(WorkflowError, match=r"no input 'sead'\. Its inputs: seed, steps"):
        api.submit(dep, overrides={"2": {"inputs": {"sead": 1}}})
    with pytest.raises(WorkflowError, match="connected to node 1"):
        api.submit(dep, overrides={"2": {"inputs": {"latent_image": 5}}})
    assert rc.called("POST", "/inference") == []


def test_job_with_another_graph_names_the_deployments_nodes(
    rc: RunComfyTestServer, tmp_path: Path
) -> None:
    dep = rc.add_deployment(SEEDED)
    runner = JobRunner(backend(rc, dep))
    runner.submit(Job(workflow=invert(), out_dir=tmp_path, image=InputFile("a.png", b"png")))
    (final,) = finals(runner.wait_idle(10))
    assert isinstance(final, ev.JobFailed) and final.error_type == "WorkflowError"
    assert "does not match the deployment's" in final.message
    assert rc.called("POST", "/inference") == []
    runner.close()


def test_host_image_goes_as_data_uri_with_size_limits(
    rc: RunComfyTestServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dep = rc.add_deployment(invert().graph)
    runner = JobRunner(backend(rc, dep))
    png = gradient_png()
    runner.submit(Job(workflow=invert(), out_dir=tmp_path, image=InputFile("in.png", png)))
    big = InputFile("big.png", b"\x89PNG" + b"0" * 300_000)  # warned, still sent
    runner.submit(Job(workflow=invert(), out_dir=tmp_path, image=big))
    huge = InputFile("huge.png", b"0" * (DATA_URI_MAX + 1))
    runner.submit(Job(workflow=invert(), out_dir=tmp_path, image=huge))
    done = finals(runner.wait_idle(20))
    assert isinstance(done[0], ev.JobFinished) and isinstance(done[1], ev.JobFinished)
    assert isinstance(done[2], ev.JobFailed) and "https:// URL instead" in done[2].message
    sent = rc.called("POST", "/inference")
    assert len(sent) == 2
    assert sent[0].body["overrides"]["1"]["inputs"]["image"].startswith("data:image/png;base64,")
    assert any("above RunComfy's recommended 256 KB" in r.getMessage()
               for r in caplog.records if r.levelno == logging.WARNING)
    runner.close()


def test_full_workflow_mode_sends_the_whole_graph(rc: RunComfyTestServer, tmp_path: Path) -> None:
    dep = rc.add_deployment(SEEDED)
    runner = JobRunner(backend(rc, dep, send_workflow=True))
    runner.submit(Job(workflow=Workflow(SEEDED), out_dir=tmp_path, bindings=Bindings(seed=7)))
    (final,) = finals(runner.wait_idle(10))
    assert isinstance(final, ev.JobFinished)
    (sent,) = rc.called("POST", "/inference")
    assert set(sent.body) == {"workflow_api_json"}
    assert sent.body["workflow_api_json"]["2"]["inputs"]["seed"] == 7
    runner.close()


def test_partner_key_goes_in_extra_data_only(
    rc: RunComfyTestServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = "comfyui-partner-key-SECRET"
    dep = rc.add_deployment(SEEDED)
    runner = JobRunner(backend(rc, dep, partner_key=key))
    runner.submit(Job(workflow=Workflow(SEEDED), out_dir=tmp_path, bindings=Bindings(seed=5)))
    events = runner.wait_idle(10)
    runner.close()
    assert isinstance(finals(events)[0], ev.JobFinished)
    (sent,) = rc.called("POST", "/inference")
    assert sent.body["extra_data"] == {"api_key_comfy_org": key}
    assert key not in caplog.text and key not in repr(events)


@pytest.mark.fault
def test_error_body_with_http_200_fails_the_job(rc: RunComfyTestServer, tmp_path: Path) -> None:
    dep = rc.add_deployment(SEEDED)
    rc.error_in_200 = 1
    runner = JobRunner(backend(rc, dep))
    runner.submit(Job(workflow=Workflow(SEEDED), out_dir=tmp_path, bindings=Bindings(seed=3)))
    (final,) = finals(runner.wait_idle(10))
    assert isinstance(final, ev.JobFailed)
    assert "balance is too low" in final.message and "insufficient_balance" in final.message
    assert all(t not in final.message for t in TOKENS)
    runner.close()


@pytest.mark.fault
def test_failed_result_reports_the_node(rc: RunComfyTestServer, tmp_path: Path) -> None:
    dep = rc.add_deployment(SEEDED)
    runner = JobRunner(backend(rc, dep))
    bad = Bindings(values={"2.steps": "FAIL"})
    runner.submit(Job(workflow=Workflow(SEEDED), out_dir=tmp_path, bindings=bad))
    (final,) = finals(runner.wait_idle(10))
    assert isinstance(final, ev.JobFailed)
    assert final.node_id == "2" and final.node_type == "KSampler"
    assert "made the node fail" in final.message
    runner.close()


def test_queue_position_then_cancel_reaches_runcomfy(
    rc: RunComfyTestServer, tmp_path: Path
) -> None:
    rc.run_time, rc.instances = 5.0, 1
    dep = rc.add_deployment(SEEDED)
    serverless_api(rc).submit(dep, overrides={"2": {"inputs": {"seed": 1}}})  # someone else's
    runner = JobRunner(backend(rc, dep))
    wf = Workflow(SEEDED)
    job_id = runner.submit(Job(workflow=wf, out_dir=tmp_path, bindings=Bindings(seed=2)))
    events: list[ev.Event] = []
    while not any(isinstance(e, ev.JobQueued) and e.position is not None for e in events):
        events += runner.wait_idle(0.05)
    assert [e.position for e in events if isinstance(e, ev.JobQueued)] == [None, 0]
    runner.cancel(job_id)
    (final,) = finals(events + runner.wait_idle(5))
    assert isinstance(final, ev.JobCancelled)
    assert len(rc.called("POST", "/cancel")) == 1
    assert [r.state for r in rc.inference.values()] == ["in_progress", "cancelled"]
    runner.close()


@pytest.mark.fault
def test_cancelled_spellings_and_expired_urls(rc: RunComfyTestServer, tmp_path: Path) -> None:
    assert RequestResult.model_validate({"status": "Canceled"}).state == "canceled"
    rc.url_ttl = 0.05
    dep = rc.add_deployment(SEEDED)
    api = serverless_api(rc)
    sent = api.submit(dep, overrides={"2": {"inputs": {"seed": 5}}})
    import time

    wait_for(lambda: rc.inference[sent.request_id].state == "completed")
    result = api.result(dep, sent.request_id)
    url = result.files()[0][1]["url"]
    time.sleep(0.1)  # on purpose: the link's 0.05 s lifetime passes
    from comfyrelay.net.downloads import UrlFetcher

    with pytest.raises(ServerError, match="link has expired"):
        UrlFetcher("RunComfy").save(url, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []  # nothing half-written


def test_deployments_crud_against_a_strict_server(rc: RunComfyTestServer) -> None:
    rc.graphs["wf-1"] = SEEDED
    api = serverless_api(rc)
    spec = DeploymentSpec(name="flux", workflow_id="wf-1", workflow_version="v1",
                          hardware=["AMPERE_48"], min_instances=0, max_instances=2,
                          queue_size=4, keep_warm_duration_in_seconds=120)
    created = api.create_deployment(spec)
    assert created.name == "flux" and created.payload is None
    (listed,) = api.deployments()
    assert listed.payload is not None and listed.payload.workflow_api_json == SEEDED
    assert api.deployments(ids=[created.id], payload=False)[0].payload is None
    updated = api.update_deployment(created.id, max_instances=3, is_enabled=False)
    assert updated is not None and updated.max_instances == 3 and updated.is_enabled is False
    assert api.deployment(created.id).payload is not None
    api.delete_deployment(created.id)
    assert api.deployments() == []
    with pytest.raises(ValueError, match="hardware"):
        DeploymentSpec(name="x", workflow_id="wf-1", workflow_version="v1", hardware=["RTX"])
    with pytest.raises(ServerError, match="422"):
        api.update_deployment(rc.add_deployment(SEEDED), colour="red")


# ---- RunComfy as its own clients see it (issue 16) ----

FAILURES = {  # name -> (status endpoint word, error shape, error in the status body)
    "failed, node object": ("failed", "dict", False),
    "failed, list of errors": ("failed", "list", False),
    "failed, text": ("failed", "string", False),
    "failed, error in the status": ("failed", "list", True),
    "seed 002: completed, result failed": ("completed", "list", False),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_a_failed_request_ends_at_once_with_runcomfys_words(
    rc: RunComfyTestServer, tmp_path: Path, case: str
) -> None:
    """`failed` at the status endpoint is final (runcomfy-cli, runcomfy-mcp): the job ends in
    seconds, not at the job timeout, and says what RunComfy said, readably."""
    rc.failed_status, rc.error_shape, rc.error_in_status = FAILURES[case]
    dep = rc.add_deployment(SEEDED)
    serverless = backend(rc, dep)
    assert serverless.job_timeout == 3600  # so only the status can have ended it
    runner = JobRunner(serverless)
    bad = Bindings(values={"2.steps": "FAIL"})
    start = time.monotonic()
    runner.submit(Job(workflow=Workflow(SEEDED), out_dir=tmp_path, bindings=bad))
    (final,) = finals(runner.wait_idle(10))
    seconds = time.monotonic() - start
    runner.close()
    assert isinstance(final, ev.JobFailed) and seconds < 10, (final, seconds)
    message = final.message
    assert message.startswith("RunComfy: ") and "input steps made the node fail" in message
    assert "[{" not in message and "{'" not in message  # never a raw repr
    if rc.error_shape == "list":
        assert "KSampler node 2" in message and "(error code 500; RuntimeError:" in message
    if rc.error_shape == "dict":
        assert (final.node_id, final.node_type) == ("2", "KSampler")
        assert "node 2 (KSampler) failed" in message
    fetched = rc.called("GET", "/result")
    assert fetched == [] if rc.error_in_status else len(fetched) == 1


def test_an_error_of_only_a_code_and_a_traceback_reads_as_those() -> None:
    error = [{"errorCode": 500, "error": "", "debugInfo": "Traceback (most recent call last):\n"
              "  File \"x.py\", line 1\nValueError: bad value"}]
    assert str(_failure(error)) == "RunComfy: the job failed: error code 500; ValueError: bad value"
    assert str(_failure([{}])).startswith("RunComfy reports the job failed but gave no reason")


def test_succeeded_and_canceled_are_terminal_status_spellings(
    rc: RunComfyTestServer, tmp_path: Path
) -> None:
    rc.done_spelling, rc.cancel_spelling = "succeeded", "canceled"
    dep = rc.add_deployment(SEEDED)
    runner = JobRunner(backend(rc, dep))
    runner.submit(Job(workflow=Workflow(SEEDED), out_dir=tmp_path / "a", bindings=Bindings(seed=1)))
    (done,) = finals(runner.wait_idle(10))
    assert isinstance(done, ev.JobFinished) and len(done.outputs) == 1
    rc.run_time = 30.0
    runner.submit(Job(workflow=Workflow(SEEDED), out_dir=tmp_path / "b", bindings=Bindings(seed=2)))
    wait_for(lambda: any(r.state == "in_progress" for r in list(rc.inference.values())))
    (rid,) = [r.request_id for r in rc.inference.values() if r.state == "in_progress"]
    start = time.monotonic()
    serverless_api(rc).cancel(dep, rid)  # cancelled by someone else (the dashboard)
    (final,) = finals(runner.wait_idle(10))
    runner.close()
    assert isinstance(final, ev.JobFailed) and time.monotonic() - start < 5
    assert "cancelled on RunComfy (not from this app)" in final.message


def test_lora_output_files_are_saved(rc: RunComfyTestServer, tmp_path: Path) -> None:
    """A Serverless LoRA deployment answers `output`, not `outputs` (runcomfy-cli)."""
    dep = rc.add_deployment(SEEDED, lora=True)
    runner = JobRunner(backend(rc, dep))
    runner.submit(Job(workflow=Workflow(SEEDED), out_dir=tmp_path, bindings=Bindings(seed=9)))
    events = runner.wait_idle(10)
    runner.close()
    (final,) = finals(events)
    assert isinstance(final, ev.JobFinished), final
    (path,) = final.outputs
    assert path.name == "out_00001_.png"  # from the URL's path, no filename given
    assert path.read_bytes() in [data for data, _ in rc.files.values()]
    with Image.open(path) as image:
        assert image.size == (8, 8) and image.convert("RGB").getpixel((0, 0)) == (200, 30, 30)
    assert saved_prompt(path)["2"]["inputs"]["seed"] == 9
    (output,) = [e for e in events if isinstance(e, ev.JobOutput)]
    assert output.kind == "image" and output.path == path
    (rid,) = rc.inference
    result = serverless_api(rc).result(dep, rid)
    assert result.outputs is None and isinstance(result.output, list)  # it really was `output`


def test_patch_without_a_name_carries_the_current_name(rc: RunComfyTestServer) -> None:
    """RunComfy refuses a PATCH without `name`; the official clients send the current one."""
    dep = rc.add_deployment(SEEDED, name="flux-dep")
    api = serverless_api(rc)
    updated = api.update_deployment(dep, max_instances=3)
    assert updated is not None and updated.max_instances == 3 and updated.name == "flux-dep"
    (patch,) = rc.called("PATCH", dep)
    assert patch.body == {"name": "flux-dep", "max_instances": 3}
    (read,) = rc.called("GET", dep)
    assert "includes" not in read.query  # the name only, not the whole workflow
    api.update_deployment(dep, name="renamed")
    assert rc.called("PATCH", dep)[-1].body == {"name": "renamed"}
    assert len(rc.called("GET", dep)) == 1  # a name given: nothing to look up


# name -> (test server set-up, poll interval, when to cancel, what view.status then says)
CANCELS: dict[str, tuple[Callable[[RunComfyTestServer], object], float, str, str]] = {
    "requested, the job runs on": (
        lambda rc: setattr(rc, "cancel_delay", None), 0.03, "in_progress",
        "Cancel requested on RunComfy; the job may still finish and be billed.",
    ),
    "seed 004: outcome cancelled": (
        lambda rc: setattr(rc, "cancel_reply", "outcome"), 0.03, "in_progress",
        "Cancelled on RunComfy.",
    ),
    "not cancellable: it had finished": (
        lambda rc: None, 30.0, "completed",
        "RunComfy could not cancel this job (it may have finished already); it may still be "
        "billed.",
    ),
    "the cancel call fails": (
        lambda rc: rc.inject("POST", r"/cancel$", 500), 0.03, "in_progress",
        "The cancel could not be confirmed with RunComfy",
    ),
}


def serverless_session(rc: RunComfyTestServer, dep: str, poll_interval: float) -> HostSession:
    session = HostSession()
    settings = BackendSettings.of("runcomfy-serverless", api_url=rc.url, deployment_id=dep,
                                  poll_interval=poll_interval)
    session.configure(settings, Credentials({"runcomfy_api_token": TOKENS[0],
                                             "runcomfy_api_token2": TOKENS[1]}))
    return session


@pytest.mark.parametrize("case", list(CANCELS))
@pytest.mark.parametrize("noun", ["", "frame"])
def test_host_status_tells_what_runcomfy_answered_the_cancel(
    rc: RunComfyTestServer, tmp_path: Path, case: str, noun: str
) -> None:
    setup, poll, cancel_when, said = CANCELS[case]
    setup(rc)
    rc.run_time = 1.0 if cancel_when == "completed" else 3.0
    dep = rc.add_deployment(SEEDED)
    session = serverless_session(rc, dep, poll)
    run = session.start_run("seeded", noun=noun)
    session.submit(run, Job(workflow=Workflow(SEEDED), out_dir=tmp_path, bindings=Bindings()), 1)
    wait_for(lambda: any(r.state == cancel_when for r in list(rc.inference.values())))
    session.cancel()
    pump_until(session, lambda: session.run is None, timeout=10)
    session.close()
    status = session.view.status
    frames = "after 0 of 1 frames. " if noun else ""
    assert status.startswith(f"Cancelled — {frames}{said}"), status
    if "could not be confirmed" in said:
        assert "may still run and be billed" in status and TOKENS[0] not in status
    assert len(rc.called("POST", "/cancel")) == 1
    if case == "requested, the job runs on":  # as the warning says: it finishes anyway
        wait_for(lambda: all(r.outcome == "succeeded" for r in list(rc.inference.values())))


def test_a_job_cancelled_before_it_was_sent_says_plain_cancelled(
    rc: RunComfyTestServer, tmp_path: Path
) -> None:
    """A job cancelled before it was sent has nothing to report from RunComfy."""
    rc.run_time = 3.0
    dep = rc.add_deployment(SEEDED)
    runner = JobRunner(backend(rc, dep))
    first = runner.submit(Job(workflow=Workflow(SEEDED), out_dir=tmp_path, bindings=Bindings()))
    second = runner.submit(Job(workflow=Workflow(SEEDED), out_dir=tmp_path, bindings=Bindings()))
    wait_for(lambda: any(r.state == "in_progress" for r in list(rc.inference.values())))
    runner.cancel()
    events = {e.job_id: e for e in finals(runner.wait_idle(10))}
    runner.close()
    sent, waiting = events[first], events[second]
    assert isinstance(sent, ev.JobCancelled) and isinstance(waiting, ev.JobCancelled)
    assert sent.message.startswith("Cancel requested on RunComfy;")
    assert waiting.message == "Cancelled."  # never sent
    assert len(rc.called("POST", "/inference")) == 1


def test_the_job_timeout_says_what_runcomfy_answered_the_cancel(
    rc: RunComfyTestServer, tmp_path: Path
) -> None:
    rc.run_time, rc.cancel_delay = 30.0, None  # the request runs on after the cancel
    dep = rc.add_deployment(SEEDED)
    runner = JobRunner(backend(rc, dep, job_timeout=0.3))
    runner.submit(Job(workflow=Workflow(SEEDED), out_dir=tmp_path, bindings=Bindings()))
    (final,) = finals(runner.wait_idle(10))
    runner.close()
    assert isinstance(final, ev.JobFailed), final
    assert ("did not finish within 0.3 s, so ComfyRelay asked RunComfy to cancel it: Cancel "
            "requested on RunComfy; the job may still finish and be billed.") in final.message
    assert len(rc.called("POST", "/cancel")) == 1
