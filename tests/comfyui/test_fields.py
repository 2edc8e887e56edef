"""Input fields typed from the server's node definitions, and values refused before queueing."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest
from comfyrelay.comfyui.fields import (
    check_values,
    field_problem,
    server_defs,
    typed_inputs,
    value_problems,
)
from comfyrelay.comfyui.nodes import NodeDefs
from comfyrelay.errors import InvalidValues
from comfyrelay.jobs.backend_api import ComfyUIServer
from comfyrelay.jobs.seeds import seed_for_run
from comfyrelay.jobs.workflow import MAX_SEED, Bindings, Workflow

from tests.paths import WORKFLOWS
from tests.servers.comfy_nodes import SCHEMAS
from tests.servers.comfyui import ComfyTestServer

CKPT = "v1-5-pruned-emaonly.safetensors"


def server(checkpoints: list[str] | None = None) -> NodeDefs:
    # SCHEMAS: the real ComfyUI 0.3.64 /object_info answers, with no model files (the
    # checkpoint list is empty). A copy, as the test server shares it.
    raw = copy.deepcopy(SCHEMAS)
    raw["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] = checkpoints or []
    return NodeDefs(raw)


def img2img() -> Workflow:
    return Workflow.load(WORKFLOWS / "sd15_img2img_api.json")


def fields(defs: NodeDefs | None = None) -> dict[str, Any]:
    return {i.key: i for i in typed_inputs(img2img(), defs or server([CKPT]))}


def test_inputs_get_the_servers_choices_ranges_and_tips() -> None:
    typed = fields()
    sampler = typed["3.sampler_name"]
    assert sampler.type == "COMBO"
    assert sampler.choices == SCHEMAS["KSampler"]["input"]["required"]["sampler_name"][0]
    assert "euler" in sampler.choices and sampler.tooltip.startswith("The algorithm")
    steps = typed["3.steps"]
    assert (steps.type, steps.min, steps.max, steps.default) == ("INT", 1, 10000, 20)
    assert isinstance(steps.max, int)  # an INT's range stays whole numbers
    assert typed["3.cfg"].step == 0.1
    assert typed["6.text"].multiline is True and typed["9.filename_prefix"].multiline is False
    assert typed["4.ckpt_name"].choices == [CKPT]


def test_seeds_get_the_control_other_ints_do_not() -> None:
    typed = fields()
    assert typed["3.seed"].control is True and typed["3.seed"].has_seed_control
    assert typed["3.steps"].control is False and not typed["3.steps"].has_seed_control


def test_without_a_server_fields_are_plain_as_before() -> None:
    plain = typed_inputs(img2img(), None)
    assert plain == img2img().inputs()
    assert all(i.type is None and i.choices is None for i in plain)
    assert plain[0].has_seed_control  # seeds are known by name offline


def test_nodes_the_server_lacks_stay_plain() -> None:
    typed = fields(NodeDefs({"SaveImage": SCHEMAS["SaveImage"]}))
    assert typed["3.sampler_name"].type is None
    assert typed["9.filename_prefix"].type == "STRING"


def refusal(values: dict[str, Any], defs: NodeDefs | None = None) -> str:
    with pytest.raises(InvalidValues) as err:
        check_values(img2img(), Bindings(values=values), defs or server([CKPT]))
    return str(err.value)


def test_a_misspelt_sampler_is_refused_with_the_closest_ones() -> None:
    text = refusal({"KSampler.sampler_name": "eulr"})
    assert "KSampler.sampler_name = 'eulr' is not one of the server's samplers" in text
    assert "closest: euler," in text
    assert "nothing was sent" in text


def test_numbers_out_of_range_or_not_numbers_are_refused() -> None:
    text = refusal({"3.steps": 0, "3.cfg": 100.5, "11.width": "wide"})
    assert "KSampler.steps = 0 is below the minimum 1" in text
    assert "KSampler.cfg = 100.5 is above the maximum 100" in text
    assert "Fit to 768.width = 'wide' is not a whole number" in text


def test_each_bad_value_is_one_problem_keyed_by_its_input() -> None:
    with pytest.raises(InvalidValues) as err:
        check_values(img2img(), Bindings(values={"3.steps": 0, "3.scheduler": "karas"}),
                     server([CKPT]))
    assert [p.key for p in err.value.problems] == ["3.steps", "3.scheduler"]


def test_what_the_server_would_convert_passes() -> None:
    # ComfyUI runs int()/float() on numbers: "20" is fine, as is the workflow's own image
    # name, which the host's upload replaces.
    bindings = Bindings(seed=7, denoise=0.4, values={"3.steps": "20", "3.cfg": 6})
    check_values(img2img(), bindings, server([CKPT]))


def test_the_workflows_own_values_are_checked_too() -> None:
    text = refusal({}, server(["sd_xl_base_1.0.safetensors"]))
    assert f"Load Checkpoint.ckpt_name = '{CKPT}' is not one of the server's checkpoints" in text


def test_an_empty_list_says_the_server_has_none() -> None:
    assert f"the server has no checkpoints (the workflow names '{CKPT}')" in refusal(
        {}, server([]))


def test_nodes_sharing_a_title_are_named_by_id() -> None:
    wf = img2img()
    wf.graph["7"]["_meta"]["title"] = "Positive Prompt"
    wf.graph["3"]["_meta"]["title"] = "Positive Prompt"
    problems = value_problems(wf, Bindings(values={"3.steps": -1}), server([CKPT]))
    assert problems[0].message.startswith("3.steps = -1")


def test_field_problem_flags_one_field_for_a_host() -> None:
    steps = fields()["3.steps"]
    assert field_problem(steps, 10) is None
    assert field_problem(steps, 20000) == (
        "20000 is above the maximum 10000 (the server's range is 1 to 10000)"
    )
    assert field_problem(img2img().inputs()[1], 20000) is None  # untyped: no opinion


def test_server_defs_from_the_test_server_and_none_when_unreachable(
    comfy_server: ComfyTestServer,
) -> None:
    defs = server_defs(ComfyUIServer(comfy_server.url))
    assert defs is not None
    scale = {i.key: i for i in typed_inputs(img2img(), defs)}["11.upscale_method"]
    assert scale.choices is not None and "bilinear" in scale.choices
    assert server_defs(ComfyUIServer("http://127.0.0.1:9")) is None
    assert server_defs(None) is None


@pytest.mark.parametrize(
    ("seed", "control", "maximum", "expected"),
    [(5, "fixed", None, 5), (5, "increment", None, 6), (MAX_SEED, "increment", None, 0),
     (9, "increment", 9, 0)],
)
def test_seed_rules(seed: int, control: Any, maximum: int | None, expected: int) -> None:
    assert seed_for_run(seed, control, maximum=maximum) == expected


def test_random_picks_a_new_seed_each_run_within_range() -> None:
    rng = random.Random(1)
    seeds = [seed_for_run(5, "random", maximum=1000, rng=rng) for _ in range(20)]
    assert len(set(seeds)) > 10 and all(0 <= s <= 1000 for s in seeds)


def test_schemas_hold_the_sd15_nodes() -> None:
    # The sd15 workflows' nodes, as the real server describes them (see comfy_schemas.json).
    graph = json.loads(Path(WORKFLOWS / "sd15_img2img_api.json").read_text())
    assert {n["class_type"] for n in graph.values()} <= set(SCHEMAS)


def test_files_the_host_uploads_are_not_checked() -> None:
    # The host's own image or sound replaces the workflow's file name before the run.
    graph = {
        "1": {"class_type": "LoadAudio", "inputs": {"audio": "song.wav"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}},
    }
    load_audio = {"input": {"required": {"audio": [[], {"audio_upload": True}]}}}
    defs = NodeDefs({**SCHEMAS, "LoadAudio": load_audio})
    assert value_problems(Workflow(graph), Bindings(), defs) == []


def test_unbound_loaders_are_checked_against_the_server_files_annotations_too() -> None:
    """An annotated name ("x.png [input]") is the input folder's x.png; `[output]` and
    `[temp]` files are not listed, so the server checks those itself."""
    from comfyrelay.comfyui.fields import loader_problems
    from comfyrelay.comfyui.nodes import parse_node
    from comfyrelay.jobs.workflow import Workflow

    schema = {"input": {"required": {"image": [["x.png"], {"image_upload": True}],
                                     "channel": [["alpha", "red"]]}},
              "input_order": {"required": ["image", "channel"]}, "output": ["MASK"],
              "name": "LoadImageMask", "display_name": "Load Image (as Mask)",
              "output_node": False, "category": "mask", "python_module": "nodes"}
    defs = {"LoadImageMask": parse_node("LoadImageMask", schema)}
    for value, refused in (("x.png", False), ("x.png [input]", False), ("y.png", True),
                           ("y.png [output]", False), ("clipspace/y.png [input]", True)):
        wf = Workflow({"1": {"class_type": "LoadImageMask",
                             "inputs": {"image": value, "channel": "red"}},
                       "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}})
        problems = loader_problems(wf, set(), defs)
        assert bool(problems) is refused, value
        if refused:
            assert "--mask 1=PATH" in problems[0].message
        assert loader_problems(wf, {"1"}, defs) == []  # bound: its file is sent
