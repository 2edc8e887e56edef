"""UI-format workflows -> API format, one readable case at a time (node definitions: the real
ComfyUI 0.3.64 /object_info stored with the goldens)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
from comfyrelay.comfyui.convert import UnknownNodeTypes, load_workflow, to_api
from comfyrelay.comfyui.nodes import NodeDefCache, NodeDefs
from comfyrelay.errors import WorkflowError
from comfyrelay.jobs.workflow import Workflow
from PIL import Image

from tests.cli.test_main import comfyrelay
from tests.comfyui.test_convert_golden import CURRENT
from tests.comfyui.test_convert_golden import defs as golden_defs
from tests.conftest import ComfyTarget
from tests.imaging import gradient_png, is_inverse
from tests.paths import WORKFLOWS
from tests.servers.aio import png


def defs() -> NodeDefs:
    """The node definitions of the ComfyUI the current golden set was made with."""
    return golden_defs(CURRENT)

UI = WORKFLOWS / "ui"


def ui(name: str) -> dict[str, Any]:
    return json.loads((UI / f"{name}.json").read_text())


def test_primitive_values_are_inlined_into_their_targets() -> None:
    graph = to_api(ui("primitive"), defs())
    assert sorted(graph) == ["1", "3"]  # the two PrimitiveNodes are gone
    assert graph["1"]["inputs"]["width"] == 96  # not the target's own saved 64
    assert graph["3"]["inputs"]["filename_prefix"] == "from_primitive"
    assert graph["1"]["_meta"]["title"] == "Canvas"


def test_reroutes_and_notes_are_dropped_with_links_joined() -> None:
    graph = to_api(ui("reroute"), defs())
    assert sorted(graph) == ["1", "4", "5"]
    assert graph["4"]["inputs"]["image"] == ["1", 0]


def test_muted_nodes_are_left_out_and_bypassed_ones_pass_through() -> None:
    graph = to_api(ui("mute_bypass"), defs())
    assert "2" not in graph and "4" not in graph and "5" not in graph
    assert graph["3"]["inputs"]["images"] == ["1", 0]  # through the bypassed invert
    assert "images" not in graph["6"]["inputs"]  # its source was muted


def test_nested_subgraphs_flatten_with_path_ids_and_promoted_widgets() -> None:
    graph = to_api(ui("nested_subgraph"), defs())
    # The inner invert's saved id 1 is the id of the outer subgraph's first node: frontend 1.58
    # renumbers it to the next free id after the workflow's last node id (9).
    assert sorted(graph) == ["5", "9:1:10", "9:2"]
    assert graph["9:1:10"] == {
        "inputs": {"image": ["5", 0]},
        "class_type": "ImageInvert",
        "_meta": {"title": "Inner invert"},
    }
    assert graph["9:2"]["inputs"] == {"filename_prefix": "nested", "images": ["9:1:10", 0]}


def test_widget_values_map_by_the_definition_order_with_controls_and_upload() -> None:
    workflow = {
        "nodes": [
            {"id": 1, "type": "KSampler", "mode": 0, "inputs": [],
             "widgets_values": [42, "randomize", 20, 7.5, "euler", "normal", 1]},
            {"id": 2, "type": "LoadImageOutput", "mode": 0,
             "widgets_values": ["cat.png", False, "refresh", "image"]},
        ],
        "links": [], "version": 0.4,
    }  # fmt: skip
    graph = to_api(workflow, defs())
    assert graph["1"]["inputs"] == {
        "seed": 42, "steps": 20, "cfg": 7.5, "sampler_name": "euler", "scheduler": "normal",
        "denoise": 1,
    }  # fmt: skip
    assert graph["2"]["inputs"] == {"image": "cat.png [output]", "refresh": "refresh"}


def test_dynamic_prompts_pick_an_option_and_drop_comments() -> None:
    workflow = {
        "nodes": [{"id": 1, "type": "CLIPTextEncode", "mode": 0, "inputs": [],
                   "widgets_values": ["a {red|red} cat // a comment"]}],
        "links": [], "version": 0.4,
    }  # fmt: skip
    graph = to_api(workflow, defs(), rng=random.Random(1))
    assert graph["1"]["inputs"]["text"] == "a red cat "


def test_unknown_node_types_are_named_with_their_nodes_and_nothing_is_built() -> None:
    workflow = ui("reroute")
    workflow["nodes"] += [
        {"id": 8, "type": "FancyUpscale", "title": "Upscale", "mode": 0},
        {"id": 9, "type": "FancyUpscale", "mode": 0},
        {"id": 10, "type": "OtherNode", "mode": 0},
        {"id": 11, "type": "MutedMissing", "mode": 2},  # never sent: tolerated
    ]
    with pytest.raises(UnknownNodeTypes) as caught:
        to_api(workflow, defs())
    text = str(caught.value)
    assert "FancyUpscale: node 8 'Upscale', 9" in text and "OtherNode: node 10" in text
    assert "install the custom nodes" in text and "MutedMissing" not in text
    assert set(caught.value.missing) == {"FancyUpscale", "OtherNode"}


def test_a_ui_file_without_a_server_says_what_to_pass() -> None:
    with pytest.raises(WorkflowError, match="--server URL"):
        Workflow.load(WORKFLOWS / "invert_ui.json")
    assert comfyrelay("inputs", WORKFLOWS / "invert_ui.json", env={"COMFYUI_URL": ""}).returncode


def test_png_metadata_prompt_is_used_and_workflow_is_converted(tmp_path: Path) -> None:
    api = json.loads((WORKFLOWS / "invert_api.json").read_text())
    both = tmp_path / "both.png"
    both.write_bytes(png({"prompt": json.dumps(api), "workflow": json.dumps(ui("primitive"))}))
    assert load_workflow(both).graph["2"]["class_type"] == "ImageInvert"  # the prompt wins
    only_ui = tmp_path / "ui.png"
    only_ui.write_bytes(png({"workflow": json.dumps(ui("primitive"))}))
    assert load_workflow(only_ui, defs()).graph["1"]["inputs"]["width"] == 96
    with pytest.raises(WorkflowError, match="--server"):
        load_workflow(only_ui)
    bare = tmp_path / "bare.png"
    bare.write_bytes(png({}))
    with pytest.raises(WorkflowError, match="no ComfyUI workflow"):
        load_workflow(bare)


def test_webp_exif_metadata_as_comfyui_writes_it(tmp_path: Path) -> None:
    image = Image.new("RGB", (4, 4))
    exif = image.getexif()
    exif[0x010F] = "workflow:" + json.dumps(ui("reroute"))  # SaveAnimatedWEBP's tags
    path = tmp_path / "saved.webp"
    image.save(path, "WEBP", exif=exif)
    assert sorted(load_workflow(path, defs()).graph) == ["1", "4", "5"]


def test_cli_convert_writes_the_api_graph(tmp_path: Path) -> None:
    out = tmp_path / "api.json"
    env = {"COMFYUI_URL": ""}
    result = comfyrelay("convert", UI / "reroute.json", "-o", out, "--server", "http://127.0.0.1:9",
                        env=env)  # fmt: skip
    assert result.returncode == 1 and "Export (API)" in result.stderr  # no server answered
    api = comfyrelay("convert", WORKFLOWS / "invert_api.json", env=env)  # API: passed through
    assert api.returncode == 0 and json.loads(api.stdout)["2"]["class_type"] == "ImageInvert"


def test_node_defs_cache_fetches_once_per_url(comfy: ComfyTarget) -> None:
    cache = NodeDefCache()
    first = cache.get(comfy.url)
    assert cache.get(comfy.url + "/") is first and "ImageInvert" in first
    assert cache.get(comfy.url, refresh=True) is not first
    seed = NodeDefs({"KSampler": json.loads(json.dumps(defs().raw["KSampler"]))})["KSampler"]
    seed_input, cfg = seed.input("seed"), seed.input("cfg")
    assert seed_input is not None and seed_input.has_control
    assert cfg is not None and cfg.step == 0.1


def test_run_a_ui_workflow_gives_the_pixels_of_its_api_twin(
    comfy: ComfyTarget, tmp_path: Path
) -> None:
    source = tmp_path / "render.png"
    png = gradient_png(96, 64)
    source.write_bytes(png)
    results = []
    for name in ("invert_ui.json", "invert_api.json"):
        out = tmp_path / name
        env = {"COMFYUI_URL": os.environ.get("COMFYUI_URL", "")}
        run = comfyrelay(
            "run", WORKFLOWS / name, "--server", comfy.url, "--image", source, "--out", out, env=env
        )
        assert run.returncode == 0, run.stderr
        results.append(Path(run.stdout.splitlines()[0]))
    assert is_inverse(png, results[0]) and is_inverse(png, results[1])
    assert Image.open(results[0]).tobytes() == Image.open(results[1]).tobytes()


def test_a_subgraph_saved_before_the_one_it_holds_still_shows_its_widgets() -> None:
    """Frontend 1.58 configures subgraphs inner ones first, whatever order they were saved in:
    the inner subgraph node's promoted `width` (77) reaches the EmptyImage inside it."""
    empty = {"id": 1, "type": "EmptyImage", "mode": 0, "widgets_values": [24, 24, 1, 0],
             "inputs": [{"name": "width", "type": "INT", "widget": {"name": "width"}, "link": 1}]}
    inner = {"id": "inner", "name": "Inner", "nodes": [empty], "outputs": [],
             "inputs": [{"name": "width", "type": "INT", "linkIds": [1]}],
             "links": [{"id": 1, "origin_id": -10, "origin_slot": 0, "target_id": 1,
                        "target_slot": 0, "type": "INT"}]}
    holder = {"id": 2, "type": "inner", "mode": 0, "widgets_values": [77],
              "inputs": [{"name": "width", "type": "INT", "widget": {"name": "width"},
                          "link": None}]}
    outer = {"id": "outer", "name": "Outer", "nodes": [holder], "links": [], "inputs": [],
             "outputs": []}
    workflow = {"last_node_id": 9, "links": [], "definitions": {"subgraphs": [outer, inner]},
                "nodes": [{"id": 9, "type": "outer", "mode": 0}]}  # fmt: skip
    graph = to_api(workflow, defs())
    assert graph["9:2:1"]["inputs"] == {"width": 77, "height": 24, "batch_size": 1, "color": 0}
