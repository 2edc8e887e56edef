"""The ComfyUI contract: these tests run against the test server, or a real ComfyUI when
COMFYUI_URL is set (model-free nodes only)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path
from typing import cast

import pytest
import requests
from comfyrelay import Bindings, ComfyUIBackend, InputFile, Job, JobRunner, Workflow
from comfyrelay.comfyui.client import ComfyClient, new_id
from comfyrelay.errors import PromptRejected
from comfyrelay.jobs import events as ev
from comfyrelay.jobs.loaders import content_name
from PIL import Image

from tests import workflows
from tests.cli.test_main import comfyrelay
from tests.conftest import ComfyTarget
from tests.imaging import gradient_png, is_inverse
from tests.media import have_av, looks_like_mp4, make_mp4, make_wav, mp4_frames


def run_jobs(url: str, jobs: list[Job], timeout: float = 60) -> list[ev.Event]:
    return run_jobs_on(ComfyUIBackend(url), jobs, timeout)


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
    other_id = other.queue_prompt(workflows.slow(blurs=3).graph, new_id(), new_id()).prompt_id
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
    graph = workflows.invert().bind(Bindings(), uploaded)
    prompt_id = client.queue_prompt(graph, client_id, new_id()).prompt_id  # maybe the server's
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


# What each version lacks, as `check` names it (docs/WIRE.md §1.2): keyed by version prefix.
LACKS = {
    "0.3.44": {"feature flags", "client-chosen prompt ids", "targeted interrupt", "job routes"},
    "0.3.64": {"job routes"},
    "0.38.": set(),
}


def test_check_names_what_the_server_lacks(comfy: ComfyTarget) -> None:
    backend = ComfyUIBackend(comfy.url)
    message = backend.check()
    backend.close()
    assert message.startswith("Connected to ComfyUI ") and comfy.url in message
    expected = next((v for k, v in LACKS.items() if backend.server_version.startswith(k)), None)
    assert expected is not None, (
        f"ComfyUI {backend.server_version}: write what it lacks into LACKS first ({message})"
    )
    named = {topic for topic in LACKS["0.3.44"] if topic in message}
    assert named == expected, message


def test_the_servers_prompt_id_is_followed(comfy: ComfyTarget, tmp_path: Path) -> None:
    backend = ComfyUIBackend(comfy.url)
    backend.check()
    name, png = unique_png()
    events = run_jobs_on(backend, [Job(workflows.invert(), tmp_path, image=InputFile(name, png))])
    assert isinstance(finals(events)[0], ev.JobFinished)
    old = backend.server_version.startswith("0.3.44")
    assert backend.client.traits.keeps_prompt_ids is (not old)


def run_jobs_on(backend: ComfyUIBackend, jobs: list[Job], timeout: float = 60) -> list[ev.Event]:
    runner = JobRunner(backend)
    for job in jobs:
        runner.submit(job)
    events = runner.wait_idle(timeout=timeout)
    busy = runner.busy
    runner.close()
    assert not busy, "jobs did not end in time"
    return events


def test_subgraph_ids_are_shown_with_their_titles(comfy: ComfyTarget, tmp_path: Path) -> None:
    # A converted subgraph keys its inner nodes "12:5" with their own titles (docs/WIRE.md §1.3).
    graph = {
        ("12:" + k if k != "1" else k): node for k, node in workflows.failing().graph.items()
    }
    for node in graph.values():
        for key, value in node["inputs"].items():
            if isinstance(value, list) and value[0] != "1":
                node["inputs"][key] = ["12:" + value[0], value[1]]
    graph["12:4"]["_meta"]["title"] = "Alpha in subgraph"
    name, png = unique_png()
    job = Job(Workflow(graph, "subgraph"), tmp_path, image=InputFile(name, png))
    events = run_jobs(comfy.url, [job])
    titles = {(e.node_id, e.node_title) for e in events if isinstance(e, ev.JobProgress)}
    assert ("12:4", "Alpha in subgraph") in titles
    final = finals(events)[0]
    assert isinstance(final, ev.JobFailed) and final.node_id == "12:4"
    assert "Node 12:4 'Alpha in subgraph' (ImageToMask) failed" in final.message


def test_partner_key_reaches_the_server_and_no_message(
    comfy: ComfyTarget, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = f"comfyui-relaytest{uuid.uuid4().hex}"
    backend = ComfyUIBackend(comfy.url, partner_key=key)
    backend.check()
    caplog.set_level(logging.DEBUG)
    name, png = unique_png()
    events = run_jobs_on(backend, [Job(workflows.invert(), tmp_path, image=InputFile(name, png))])
    assert isinstance(finals(events)[0], ev.JobFinished)
    assert key not in caplog.text and key not in repr(events)
    # The server took it. 0.3.44 keeps it in the history entry's extra_data, for anyone who
    # can read /history; 0.3.64 drops it there at the end of the run, newer servers at once.
    recent = requests.get(f"{comfy.url}/history", params={"max_items": 20}, timeout=10).json()
    ours = [e["prompt"][3] for e in recent.values()
            if e["prompt"][3].get("client_id") == backend.client_id]
    assert len(ours) == 1
    if comfy.server is not None:
        assert comfy.server.prompts[-1]["extra_data"]["api_key_comfy_org"] == key
    if backend.server_version.startswith("0.3.44"):
        assert ours[0].get("api_key_comfy_org") == key
    else:
        assert "api_key_comfy_org" not in ours[0]


def test_run_video_workflow_saves_an_mp4(comfy: ComfyTarget, tmp_path: Path) -> None:
    """`comfyrelay run` of LoadVideo -> ImageInvert -> CreateVideo -> SaveVideo with an mp4."""
    clip = make_mp4(tmp_path / f"clip-{uuid.uuid4().hex[:8]}.mp4")
    workflow = tmp_path / "video.json"
    workflow.write_text(json.dumps(workflows.video_invert().graph))
    result = comfyrelay(
        "run", workflow, "--server", comfy.url, "--image", clip, "--out", tmp_path / "out"
    )
    assert result.returncode == 0, result.stderr
    saved = [Path(line) for line in result.stdout.splitlines()]
    assert len(saved) == 1 and saved[0].suffix == ".mp4" and looks_like_mp4(saved[0])
    frames = mp4_frames(saved[0])
    if frames is not None:  # the test side can decode: the frames came back inverted
        source = mp4_frames(clip)
        assert source is not None and len(frames) == len(source)
        got = cast(tuple[int, ...], frames[2].getpixel((40, 20)))
        want = tuple(255 - v for v in cast(tuple[int, ...], source[2].getpixel((40, 20))))
        assert all(abs(a - b) <= 24 for a, b in zip(got, want, strict=True)), (got, want)


def test_outputs_say_their_kind(comfy: ComfyTarget, tmp_path: Path) -> None:
    """A video, an animated WebP and a sound each come back as what they are."""
    if comfy.server is not None and not have_av():
        pytest.fail("the test server runs video and audio nodes with PyAV: pip install -e .[test]")
    clip = make_mp4(tmp_path / f"clip-{uuid.uuid4().hex[:8]}.mp4")
    wav = make_wav(tmp_path / f"tone-{uuid.uuid4().hex[:8]}.wav")
    jobs = [
        Job(workflows.video_invert(), tmp_path / "video", image=InputFile.from_path(clip)),
        Job(workflows.animated_webp(), tmp_path / "webp"),
        Job(workflows.audio_copy(), tmp_path / "audio", image=InputFile.from_path(wav)),
    ]
    events = run_jobs(comfy.url, jobs)
    assert all(isinstance(e, ev.JobFinished) for e in finals(events)), finals(events)
    kinds = {(e.path.suffix, e.kind, e.animated) for e in events if isinstance(e, ev.JobOutput)}
    assert kinds == {(".mp4", "video", True), (".webp", "image", True), (".flac", "audio", False)}


# ---- every input a workflow has (issue: several loaders, masks, only real results) ----
def _composite_workflow() -> dict[str, object]:
    """Two images and a mask: where the mask is white, B over A (ImageCompositeMasked)."""
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}, "_meta": {"title": "A"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "b.png"}, "_meta": {"title": "B"}},
        "3": {"class_type": "LoadImageMask", "inputs": {"image": "m.png", "channel": "alpha"},
              "_meta": {"title": "M"}},
        "4": {"class_type": "ImageCompositeMasked",
              "inputs": {"destination": ["1", 0], "source": ["2", 0], "x": 0, "y": 0,
                         "resize_source": False, "mask": ["3", 0]}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0],
                                                    "filename_prefix": "composite"}},
    }


def _png(image: Image.Image, path: Path) -> Path:
    image.save(path)
    return path


def test_three_loaders_and_a_mask_give_the_exact_composite(comfy: ComfyTarget,
                                                           tmp_path: Path) -> None:
    """`run --image A=… --image B=… --mask M=…`: each file reaches its loader, and the host
    mask (white = change) is sent as the alpha LoadImageMask inverts (docs/WIRE.md §1.9)."""
    w, h = 48, 32
    tag = uuid.uuid4().hex[:6]  # files of their own on a real server
    a = Image.new("RGB", (w, h), (200, 40, 10))
    a.putdata([(x * 5, y * 7, (x + y + len(tag)) % 256) for y in range(h) for x in range(w)])
    b = Image.new("RGB", (w, h), (10, 220, 90))
    mask = Image.new("L", (w, h), 0)
    mask.paste(255, (8, 4, 30, 20))  # white: take B here
    workflow = tmp_path / "composite.json"
    workflow.write_text(json.dumps(_composite_workflow()))
    result = comfyrelay(
        "run", workflow, "--server", comfy.url, "--out", tmp_path / "out",
        "--image", f"A={_png(a, tmp_path / f'a-{tag}.png')}",
        "--image", f"B={_png(b, tmp_path / f'b-{tag}.png')}",
        "--mask", f"M={_png(mask, tmp_path / f'm-{tag}.png')}",
    )
    assert result.returncode == 0, result.stderr
    (saved,) = [Path(line) for line in result.stdout.splitlines()]
    got = Image.open(saved).convert("RGB")
    expected = a.copy()
    expected.paste(b, (0, 0), mask)
    assert got.size == (w, h) and got.tobytes() == expected.tobytes()


def _input_files(comfy: ComfyTarget) -> list[str]:
    """What the server's LoadImage offers: its input folder."""
    info = requests.get(f"{comfy.url}/object_info/LoadImage", timeout=10).json()
    return list(info["LoadImage"]["input"]["required"]["image"][0])


def test_the_same_bytes_for_two_loaders_are_one_file_on_the_server(
    comfy: ComfyTarget, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    source = tmp_path / f"same-{tag}.png"
    source.write_bytes(gradient_png(40, 30))
    graph = _composite_workflow()
    graph["3"] = {"class_type": "ImageToMask", "inputs": {"image": ["1", 0], "channel": "red"}}
    workflow = tmp_path / "two.json"
    workflow.write_text(json.dumps(graph))
    for _ in range(2):  # a second run sends nothing new either
        result = comfyrelay("run", workflow, "--server", comfy.url, "--out", tmp_path / "out",
                            "--image", f"A={source}", "--image", f"B={source}")
        assert result.returncode == 0, result.stderr
    # Named after its content, whatever the file was called: one file holds it.
    named = content_name(source.name, source.read_bytes())
    ours = [name for name in _input_files(comfy) if name.split(" (")[0] == Path(named).stem
            or name == named or name.startswith(Path(named).stem)]
    assert ours == [named], ours


def test_a_preview_of_the_input_is_not_a_result(comfy: ComfyTarget, tmp_path: Path) -> None:
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
        "3": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0],
                                                    "filename_prefix": "inverted"}},
    }
    workflow = tmp_path / "preview.json"
    workflow.write_text(json.dumps(graph))
    name, png = unique_png()
    source = tmp_path / name
    source.write_bytes(png)
    result = comfyrelay("run", workflow, "--server", comfy.url, "--image", source,
                        "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    (saved,) = [Path(line) for line in result.stdout.splitlines()]
    assert is_inverse(png, saved)  # the SaveImage result, not the user's own image back
    assert [p.name for p in (tmp_path / "out").iterdir()] == [saved.name]
    picked = comfyrelay("run", workflow, "--server", comfy.url, "--image", source,
                        "--output", "2", "--out", tmp_path / "picked")
    assert picked.returncode == 0, picked.stderr
    (preview,) = [Path(line) for line in picked.stdout.splitlines()]
    assert Image.open(preview).convert("RGB").tobytes() == Image.open(source).convert(
        "RGB").tobytes()


def test_a_loader_without_a_file_stops_the_run_before_queueing(comfy: ComfyTarget,
                                                               tmp_path: Path) -> None:
    workflow = tmp_path / "composite.json"
    graph = _composite_workflow()
    graph["2"]["inputs"]["image"] = f"missing-{uuid.uuid4().hex}.png"  # type: ignore[index]
    workflow.write_text(json.dumps(graph))
    source = tmp_path / "a.png"
    source.write_bytes(gradient_png(40, 30))
    result = comfyrelay("run", workflow, "--server", comfy.url, "--out", tmp_path / "out",
                        "--image", f"A={source}", "--mask", f"M={source}")
    assert result.returncode == 1
    assert "loader 2 (B) keeps" in result.stderr and "--image 2=PATH" in result.stderr
    assert not (tmp_path / "out").exists()
