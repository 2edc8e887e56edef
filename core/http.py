"""One HTTP session per server, with timeouts, auth headers and errors a user can act on."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import requests

from .errors import (
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
        self.session.headers.pop("Origin", None)
        self._token = token
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def set_token(self, token: str | None) -> None:
        self._token = token
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        else:
            self.session.headers.pop("Authorization", None)

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def request(
        self, method: str, path: str, *, accept: tuple[int, ...] = (), **kwargs: Any
    ) -> requests.Response:
        """Send one request; raise a ComfyRelayError for transport failures and for 4xx/5xx
        statuses not listed in `accept`."""
        url = self.url(path)
        kwargs.setdefault("timeout", self.timeout)
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
        if response.status_code >= 400 and response.status_code not in accept:
            raise self.error_for(response, method, path)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return parse_json(response, self.service, path)

    def error_for(self, response: requests.Response, method: str, path: str) -> ComfyRelayError:
        status = response.status_code
        detail = redact(short_body(response), self._token)
        where = f"{method} {path}"
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


def parse_json(response: requests.Response, service: str, path: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ServerError(
            f"The {service} sent a response to {path} that is not JSON "
            f"({short_body(response)}). Is the URL that of the right service?",
            response.status_code,
        ) from None


def redact(text: str, secret: str | None) -> str:
    """Drop a secret from text a server sent back (a server may echo request headers)."""
    return text.replace(secret, "[token]") if secret else text


def short_body(response: requests.Response, limit: int = 300) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:limit] + ("…" if len(text) > limit else "")
