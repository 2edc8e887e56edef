"""ComfyICU: a run completes and its outputs are saved; inputs only by URL; no cancel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from comfyrelay import Bindings, InputFile, Job, JobRunner
from comfyrelay.comfyicu.icu_backend import ComfyICUBackend, Run
from comfyrelay.errors import ComfyRelayError
from comfyrelay.jobs import events as ev
from PIL import Image

from tests.hosted import ICU_KEY, finals, icu_api, no_secret_in_requests
from tests.servers.comfyicu import ComfyICUTestServer
from tests.workflows import invert

IMAGE_URL = "https://assets.example.com/photos/cat%20one.png?sig=1"


def backend(icu: ComfyICUTestServer, **kw: Any) -> ComfyICUBackend:
    return ComfyICUBackend(icu_api(icu), "wf-icu", poll_interval=0.03, **kw)


def test_run_completes_and_outputs_are_saved(icu: ComfyICUTestServer, tmp_path: Path) -> None:
    runner = JobRunner(backend(icu, accelerator="A10"))
    bindings = Bindings(values={"1.image": IMAGE_URL})
    runner.submit(Job(workflow=invert(), out_dir=tmp_path / "out", bindings=bindings))
    events = runner.wait_idle(10)
    (final,) = finals(events)
    assert isinstance(final, ev.JobFinished), final
    (path,) = final.outputs
    assert path.parent == tmp_path / "out" and path.name == "inverted_3_00001_.png"
    with Image.open(path) as image:
        assert json.loads(image.info["prompt"])["1"]["inputs"]["image"] == "cat one.png"
    assert any(isinstance(e, ev.JobProgress) and "ComfyICU" in e.message for e in events)
    (sent,) = icu.called("POST", "/runs")
    assert sent.body["files"] == {"/input/cat one.png": IMAGE_URL}
    assert sent.body["accelerator"] == "A10" and sent.body["workflow_id"] == "wf-icu"
    assert sent.authorization == f"Bearer {ICU_KEY}"
    assert all(not r.authorization for r in icu.file_requests)
    runner.close()
    no_secret_in_requests(icu)


def test_local_image_without_url_says_what_to_provide(
    icu: ComfyICUTestServer, tmp_path: Path
) -> None:
    runner = JobRunner(backend(icu))
    runner.submit(Job(workflow=invert(), out_dir=tmp_path, image=InputFile("render.png", b"x")))
    (final,) = finals(runner.wait_idle(10))
    assert isinstance(final, ev.JobFailed) and final.error_type == "WorkflowError"
    assert "public URL" in final.message and "render.png" in final.message
    assert icu.requests == []  # nothing was sent
    runner.close()


@pytest.mark.fault
def test_error_run_and_lowercase_statuses(tmp_path: Path) -> None:
    with ComfyICUTestServer(api_key=ICU_KEY, lowercase=True) as icu:
        runner = JobRunner(backend(icu))
        runner.submit(Job(workflow=invert(), out_dir=tmp_path))  # LoadImage file never given
        (final,) = finals(runner.wait_idle(10))
        assert isinstance(final, ev.JobFailed)
        assert "ended with error" in final.message and "example.png" in final.message
        runner.close()


def test_files_setting_and_no_cancel(icu: ComfyICUTestServer, tmp_path: Path) -> None:
    icu.run_time = 5.0
    b = backend(icu, files={"/input/example.png": IMAGE_URL})
    assert b.capabilities.cancel is False and b.capabilities.uploads is False
    runner = JobRunner(b)
    job_id = runner.submit(Job(workflow=invert(), out_dir=tmp_path))
    events: list[ev.Event] = []
    while not any(isinstance(e, ev.JobQueued) for e in events):
        events += runner.wait_idle(0.05)
    runner.cancel(job_id)
    (final,) = finals(events + runner.wait_idle(5))
    assert isinstance(final, ev.JobCancelled)  # stopped waiting, and the user is told so
    assert final.message.startswith("Stopped waiting. ComfyICU has no way to cancel a run")
    assert icu.called("POST", "/runs")[0].body["files"] == {"/input/example.png": IMAGE_URL}
    runner.close()


@pytest.mark.fault
def test_bad_accelerator_and_wrong_key(icu: ComfyICUTestServer, tmp_path: Path) -> None:
    with pytest.raises(ComfyRelayError, match="T4, L4"):
        backend(icu, accelerator="RTX4090")
    from comfyrelay.comfyicu.icu_backend import ComfyICU
    from comfyrelay.errors import AuthenticationFailed

    client = ComfyICU("wrong-key-SECRET", api_url=icu.url + "/api/v1")
    with pytest.raises(AuthenticationFailed) as caught:
        client.get_run("wf-icu", "nope")
    assert "wrong-key-SECRET" not in str(caught.value)


def test_run_model_tolerates_nulls() -> None:
    run = Run.model_validate({"id": "r", "status": "Completed", "output": None, "extra": 1})
    assert run.state == "completed" and run.output is None
