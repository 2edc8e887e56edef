"""Which file goes to which loader: by id or title, one source per loader (and a mask), masks
to loaders that read them, files named after their content, and the role a host's default
source comes from."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from comfyrelay.errors import WorkflowError
from comfyrelay.jobs import loaders
from comfyrelay.jobs.job import InputFile, Job, MediaInput
from comfyrelay.jobs.loaders import Role, content_name, workflow_loaders
from comfyrelay.jobs.raster import Pixels
from comfyrelay.jobs.workflow import Bindings, Workflow
from PIL import Image


def graph(**extra: dict[str, Any]) -> Workflow:
    nodes: dict[str, Any] = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "render.png"},
              "_meta": {"title": "Render"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "depth.png"},
              "_meta": {"title": "Load Image"}},
        "3": {"class_type": "ControlNetLoader",
              "inputs": {"control_net_name": "control_v11f1p_sd15_depth.pth"}},
        "4": {"class_type": "ControlNetApply",
              "inputs": {"image": ["2", 0], "control_net": ["3", 0], "strength": 1.0,
                         "conditioning": ["9", 0]}},
        "5": {"class_type": "LoadImageMask", "inputs": {"image": "m.png", "channel": "red"}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}},
        **extra,
    }
    return Workflow(nodes, "depth")


def png(width: int = 4, height: int = 2, mode: str = "RGB") -> InputFile:
    buf = io.BytesIO()
    Image.new(mode, (width, height), 128).save(buf, "PNG")
    return InputFile("in.png", buf.getvalue())


def test_each_input_goes_to_the_loader_it_names_and_masks_to_mask_loaders() -> None:
    wf = graph()
    chosen = loaders.assign(wf, [MediaInput("Render", png()), MediaInput("2", png()),
                                 MediaInput(None, png(), mask=True)])
    assert sorted(chosen) == ["1", "2", "5"]
    files = loaders.prepare(wf, [MediaInput("Render", png()), MediaInput(None, png(),
                                                                       mask=True)])
    assert [f.node_id for f in files] == ["1", "5"]


def test_one_source_per_loader_and_a_mask_only_where_it_can_go() -> None:
    wf = graph()
    with pytest.raises(WorkflowError, match="Two inputs are bound to loader 1 \\(Render\\)"):
        loaders.assign(wf, [MediaInput("1", png()), MediaInput("Render", png())])
    with pytest.raises(WorkflowError, match="ControlNetLoader\\) cannot load a mask"):
        loaders.assign(wf, [MediaInput("3", png(), mask=True)])
    with pytest.raises(WorkflowError, match="no node 'Nope'"):
        loaders.assign(wf, [MediaInput("Nope", png())])
    with pytest.raises(WorkflowError, match="several image loaders"):
        loaders.check(Job(wf, Path(), Bindings(), media=(MediaInput(None, png()),)))


def test_an_image_and_a_mask_to_one_load_image_become_one_rgba_file() -> None:
    wf = graph()
    mask = InputFile.from_pixels("sel.png", Pixels(4, 2, 1, bytes([255, 0, 0, 0] * 2)))
    (file,) = loaders.prepare(wf, [MediaInput("1", png()), MediaInput("1", mask, mask=True)])
    image = Image.open(io.BytesIO(file.data))
    assert image.mode == "RGBA" and image.getchannel("A").tobytes() == bytes([0, 255, 255, 255] * 2)
    assert file.name.startswith("comfyrelay-") and file.name.endswith(".png")


def test_the_same_bytes_get_the_same_name_and_other_bytes_another() -> None:
    assert content_name("render.png", b"abc") == content_name("render.png", b"abc")
    assert content_name("render.png", b"abc") != content_name("render.png", b"abd")
    assert content_name("render.png", b"abc").startswith("comfyrelay-")


def test_roles_come_from_titles_and_the_nodes_a_loader_feeds() -> None:
    roles = {x.node_id: (x.kind, x.role) for x in workflow_loaders(graph())}
    assert roles == {"1": ("image", Role.IMAGE), "2": ("image", Role.DEPTH),
                     "5": ("mask", Role.MASK)}
    titled = graph(**{"7": {"class_type": "LoadImage", "inputs": {"image": "n.png"},
                            "_meta": {"title": "Normal map"}}})
    assert {x.node_id: x.role for x in workflow_loaders(titled)}["7"] is Role.NORMAL


def test_an_image_alone_goes_to_the_image_loader_beside_a_mask_loader() -> None:
    """The usual inpainting graph: `--image PATH` finds the LoadImage, not the mask loader."""
    wf = Workflow({
        "1": {"class_type": "LoadImage", "inputs": {"image": "photo.png"}},
        "2": {"class_type": "LoadImageMask", "inputs": {"image": "m.png", "channel": "red"}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}},
    }, "inpaint")
    chosen = loaders.assign(wf, [MediaInput(None, png()), MediaInput(None, png(), mask=True)])
    assert {nid: [i.mask for i in items] for nid, items in chosen.items()} == {
        "1": [False], "2": [True]}


def test_a_file_bound_to_two_loaders_is_read_once(tmp_path: Path) -> None:
    """A host's temporary save is deleted once read: the second loader must not read it."""
    path = tmp_path / "render.png"
    path.write_bytes(png().data)
    once = InputFile.from_path(path, read_now=False, temporary=True)
    files = loaders.prepare(graph(), [MediaInput("1", once), MediaInput("2", once)])
    assert [f.node_id for f in files] == ["1", "2"] and files[0].data == files[1].data
    assert files[0].name == files[1].name and not path.exists()


def test_the_name_follows_the_bytes_not_the_file_name() -> None:
    assert content_name("render.png", b"abc") == content_name("copy.PNG", b"abc")
