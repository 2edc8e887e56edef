"""The job routes of the newest ComfyUI read (server.py 002c3fb9, comfy_execution/jobs.py
172be438 of Comfy-Org/ComfyUI; they came with PR #11054): GET /api/jobs, GET /api/jobs/{id},
POST /api/jobs/{id}/cancel and POST /api/jobs/cancel, for the test server's "new" profile.

Transcribed where a client can tell: the statuses, 404 `{"error": "Job not found"}` for an
unknown id, and a cancel that is a no-op (200, `cancelled: false`) for ended or unknown ids.
"""

from __future__ import annotations

import heapq
import uuid
from typing import Any, Protocol

from aiohttp import web

from tests.servers.comfy_executor import Executor, Prompt

STATUSES = ("pending", "in_progress", "completed", "failed", "cancelled")


class Host(Protocol):
    """What the routes need from the server."""

    queue: list[tuple[float, str, int, Prompt]]
    running: Prompt | None
    history: dict[str, dict[str, Any]]
    executor: Executor

    async def _broadcast_status(self) -> None: ...


def add_routes(app: web.Application, host: Host) -> None:
    """Registered as "/api/jobs..." itself, not through the /api alias loop."""

    async def list_jobs(request: web.Request) -> web.Response:
        return list_response(host, request.rel_url.query)

    async def get_job(request: web.Request) -> web.Response:
        job = find_job(host, request.match_info["job_id"])
        if job is None:
            return web.json_response({"error": "Job not found"}, status=404)
        return web.json_response(job)

    async def cancel_one(request: web.Request) -> web.Response:
        return web.json_response({"cancelled": await cancel(host, request.match_info["job_id"])})

    async def cancel_batch(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "Request body must be valid JSON"}, status=400)
        ids = body.get("job_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list):
            return web.json_response({"error": "job_ids must be a list"}, status=400)
        bad = [i if isinstance(i, str) else repr(i) for i in ids if not canonical(i)]
        if bad:
            error = {"error": "job_ids contains invalid id(s)", "invalid_ids": bad}
            return web.json_response(error, status=400)
        results = [await cancel(host, job_id) for job_id in ids]
        return web.json_response({"cancelled": any(results)})

    app.router.add_get("/api/jobs", list_jobs)
    app.router.add_get("/api/jobs/{job_id}", get_job)
    app.router.add_post("/api/jobs/cancel", cancel_batch)
    app.router.add_post("/api/jobs/{job_id}/cancel", cancel_one)


def canonical(value: Any) -> bool:
    """validate_job_id: a UUID string in canonical lowercase hyphenated form."""
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def queue_job(prompt: Prompt, status: str, full: bool) -> dict[str, Any]:
    """normalize_queue_item (None fields pruned)."""
    job: dict[str, Any] = {
        "id": prompt.prompt_id,
        "status": status,
        "priority": prompt.number,
        "create_time": prompt.extra_data.get("create_time"),
        "outputs_count": 0,
        "previewable_outputs_count": 0,
    }
    if full:
        job["workflow"] = {"prompt": prompt.graph, "extra_data": prompt.extra_data}
    return {k: v for k, v in job.items() if v is not None}


def history_job(prompt_id: str, entry: dict[str, Any], full: bool) -> dict[str, Any]:
    """normalize_history_item: success -> completed; error -> cancelled if interrupted."""
    status_info = entry.get("status") or {}
    messages = status_info.get("messages") or []
    names = [m[0] for m in messages if isinstance(m, list) and m]
    error = next((m[1] for m in messages if m[0] == "execution_error"), None)
    if status_info.get("status_str") == "error":
        status = "cancelled" if "execution_interrupted" in names else "failed"
    else:
        status = "completed"
    outputs = entry.get("outputs") or {}
    count = sum(
        len(items)
        for output in outputs.values()
        for key, items in output.items()
        if key != "animated" and isinstance(items, list)
    )
    job: dict[str, Any] = {
        "id": prompt_id,
        "status": status,
        "priority": entry["prompt"][0],
        "create_time": entry["prompt"][3].get("create_time"),
        "execution_error": error,
        "outputs_count": count,
    }
    if full:
        job["outputs"] = outputs
        job["execution_status"] = status_info
        job["workflow"] = {"prompt": entry["prompt"][2], "extra_data": entry["prompt"][3]}
    return {k: v for k, v in job.items() if v is not None}


def find_job(host: Host, job_id: str) -> dict[str, Any] | None:
    """get_job: history first, then running, then pending."""
    if job_id in host.history:
        return history_job(job_id, host.history[job_id], full=True)
    if host.running is not None and host.running.prompt_id == job_id:
        return queue_job(host.running, "in_progress", full=True)
    for entry in host.queue:
        if entry[1] == job_id:
            return queue_job(entry[-1], "pending", full=True)
    return None


def list_response(host: Host, query: Any) -> web.Response:
    wanted = [s.strip().lower() for s in query.get("status", "").split(",") if s.strip()]
    bad = [s for s in wanted if s not in STATUSES]
    if bad:
        message = f"Invalid status value(s): {', '.join(bad)}. Valid values: {', '.join(STATUSES)}"
        return web.json_response({"error": message}, status=400)
    jobs = []
    if host.running is not None:
        jobs.append(queue_job(host.running, "in_progress", full=False))
    jobs += [queue_job(entry[-1], "pending", full=False) for entry in host.queue]
    jobs += [history_job(pid, entry, full=False) for pid, entry in host.history.items()]
    if wanted:
        jobs = [j for j in jobs if j["status"] in wanted]
    jobs.sort(key=lambda j: j.get("create_time", 0), reverse=query.get("sort_order") != "asc")
    offset = max(0, int(query.get("offset", 0)))
    limit = int(query["limit"]) if "limit" in query else None
    page = jobs[offset:][:limit] if limit is not None else jobs[offset:]
    pagination = {"offset": offset, "limit": limit, "total": len(jobs),
                  "has_more": offset + len(page) < len(jobs)}
    return web.json_response({"jobs": page, "pagination": pagination})


async def cancel(host: Host, job_id: str) -> bool:
    """cancel_job: interrupt if it is still the one running, dequeue if pending."""
    if host.running is not None and host.running.prompt_id == job_id:
        host.executor.interrupt_flag = True  # interrupt_if_running: atomic on this loop
        return True
    for index, entry in enumerate(host.queue):
        if entry[1] == job_id:
            host.queue.pop(index)
            heapq.heapify(host.queue)
            await host._broadcast_status()
            return True
    return False
