"""ComfyRelay for Krita: run ComfyUI workflows on the canvas from a docker."""

from __future__ import annotations


def register() -> None:
    from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita

    from .docker import ComfyRelayDocker

    factory = DockWidgetFactory("comfyrelay", DockWidgetFactoryBase.DockRight, ComfyRelayDocker)
    Krita.instance().addDockWidgetFactory(factory)


try:
    import krita  # noqa: F401 - present only inside Krita
except ImportError:
    pass
else:
    register()
