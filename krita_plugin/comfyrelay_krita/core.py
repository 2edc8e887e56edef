"""The ComfyRelay core as this plugin sees it: the copy build_addons.py vendors into
./comfyrelay, after deps has put the bundled dependencies on sys.path.

Type checkers read the installed core instead, which is the same code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import deps

deps.add_vendor_path()

if TYPE_CHECKING:
    import comfyrelay as core
else:
    from . import comfyrelay as core

__all__ = ["core"]
