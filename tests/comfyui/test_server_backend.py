"""The ComfyUI back end's uploads: each content sent once per server while the process runs,
also for two loaders and a second run; sent again once when the server has lost it."""

from __future__ import annotations

import io
from pathlib import Path

from comfyrelay import ComfyUIBackend, InputFile, Job, MediaInput, Workflow
from comfyrelay.jobs import events as ev
from PIL import Image

from tests.hosted import finals
from tests.imaging import gradient_png
from tests.servers.comfyui import ComfyTestServer
from tests.system.test_contract import run_jobs_on

TWO = Workflow({
    "1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}},
    "2": {"class_type": "LoadImage", "inputs": {"image": "b.png"}},
    "3": {"class_type": "ImageCompositeMasked",
          "inputs": {"destination": ["1", 0], "source": ["2", 0], "x": 0, "y": 0,
                     "resize_source": False}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "t"}},
}, "two")


def uploads(server: ComfyTestServer) -> int:
    return sum(1 for seen in server.seen if seen == "POST /upload/image")


def two_loaders(out: Path, png: bytes) -> Job:
    """The same bytes for both loaders, as two files of different names."""
    return Job(TWO, out, media=(MediaInput("1", InputFile("render.png", png)),
                                MediaInput("2", InputFile("copy.png", png))))


def test_the_same_bytes_go_once_for_two_loaders_and_two_runs(comfy_server: ComfyTestServer,
                                                              tmp_path: Path) -> None:
    png = gradient_png(24, 16)
    events = run_jobs_on(ComfyUIBackend(comfy_server.url),
                         [two_loaders(tmp_path / "a", png), two_loaders(tmp_path / "b", png)], 60)
    assert all(isinstance(e, ev.JobFinished) for e in finals(events)), finals(events)
    assert uploads(comfy_server) == 1
    assert len(list(comfy_server.input_dir.iterdir())) == 1  # one file on the server


def test_a_file_the_server_lost_is_sent_again(comfy_server: ComfyTestServer,
                                              tmp_path: Path) -> None:
    png = gradient_png(20, 12)
    backend = ComfyUIBackend(comfy_server.url)
    first = run_jobs_on(backend, [two_loaders(tmp_path / "a", png)], 60)
    assert isinstance(finals(first)[0], ev.JobFinished)
    for file in comfy_server.input_dir.iterdir():  # its input folder emptied meanwhile
        file.unlink()
    again = run_jobs_on(ComfyUIBackend(comfy_server.url), [two_loaders(tmp_path / "b", png)], 60)
    final = finals(again)[0]
    assert isinstance(final, ev.JobFinished), final
    assert uploads(comfy_server) == 2  # once more, after the server refused the prompt
    saved = Image.open(io.BytesIO(final.outputs[0].read_bytes()))
    assert saved.size == (20, 12)
