"""The ComfyRelay core as this plugin sees it: the copy build_addons.py vendors into
./comfyrelay, imported once its bundled dependencies (./vendor) are on sys.path.

Krita runs every plugin in one Python: vendor/ goes first so the plugin gets the pydantic
its core was built against. Type checkers read the installed core, which is the same code.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

VENDOR = Path(__file__).resolve().parent / "vendor"


def add_vendor_path() -> None:
    path = str(VENDOR)
    if not VENDOR.is_dir() or path in sys.path:
        return
    loaded = sys.modules.get("pydantic")
    if loaded is not None and not str(getattr(loaded, "__file__", "")).startswith(path):
        # Another plugin imported its own pydantic first; ours cannot replace it.
        logging.getLogger(__name__).warning(
            "ComfyRelay: using pydantic from %s", getattr(loaded, "__file__", "?"))
    sys.path.insert(0, path)


add_vendor_path()

if TYPE_CHECKING:
    import comfyrelay as core
else:
    from . import comfyrelay as core

__all__ = ["core"]
