"""Output URLs to files, cancellable waits and data URIs, for back ends that download results."""

from __future__ import annotations

import base64
import logging
import mimetypes
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from ..errors import ConnectionFailed, ServerError
from ..jobs.backend_api import JobContext
from .files import output_path, write_stream
from .http import HttpClient

log = logging.getLogger(__name__)
_ANY_ERROR = tuple(range(400, 600))


class UrlFetcher:
    """Downloads output URLs with NO credentials: they point at storage hosts, not the API,
    and a bearer header there would hand the token to a third party (and S3-style signed
    URLs refuse a second auth mechanism anyway). A [guess]: docs/WIRE.md §3.2, §4.3."""

    def __init__(self, service: str) -> None:
        self.http = HttpClient("", service=f"{service} file storage")

    def save(self, url: str, out_dir: Path, filename: str = "", subfolder: str = "") -> Path:
        name = filename or url_name(url) or "output"
        path = output_path(out_dir, name, subfolder)
        return write_stream(self._chunks(url, name), path)

    def _chunks(self, url: str, name: str) -> Iterator[bytes]:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ServerError(f"The output {name!r} has no downloadable address.")
        response = self.http.request("GET", url, stream=True, accept=_ANY_ERROR)
        with response:
            status = response.status_code
            if status in (401, 403, 404, 410):
                raise ServerError(
                    f"The output file {name!r} could not be downloaded (HTTP "
                    f"{status}): its link has expired or was removed. Run the "
                    "job again; outputs are saved as soon as a job ends.",
                    status,
                )
            if status >= 400:
                raise ServerError(
                    f"The output file {name!r} could not be downloaded: the file storage at "
                    f"{urlsplit(url).netloc} answered {status}. Try again soon; the link stays "
                    "valid for a while.",
                    status,
                )
            yield from self.http.whole_body(response, repr(name))

    def close(self) -> None:
        self.http.close()


def url_name(url: str) -> str:
    """The file name in a URL's path, without its query (which may hold a signature)."""
    return unquote(PurePosixPath(urlsplit(url).path).name)


def wait(ctx: JobContext, seconds: float) -> None:
    """Wait while letting the runner send queued jobs; return early when cancelled."""
    end = time.monotonic() + seconds
    while not ctx.cancelled:
        ctx.idle()
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(0.2, left))


def data_uri(name: str, data: bytes) -> str:
    mime = mimetypes.guess_type(name)[0] or "image/png"
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


class Unreachable:
    """Tolerates a service that stops answering for a while during a poll loop."""

    def __init__(self, service: str, lost_after: float) -> None:
        self.service = service
        self.lost_after = lost_after
        self.since: float | None = None

    def failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if self.since is None:
            self.since = now
            log.info("%s did not answer a poll (%s); retrying", self.service, type(exc).__name__)
        elif now - self.since > self.lost_after:
            raise ConnectionFailed(
                f"Lost contact with {self.service} for {self.lost_after:.0f} s while waiting "
                f"for the job ({exc}). The job may still finish there; check its dashboard."
            )

    def ok(self) -> None:
        self.since = None
