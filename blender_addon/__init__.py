"""ComfyRelay for Blender: send renders through ComfyUI workflows, get images and textures back.

A Blender extension (4.2+). build_addons.py vendors the core into ./comfyrelay and
lists its dependencies' wheels in the manifest.
"""

from __future__ import annotations

import bpy
from bpy.app.handlers import persistent

from . import operators, panel, preferences, props, pump
from .texturing import operator as texturing

CLASSES = (
    *props.CLASSES,
    *operators.CLASSES,
    *texturing.CLASSES,
    *panel.CLASSES,
)


_registered: list[type] = []


def register() -> None:
    _registered[:] = [preferences.preferences_class(), *CLASSES]
    for cls in _registered:
        bpy.utils.register_class(cls)
    props.register()
    bpy.app.handlers.load_post.append(_reopen)
    if not bpy.app.background:
        bpy.app.timers.register(_find_leftovers, first_interval=2.0)


@persistent
def _reopen(_: object) -> None:
    """A .blend was opened: the session opens its scene's workflow, so the status line and
    Run follow it (the inputs and their values come from the file)."""
    scene = bpy.context.scene
    if scene is not None and props.settings(scene).workflow_path:
        props.settings(scene).load_inputs()
    elif scene is not None:
        pump.SESSION.close_workflow()


def _find_leftovers() -> None:
    """At start-up: show what earlier sessions left running (machines cost money)."""
    if bpy.app.online_access:
        operators.find_leftovers()


def unregister() -> None:
    if _reopen in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_reopen)
    pump.shutdown()
    props.unregister()
    for cls in reversed(_registered):
        bpy.utils.unregister_class(cls)
    _registered.clear()
