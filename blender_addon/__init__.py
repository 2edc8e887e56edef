"""ComfyRelay for Blender: send renders through ComfyUI workflows, get images and textures back.

A Blender extension (4.2+). build_addons.py vendors the core into ./comfyrelay and
lists its dependencies' wheels in the manifest.
"""

from __future__ import annotations

import contextlib

import bpy
from bpy.app.handlers import persistent

from . import operators, panel, preferences, props, pump
from .core import core
from .texturing import operator as texturing

CLASSES = (
    *props.CLASSES,
    *operators.CLASSES,
    *texturing.CLASSES,
    *panel.CLASSES,
)


_registered: list[type] = []
FOLLOW_INTERVAL = 0.5  # seconds between looks at which scene's workflow is shown
_followed = ""  # the workflow follow() opened last: one that fails is not retried each time


def register() -> None:
    _registered[:] = [preferences.preferences_class(), *CLASSES]
    for cls in _registered:
        bpy.utils.register_class(cls)
    props.register()
    bpy.app.handlers.load_post.append(_reopen)
    if not bpy.app.background:
        bpy.app.timers.register(_find_leftovers, first_interval=2.0)
        # The preferences can be read once registered: the view (Run, Run Again) is then
        # about the chosen back end. Then the .blend already open when the add-on is
        # enabled (no load_post then), and whichever scene is shown later.
        bpy.app.timers.register(_configure, first_interval=0.05)
        bpy.app.timers.register(_follow_scene, first_interval=0.1, persistent=True)


@persistent
def _reopen(_: object) -> None:
    """A .blend was opened: the session opens its scene's workflow, so the status line and
    Run follow it (the inputs and their values come from the file)."""
    scene = bpy.context.scene
    if scene is not None and props.settings(scene).workflow_path:
        props.settings(scene).load_inputs()
    elif scene is not None:
        _configure()
        pump.SESSION.close_workflow()


def _configure() -> None:
    """Apply the preferences to the session (a problem shows in the view, not raised)."""
    with contextlib.suppress(core.ComfyRelayError, ValueError):
        pump.configure()


def follow(scene: bpy.types.Scene) -> None:
    """The session has one current workflow, each scene its own: open this scene's when
    the session has another (another scene shown, the add-on just enabled), so the status
    line and Run are about the workflow the panel shows."""
    global _followed
    s = props.settings(scene)
    path = s.workflow_file() if s.workflow_path else ""
    if path in (pump.SESSION.workflow_path, _followed):
        return
    _followed = path
    if path:
        s.load_inputs()  # the values already in the scene are kept
    else:
        pump.SESSION.close_workflow()


def _follow_scene() -> float:
    """A timer, not the panel's draw: a cheap comparison of two paths, twice a second."""
    scene = getattr(bpy.context, "scene", None)
    if scene is not None:
        follow(scene)
    return FOLLOW_INTERVAL


def _find_leftovers() -> None:
    """At start-up: show what earlier sessions left running (machines cost money)."""
    if bpy.app.online_access:
        operators.find_leftovers()


def unregister() -> None:
    if _reopen in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_reopen)
    if bpy.app.timers.is_registered(_follow_scene):
        bpy.app.timers.unregister(_follow_scene)
    pump.shutdown()
    props.unregister()
    for cls in reversed(_registered):
        bpy.utils.unregister_class(cls)
    _registered.clear()
