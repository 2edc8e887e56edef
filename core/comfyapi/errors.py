"""What each Comfy API error means for the user ([spec] ErrorEnvelope codes), with what to do.

Each status and code, and which text or server has it: docs/WIRE.md §5.9.
"""

from __future__ import annotations

from typing import Any

import requests
from pydantic import ValidationError

from ..errors import (
    AuthenticationFailed,
    ComfyRelayError,
    NodeProblem,
    PromptRejected,
    ServerError,
    UploadTooLarge,
    WorkflowError,
)
from ..net.http import short_body, short_path
from .wire import ApiError

SERVICE = "Comfy API"
# [spec] 429 codes that mean "back off and retry after Retry-After": queue_full and
# deployment_not_ready (postJobs), rate_limited (RateLimited response), too_many_streams
# (getJobEvents). [spec] 409 idempotency_conflict (older 2.0.0 text): a retry of the same key
# is still in flight, also with Retry-After. docs/WIRE.md §5.2, §5.9.
WAIT_CODES = frozenset({"queue_full", "deployment_not_ready", "rate_limited", "too_many_streams",
                        "idempotency_conflict"})


def api_error(response: requests.Response) -> ApiError:
    """The error envelope of an answer; an empty ApiError when it is not one."""
    try:
        data = response.json()
    except ValueError:
        return ApiError()
    if not isinstance(data, dict) or not isinstance(data.get("error"), dict):
        return ApiError()
    try:
        return ApiError.model_validate(data["error"])
    except ValidationError:
        return ApiError()


def error_for(
    response: requests.Response, method: str, path: str, base_url: str, *, keyed: bool,
    redact: Any,
) -> ComfyRelayError:
    """A ComfyRelayError for a 4xx/5xx answer, from the envelope's code where there is one."""
    status = response.status_code
    error = api_error(response)
    code = error.code
    detail = redact(error.message or short_body(response))
    where = f"{method} {short_path(path)}"
    if status == 401 or code == "unauthorized":
        hint = (
            "Check the API key (COMFY_API_KEY, comfy_api_key in the credentials file, or the "
            "key in the add-on's settings)." if keyed
            else "This server needs an API key: set COMFY_API_KEY or enter it in the settings."
        )
        return AuthenticationFailed(
            f"The {SERVICE} at {base_url} refused the API key (401 unauthorized). {hint}"
        )
    if status == 403 or code == "forbidden":
        return AuthenticationFailed(
            f"The {SERVICE} at {base_url} refused {where} (403 {code or 'forbidden'}): the key "
            f"is valid but not allowed to do this. {detail}"
        )
    if status == 402 or code == "insufficient_credits":
        return ServerError(
            f"Your Comfy account has insufficient credits (402 insufficient_credits), so the job "
            f"was not run. Add credits to the account, then run it again. {detail}", status
        )
    if code == "workflow_format_ui":
        return WorkflowError(
            "The Comfy API refused the workflow as a UI-format export (422 workflow_format_ui). "
            "In ComfyUI use Workflow › Export (API) and load that file instead."
        )
    if code == "invalid_workflow":
        problems = node_problems((error.details or {}).get("node_errors"))
        return PromptRejected(
            f"The {SERVICE} refused the workflow (422 invalid_workflow): {detail}", problems
        )
    if code == "missing_asset":
        return ServerError(
            f"The {SERVICE} does not know an input this job references (422 missing_asset: "
            f"{detail}). It may have expired or the server restarted; run the job again to "
            "upload it anew.", status
        )
    if code == "deployment_stopped":
        return ServerError(
            f"The Comfy deployment at {base_url} is stopped (422 deployment_stopped); a retry "
            "cannot succeed until its owner starts it again.", status
        )
    if status == 413 or code == "payload_too_large":
        return UploadTooLarge(f"The {SERVICE} refused the upload as too large (413). {detail}")
    if code == "upstream_unreachable":  # [proxy] 503: no ComfyUI behind it (docs/WIRE.md §5.9)
        return ServerError(
            f"The {SERVICE} at {base_url} cannot reach the ComfyUI behind it (503 "
            "upstream_unreachable). Check that ComfyUI is running.", status
        )
    if status == 503:
        return ServerError(
            f"The {SERVICE} at {base_url} is not ready (503{' ' + code if code else ''}). If it "
            f"is a deployment that is starting, wait a minute and try again. {detail}", status
        )
    if status == 404:
        return ServerError(f"The {SERVICE} has no {where} (404 {code or 'not_found'}). {detail}",
                           status)
    label = f"{status} {code}" if code else str(status)
    return ServerError(f"The {SERVICE} answered {label} to {where}. {detail}", status)


def node_problems(node_errors: Any) -> list[NodeProblem]:
    """Per-node problems from `details.node_errors`, in either shape seen: [spec] ErrorEnvelope
    example {"12": [{"field", "reason"}]}, or [proxy] ComfyUI's own {"12": {"class_type",
    "errors": [{"message", "details", "extra_info": {"input_name"}}]}} passed through
    (docs/WIRE.md §5.9)."""
    problems: list[NodeProblem] = []
    if not isinstance(node_errors, dict):
        return problems
    for node_id, entry in node_errors.items():
        class_type = ""
        items: Any = entry
        if isinstance(entry, dict):
            class_type = str(entry.get("class_type") or "")
            items = entry.get("errors") or []
        for item in items if isinstance(items, list) else [items]:
            if not isinstance(item, dict):
                problems.append(NodeProblem(str(node_id), class_type, "", str(item)[:200]))
                continue
            extra = item.get("extra_info")
            extra = extra if isinstance(extra, dict) else {}
            field = str(item.get("field") or extra.get("input_name") or "")
            reason = item.get("reason") or item.get("message") or ""
            more = item.get("details") or ""
            text = f"{reason}: {more}" if more and more != reason else str(reason)
            problems.append(NodeProblem(str(node_id), class_type, field, text[:300]))
    return problems
