"""The default app of real workflows: our sample workflows (API and UI format) and 20 ComfyUI
templates (SD1.5, SDXL, SD3.5, Flux, LoRA, img2img, inpaint, ControlNet, upscale, video).

Each expected list was written by reading the graph (tests/golden/make_goldens.py stored the
templates as ComfyUI's frontend converts them): which text encoder's conditioning reaches a
sampler's `positive` or `negative`, which inputs people change, in the app's order, and which
labels read the same as another input of the workflow (the node's title, or its id when the
titles are the same too, tells them apart).
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from typing import Any

import pytest
from comfyrelay.comfyui.convert import to_api
from comfyrelay.comfyui.nodes import NodeDefs
from comfyrelay.host.apps import arrange
from comfyrelay.host.default_app import conditioning_roles
from comfyrelay.jobs.workflow import Workflow

from tests.paths import ROOT, WORKFLOWS

GOLDEN = ROOT / "tests" / "data" / "golden" / "comfyui-0.3.64_frontend-1.58.1"
SAMPLER = [("seed", "Seed"), ("steps", "Steps"), ("cfg", "CFG"), ("denoise", "Strength"),
           ("sampler_name", "Sampler"), ("scheduler", "Scheduler")]


def ksampler(node: str, strength: str = "Strength") -> list[tuple[str, str]]:
    """One KSampler's inputs, as the default app lists them."""
    return [(f"{node}.{name}", strength if name == "denoise" else label)
            for name, label in SAMPLER]


def latent(node: str, title: str = "") -> list[tuple[str, str]]:
    said = f" ({title})" if title else ""
    return [(f"{node}.width", f"Width{said}"), (f"{node}.height", f"Height{said}")]


def prompts(positive: str, negative: str) -> list[tuple[str, str]]:
    return [(f"{positive}.text", "Prompt"), (f"{negative}.text", "Negative prompt")]


@cache
def templates() -> dict[str, Any]:
    with gzip.open(GOLDEN / "templates_output.json.gz") as f:
        found: dict[str, Any] = json.load(f)
    return found


@cache
def defs() -> NodeDefs:
    with gzip.open(GOLDEN / "object_info.json.gz") as f:
        return NodeDefs(json.load(f))


def shown(workflow: Workflow) -> list[tuple[str, str]]:
    return [(s.input.key, s.label) for s in arrange(workflow.inputs(), None, workflow).shown]


SAMPLES = {
    "sd15_txt2img_api.json": [*prompts("6", "7"), *ksampler("3"),
                              ("4.ckpt_name", "Checkpoint"), *latent("5")],
    # Its ImageScale's size is the picture's, not a latent's: not in the app.
    "sd15_img2img_api.json": [*prompts("6", "7"), *ksampler("3"), ("4.ckpt_name", "Checkpoint")],
    "noise_api.json": [("2.seed", "Seed")],
    "invert_api.json": [],
    "invert_ui.json": [],
    # EmptyImage makes a picture, not a latent: its size is not in the app.
    "ui/mute_bypass.json": [],
    "ui/nested_subgraph.json": [],
    "ui/primitive.json": [],
    "ui/reroute.json": [],
}

TEMPLATES = {
    "default": [*prompts("6", "7"), *ksampler("3"), ("4.ckpt_name", "Checkpoint"), *latent("5")],
    "image2image": [*prompts("6", "7"), *ksampler("3"), ("14.ckpt_name", "Checkpoint")],
    "lora": [*prompts("6", "7"), *ksampler("3"), ("4.ckpt_name", "Checkpoint"),
             ("11.lora_name", "LoRA"), *latent("5")],
    # Two LoRA loaders, both titled "Load LoRA": told apart by their ids.
    "lora_multiple": [*prompts("6", "7"), *ksampler("3"), ("4.ckpt_name", "Checkpoint"),
                      ("10.lora_name", "LoRA (node 10)"), ("11.lora_name", "LoRA (node 11)"),
                      *latent("5")],
    "inpaint_example": [*prompts("6", "7"), *ksampler("3"), ("29.ckpt_name", "Checkpoint")],
    # Base and refiner: two KSamplerAdvanced, two checkpoints, a prompt pair for each.
    "sdxl_simple_example": [
        ("15.text", "Prompt (node 15)"), ("6.text", "Prompt (node 6)"),
        ("16.text", "Negative prompt (node 16)"), ("7.text", "Negative prompt (node 7)"),
        *[(f"{node}.{name}", f"{label} (KSampler (Advanced) - {part})")
          for name, label in [("noise_seed", "Seed"), ("steps", "Steps"), ("cfg", "CFG"),
                              ("sampler_name", "Sampler"), ("scheduler", "Scheduler")]
          for node, part in (("10", "BASE"), ("11", "REFINER"))],
        ("12.ckpt_name", "Checkpoint (Load Checkpoint - REFINER)"),
        ("4.ckpt_name", "Checkpoint (Load Checkpoint - BASE)"), *latent("5"),
    ],
    # SamplerCustom: the seed and CFG on it, steps and denoise on its scheduler, the sampler
    # from KSamplerSelect.
    "sdxlturbo_example": [*prompts("6", "7"), ("13.noise_seed", "Seed"), ("22.steps", "Steps"),
                          ("13.cfg", "CFG"), ("22.denoise", "Strength"),
                          ("14.sampler_name", "Sampler"), ("20.ckpt_name", "Checkpoint"),
                          *latent("5")],
    # The negative encoder (33) comes first in the graph; the app puts the positive first.
    "flux_schnell": [*prompts("6", "33"), *ksampler("31"), ("30.ckpt_name", "Checkpoint"),
                     *latent("27")],
    # CLIPTextEncodeFlux feeds `positive` and, zeroed, `negative`: it is the positive one.
    "flux_dev_full_text_to_image": [("41.clip_l", "Prompt (CLIP-L)"), ("41.t5xxl", "Prompt"),
                                    *ksampler("31"), ("38.unet_name", "Model"), *latent("27")],
    "esrgan_example": [*prompts("6", "7"), *ksampler("3"), ("4.ckpt_name", "Checkpoint"),
                       *latent("5")],
    # Two KSamplers titled alike; the Upscale Latent's size, outside the app, also reads
    # Width / Height: it gets the title, the app's latent keeps its words.
    "hiresfix_latent_workflow": [
        *prompts("6", "7"),
        *[(f"{node}.{name}", f"{label} (node {node})") for name, label in SAMPLER
          for node in ("11", "3")],
        ("16.ckpt_name", "Checkpoint"), *latent("5"),
    ],
    # Five area prompts combined into the first pass's positive, one more for the second pass.
    # The areas' and the Upscale Latent's sizes are outside the app: the latent's stay words.
    "area_composition": [
        *[(f"{n}.text", f"Prompt (node {n})") for n in ("13", "14", "17", "26", "33", "6")],
        ("27.text", "Negative prompt (node 27)"), ("7.text", "Negative prompt (node 7)"),
        *[(f"{node}.{name}", f"{label} (node {node})") for name, label in SAMPLER
          for node in ("24", "3")],
        ("44.ckpt_name", "Checkpoint"), *latent("5"),
    ],
    # The prompts reach the KSampler through ControlNetApplyAdvanced, whose own strength
    # (outside the app) reads "Strength (Apply ControlNet)": the denoise stays "Strength".
    "controlnet_example": [*prompts("6", "7"), *ksampler("3"),
                           ("14.ckpt_name", "Checkpoint"), *latent("5")],
    "text_to_video_wan": [*prompts("6", "7"), *ksampler("3"), ("37.unet_name", "Model"),
                          *latent("40")],
    # SVD: no prompts; its size is set on SVD_img2vid_Conditioning, not an empty latent.
    "image_to_video": [*ksampler("3"), ("15.ckpt_name", "Checkpoint")],
    "ltxv_text_to_video": [*prompts("6", "7"), ("72.noise_seed", "Seed"), ("71.steps", "Steps"),
                           ("72.cfg", "CFG"), ("73.sampler_name", "Sampler"),
                           ("44.ckpt_name", "Checkpoint"), *latent("70")],
    "sd3.5_simple_example": [*prompts("16", "40"), *ksampler("3"), ("4.ckpt_name", "Checkpoint"),
                             *latent("53")],
    # The positive goes through FluxGuidance and InpaintModelConditioning; Differential
    # Diffusion's strength (outside the app) takes its title, not the denoise.
    "flux_fill_inpaint_example": [*prompts("23", "7"), *ksampler("3"),
                                  ("31.unet_name", "Model")],
    "flux_depth_lora_example": [*prompts("23", "7"), *ksampler("3"), ("31.unet_name", "Model"),
                                ("37.lora_name", "LoRA")],
    # SamplerCustomAdvanced: the prompt reaches it as BasicGuider's `guider`.
    "hunyuan_video_text_to_video": [("44.text", "Prompt"), ("25.noise_seed", "Seed"),
                                    ("17.steps", "Steps"), ("17.denoise", "Strength"),
                                    ("16.sampler_name", "Sampler"), ("17.scheduler", "Scheduler"),
                                    ("12.unet_name", "Model"), *latent("45")],
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_default_app_of_each_sample_workflow(name: str) -> None:
    path = WORKFLOWS / name
    data = json.loads(path.read_text())
    graph = to_api(data, defs()) if "nodes" in data else data
    assert shown(Workflow(graph, name)) == SAMPLES[name]


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_the_default_app_of_templates(name: str) -> None:
    assert shown(Workflow(templates()[name], name)) == TEMPLATES[name]


# The families the module's docstring names, each with a word of its templates' names.
FAMILIES = {"SD1.5": "default", "SDXL": "sdxl", "SD3.5": "sd3", "Flux": "flux", "LoRA": "lora",
            "img2img": "image2image", "inpaint": "inpaint", "ControlNet": "controlnet",
            "upscale": "esrgan", "video": "video"}


def test_the_templates_checked_cover_every_family() -> None:
    missing = [f for f, part in FAMILIES.items() if not any(part in n for n in TEMPLATES)]
    assert not missing
    assert set(TEMPLATES) <= set(templates())  # each one is a stored template
    kinds = {"Checkpoint", "Model", "LoRA", "Negative prompt"}
    assert kinds <= {label.split(" (")[0] for app in TEMPLATES.values() for _, label in app}


def with_output(graph: dict[str, Any]) -> Workflow:
    """A small graph made runnable: its sampler's latent saved."""
    saved = {"99": {"class_type": "SaveLatent",
                    "inputs": {"samples": ["3", 0], "filename_prefix": "t"}}}
    return Workflow({**graph, **saved}, "test")


def graph_app(graph: dict[str, Any]) -> list[tuple[str, str]]:
    return shown(with_output(graph))


def sampler(positive: str, negative: str, latent_node: str = "9") -> dict[str, Any]:
    return {"class_type": "KSampler", "inputs": {
        "seed": 1, "steps": 20, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
        "denoise": 1.0, "model": ["8", 0], "positive": [positive, 0],
        "negative": [negative, 0], "latent_image": [latent_node, 0]}}


def test_sd3s_encoder_names_each_of_its_three_texts() -> None:
    graph = {
        "1": {"class_type": "CLIPTextEncodeSD3", "inputs": {
            "clip_g": "a cat", "clip_l": "a cat", "t5xxl": "a cat on a mat",
            "empty_padding": "none", "clip": ["8", 1]}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["8", 1]}},
        "3": sampler("1", "2"),
    }
    assert graph_app(graph)[:4] == [("1.clip_g", "Prompt (G)"), ("1.clip_l", "Prompt (CLIP-L)"),
                                    ("1.t5xxl", "Prompt"), ("2.text", "Negative prompt")]


def test_a_string_nodes_prompt_and_an_unused_encoder_stay_out_of_the_app() -> None:
    """A string node's `prompt` is not the prompt, and an encoder whose conditioning reaches
    no sampler is not what people change: neither joins the app, nor titles the prompt."""
    graph = {
        "1": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["8", 1]}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["8", 1]}},
        "3": sampler("1", "2"),
        "4": {"class_type": "StringConcatenate", "_meta": {"title": "Join"},
              "inputs": {"prompt": "x", "string_b": "y", "delimiter": ","}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": "unused", "clip": ["8", 1]}},
    }
    app = graph_app(graph)
    assert app[:2] == [("1.text", "Prompt"), ("2.text", "Negative prompt")]
    assert not any(key.startswith(("4.", "5.")) for key, _ in app)
    workflow = with_output(graph)
    others = {o.input.key: o.label for o in arrange(workflow.inputs(), None, workflow).others}
    assert others["4.prompt"] == "Prompt (Join)"


def test_two_latents_keep_each_width_with_its_height() -> None:
    graph = {
        "1": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["8", 1]}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["8", 1]}},
        "3": sampler("1", "2", "9"),
        "9": {"class_type": "EmptyLatentImage", "_meta": {"title": "Small"},
              "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "10": {"class_type": "EmptySD3LatentImage", "_meta": {"title": "Large"},
               "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
    }
    sizes = [pair for pair in graph_app(graph) if pair[0].endswith(("width", "height"))]
    assert sizes == [("9.width", "Width (Small)"), ("9.height", "Height (Small)"),
                     ("10.width", "Width (Large)"), ("10.height", "Height (Large)")]


def test_a_negative_prompt_is_found_through_reroutes_and_combiners() -> None:
    graph = {
        "1": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["9", 1]}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["9", 1]}},
        "3": {"class_type": "Reroute", "inputs": {"": ["2", 0]}},
        "4": {"class_type": "ConditioningConcat",
              "inputs": {"conditioning_to": ["3", 0], "conditioning_from": ["1", 0]}},
        "5": {"class_type": "CFGGuider", "inputs": {"positive": ["1", 0], "negative": ["4", 0]}},
    }
    assert conditioning_roles(graph) == {"1": "positive", "2": "negative", "3": "negative",
                                         "4": "negative"}
