"""The app a workflow shows before the user customises it: the inputs people change, in words.

Picked from the graph by input name (and, for sizes, by node class): the positive and the
negative prompt, seed, steps, CFG, denoise, sampler, scheduler, checkpoint and LoRA choices,
and the size of an empty latent, in that order. Which text encoder is the positive one is
read from the links: the first `positive`/`negative` input its conditioning reaches, through
reroutes, combiners, ControlNet applies, guiders (docs/ARCHITECTURE.md, "The default app").
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable
from typing import Any

from ..jobs.workflow import SEED_NAMES, WorkflowInput, is_link

Roles = dict[str, str] | None  # node id -> its conditioning's role; None: links unknown

# Input name -> its label. A prompt's label follows its role (conditioning_roles).
WORDS = {
    "seed": "Seed", "noise_seed": "Seed", "steps": "Steps", "cfg": "CFG",
    "denoise": "Strength", "sampler_name": "Sampler", "scheduler": "Scheduler",
    "ckpt_name": "Checkpoint", "unet_name": "Model", "lora_name": "LoRA",
    "width": "Width", "height": "Height", "batch_size": "Batch size",
    "strength_model": "LoRA strength", "strength_clip": "LoRA CLIP strength",
    "vae_name": "VAE", "guidance": "Guidance", "length": "Frames",
    "filename_prefix": "File name prefix", "upscale_method": "Upscale method",
    "model_name": "Model", "control_net_name": "ControlNet", "grow_mask_by": "Grow mask by",
}
# A *TextEncode* node's prompt inputs, and what tells two of one node apart (Flux's, SDXL's
# and SD3's encoders take one text per text encoder).
PROMPT_NAMES = {"text": "", "prompt": "", "t5xxl": "", "clip_l": " (CLIP-L)", "clip_g": " (G)",
                "text_g": " (G)", "text_l": " (L)"}
POSITIVE = "positive"
NEGATIVE = "negative"
# Inputs that decide a conditioning's role where its walk reaches them. A guider (BasicGuider,
# CFGGuider's result) goes into a sampler's `guider`: what made it is what is asked for.
ROLE_OF_INPUT = {"positive": POSITIVE, "cond1": POSITIVE, "cond2": POSITIVE,
                 "guider": POSITIVE, "negative": NEGATIVE}
MAX_HOPS = 16  # a conditioning reaches its sampler in a few nodes; cycles cannot loop
# The default app's order: each entry picks the inputs with these names (SIZE: an empty
# latent's width and height, each latent's together), positive prompts before negative ones.
SIZE = "size"
ORDER = [("prompt", POSITIVE), ("prompt", NEGATIVE), *[(name, "") for name in (
    "seed", "steps", "cfg", "denoise", "sampler_name", "scheduler", "ckpt_name", "unet_name",
    "lora_name", SIZE)]]
LATENT_SIZES = {"width", "height"}


def is_prompt(item: WorkflowInput) -> bool:
    """A text encoder's prompt (CLIPTextEncode, CLIPTextEncodeFlux, TextEncodeQwenImageEdit)."""
    encoder = "TextEncode" in item.class_type
    return encoder and item.name in PROMPT_NAMES and isinstance(item.value, str)


def is_empty_latent(class_type: str) -> bool:
    """EmptyLatentImage, EmptySD3LatentImage, EmptyHunyuanLatentVideo, ..."""
    return class_type.startswith("Empty") and "Latent" in class_type


def conditioning_roles(graph: dict[str, Any]) -> dict[str, str]:
    """node id -> "positive" or "negative", for each node whose output a sampler takes as
    such; a node that reaches both (a Flux prompt also zeroed into `negative`) is positive."""
    consumers: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for nid, node in graph.items():
        for name, value in (node.get("inputs") or {}).items():
            if is_link(value):
                consumers[str(value[0])].append((nid, name))
    roles = {}
    for nid in graph:
        found = _reached(nid, consumers)
        if found:
            roles[nid] = POSITIVE if POSITIVE in found else NEGATIVE
    return roles


def _reached(start: str, consumers: dict[str, list[tuple[str, str]]]) -> set[str]:
    """The roles the output of `start` reaches, walking the links forward."""
    found: set[str] = set()
    seen, frontier = {start}, [start]
    for _ in range(MAX_HOPS):
        following = []
        for nid in frontier:
            for consumer, name in consumers.get(nid, []):
                if name in ROLE_OF_INPUT:
                    found.add(ROLE_OF_INPUT[name])
                elif consumer not in seen:
                    seen.add(consumer)
                    following.append(consumer)
        if not following:
            break
        frontier = following
    return found


def role(item: WorkflowInput, roles: Roles) -> str:
    """A prompt's role: "" for a prompt whose conditioning reaches no sampler; every prompt
    is taken as a positive one when the links are unknown (roles None)."""
    if not is_prompt(item):
        return ""
    return POSITIVE if roles is None else roles.get(item.node_id, "")


def word(item: WorkflowInput, roles: Roles) -> str:
    """The input's label in words, before any title is added to tell two apart."""
    if is_prompt(item):
        prompt = "Negative prompt" if role(item, roles) == NEGATIVE else "Prompt"
        return prompt + PROMPT_NAMES[item.name]
    plain = WORDS.get(item.name) or item.name.replace("_", " ").capitalize()
    if item.name in PROMPT_NAMES:  # a string node's `prompt` or `text`: not the prompt
        return f"{plain} ({item.node_title})"
    return plain


def word_labels(inputs: Iterable[WorkflowInput], roles: Roles,
                app: Collection[str] = ()) -> dict[str, str]:
    """key -> label: words, with the node's title added only where two would read the same
    (its id instead where the titles are the same as well). An input of the app (`app`:
    its keys) keeps its word when only inputs outside the app read the same: the app's
    denoise stays "Strength", a ControlNet's strength becomes "Strength (Apply ControlNet)"."""
    items = list(inputs)
    plain = {i.key: word(i, roles) for i in items}
    everywhere = Counter(plain.values())
    in_app = Counter(plain[i.key] for i in items if i.key in app)

    def clashes(item: WorkflowInput) -> bool:
        counts = in_app if item.key in app else everywhere
        return counts[plain[item.key]] > 1

    titled = {i.key: f"{plain[i.key]} ({i.node_title})" if clashes(i) else plain[i.key]
              for i in items}
    again = Counter(titled.values())
    return {i.key: titled[i.key] if again[titled[i.key]] == 1 or not clashes(i)
            else f"{plain[i.key]} (node {i.node_id})" for i in items}


def default_keys(inputs: Iterable[WorkflowInput], roles: Roles) -> list[str]:
    """The keys of the inputs the default app shows, in its order."""
    items = list(inputs)
    nodes = {nid: n for n, nid in enumerate(dict.fromkeys(i.node_id for i in items))}
    keys: list[str] = []
    for name, wanted in ORDER:
        picked = [i for i in items if _picked(i, name, wanted, roles) and i.key not in keys]
        if name == SIZE:  # each latent's width, then its height
            picked.sort(key=lambda i: (nodes[i.node_id], i.name != "width"))
        keys += [i.key for i in picked]
    return keys


def _picked(item: WorkflowInput, name: str, wanted: str, roles: Roles) -> bool:
    if name == "prompt":
        return role(item, roles) == wanted
    if name == "seed":
        return item.name in SEED_NAMES and item.kind == "seed"
    if name == SIZE:
        return item.name in LATENT_SIZES and is_empty_latent(item.class_type)
    return item.name == name
