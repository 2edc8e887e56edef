"""POST /prompt validation, following ComfyUI 0.3.64's execution.validate_prompt step by step.

It is deliberately a transcription rather than a cleaner design: the error types, their
`extra_info`, which node an error is filed under, and which malformed graphs raise (and so
become a 500) all fall out of the real algorithm, and a client must cope with exactly those.
"""

from __future__ import annotations

import traceback
import uuid
from typing import Any

from tests.servers.comfy_nodes import NODES, Folders

Reasons = list[dict[str, Any]]
Validated = dict[str, tuple[bool, Reasons]]


def top_error(kind: str, message: str, details: str = "") -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": {}}


def check_prompt_id(prompt_id: str) -> dict[str, Any] | None:
    """Newer servers accept only canonical UUIDs (0.3.64 itself takes any string)."""
    try:
        if str(uuid.UUID(prompt_id)) == prompt_id:
            return None
    except ValueError:
        pass
    # The newest server.py's words (Comfy-Org/ComfyUI 002c3fb9).
    return top_error(
        "invalid_prompt_id",
        "prompt_id must be a valid UUID",
        "prompt_id must be a UUID string in canonical lowercase hyphenated form; omit it to "
        "let the server generate one",
    )


def validate_prompt(
    prompt: Any, folders: Folders, partial: list[str] | None = None
) -> tuple[dict[str, Any] | None, list[str], dict[str, Any]]:
    """(top error or None, outputs to execute, node_errors). A 200 may carry node_errors:
    outputs that failed are dropped as long as one output is still good."""
    outputs: list[str] = []
    for x in prompt:
        if "class_type" not in prompt[x]:
            message = "Cannot execute because a node is missing the class_type property."
            return top_error("invalid_prompt", message, f"Node ID '#{x}'"), [], {}
        class_type = prompt[x]["class_type"]
        if class_type not in NODES:
            message = f"Cannot execute because node {class_type} does not exist."
            return top_error("invalid_prompt", message, f"Node ID '#{x}'"), [], {}
        if NODES[class_type].output_node and (partial is None or x in partial):
            outputs.append(x)
    if not outputs:
        return top_error("prompt_no_outputs", "Prompt has no outputs"), [], {}

    good: list[str] = []
    failed: list[tuple[str, Reasons]] = []
    node_errors: dict[str, Any] = {}
    validated: Validated = {}
    for o in outputs:
        try:
            valid, reasons = validate_inputs(prompt, o, validated, folders)
        except Exception as ex:
            valid, reasons = False, [_exception("exception_during_validation", ex, {})]
            validated[o] = (False, reasons)
        if valid:
            good.append(o)
            continue
        failed.append((o, reasons))
        # As the real loop does: every failing node seen so far gets this output appended.
        for node_id, (ok, node_reasons) in validated.items():
            if not ok and node_reasons:
                entry = node_errors.setdefault(
                    node_id,
                    {
                        "errors": node_reasons,
                        "dependent_outputs": [],
                        "class_type": prompt[node_id]["class_type"],
                    },
                )
                entry["dependent_outputs"].append(o)
    if not good:
        details = "\n".join(f"{e['message']}: {e['details']}" for _, errs in failed for e in errs)
        error = top_error(
            "prompt_outputs_failed_validation", "Prompt outputs failed validation", details
        )
        return error, [], node_errors
    return None, good, node_errors


def _exception(kind: str, ex: Exception, extra: dict[str, Any]) -> dict[str, Any]:
    """An exception raised while validating, reported with its (server-side) traceback."""
    exception_type = type(ex).__qualname__
    if type(ex).__module__ != "builtins":
        exception_type = f"{type(ex).__module__}.{exception_type}"
    tb = traceback.format_tb(ex.__traceback__)
    if kind == "exception_during_validation":
        message = "Exception when validating node"
        extra_info = {"exception_type": exception_type, "traceback": tb}
    else:
        message = "Exception when validating inner node"
        extra_info = {
            "input_name": extra["input_name"],
            "input_config": extra["input_config"],
            "exception_message": str(ex),
            "exception_type": exception_type,
            "traceback": tb,
            "linked_node": extra["linked_node"],
        }
    return {"type": kind, "message": message, "details": str(ex), "extra_info": extra_info}


def types_match(received: Any, wanted: Any) -> bool:
    """comfy_execution.validation.validate_node_input; "*" (IO.ANY) matches anything."""
    if received == wanted or "*" in (received, wanted):
        return True
    if not isinstance(received, str) or not isinstance(wanted, str):
        return False
    return bool({t.strip() for t in received.split(",")} & {t.strip() for t in wanted.split(",")})


def validate_inputs(
    prompt: Any, item: str, validated: Validated, folders: Folders
) -> tuple[bool, Reasons]:
    if item in validated:
        return validated[item]
    inputs = prompt[item]["inputs"]  # a node without "inputs" raises, as in ComfyUI
    node = NODES[prompt[item]["class_type"]]
    required = node.inputs("required")
    specs = {**required, **node.inputs("optional")}
    custom = [node.validated] if node.validate else []  # the VALIDATE_INPUTS arguments
    errors: Reasons = []
    valid = True
    for x, spec in specs.items():
        info = [spec[0], spec[1] if len(spec) > 1 else {}]
        if x not in inputs:
            if x in required:
                errors.append(_reason("required_input_missing", "Required input is missing", x, x))
            continue
        if isinstance(inputs[x], list):
            ok = _check_link(prompt, x, inputs[x], info, validated, folders, errors)
            valid = valid and ok
        elif x not in custom:
            _check_literal(inputs, x, info, errors)
        else:
            _convert(inputs, x, info, errors)
    for x in custom:
        assert node.validate is not None
        result = node.validate(folders, *([inputs[x]] if x in inputs else []))
        if result is not True:
            details = x if result is False else f"{x} - {result}"
            message = "Custom validation failed for node"
            errors.append(_reason("custom_validation_failed", message, details, x))
    ret = (not errors and valid, errors)
    validated[item] = ret
    return ret


def _reason(kind: str, message: str, details: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "message": message,
        "details": details,
        "extra_info": {"input_name": name, **extra},
    }


def _check_link(
    prompt: Any,
    x: str,
    val: list[Any],
    info: list[Any],
    validated: Validated,
    folders: Folders,
    errors: Reasons,
) -> bool:
    """False when the upstream node is invalid; appends this input's own errors."""
    if len(val) != 2:
        message = "Bad linked input, must be a length-2 list of [node_id, slot_index]"
        errors.append(
            _reason("bad_linked_input", message, x, x, input_config=info, received_value=val)
        )
        return True
    o_id = val[0]
    received = NODES[prompt[o_id]["class_type"]].return_types[val[1]]  # may raise: see above
    if not types_match(received, info[0]):
        details = f"{x}, received_type({received}) mismatch input_type({info[0]})"
        errors.append(
            _reason(
                "return_type_mismatch",
                "Return type mismatch between linked nodes",
                details,
                x,
                input_config=info,
                received_type=received,
                linked_node=val,
            )
        )
        return True
    try:
        return validate_inputs(prompt, o_id, validated, folders)[0]
    except Exception as ex:
        # Filed under the upstream node, but naming *this* node's input: as ComfyUI does.
        extra = {"input_name": x, "input_config": info, "linked_node": val}
        validated[o_id] = (False, [_exception("exception_during_inner_validation", ex, extra)])
        return False


def _convert(inputs: dict[str, Any], x: str, info: list[Any], errors: Reasons) -> bool:
    val = inputs[x]
    try:
        if isinstance(val, dict) and "__value__" in val:
            val = inputs[x] = val["__value__"]
        convert = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}.get(
            info[0] if isinstance(info[0], str) else ""
        )
        if convert is not None:
            inputs[x] = convert(val)
    except Exception as ex:
        errors.append(
            _reason(
                "invalid_input_type",
                f"Failed to convert an input value to a {info[0]} value",
                f"{x}, {val}, {ex}",
                x,
                input_config=info,
                received_value=val,
                exception_message=str(ex),
            )
        )
        return False
    return True


def _check_literal(inputs: dict[str, Any], x: str, info: list[Any], errors: Reasons) -> None:
    if not _convert(inputs, x, info, errors):
        return
    val, limits = inputs[x], info[1]
    extra = {"input_config": info, "received_value": val}
    if "min" in limits and val < limits["min"]:
        message = f"Value {val} smaller than min of {limits['min']}"
        errors.append(_reason("value_smaller_than_min", message, x, x, **extra))
    elif "max" in limits and val > limits["max"]:
        message = f"Value {val} bigger than max of {limits['max']}"
        errors.append(_reason("value_bigger_than_max", message, x, x, **extra))
    elif (options := _options(info)) is not None and val not in options:
        listed = f"(list of length {len(options)})" if len(options) > 20 else str(options)
        extra["input_config"] = None if len(options) > 20 else info
        errors.append(
            _reason(
                "value_not_in_list",
                "Value not in list",
                f"{x}: '{val}' not in {listed}",
                x,
                **extra,
            )
        )


def _options(info: list[Any]) -> list[Any] | None:
    """A combo's choices: the old list form, or a "COMBO" with `options` (V3 nodes)."""
    if isinstance(info[0], list):
        return info[0]
    if info[0] == "COMBO" and isinstance(info[1].get("options"), list):
        return list(info[1]["options"])
    return None
