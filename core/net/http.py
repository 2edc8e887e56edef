"""One HTTP session per server, with timeouts, auth headers and errors a user can act on."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from ..errors import (
    AuthenticationFailed,
    ComfyRelayError,
    ConnectionFailed,
    RateLimited,
    ServerError,
    UploadTooLarge,
)

log = logging.getLogger(__name__)

# (connect, read) seconds; a read timeout bounds each socket read, not the whole transfer.
DEFAULT_TIMEOUT = (10.0, 60.0)
CHUNK = 1 << 20
# Answers read whole (JSON, error pages) stop at this size and this total time: a proxy or a
# broken server sending a never-ending body must not eat the host's memory or hang a job.
# A ComfyUI with many custom nodes answers /object_info with ~20 MB: keep well above that
# (docs/WIRE.md §1.2).
MAX_BODY = 64 * 2**20
BODY_SECONDS = 120.0


class HttpClient:
    """A requests.Session bound to one base URL; the token is only ever sent as a header."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        service: str = "server",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.service = service
        self.session = requests.Session()
        self.session.headers.update(dict(headers or {}))
        self.session.headers.pop("Origin", None)  # refused by loopback ComfyUI (docs/WIRE.md §1.1)
        self._token = token
        self._secrets: list[str] = []  # sent in bodies (a partner key): kept out of errors too
        self._proxies: dict[tuple[str, str], dict[str, str]] = {}
        self._read_environment()
        self.set_token(token)

    def _read_environment(self) -> None:
        """What requests reads from the environment on every request (proxies, CA bundle,
        ~/.netrc: about 0.4 ms each time), read once per client and host instead."""
        self.session.trust_env = False
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            self.session.verify = bundle
        self._netrc = requests.utils.get_netrc_auth(self.base_url) if self.base_url else None

    def _proxies_for(self, url: str) -> dict[str, str]:
        host = urlsplit(url)[:2]
        if host not in self._proxies:  # honours no_proxy, as requests would
            self._proxies[host] = requests.utils.get_environ_proxies(url)
        return self._proxies[host]

    def add_secret(self, secret: str | None) -> None:
        """A value this client sends that must never appear in an error message."""
        if secret and secret not in self._secrets:
            self._secrets.append(secret)

    def set_token(self, token: str | None) -> None:
        self._token = token
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        else:
            self.session.headers.pop("Authorization", None)
        self.session.auth = None if token else self._netrc  # as requests: only without ours

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def request(
        self, method: str, path: str, *, accept: tuple[int, ...] = (), **kwargs: Any
    ) -> requests.Response:
        """Send one request; raise a ComfyRelayError for transport failures and for 4xx/5xx
        statuses not listed in `accept`."""
        url = self.url(path)
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("proxies", self._proxies_for(url))
        whole = not kwargs.get("stream")
        kwargs["stream"] = True  # read below with a size and time cap, or by the caller
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise ConnectionFailed(
                f"TLS verification failed for {self.base_url}: check the address, or the "
                f"server's certificate ({type(exc).__name__})."
            ) from None
        except requests.exceptions.Timeout:
            raise ConnectionFailed(
                f"The {self.service} at {self.base_url} did not answer in time ({method} {path}). "
                "Check that it is running and not overloaded."
            ) from None
        except requests.exceptions.ConnectionError:
            raise ConnectionFailed(
                f"Could not connect to the {self.service} at {self.base_url}. Check the URL, "
                "that the server is running, and your network."
            ) from None
        except requests.exceptions.RequestException as exc:
            raise ConnectionFailed(
                f"Request to the {self.service} at {self.base_url} failed: {type(exc).__name__}."
            ) from None
        failed = response.status_code >= 400 and response.status_code not in accept
        if whole:
            self._read_capped(response, method, path)
        elif failed:
            _read_prefix(response)
        if failed:
            raise self.error_for(response, method, path)
        return response

    def _read_capped(self, response: requests.Response, method: str, path: str) -> None:
        """Read the whole body into response.content, at most MAX_BODY bytes within
        BODY_SECONDS; else close the connection and raise an error that says so."""
        where = f"{method} {short_path(path)}"
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            response.close()
            raise ServerError(self._too_big(where, f"announced {int(declared) / 2**20:.0f} MB"))
        deadline = time.monotonic() + BODY_SECONDS
        parts: list[bytes] = []
        size = 0
        try:
            for part in pieces(response):
                size += len(part)
                parts.append(part)
                if size > MAX_BODY:
                    response.close()
                    raise ServerError(self._too_big(where, "it did not end"))
                if time.monotonic() > deadline:
                    response.close()
                    raise ConnectionFailed(
                        f"The {self.service} at {self.base_url} took more than "
                        f"{BODY_SECONDS:g} s to send its answer to {where} "
                        f"({size} bytes so far); gave up. Check the server or a proxy between."
                    )
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError):
            response.close()
            raise ConnectionFailed(
                f"The connection to the {self.service} at {self.base_url} broke while it "
                f"answered {where} ({size} bytes received). Try again."
            ) from None
        response._content = b"".join(parts)
        response._content_consumed = True  # type: ignore[attr-defined]

    def _too_big(self, where: str, detail: str) -> str:
        return (
            f"The {self.service} at {self.base_url} sent an answer to {where} larger than "
            f"{MAX_BODY // 2**20} MB ({detail}); stopped reading it. Is the URL that of the "
            "right service, and is no proxy in between misbehaving?"
        )

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return self.parse(response, path)

    def redact(self, text: str) -> str:
        """text without our token or secrets (a server may echo a request back)."""
        for secret in self._secrets:
            text = redact(text, secret)
        return redact(text, self._token)

    def parse(self, response: requests.Response, path: str) -> Any:
        """The body as JSON; a clear error (without our token) if it is not JSON."""
        try:
            return parse_json(response, self.service, path)
        except ServerError as exc:
            raise ServerError(self.redact(str(exc)), exc.status) from None

    def error_for(self, response: requests.Response, method: str, path: str) -> ComfyRelayError:
        status = response.status_code
        detail = self.redact(short_body(response))
        where = f"{method} {short_path(path)}"
        if status in (401, 403):
            hint = (
                "Check the API token." if self._token
                else "This server seems to need an API token; set one in the settings."
            )
            return AuthenticationFailed(
                f"The {self.service} at {self.base_url} refused access ({status}) to {where}. "
                + hint
            )
        if status == 413:
            return UploadTooLarge(
                f"The {self.service} refused the upload as too large (413). {detail}"
            )
        if status == 429:
            return RateLimited(
                f"The {self.service} is rate limiting requests (429). Wait and try again.", status
            )
        if status == 404:
            return ServerError(f"The {self.service} has no {where} (404). {detail}", status)
        return ServerError(f"The {self.service} answered {status} to {where}. {detail}", status)

    def stream(
        self, path: str, params: Mapping[str, str] | None = None, label: str = ""
    ) -> Iterator[bytes]:
        """Yield a response body in chunks, checking it arrived whole."""
        response = self.request("GET", path, params=params, stream=True)
        with response:
            yield from self.whole_body(response, label or path)

    def whole_body(self, response: requests.Response, what: str) -> Iterator[bytes]:
        """Yield a streamed response's body; ConnectionFailed if it arrives cut short."""
        expected = response.headers.get("Content-Length", "")
        received = 0
        try:
            for chunk in response.iter_content(CHUNK):
                received += len(chunk)
                yield chunk
        except requests.exceptions.RequestException:
            raise ConnectionFailed(self._truncated(what, received, expected)) from None
        if expected.isdigit() and int(expected) != received:
            raise ConnectionFailed(self._truncated(what, received, expected))

    def _truncated(self, what: str, received: int, expected: str) -> str:
        of = f" of {expected}" if expected else ""
        where = f" from {self.base_url}" if self.base_url else ""
        return (f"The download of {what}{where} was truncated: the connection broke after "
                f"{received}{of} bytes. Try again.")

    def close(self) -> None:
        self.session.close()


def _read_prefix(response: requests.Response, limit: int = 1 << 16) -> None:
    """Keep the start of a streamed error answer (for the message) and hang up."""
    parts: list[bytes] = []
    size = 0
    try:
        for part in pieces(response):
            parts.append(part)
            size += len(part)
            if size >= limit:
                break
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError):
        pass
    response.close()
    response._content = b"".join(parts)[:limit]
    response._content_consumed = True  # type: ignore[attr-defined]


def pieces(response: requests.Response, fallback: int | None = 1 << 16) -> Iterator[bytes]:
    """The body as it arrives: read1 returns what one socket read gave, so a slow sender
    cannot hold a read for long and each event of a stream is seen at once. urllib3 1.x has
    no read1: there `fallback` bytes are read at a time (None: each chunk as sent)."""
    read1 = getattr(response.raw, "read1", None)
    if read1 is None:
        yield from response.iter_content(fallback)
        return
    while True:
        part = read1(1 << 16, decode_content=True)
        if not part:
            return
        yield part


def parse_json(response: requests.Response, service: str, path: str) -> Any:
    try:
        return response.json()
    except ValueError:
        body = short_body(response)  # HttpClient.parse() redacts the message
        raise ServerError(
            f"The {service} sent a response to {short_path(path)} that is not JSON "
            f"(HTTP {response.status_code}, {response.headers.get('Content-Type') or 'no type'}:"
            f" {body}). Is the URL that of the right service, or is a proxy or login page "
            "in between?",
            response.status_code,
        ) from None


def short_path(path: str) -> str:
    """A path or URL for messages: no query (a signed URL's signature stays out)."""
    return path.split("?", 1)[0]


def redact(text: str, secret: str | None) -> str:
    """Drop a secret from text a server sent back (a server may echo request headers)."""
    return text.replace(secret, "[token]") if secret else text


def short_body(response: requests.Response, limit: int = 300) -> str:
    text = response.content[:4096].decode("utf-8", "replace").strip().replace("\n", " ")
    return text[:limit] + ("…" if len(text) > limit else "")
