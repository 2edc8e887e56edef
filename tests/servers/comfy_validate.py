"""POST /prompt validation as ComfyUI does it, with its error shapes (PROTOCOL.md §1)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.servers.comfy_nodes import NODES, Folders


def is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


def top_error(
    kind: str,
    message: str,
    details: str = "",
    extra: dict[str, Any] | None = None,
    node_errors: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "error": {"type": kind, "message": message, "details": details, "extra_info": extra or {}},
        "node_errors": node_errors or {},
    }


def check_prompt_id(prompt_id: Any) -> dict[str, Any] | None:
    try:
        if str(uuid.UUID(str(prompt_id))) == prompt_id:
            return None
    except ValueError:
        pass
    return top_error("invalid_prompt_id", "Invalid prompt_id", f"{prompt_id!r} is not a UUID")


def validate(graph: dict[str, Any], folders: Folders) -> dict[str, Any] | None:
    """None when the graph can run, else the 400 body."""
    for node_id, node in graph.items():
        class_type = node.get("class_type") if isinstance(node, dict) else None
        if class_type is None:
            return top_error(
                "invalid_prompt",
                "Cannot execute because a node is missing the class_type property.",
                f"Node ID '#{node_id}'",
            )
        if class_type not in NODES:
            return top_error(
                "missing_node_type",
                f"Node '{class_type}' not found. The custom node may not be installed.",
                f"Node ID '#{node_id}'",
                {"node_id": node_id, "class_type": class_type},
            )
    outputs = [nid for nid, n in graph.items() if NODES[n["class_type"]].output_node]
    if not outputs:
        return top_error("prompt_no_outputs", "Prompt has no outputs")
    node_errors = {}
    for nid in outputs:
        errors: dict[str, list[dict[str, Any]]] = {}
        check_node(graph, nid, folders, errors, set())
        for bad, errs in errors.items():
            node_errors[bad] = {
                "errors": errs,
                "dependent_outputs": [nid],
                "class_type": graph[bad]["class_type"],
            }
    if node_errors:
        return top_error(
            "prompt_outputs_failed_validation",
            "Prompt outputs failed validation",
            node_errors=node_errors,
        )
    return None


def check_node(
    graph: dict[str, Any],
    nid: str,
    folders: Folders,
    errors: dict[str, list[dict[str, Any]]],
    seen: set[str],
) -> None:
    if nid in seen:
        return
    seen.add(nid)
    node = graph[nid]
    spec = NODES[node["class_type"]]
    inputs = node.get("inputs", {})
    for name, config in spec.required.items():
        problem = check_input(graph, nid, name, config, inputs, folders, errors, seen)
        if problem:
            errors.setdefault(nid, []).append(problem)


def check_input(
    graph: dict[str, Any],
    nid: str,
    name: str,
    config: list[Any],
    inputs: dict[str, Any],
    folders: Folders,
    errors: dict[str, list[dict[str, Any]]],
    seen: set[str],
) -> dict[str, Any] | None:
    def fail(kind: str, message: str, details: str, value: Any = None) -> dict[str, Any]:
        return {
            "type": kind,
            "message": message,
            "details": details,
            "extra_info": {"input_name": name, "input_config": config, "received_value": value},
        }

    if name not in inputs:
        return fail("required_input_missing", "Required input is missing", name)
    value = inputs[name]
    kind = config[0]
    if is_link(value):
        source = str(value[0])
        if source not in graph:
            return fail(
                "bad_linked_input",
                "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                f"{name}, {value}",
                value,
            )
        out_types = NODES[graph[source]["class_type"]].outputs
        if value[1] >= len(out_types) or out_types[value[1]] != kind:
            got = out_types[value[1]] if value[1] < len(out_types) else "?"
            return fail(
                "return_type_mismatch",
                "Return type mismatch between linked nodes",
                f"{name}, received_type({got}) mismatch input_type({kind})",
                value,
            )
        check_node(graph, source, folders, errors, seen)
        return None
    if name == "image" and graph[nid]["class_type"] == "LoadImage":
        if not isinstance(value, str) or not (folders.input / value).is_file():
            return fail(
                "custom_validation_failed",
                "Custom validation failed for node",
                f"image - Invalid image file: {value}",
                value,
            )
        return None
    if isinstance(kind, list):
        if value not in kind:
            return fail(
                "value_not_in_list", "Value not in list", f"{name}: '{value}' not in {kind}", value
            )
        return None
    return check_literal(kind, config, value, fail)


def check_literal(kind: str, config: list[Any], value: Any, fail: Any) -> dict[str, Any] | None:
    if kind in ("INT", "FLOAT"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return fail(
                "invalid_input_type",
                f"Failed to convert an input value to a {kind} value",
                f"{value}",
                value,
            )
        limits = config[1] if len(config) > 1 else {}
        if "min" in limits and value < limits["min"]:
            return fail(
                "value_smaller_than_min",
                f"Value {value} smaller than min of {limits['min']}",
                f"{value}",
                value,
            )
        if "max" in limits and value > limits["max"]:
            return fail(
                "value_bigger_than_max",
                f"Value {value} bigger than max of {limits['max']}",
                f"{value}",
                value,
            )
    if kind == "STRING" and not isinstance(value, str):
        return fail(
            "invalid_input_type",
            "Failed to convert an input value to a STRING value",
            f"{value}",
            value,
        )
    return None
