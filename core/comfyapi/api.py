"""The Comfy API v2 operations of one server and key: jobs, assets, downloads.

The key goes only in the `Authorization: Bearer` header ([spec] securitySchemes.bearerAuth),
only to the API's own origin, and never into a URL or a log line (docs/WIRE.md §5.1, §5.7).
"""

from __future__ import annotations

import logging
import mimetypes
import threading
import uuid
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from pydantic import ValidationError

from ..errors import ComfyRelayError, ConnectionFailed, RateLimited, ServerError
from ..net.downloads import UrlFetcher, url_name
from ..net.files import output_path, write_stream
from ..net.http import DEFAULT_TIMEOUT, HttpClient, short_path
from ..net.ratelimit import (
    DEFAULT_POLICY,
    Cancelled,
    RetryPolicy,
    TokenBucket,
    never,
    retry_after,
    send_limited,
    sleep,
)
from .errors import SERVICE, WAIT_CODES, api_error, error_for
from .links import Links
from .wire import Asset, Job, Output

log = logging.getLogger(__name__)

ANY_ERROR = tuple(range(400, 600))
# Where a submit's answer may have been lost after the server acted on it: retry with the same
# Idempotency-Key ([spec] postJobs), never a fresh one (docs/WIRE.md §5.2).
UNKNOWN_OUTCOME = frozenset({500, 502, 503, 504})
SUBMIT_ATTEMPTS = 3
# [inferred] A node's `_meta` is ignored by ComfyUI and kept verbatim in the job's recorded
# workflow ([spec] getJobWorkflow, format api): our Idempotency-Key there lets us find a job
# whose submit answer was lost. The spec defines no submit field for this (the proxy's string
# `metadata` and Cloud's label map differ), so a key in the graph is the portable way
# (docs/WIRE.md §5.2).
SUBMIT_MARK = "comfyrelay_submit"
# [inferred] The spec names no request rate: a server over its limit answers 429 rate_limited
# with Retry-After ([spec] RateLimited), which every caller of the origin's bucket then waits
# out. The bucket itself only keeps a runaway loop polite; a server on this machine (a local
# comfy-api-proxy) is not throttled at all (docs/WIRE.md §5.1, §5.9).
RATE, BURST = 20.0, 40
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
_limiters: dict[str, TokenBucket] = {}
_limiters_lock = threading.Lock()


def limiter_for(origin: str) -> TokenBucket:
    """The one bucket of this process for an API origin (Cloud and a local proxy differ)."""
    with _limiters_lock:
        if origin not in _limiters:
            local = urlsplit(origin).netloc.rsplit(":", 1)[0] in LOOPBACK
            _limiters[origin] = TokenBucket(1e6, 10**6) if local else TokenBucket(RATE, BURST)
        return _limiters[origin]


class ComfyApi:
    """One server's Comfy API v2. Thread: whoever made it (the runner's worker; the check and
    the event stream each make their own, as a requests session is not shared between
    threads)."""

    def __init__(
        self,
        api_url: str,
        api_key: str = "",
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        limiter: TokenBucket | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.links = Links(api_url)
        self.api_key = api_key.strip()
        self.timeout = timeout
        self.http = HttpClient(self.links.base, token=self.api_key or None, timeout=timeout,
                               service=SERVICE)
        self.http.session.headers["Accept"] = "application/json"
        self.limiter = limiter or limiter_for(self.links.origin)
        self.policy = policy
        self._secrets = secrets  # beside the key (a partner key): for copy()
        for secret in secrets:
            self.http.add_secret(secret)  # kept out of every message, parse()'s included
        self.fetcher = UrlFetcher("Comfy API")

    @property
    def base_url(self) -> str:
        return self.links.base

    def copy(self) -> ComfyApi:
        """The same server and key, with a session of its own (for another thread)."""
        return ComfyApi(self.links.base, self.api_key, timeout=self.timeout,
                        limiter=self.limiter, policy=self.policy, secrets=self._secrets)

    # ---- sending: rate limit, the spec's back-off answers, errors ----
    def call(
        self, method: str, url: str, *, accept: tuple[int, ...] = (),
        cancelled: Cancelled = never, **kwargs: Any,
    ) -> requests.Response:
        """Send one request; wait and repeat on answers that mean "back off" ([spec] 429 with
        Retry-After, 409 idempotency_conflict, and 503 with Retry-After while a deployment
        starts [inferred]; docs/WIRE.md §5.9); raise a clear error for other failures not in
        `accept`."""
        seen: dict[str, str] = {}

        def send() -> requests.Response:
            response = self.http.request(method, url, accept=ANY_ERROR, **kwargs)
            if response.status_code == 429:
                seen["code"] = api_error(response).code
            return response

        waited = 0.0
        while True:
            try:
                response = send_limited(send, self.limiter, cancelled=cancelled,
                                        policy=self.policy, service=SERVICE)
            except RateLimited:
                raise RateLimited(self._gave_up(seen.get("code", ""), url), 429) from None
            status = response.status_code
            delay = retry_after(response)
            code = api_error(response).code if status in (409, 503) else ""
            if (code in WAIT_CODES or (status == 503 and delay is not None)) and (
                waited + (delay or 1.0) <= self.policy.total
            ):
                log.info("Comfy API answered %d %s: waiting %.1f s", status, code, delay or 1.0)
                sleep(delay or 1.0, cancelled)
                waited += delay or 1.0
                continue
            if status >= 400 and status not in accept:
                raise error_for(response, method, url, self.links.base, keyed=bool(self.api_key),
                                redact=self.http.redact)
            return response

    def _gave_up(self, code: str, url: str) -> str:
        if code == "queue_full":
            return (f"The {SERVICE} queue stayed full (429 queue_full) for "
                    f"{self.policy.total:.0f} s; nothing was run. Try again later.")
        if code == "deployment_not_ready":
            return (f"The Comfy deployment at {self.links.base} did not become ready (429 "
                    f"deployment_not_ready) within {self.policy.total:.0f} s. Try again soon.")
        return (f"The {SERVICE} kept answering 429 {code or 'too many requests'} to "
                f"{short_path(url)} for {self.policy.total:.0f} s. Wait a few minutes.")

    # ---- health and key ----
    def health(self) -> dict[str, Any] | None:
        """[proxy] GET /api/v2/health (not in the spec; exempt from auth); None if absent
        (docs/WIRE.md §5.1)."""
        response = self.call("GET", self.links.api("/health"), accept=(404, 405))
        if response.status_code != 200:
            return None
        data = self.http.parse(response, "/api/v2/health")
        return data if isinstance(data, dict) else None

    def has_blob(self, content_hash: str, cancelled: Cancelled = never) -> bool:
        """[spec] headAssetByHash: 200 if this account may mint from the blob, else 404
        (docs/WIRE.md §5.6)."""
        url = self.links.api("/assets/by-hash/") + quote(content_hash, safe=":")
        response = self.call("HEAD", url, accept=(404,), cancelled=cancelled)
        return response.status_code == 200

    # ---- assets ----
    def asset_from_hash(
        self, content_hash: str, file_path: str, cancelled: Cancelled = never
    ) -> Asset | None:
        """[spec] assetFromHash: a new asset over bytes the server has; None on 404
        (docs/WIRE.md §5.6)."""
        url = self.links.api("/assets/from-hash")
        body = {"hash": content_hash, "file_path": file_path, "tags": ["input"]}
        response = self.call("POST", url, json=body, accept=(404,), cancelled=cancelled)
        if response.status_code == 404:
            return None
        return self._asset(response, url)

    def upload(
        self, data: bytes, file_path: str, *, expected_hash: str = "",
        cancelled: Cancelled = never,
    ) -> Asset:
        """[spec] postAssets: one multipart request. The server hashes the bytes and dedups;
        `expected_hash` is verified there (409 hash_mismatch). A 202 (older 2.0.0 text: still
        scanning) is taken as usable, as the newer text says uploads are referenceable at once
        (docs/WIRE.md §5.6)."""
        content_type = mimetypes.guess_type(file_path)[0] or "application/octet-stream"
        fields: list[tuple[str, Any]] = [
            ("content_type", (None, content_type)), ("file_path", (None, file_path)),
            ("tags", (None, "input")),
        ]
        if expected_hash:
            fields.append(("expected_hash", (None, expected_hash)))
        fields.append(("file", (PurePosixPath(file_path).name, data, content_type)))
        url = self.links.api("/assets")
        # [spec] x-idempotency-key: recommended (docs/WIRE.md §5.6)
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        response = self.call("POST", url, files=fields, headers=headers, cancelled=cancelled)
        return self._asset(response, url)

    def get_asset(self, asset_id: str) -> Asset:
        """[spec] getAsset: the asset with a fresh short-lived url (docs/WIRE.md §5.7)."""
        url = self.links.api("/assets/{}", asset_id)
        return self._asset(self.call("GET", url), url)

    def _asset(self, response: requests.Response, url: str) -> Asset:
        data = self.http.parse(response, url)
        try:
            return Asset.model_validate(data)
        except ValidationError:
            raise ServerError(
                f"The {SERVICE} answered {short_path(url)} without an asset id "
                f"({self.http.redact(str(data))[:200]})."
            ) from None

    # ---- jobs ----
    def submit(
        self, graph: dict[str, Any], *, extra_data: dict[str, str] | None = None,
        cancelled: Cancelled = never,
    ) -> Job:
        """[spec] postJobs with an Idempotency-Key. When the answer is lost (the connection
        broke, or a 5xx where the job may exist), the same key is sent again: the server then
        runs nothing twice ([spec] single-use keys answer 422 idempotency_key_reuse, and the
        older 2.0.0 text's Stripe semantics replay the same job with 201); docs/WIRE.md §5.2."""
        key = str(uuid.uuid4())
        graph = mark(graph, key)
        body: dict[str, Any] = {"workflow": graph}
        if extra_data:
            # [spec] closed object: api_key_comfy_org only (docs/WIRE.md §5.2)
            body["extra_data"] = extra_data
        url = self.links.api("/jobs")
        lost: ComfyRelayError | None = None
        for attempt in range(SUBMIT_ATTEMPTS):
            if attempt:
                log.info("the answer to a job submit was lost (%s); asking again with the same "
                         "Idempotency-Key", type(lost).__name__)
                sleep(float(attempt), cancelled)
            try:
                response = self.call("POST", url, json=body, headers={"Idempotency-Key": key},
                                     accept=(422,), cancelled=cancelled)
            except ConnectionFailed as exc:
                lost = exc
                continue
            except ServerError as exc:
                if exc.status not in UNKNOWN_OUTCOME:
                    raise
                lost = exc
                continue
            if response.status_code == 422:
                if api_error(response).code != "idempotency_key_reuse" or lost is None:
                    raise error_for(response, "POST", url, self.links.base,
                                    keyed=bool(self.api_key), redact=self.http.redact)
                return self._recover(key, lost, cancelled)
            return self.parse_job(response, url)
        raise ConnectionFailed(
            f"Could not submit the job to the {SERVICE} at {self.links.base}: {lost} It was "
            f"sent {SUBMIT_ATTEMPTS} times with one Idempotency-Key, so it runs at most once; "
            "check the server's job list before running it again."
        )

    def _recover(self, key: str, lost: ComfyRelayError, cancelled: Cancelled) -> Job:
        """The server holds our key but its answer was lost: find the job it may have made."""
        found = self.find_submitted(key, cancelled)
        if found is None:
            raise ServerError(
                f"The answer to the job submit was lost ({lost}), and the retry with the same "
                f"Idempotency-Key was refused as a reuse: the {SERVICE} may hold the job, but "
                "it is not in its job list. It was not sent again, so it cannot run twice; "
                "check the server's jobs before running it again."
            )
        log.info("found job %s, whose submit answer was lost: not sent again", found.id)
        return found

    def find_submitted(self, key: str, cancelled: Cancelled = never) -> Job | None:
        """The job carrying our submit mark among the newest jobs: [proxy] GET /api/v2/jobs
        (the spec's postJobs says to "poll or list your jobs"; the listing itself is not in the
        public text), then [spec] getJobWorkflow for each (docs/WIRE.md §5.2)."""
        listing = self.call("GET", self.links.api("/jobs"), params={"limit": "20"},
                            accept=(404, 405), cancelled=cancelled)
        if listing.status_code != 200:
            return None
        data = self.http.parse(listing, "/api/v2/jobs")
        items = (data.get("jobs") or data.get("items") or []) if isinstance(data, dict) else []
        for item in items if isinstance(items, list) else []:
            job_id = str(item.get("id") or "") if isinstance(item, dict) else ""
            if not job_id:
                continue
            url = self.links.api("/jobs/{}/workflow", job_id)
            response = self.call("GET", url, accept=(404,), cancelled=cancelled)
            if response.status_code == 200 and marked(self.http.parse(response, url), key):
                return self.get_job(self.links.api("/jobs/{}", job_id), cancelled)
        return None

    def get_job(self, url: str, cancelled: Cancelled = never) -> Job:
        """[spec] getJob: the authoritative state (url: the job's own `urls.self`);
        docs/WIRE.md §5.4."""
        return self.parse_job(self.call("GET", url, cancelled=cancelled), url)

    def cancel(self, url: str) -> Job:
        """[spec] cancelJob: the job as it is now (canceling, or already terminal);
        docs/WIRE.md §5.8."""
        return self.parse_job(self.call("POST", url), url)

    def parse_job(self, response: requests.Response, url: str) -> Job:
        """A Job, or an error that names what came back instead."""
        data = self.http.parse(response, url)
        try:
            return Job.model_validate(data)
        except ValidationError as exc:
            raise ServerError(
                f"The {SERVICE} answered {short_path(url)} with a job that is not shaped as the "
                f"spec's Job: {describe(exc, data)}. Is {self.links.base} a Comfy API v2 server?",
                response.status_code,
            ) from None

    def job_url(self, job: Job, which: str) -> str:
        """The job's own link `which` (self, events, cancel) when it is on our origin; else
        the spec's path for the server's job id [inferred], with a log line (docs/WIRE.md
        §5.1)."""
        link = job.urls.self_url if which == "self" else getattr(job.urls, which)
        url = self.links.follow(link)
        if url is not None:
            return url
        if link:
            log.warning("the Comfy API's %s link leads to another server (%s); using %s on %s",
                        which, urlsplit(link).netloc, short_path(link), self.links.origin)
        tail = "" if which == "self" else "/" + which
        return self.links.api("/jobs/{}" + tail, job.id)

    # ---- outputs ----
    def download(self, output: Output, out_dir: Path, index: int) -> Path:
        """Save one output from its link into out_dir under a safe, new name. The key goes
        only to the API's origin; storage links get no credentials ([spec] getAssetContent may
        302 to a signed URL: requests drops the header when the host changes); docs/WIRE.md
        §5.7."""
        name = output.name or url_name(output.url) or f"output_{index}"
        try:
            return self._save(output.url, name, out_dir)
        except ServerError as exc:
            if not output.id or exc.status not in (401, 403, 404, 410):
                raise
            # [spec] Output.url is short-lived; getAsset always yields a fresh one
            # (docs/WIRE.md §5.7).
            log.info("output link of %s expired (%s); asking for a fresh one", name, exc.status)
            return self._save(self.get_asset(output.id).url, name, out_dir)

    def _save(self, link: str, name: str, out_dir: Path) -> Path:
        url = self.links.follow(link)
        if url is None:
            if urlsplit(link).scheme not in ("http", "https"):
                raise ServerError(f"The {SERVICE} gave the output {name!r} no usable link.")
            return self.fetcher.save(link, out_dir, name)
        self.limiter.acquire()
        target = output_path(out_dir, name)
        return write_stream(self.http.stream(url, label=repr(name)), target)

    def close(self) -> None:
        self.fetcher.close()
        self.http.close()


def mark(graph: dict[str, Any], key: str) -> dict[str, Any]:
    """A copy of graph whose first node's `_meta` carries our submit key."""
    first = next((k for k, v in graph.items() if isinstance(v, dict) and "class_type" in v),
                 None)
    if first is None:
        return graph  # not an API-format graph: the server will say so
    graph = dict(graph)
    node = dict(graph[first])
    node["_meta"] = {**(node.get("_meta") or {}), SUBMIT_MARK: key}
    graph[first] = node
    return graph


def marked(data: Any, key: str) -> bool:
    """Whether a getJobWorkflow answer's graph carries our submit key."""
    graph = data.get("workflow") if isinstance(data, dict) else None
    if not isinstance(graph, dict):
        return False
    return any(
        isinstance(node, dict) and isinstance(node.get("_meta"), dict)
        and node["_meta"].get(SUBMIT_MARK) == key
        for node in graph.values()
    )


def describe(exc: ValidationError, data: Any) -> str:
    """The first mismatch, with the offending value's type and a short excerpt."""
    first = exc.errors()[0]
    value: Any = data
    for part in first["loc"]:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            break
    where = ".".join(str(p) for p in first["loc"]) or "the answer"
    excerpt = repr(value)[:160]
    return f"{where} is a {type(value).__name__} ({excerpt}): {first['msg']}"
