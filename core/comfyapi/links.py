"""Where the Comfy API's links lead, and which of them may carry our key."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from ..errors import ServerError

API = "/api/v2"


def origin(url: str) -> str:
    """scheme://host[:port] of a URL, lower-cased: what decides where the key may go."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


class Links:
    """The API's base URL and origin; every URL we call is built or checked here.

    [spec] JobUrls: a link is absolute or host-relative ("/..."); a host-relative one already
    carries any mount prefix and is resolved against the origin, never the base URL
    (docs/WIRE.md §5.1).
    Thread: any (it never changes after construction).
    """

    def __init__(self, base_url: str) -> None:
        self.base = base_url.strip().rstrip("/")
        parts = urlsplit(self.base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ServerError(
                f"{base_url!r} is not a Comfy API address: use http(s)://host[:port], e.g. "
                "https://cloud.comfy.org or http://127.0.0.1:8189 for a local comfy-api-proxy."
            )
        self.origin = origin(self.base)

    def api(self, path: str, *ids: str) -> str:
        """base + /api/v2 + path, each id quoted into its {} in `path`."""
        return self.base + API + path.format(*(quote(i, safe="") for i in ids))

    def follow(self, link: str) -> str | None:
        """The absolute URL of a link the server gave, if it stays on the API's origin (only
        there may our key go); None for anything else."""
        link = (link or "").strip()
        if link.startswith("/") and not link.startswith("//"):
            return self.origin + link
        if link.startswith(("http://", "https://")) and self.same_origin(link):
            return link
        return None

    def same_origin(self, url: str) -> bool:
        return origin(url) == self.origin
