"""The add-on's tests. Most run real bpy in a child process; the texturing engine's run here.

blender_addon/__init__.py imports bpy and the vendored core, which exist only inside Blender,
but blender_addon.texturing's numpy modules need neither: a bare package object stands in for
the add-on so they import on their own (only when nothing imported the real one first).
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

if "blender_addon" not in sys.modules:
    _addon = types.ModuleType("blender_addon")
    _addon.__path__ = [str(Path(__file__).resolve().parents[2] / "blender_addon")]
    sys.modules["blender_addon"] = _addon
