"""Puts the bundled dependencies (vendor/, filled by build_addons.py) on sys.path.

Krita runs every plugin in one Python, so this is done once, before the core is imported.
vendor/ goes first so the plugin gets the pydantic its core was built against.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)
VENDOR = Path(__file__).resolve().parent / "vendor"


def add_vendor_path() -> None:
    path = str(VENDOR)
    if not VENDOR.is_dir() or path in sys.path:
        return
    loaded = sys.modules.get("pydantic")
    if loaded is not None and not str(getattr(loaded, "__file__", "")).startswith(path):
        # Another plugin imported its own pydantic first; ours cannot replace it.
        log.warning("ComfyRelay: using pydantic from %s", getattr(loaded, "__file__", "?"))
    sys.path.insert(0, path)


add_vendor_path()
