"""Inputs as Comfy API assets, never uploading the same bytes twice.

[spec] Assets are records over blobs keyed by a blake3 hash (`blake3:<hex>`); a client checks
`HEAD /api/v2/assets/by-hash/{hash}` and mints over known bytes with `from-hash` before it
sends any (docs/WIRE.md §5.6). Python's standard library has no blake3, so (README, Design
notes):
- the `blake3` package is used when the host's Python can import it (0.4 ms/MB);
- otherwise the hash the server answered for an upload is remembered under the bytes' local
  sha256 (1.6 ms/MB), so sending the same render or canvas again is a by-hash check. A
  pure-Python blake3 would take ~0.9 s/MB (about 20 s for a 4K PNG): slower than the upload.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from pathlib import PurePosixPath
from types import ModuleType
from typing import Any

from ..net.files import safe_name
from ..net.ratelimit import Cancelled, never
from .api import ComfyApi
from .wire import asset_reference

log = logging.getLogger(__name__)

blake3: ModuleType | None
try:  # optional: only if the host's Python has it; never a runtime dependency of the add-ons
    import blake3
except ImportError:  # pragma: no cover - depends on the environment
    blake3 = None


def blake3_hash(data: bytes) -> str | None:
    """`blake3:<hex>` of data, or None when the blake3 package is not importable."""
    if blake3 is None:
        return None
    return "blake3:" + blake3.blake3(data).hexdigest()


class HashMemory:
    """Server hashes of bytes uploaded in this process, per API origin, keyed by sha256.

    Thread: any (locked): the runner's worker writes, hosts may run a check meanwhile.
    Only what a server answered is kept, and only for that server's origin.
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._known: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, origin: str, sha256: str) -> str | None:
        with self._lock:
            found = self._known.get((origin, sha256))
            if found is not None:
                self._known.move_to_end((origin, sha256))
            return found

    def put(self, origin: str, sha256: str, server_hash: str) -> None:
        with self._lock:
            self._known[(origin, sha256)] = server_hash
            self._known.move_to_end((origin, sha256))
            while len(self._known) > self.size:
                self._known.popitem(last=False)

    def forget(self, origin: str, sha256: str) -> None:
        with self._lock:
            self._known.pop((origin, sha256), None)


MEMORY = HashMemory()


class Inputs:
    """Turns the host's input bytes into an asset reference. Thread: the runner's worker."""

    def __init__(self, api: ComfyApi, memory: HashMemory = MEMORY) -> None:
        self.api = api
        self.memory = memory
        self.uploads = 0  # uploads sent (not bytes), for the host's log and for tests
        self.reused = 0  # inputs the server already had: nothing sent

    def reference(self, name: str, data: bytes, cancelled: Cancelled = never) -> dict[str, Any]:
        """[spec] AssetReference for `data`: minted over known bytes, or uploaded once
        (docs/WIRE.md §5.6)."""
        sha = hashlib.sha256(data).hexdigest()
        path = file_path(name, sha)
        local = blake3_hash(data)
        known = local or self.memory.get(self.api.links.origin, sha)
        if known and self.api.has_blob(known, cancelled):
            asset = self.api.asset_from_hash(known, path, cancelled)
            if asset is not None:
                self.reused += 1
                log.info("input %s is already on the Comfy API (%s): not uploaded again",
                         path, known[:20])
                return asset_reference(asset.id)
        elif known and not local:
            self.memory.forget(self.api.links.origin, sha)  # the server no longer has it
        asset = self.api.upload(data, path, expected_hash=local or "", cancelled=cancelled)
        self.uploads += 1
        if asset.hash:
            self.memory.put(self.api.links.origin, sha, asset.hash)
        log.info("uploaded input %s (%d KB) as asset %s", path, len(data) // 1024, asset.id)
        return asset_reference(asset.id)


def file_path(name: str, sha256: str) -> str:
    """A placement name for the input ([spec] postAssets file_path, "photo.png" form) that
    stays the same for the same bytes and differs for different ones (docs/WIRE.md §5.6)."""
    stem = PurePosixPath(safe_name(name or "input.png"))
    suffix = stem.suffix or ".png"
    return f"{stem.stem[:60]}_{sha256[:12]}{suffix}"
