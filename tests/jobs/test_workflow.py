"""Loading API-format workflows, listing their inputs and binding values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from comfyrelay import Bindings, Workflow, WorkflowError
from comfyrelay.jobs.workflow import node_title

from tests.paths import WORKFLOWS


def test_ui_format_is_refused_with_export_instructions() -> None:
    with pytest.raises(WorkflowError) as err:
        Workflow.load(WORKFLOWS / "invert_ui.json")
    assert "UI-format" in str(err.value)
    assert "Export (API)" in str(err.value)


def test_not_json_and_missing_file_say_so(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(WorkflowError, match="not a JSON workflow"):
        Workflow.load(bad)
    with pytest.raises(WorkflowError, match="not found"):
        Workflow.load(tmp_path / "missing.json")


def test_workflow_without_output_node_is_refused() -> None:
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}}}
    with pytest.raises(WorkflowError, match="no output node"):
        Workflow(graph, "lonely")


def test_inputs_lists_bindable_literals_with_kinds() -> None:
    wf = Workflow.load(WORKFLOWS / "sd15_img2img_api.json")
    kinds = {i.key: i.kind for i in wf.inputs()}
    assert kinds["10.image"] == "image"
    assert kinds["6.text"] == "prompt"
    assert kinds["3.seed"] == "seed"
    assert kinds["3.denoise"] == "denoise"
    assert kinds["11.width"] == "number"
    assert "3.model" not in kinds  # links are not values
    assert "10.upload" not in kinds


def test_bind_sets_image_prompt_seed_denoise_and_titles() -> None:
    wf = Workflow.load(WORKFLOWS / "sd15_img2img_api.json")
    graph = wf.bind(
        Bindings(prompt="ink", seed=7, denoise=0.3, values={"Fit to 768.width": 640}),
        image_name="render (1).png",
    )
    assert graph["10"]["inputs"]["image"] == "render (1).png"
    assert graph["6"]["inputs"]["text"] == "ink"  # the positive prompt, not "7"
    assert graph["7"]["inputs"]["text"] == "lowres"
    assert graph["3"]["inputs"]["seed"] == 7
    assert graph["3"]["inputs"]["denoise"] == 0.3
    assert graph["11"]["inputs"]["width"] == 640
    assert wf.graph["11"]["inputs"]["width"] == 768  # the loaded workflow is untouched


def test_random_seed_is_resolved_once() -> None:
    resolved = Bindings(random_seed=True).resolve()
    assert resolved.seed is not None and not resolved.random_seed
    assert resolved.resolve().seed == resolved.seed


def test_unknown_node_lists_the_nodes() -> None:
    wf = Workflow.load(WORKFLOWS / "invert_api.json")
    with pytest.raises(WorkflowError) as err:
        wf.bind(Bindings(values={"9.image": 1}))
    assert "no node '9'" in str(err.value)
    assert "1 (Input)" in str(err.value) and "3 (Save)" in str(err.value)


def test_unknown_input_lists_the_inputs() -> None:
    wf = Workflow.load(WORKFLOWS / "sd15_txt2img_api.json")
    with pytest.raises(WorkflowError) as err:
        wf.bind(Bindings(values={"KSampler.sead": 1}))
    assert "no input 'sead'" in str(err.value)
    assert "seed" in str(err.value) and "steps" in str(err.value)


def test_linked_input_cannot_be_set() -> None:
    wf = Workflow.load(WORKFLOWS / "invert_api.json")
    with pytest.raises(WorkflowError, match="connected to node 1"):
        wf.bind(Bindings(values={"2.image": "x.png"}))


def test_seed_on_workflow_without_sampler_is_an_error() -> None:
    wf = Workflow.load(WORKFLOWS / "invert_api.json")
    with pytest.raises(WorkflowError, match="no seed input"):
        wf.bind(Bindings(seed=3))


def test_image_node_must_be_chosen_when_ambiguous(tmp_path: Path) -> None:
    graph = json.loads((WORKFLOWS / "invert_api.json").read_text())
    graph["4"] = {"class_type": "LoadImage", "inputs": {"image": "b.png"}, "_meta": {"title": "B"}}
    wf = Workflow(graph, "two")
    with pytest.raises(WorkflowError, match="several image loaders"):
        wf.bind(Bindings(), image_name="x.png")
    assert wf.bind(Bindings(image_node="B"), "x.png")["4"]["inputs"]["image"] == "x.png"
    with pytest.raises(WorkflowError, match="not an image loader"):
        wf.bind(Bindings(image_node="Invert"), "x.png")


def test_workflow_without_loader_cannot_take_an_image() -> None:
    graph = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "e"}},
    }
    with pytest.raises(WorkflowError, match="no LoadImage node"):
        Workflow(graph, "empty").bind(Bindings(), image_name="x.png")


def media_graph(*loaders: tuple[str, str, str]) -> dict[str, Any]:
    """(id, class_type, input) loaders, each saved by its own SaveImage (never run here)."""
    graph: dict[str, Any] = {}
    for nid, class_type, name in loaders:
        graph[nid] = {"class_type": class_type, "inputs": {name: "old"}}
        graph[f"s{nid}"] = {"class_type": "SaveImage", "inputs": {"images": [nid, 0]}}
    return graph


def test_each_media_goes_to_its_loaders_own_input() -> None:
    wf = Workflow(media_graph(("1", "LoadImage", "image"), ("2", "LoadVideo", "file"),
                              ("3", "LoadAudio", "audio")), "media")
    assert wf.bind(Bindings(), "a.png")["1"]["inputs"]["image"] == "a.png"
    video = wf.bind(Bindings(), "clip.mp4")["2"]["inputs"]
    assert video == {"file": "clip.mp4"}  # no stray `image` input (the server rejects it)
    assert wf.bind(Bindings(), "tone.wav")["3"]["inputs"]["audio"] == "tone.wav"
    assert [i.kind for i in wf.inputs()] == ["image", "video", "audio"]


def test_custom_video_loaders_take_video() -> None:
    wf = Workflow(media_graph(("7", "VHS_LoadVideo", "video")), "vhs")
    assert wf.bind(Bindings(), "clip.webm")["7"]["inputs"]["video"] == "clip.webm"
    assert wf.bind(Bindings(), "frame.png")["7"]["inputs"]["video"] == "frame.png"  # a 1-frame clip


def test_a_media_without_its_loader_is_refused_by_name() -> None:
    wf = Workflow(media_graph(("1", "LoadImage", "image")), "stills")
    with pytest.raises(WorkflowError, match=r"no LoadVideo .* to receive the video 'clip\.mp4'"):
        wf.bind(Bindings(), "clip.mp4")
    with pytest.raises(WorkflowError, match=r"loads image, but clip\.mp4 is a video"):
        wf.bind(Bindings(image_node="1"), "clip.mp4")
    with pytest.raises(WorkflowError, match="no LoadAudio node"):
        wf.bind(Bindings(), "tone.flac")


def test_check_uses_a_stand_in_the_chosen_loader_takes() -> None:
    Workflow(media_graph(("2", "LoadVideo", "file")), "video").check(Bindings())
    Workflow(media_graph(("3", "LoadAudio", "audio")), "audio").check(Bindings())
    with pytest.raises(WorkflowError, match="no LoadAudio node to receive the sound"):
        Workflow(media_graph(("2", "LoadVideo", "file")), "v").check(Bindings(), "tone.wav")


def test_titles_of_ids_the_server_made() -> None:
    graph = {"12": {"class_type": "Subgraph", "_meta": {"title": "Upscale"}},
             "12:5": {"class_type": "ImageScale", "_meta": {"title": "Scale inside"}},
             "7": {"class_type": "KSampler"}}
    assert node_title(graph, "12:5") == "Scale inside"
    assert node_title(graph, "12:9") == "Upscale"  # inside subgraph 12, unknown to the graph
    assert node_title(graph, "7.0.1") == "KSampler"  # what node 7 expanded into
    assert node_title(graph, "99") == "99"
