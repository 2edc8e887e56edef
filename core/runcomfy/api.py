"""RunComfy Server API (dedicated machines), docs/WIRE.md §2.

RunComfy's own docs give the base URL, auth, the workflows path, server types, billing and the
rate limit; the other paths, the machine object and the change-duration body are known only
from a third-party client and the Postman examples copied beside it ([code] in docs/WIRE.md
§2), and some shapes are guesses. So the wire models ignore unknown fields, accept a few
spellings of the same field, treat every optional field as optional, compare statuses
case-insensitively, and accept a list either bare or wrapped in an object.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import requests
from pydantic import AliasChoices, Field

from ..errors import (
    AuthenticationFailed,
    ComfyRelayError,
    ConnectionFailed,
    ServerError,
    transient,
)
from ..net.http import DEFAULT_TIMEOUT, HttpClient, short_body
from ..net.ratelimit import (
    DEFAULT_POLICY,
    Cancelled,
    RetryPolicy,
    TokenBucket,
    bucket,
    never,
    send_limited,
    sleep,
)
from ..net.wire import Wire

log = logging.getLogger(__name__)

DEFAULT_API = "https://api.runcomfy.net"
SERVICE = "RunComfy API"
SERVER_TYPES = ("medium", "large", "extra-large", "2x-large", "2xl-turbo")
READY = "ready"
# Statuses after which a machine will never become Ready: Error, Stopping and Deleting are
# [code], the rest [guess] (docs/WIRE.md §2.3).
FAILED = frozenset({"error", "failed", "stopping", "stopped", "deleting", "deleted", "terminated"})

_working_token: dict[str, int] = {}  # hash of the token pair -> index that worked last


class MachineFailed(ComfyRelayError):
    """A machine went to a failure status, or never became Ready in time."""


class RunComfyWorkflow(Wire):
    workflow_id: str = Field(default="", validation_alias=AliasChoices("workflow_id", "id"))
    workflow_name: str = Field(default="", validation_alias=AliasChoices("workflow_name", "name"))
    version_id: str = Field(validation_alias=AliasChoices("version_id", "workflow_version_id"))
    created_at: Any = None
    updated_at: Any = None


class Machine(Wire):
    server_id: str = Field(validation_alias=AliasChoices("server_id", "id", "serverId"))
    user_id: str = ""
    server_type: str = ""
    current_status: str = Field(
        default="", validation_alias=AliasChoices("current_status", "status", "currentStatus")
    )
    estimated_duration: int | None = None
    main_service_url: str = ""
    service_ready_at: Any = None
    estimated_stopping_at: Any = None
    workflow_version_id: str = ""

    @property
    def status(self) -> str:
        return self.current_status.strip().lower()

    @property
    def ready(self) -> bool:
        return self.status == READY and bool(self.main_service_url)

    @property
    def failed(self) -> bool:
        return self.status in FAILED

    def ready_epoch(self) -> float | None:
        return parse_time(self.service_ready_at)

    def stop_epoch(self) -> float | None:
        """When RunComfy will stop it: its own estimate, else ready time + duration."""
        stop = parse_time(self.estimated_stopping_at)
        ready = self.ready_epoch()
        if stop is None and ready is not None and self.estimated_duration:
            stop = ready + self.estimated_duration
        return stop


def parse_time(value: Any) -> float | None:
    """Epoch seconds from epoch seconds/milliseconds or an ISO 8601 string; None if unknown."""
    if isinstance(value, bool) or value in (None, ""):
        return None
    if isinstance(value, int | float):
        return float(value) / 1000 if value > 1e11 else float(value)
    try:
        parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)  # servers speak UTC
    return parsed.timestamp()


def items(data: Any, *keys: str) -> list[Any]:
    """A list from a bare array or one wrapped as {"servers": [...]}, {"data": [...]}..."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in (*keys, "data", "items", "results"):
            if isinstance(data.get(key), list):
                return list(data[key])
    return []


def check_error_body(data: Any, clean: Callable[[str], str] = str) -> None:
    """RunComfy may report errors as {error_code, error_message} with HTTP 200 ([guess],
    docs/WIRE.md §2.3)."""
    if isinstance(data, dict) and data.get("error_code") and "request_id" not in data:
        message = clean(str(data.get("error_message") or "no details")).strip()[:300]
        raise ServerError(f"RunComfy refused the request: {message} ({data['error_code']}).", 200)


class RunComfyApi:
    """Bearer token (Token1, falling back to Token2), shared rate limit, error bodies. Any
    thread may call, several at once (requests' connection pool is thread-safe)."""

    def __init__(
        self,
        tokens: Sequence[str],
        *,
        api_url: str = DEFAULT_API,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        limiter: TokenBucket | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self._tokens = [t for t in tokens if t]
        if not self._tokens:
            raise AuthenticationFailed(
                "No RunComfy API token: set RUNCOMFY_API_TOKEN (Token1 on your RunComfy profile)."
            )
        # Remember per token pair, by hash: the pair itself never leaves this object.
        self._key = hashlib.sha256("\n".join(self._tokens).encode()).hexdigest()
        self._index = _working_token.get(self._key, 0) % len(self._tokens)
        # Calls may overlap (a job's and the machine watchdog's): the index and the header
        # change together under this lock, held for no request.
        self._token_lock = threading.Lock()
        self.http = HttpClient(
            api_url, token=self._tokens[self._index], timeout=timeout, service=SERVICE
        )
        self.api_url = self.http.base_url
        self.limiter = limiter or bucket("runcomfy")
        self.policy = policy

    def call(
        self,
        method: str,
        path: str,
        *,
        accept: tuple[int, ...] = (),
        cancelled: Cancelled = never,
        **kwargs: Any,
    ) -> tuple[int, Any]:
        """Send one request; return (status, JSON body or None). Errors become ComfyRelayError."""
        response = self._send(method, path, accept, cancelled, **kwargs)
        if response.status_code >= 400:  # an accepted error status
            return response.status_code, _json_or_none(response)
        data = self.http.parse(response, path) if response.content.strip() else None
        check_error_body(data, self.http.redact)
        return response.status_code, data

    def _send(
        self,
        method: str,
        path: str,
        accept: tuple[int, ...],
        cancelled: Cancelled,
        **kwargs: Any,
    ) -> requests.Response:
        refused = 0
        while True:
            with self._token_lock:
                used = self._index  # the token this attempt sends
            response = send_limited(
                lambda: self.http.request(method, path, accept=(401, 403, 429, *accept), **kwargs),
                self.limiter,
                cancelled=cancelled,
                policy=self.policy,
                service=SERVICE,
            )
            if response.status_code not in (401, 403) or response.status_code in accept:
                break
            refused += 1
            if refused >= len(self._tokens):
                raise AuthenticationFailed(
                    f"RunComfy refused the API token{'s' if refused > 1 else ''} "
                    f"({response.status_code}) for {method} {path}. Check RUNCOMFY_API_TOKEN"
                    " (and RUNCOMFY_API_TOKEN2) and RUNCOMFY_USER_ID against your RunComfy "
                    "profile page."
                )
            self._next_token(used)
        if refused:
            _working_token[self._key] = self._index
        if response.status_code >= 400 and response.status_code not in accept:
            raise _error(response, method, path, self.http.redact)
        return response

    def _next_token(self, refused: int) -> None:
        """Try the token after the refused one, unless another call already moved on."""
        with self._token_lock:
            if self._index == refused:
                self._index = (refused + 1) % len(self._tokens)
                self.http.set_token(self._tokens[self._index])
            log.info("RunComfy refused token %d; trying token %d", refused + 1, self._index + 1)

    def close(self) -> None:
        self.http.close()


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error(
    response: requests.Response, method: str, path: str, clean: Callable[[str], str] = str
) -> ServerError:
    data = _json_or_none(response)
    if isinstance(data, dict) and data.get("error_code"):
        detail = f"{data.get('error_message') or ''} ({data['error_code']})".strip()
    else:
        detail = short_body(response)
    return ServerError(
        f"The RunComfy API answered {response.status_code} to {method} {path}: "
        f"{clean(detail)[:300]}",
        response.status_code,
    )


class RunComfyServer(RunComfyApi):
    """The machine endpoints under /prod/api/users/{user_id}."""

    def __init__(self, user_id: str, tokens: Sequence[str], **kwargs: Any) -> None:
        if not user_id:
            raise AuthenticationFailed(
                "No RunComfy user id: set RUNCOMFY_USER_ID (the id in your dashboard's URL)."
            )
        super().__init__(tokens, **kwargs)
        self.user_id = user_id
        self.base = f"/prod/api/users/{quote(user_id, safe='')}"
        self._duration_field = "update_estimated_duration"  # [code], docs/WIRE.md §2.2

    def workflows(self, cancelled: Cancelled = never) -> list[RunComfyWorkflow]:
        _, data = self.call("GET", f"{self.base}/workflows", cancelled=cancelled)
        return [RunComfyWorkflow.model_validate(i) for i in items(data, "workflows")]

    def machines(self, cancelled: Cancelled = never) -> list[Machine]:
        _, data = self.call("GET", f"{self.base}/servers", cancelled=cancelled)
        return [Machine.model_validate(i) for i in items(data, "servers", "machines")]

    def machine(self, server_id: str, cancelled: Cancelled = never) -> Machine | None:
        """The machine's state; None when RunComfy does not (or no longer, or not yet) know it."""
        status, data = self.call("GET", self._server(server_id), accept=(404,), cancelled=cancelled)
        if status == 404 or not isinstance(data, dict):
            return None
        return Machine.model_validate(_unwrap(data))

    def launch(
        self, workflow_version_id: str, server_type: str, estimated_duration: int
    ) -> Machine:
        """POST the launch once. Never retried here except on 429/401 (refused, not acted on)."""
        if server_type not in SERVER_TYPES:
            raise ComfyRelayError(
                f"Unknown RunComfy server type {server_type!r}; use one of "
                f"{', '.join(SERVER_TYPES)}."
            )
        body = {
            "workflow_version_id": workflow_version_id,
            "server_type": server_type,
            "estimated_duration": int(estimated_duration),
        }
        _, data = self.call("POST", f"{self.base}/servers", json=body)
        if not isinstance(data, dict):
            raise ServerError("The RunComfy API answered the launch without a machine.")
        return Machine.model_validate(_unwrap(data))

    def set_duration(self, server_id: str, seconds: int) -> Machine | None:
        """Set the machine's total running time to `seconds`."""
        path = f"{self._server(server_id)}/update-estimated-duration"
        for name in (self._duration_field, "estimated_duration"):
            status, data = self.call(
                "POST", path, json={name: int(seconds)}, accept=(400, 422)
            )
            if status < 400:
                self._duration_field = name
                return Machine.model_validate(_unwrap(data)) if _is_machine(data) else None
            log.info("duration change refused with field %s (%d)", name, status)
        raise ServerError(
            f"RunComfy refused to change the running time of machine {server_id}. Change it "
            "on the RunComfy dashboard.",
            400,
        )

    def stop(
        self, server_id: str, *, not_found_until: float = 0.0, cancelled: Cancelled = never
    ) -> bool:
        """Stop (DELETE) the machine: billing ends when this returns. False if already gone.

        Right after a launch RunComfy may answer 404 while the machine boots ([guess],
        docs/WIRE.md §2.3): until the epoch time `not_found_until` a 404 is asked again, not
        taken as "already stopped".
        """
        delay = 0.25
        while True:
            status, _ = self.call(
                "DELETE", self._server(server_id), accept=(404,), cancelled=cancelled
            )
            if status != 404:
                return True
            if time.time() >= not_found_until:
                return False
            sleep(delay, cancelled)
            delay = min(delay * 1.5, 2.0)

    def wait_ready(
        self,
        server_id: str,
        *,
        cancelled: Cancelled = never,
        timeout: float = 1200.0,
        first_delay: float = 2.0,
        max_delay: float = 15.0,
        not_found_grace: float = 60.0,
        unreachable_grace: float = 60.0,
        on_status: Callable[[Machine | None], None] | None = None,
    ) -> Machine:
        """Poll with growing delays until Ready with a URL; raise MachineFailed on a failure
        status, a lasting 404 or the timeout. A 404 right after launch is taken as normal
        ([guess], docs/WIRE.md §2.3).
        Network errors and 5xx answers are waited out for `unreachable_grace` seconds: a
        launch of many minutes should not fail on one bad gateway."""
        start = time.monotonic()
        delay = first_delay
        failing_since: float | None = None
        while True:
            try:
                machine = self.machine(server_id, cancelled)
            except (ConnectionFailed, ServerError) as exc:
                now = time.monotonic()
                failing_since = failing_since or now
                if not transient(exc) or now - failing_since > unreachable_grace:
                    raise
                log.info("RunComfy machine state not available yet, asking again: %s", exc)
                sleep(delay, cancelled)
                delay = min(max_delay, delay * 1.5)
                continue
            failing_since = None
            if on_status is not None:
                on_status(machine)
            elapsed = time.monotonic() - start
            if machine is not None and machine.ready:
                return machine
            if machine is not None and machine.failed:
                raise MachineFailed(
                    f"RunComfy machine {server_id} went to '{machine.current_status}' while "
                    "starting, so it will not become Ready (and is not billed before Ready). "
                    "Launch again, or look at the machine on the RunComfy dashboard."
                )
            if machine is None and elapsed > not_found_grace:
                raise MachineFailed(
                    f"RunComfy does not know machine {server_id} ({elapsed:.0f} s after "
                    "launch): it was stopped or never started. Launch again."
                )
            if elapsed > timeout:
                raise MachineFailed(
                    f"RunComfy machine {server_id} was not Ready after {timeout / 60:.0f} min "
                    f"(status '{machine.current_status if machine else 'unknown'}'). Stop it "
                    "with `comfyrelay machines stop` or on the dashboard, then try again."
                )
            sleep(min(delay, max(0.0, timeout - elapsed) + 0.01), cancelled)
            delay = min(max_delay, delay * 1.5)

    def _server(self, server_id: str) -> str:
        return f"{self.base}/servers/{quote(server_id, safe='')}"


def _unwrap(data: dict[str, Any]) -> dict[str, Any]:
    """A machine may come bare or wrapped as {"server": {...}} / {"data": {...}} ([guess],
    docs/WIRE.md §2.3)."""
    for key in ("server", "machine", "data"):
        if isinstance(data.get(key), dict):
            return dict(data[key])
    return data


def _is_machine(data: Any) -> bool:
    return isinstance(data, dict) and any(
        k in _unwrap(data) for k in ("server_id", "id", "serverId")
    )
