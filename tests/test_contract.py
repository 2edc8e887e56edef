"""The ComfyUI contract: these tests run against the test server, or a real ComfyUI when
COMFYUI_URL is set (model-free nodes only)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import requests
from comfyrelay import Bindings, ComfyUIBackend, InputFile, Job, JobRunner
from comfyrelay.comfyui.client import ComfyClient, new_id
from comfyrelay.errors import PromptRejected
from comfyrelay.jobs import events as ev

from tests import workflows
from tests.conftest import ComfyTarget
from tests.imaging import gradient_png, is_inverse


def run_jobs(url: str, jobs: list[Job], timeout: float = 60) -> list[ev.Event]:
    runner = JobRunner(ComfyUIBackend(url))
    for job in jobs:
        runner.submit(job)
    events = runner.wait_idle(timeout=timeout)
    busy = runner.busy
    runner.close()
    assert not busy, "jobs did not end in time"
    return events


def finals(events: list[ev.Event]) -> list[ev.Event]:
    return [e for e in events if isinstance(e, ev.FINAL_EVENTS)]


def unique_png() -> tuple[str, bytes]:
    """A new name and image per test, so a real server's input folder can't interfere."""
    return f"relay-{uuid.uuid4().hex[:8]}.png", gradient_png(64, 48)


def test_check_names_the_version(comfy: ComfyTarget) -> None:
    message = ComfyUIBackend(comfy.url).check()
    assert message.startswith("Connected to ComfyUI ") and comfy.url in message


def test_upload_keeps_or_renames_like_comfyui(comfy: ComfyTarget) -> None:
    client = ComfyClient(comfy.url)
    name, png = unique_png()
    first = client.upload(name, png)
    assert first == name
    assert client.upload(name, png) == name  # same bytes: same name
    renamed = client.upload(name, gradient_png(32, 32))
    assert renamed != name and renamed.startswith(name[:-4]) and renamed.endswith(".png")


def test_invert_job_end_to_end(comfy: ComfyTarget, tmp_path: Path) -> None:
    name, png = unique_png()
    job = Job(workflows.invert(), tmp_path / "out", image=InputFile(name, png))
    events = run_jobs(comfy.url, [job])
    final = finals(events)[0]
    assert isinstance(final, ev.JobFinished), final
    assert len(final.outputs) == 1 and final.outputs[0].parent == (tmp_path / "out").resolve()
    assert is_inverse(png, final.outputs[0])
    kinds = {type(e) for e in events}
    assert {ev.JobStarted, ev.JobQueued, ev.JobProgress, ev.JobOutput} <= kinds
    outputs = [e for e in events if isinstance(e, ev.JobOutput)]
    assert outputs[0].path == final.outputs[0] and outputs[0].node_id == "3"


def test_cached_rerun_still_returns_outputs(comfy: ComfyTarget, tmp_path: Path) -> None:
    name, png = unique_png()
    job = Job(workflows.invert(), tmp_path / "out", image=InputFile(name, png))
    first, second = finals(run_jobs(comfy.url, [job, job]))
    assert isinstance(first, ev.JobFinished) and isinstance(second, ev.JobFinished)
    assert first.outputs != second.outputs  # a second file, nothing overwritten
    assert is_inverse(png, second.outputs[0])


def test_node_error_names_the_node(comfy: ComfyTarget, tmp_path: Path) -> None:
    name, png = unique_png()
    job = Job(workflows.failing(), tmp_path / "out", image=InputFile(name, png))
    final = finals(run_jobs(comfy.url, [job]))[0]
    assert isinstance(final, ev.JobFailed), final
    assert final.node_id == "4" and final.node_type == "ImageToMask"
    assert "'Alpha'" in final.message


def test_invalid_prompt_lists_each_failing_input(comfy: ComfyTarget) -> None:
    client = ComfyClient(comfy.url)
    graph = workflows.invert().bind(Bindings(), f"missing-{uuid.uuid4().hex}.png")
    with pytest.raises(PromptRejected) as err:
        client.queue_prompt(graph, new_id(), new_id())
    problems = err.value.problems
    assert [(p.node_id, p.class_type, p.input_name) for p in problems] == [
        ("1", "LoadImage", "image")
    ]
    assert "node 1 (LoadImage), input 'image'" in str(err.value)


def test_unknown_node_class_is_explained(comfy: ComfyTarget) -> None:
    graph = workflows.invert().graph | {"9": {"class_type": "NoSuchNode", "inputs": {}}}
    with pytest.raises(PromptRejected) as err:
        ComfyClient(comfy.url).queue_prompt(graph, new_id(), new_id())
    assert "NoSuchNode" in str(err.value)
    assert "custom nodes" in str(err.value)


def test_cancel_running_job_interrupts_only_ours(comfy: ComfyTarget, tmp_path: Path) -> None:
    if comfy.server is not None:
        comfy.server.node_delay = 0.5
    runner = JobRunner(ComfyUIBackend(comfy.url))
    job_id = runner.submit(Job(workflows.slow(), tmp_path / "out"))
    deadline = time.monotonic() + 30
    seen: list[ev.Event] = []
    while not any(isinstance(e, ev.JobProgress) for e in seen) and time.monotonic() < deadline:
        seen += runner.poll()
        time.sleep(0.02)
    runner.cancel(job_id)
    seen += runner.wait_idle(timeout=30)
    runner.close()
    assert isinstance(finals(seen)[0], ev.JobCancelled)
    running, pending = ComfyClient(comfy.url).queue()
    assert running == [] and pending == []


def test_cancel_pending_job_dequeues_it(comfy: ComfyTarget, tmp_path: Path) -> None:
    if comfy.server is not None:
        comfy.server.node_delay = 0.3
    other = ComfyClient(comfy.url)
    # Someone else's long job runs first; ours waits behind it and is cancelled there.
    other_id = new_id()
    other.queue_prompt(workflows.slow(blurs=3).graph, new_id(), other_id)
    runner = JobRunner(ComfyUIBackend(comfy.url))
    job_id = runner.submit(Job(workflows.slow(blurs=2, size=256), tmp_path / "out"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(isinstance(e, ev.JobQueued) for e in runner.poll()):
            break
        time.sleep(0.02)
    runner.cancel(job_id)
    final = finals(runner.wait_idle(timeout=30))
    runner.close()
    assert isinstance(final[0], ev.JobCancelled)
    while other.history(other_id) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    entry = other.history(other_id)
    assert entry is not None and entry.status.status_str == "success"  # theirs was untouched


def test_view_refuses_traversal(comfy: ComfyTarget) -> None:
    view = f"{comfy.url}/view"
    assert (
        requests.get(
            view, params={"filename": "../secret.png", "type": "output"}, timeout=10
        ).status_code
        == 400
    )
    assert (
        requests.get(
            view, params={"filename": "x.png", "subfolder": "../..", "type": "output"}, timeout=10
        ).status_code
        == 403
    )


def test_origin_header_is_never_sent(comfy: ComfyTarget) -> None:
    # A loopback ComfyUI answers a foreign Origin with 403; our client must not send one.
    assert (
        requests.get(
            f"{comfy.url}/system_stats", headers={"Origin": "http://evil.example"}, timeout=10
        ).status_code
        == 403
    )
    ComfyClient(comfy.url).system_stats()
    socket = ComfyClient(comfy.url).open_events(new_id())
    socket.close()


def test_events_arrive_as_typed_messages(comfy: ComfyTarget) -> None:
    client = ComfyClient(comfy.url)
    name, png = unique_png()
    uploaded = client.upload(name, png)
    client_id = new_id()
    socket = client.open_events(client_id)
    prompt_id = new_id()
    client.queue_prompt(workflows.invert().bind(Bindings(), uploaded), client_id, prompt_id)
    kinds: list[str] = []
    deadline = time.monotonic() + 30
    while "Executing:None" not in kinds and time.monotonic() < deadline:
        for message in socket.receive(0.5):
            if message.prompt_id == prompt_id:
                node = getattr(message, "node", "")
                kinds.append(type(message).__name__ + (f":{node}" if node is None else ""))
    socket.close()
    assert kinds[0] == "ExecutionStart"
    assert "Executed" in kinds and "ExecutionSuccess" in kinds
    assert kinds.index("ExecutionSuccess") < kinds.index("Executing:None")
    assert client.history(prompt_id) is not None
