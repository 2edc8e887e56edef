"""The ComfyRelay core as the add-on sees it: the copy build_addons.py vendors into ./comfyrelay.

Blender installs the core's dependencies from the manifest's wheels, so only the core itself
is vendored. Type checkers read the installed core instead, which is the same code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import comfyrelay as core
else:
    from . import comfyrelay as core

__all__ = ["core"]
