"""A workflow's inputs typed from the server's node definitions, and the values it would refuse.

typed_inputs() adds what the server says about each input (choices, range, step, multiline,
tooltip, default, seed control) so hosts can draw dropdowns and sliders; check_values() finds,
before anything is sent, the values the server's own validation would refuse: a COMBO value
not in its list, a number out of range or not a number at all.
"""

from __future__ import annotations

import difflib
import logging
from collections import Counter
from collections.abc import Collection, Mapping
from typing import Any

from ..errors import ComfyRelayError, InvalidValues, ValueProblem
from ..jobs.backend_api import ComfyUIServer
from ..jobs.workflow import Bindings, Workflow, WorkflowInput
from .nodes import InputDef, NodeDef, NodeDefs, node_defs, number

log = logging.getLogger(__name__)
# The host uploads its own file into these, so the workflow's file name is not checked.
MEDIA_KINDS = {"image", "video", "audio"}
# What a COMBO lists, for "is not one of the server's samplers".
CHOICE_NOUNS = {
    "sampler_name": "samplers",
    "scheduler": "schedulers",
    "ckpt_name": "checkpoints",
    "lora_name": "LoRAs",
    "vae_name": "VAEs",
    "control_net_name": "ControlNet models",
    "unet_name": "diffusion models",
    "clip_name": "text encoders",
    "clip_name1": "text encoders",
    "clip_name2": "text encoders",
    "style_model_name": "style models",
    "upscale_method": "upscale methods",
}
SHOWN_CHOICES = 8  # when none is close, the first few the server has


def typed_inputs(workflow: Workflow, defs: Mapping[str, NodeDef] | None) -> list[WorkflowInput]:
    """Workflow.inputs() with the server's typing where it defines the input; plain fields
    (as offline) without `defs`, and for nodes or inputs the server does not know."""
    found = workflow.inputs()
    if defs is None:
        return found
    return [typed_input(item, defs) for item in found]


def typed_input(item: WorkflowInput, defs: Mapping[str, NodeDef]) -> WorkflowInput:
    """One input with the server's typing, or unchanged if the server does not define it."""
    node = defs.get(item.class_type)
    definition = node.input(item.name) if node is not None else None
    if definition is None or definition.section == "hidden":
        return item
    return item.model_copy(update=field_types(definition))


def field_types(d: InputDef) -> dict[str, Any]:
    opts = d.options
    # Remote COMBOs fetch their list from another route; the one sent here is a stub.
    listed = d.type == "COMBO" and d.choices is not None and d.remote is None
    return {
        "type": d.type,
        "choices": list(d.choices or []) if listed else None,
        # From the raw options, not InputDef's floats: an INT's range stays whole numbers.
        "min": number(opts.get("min")),
        "max": number(opts.get("max")),
        "step": number(opts.get("step")),
        "multiline": d.multiline if d.type == "STRING" else None,
        "tooltip": d.tooltip,
        "default": d.default,
        "control": d.has_control if d.type == "INT" else None,
    }


def field_problem(item: WorkflowInput, value: Any) -> str | None:
    """Why the server would refuse `value` for this typed input ("'eulr' is not one of the
    server's samplers; closest: euler, ..."), or None if it would take it. Untyped inputs
    (no server) are never refused here. Checks in the server's order: type, range, list."""
    if item.type is None or item.kind in MEDIA_KINDS:
        return None
    if isinstance(value, dict) and "__value__" in value:  # how lists travel as values
        value = value["__value__"]
    shown = show(value)
    if item.type in ("INT", "FLOAT"):
        converted = as_number(item.type, value)
        if converted is None:
            what = "a whole number" if item.type == "INT" else "a number"
            return f"{shown} is not {what}"
        reason = range_problem(item, converted)
        if reason:
            return f"{shown} {reason}"
    if item.choices == []:  # said first: what a user can do is add one on the server
        return f"the server has no {noun(item.name)} (the workflow names {shown})"
    if item.choices is not None and value not in item.choices:
        return f"{shown} is not one of the server's {noun(item.name)}; {hint(value, item.choices)}"
    return None


def as_number(kind: str, value: Any) -> int | float | None:
    """The value as the server converts it (int() or float()), or None if that fails."""
    try:
        return int(value) if kind == "INT" else float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def range_problem(item: WorkflowInput, value: int | float) -> str | None:
    span = f"(the server's range is {fmt(item.min)} to {fmt(item.max)})"
    if item.min is not None and value < item.min:
        return f"is below the minimum {fmt(item.min)} {span}"
    if item.max is not None and value > item.max:
        return f"is above the maximum {fmt(item.max)} {span}"
    return None


def hint(value: Any, choices: list[Any]) -> str:
    if not choices:
        return "the server lists none"
    close = closest(str(value), choices)
    if close:
        return "closest: " + ", ".join(map(str, close))
    more = f", … ({len(choices)} in all)" if len(choices) > SHOWN_CHOICES else ""
    return "the server has: " + ", ".join(map(str, choices[:SHOWN_CHOICES])) + more


def closest(text: str, choices: list[Any], n: int = 3) -> list[Any]:
    """Up to n choices most like `text`, best first, ignoring case."""
    by_lower: dict[str, Any] = {}
    for choice in choices:
        by_lower.setdefault(str(choice).lower(), choice)
    found = difflib.get_close_matches(text.lower(), list(by_lower), n=n, cutoff=0.5)
    return [by_lower[f] for f in found]


def noun(name: str) -> str:
    return CHOICE_NOUNS.get(name, f"choices for {name}")


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def fmt(x: int | float | None) -> str:
    if x is None:
        return "any"
    return str(x) if isinstance(x, int) else f"{x:g}"


def value_problems(
    workflow: Workflow, bindings: Bindings, defs: Mapping[str, NodeDef]
) -> list[ValueProblem]:
    """Every literal value of the bound workflow the server would refuse."""
    bound = Workflow(workflow.bind(bindings), workflow.name)
    titles = Counter(bound.title(nid) for nid in bound.graph)
    problems = []
    for item in typed_inputs(bound, defs):
        reason = field_problem(item, item.value)
        if reason:
            # The title is what the user types in --set, unless two nodes share it.
            node = item.node_title if titles[item.node_title] == 1 else item.node_id
            problems.append(ValueProblem(item.key, f"{node}.{item.name} = {reason}"))
    return problems


def loader_problems(workflow: Workflow, bound: Collection[str],
                    defs: Mapping[str, NodeDef]) -> list[ValueProblem]:
    """Each loader that gets no file (not in `bound`) and names one the server does not
    have: the job would fail there, or a stale file of the same name would be used."""
    problems = []
    for item in typed_inputs(workflow, defs):
        if item.kind not in MEDIA_KINDS or item.node_id in bound or item.choices is None:
            continue
        name, folder = _annotated(item.value)
        if folder not in ("", "input") or name in item.choices:
            continue  # output and temp files are not listed: the server checks those
        flag = "--mask" if item.class_type == "LoadImageMask" else "--image"
        problems.append(ValueProblem(
            item.key,
            f"loader {item.node_id} ({item.node_title}) keeps {show(item.value)}, which the "
            f"server does not have: bind a file to it (the command line: {flag} "
            f"{item.node_id}=PATH; Blender and Krita: choose its source), or Refresh if it was "
            "just added there",
        ))
    return problems


def _annotated(value: Any) -> tuple[Any, str]:
    """"x.png [output]" → ("x.png", "output"), as ComfyUI's annotated file names read
    (docs/WIRE.md §1.9); a plain name has folder ""."""
    if isinstance(value, str):
        for folder in ("input", "output", "temp"):
            if value.endswith(f" [{folder}]"):
                return value[: -len(folder) - 3], folder
    return value, ""


def check_values(workflow: Workflow, bindings: Bindings, defs: Mapping[str, NodeDef],
                 bound: Collection[str] | None = None) -> None:
    """Raise InvalidValues listing each value the server would refuse, before queueing;
    with `bound` (the loaders that get a file), also each other loader whose file the server
    lacks."""
    problems = value_problems(workflow, bindings, defs)
    if bound is not None:
        problems += loader_problems(workflow, bound, defs)
    if problems:
        raise InvalidValues(
            f"The server would refuse these values of {workflow.name}, so nothing was sent:",
            problems,
        )


def server_defs(server: ComfyUIServer | None, *, refresh: bool = False) -> NodeDefs | None:
    """The server's node definitions (cached per server; `refresh` fetches them again), or
    None when there is no server or it cannot be reached: hosts then show plain fields."""
    if server is None:
        return None
    try:
        return node_defs.get(server.url, token=server.token, refresh=refresh)
    except ComfyRelayError as exc:
        log.info("No node definitions from %s: %s", server.url, exc)
        return None
