"""Result layers: a new paint layer above the active one, one undo step each.

Krita's Python API has no undo grouping, but Node.addChildNode() is itself one undoable
"Add Layer" command. So the pixels are written into the layer *before* it joins the image:
undoing that single step removes the layer together with its pixels.
"""

from __future__ import annotations

from typing import Any

from .pixels import Rect, is_rgba8, layer_bytes
from .qt import QImage

SRGB = "sRGB-elle-V2-srgbtrc.icc"


def add_result_layer(doc: Any, image: QImage, name: str, at: Rect, above: Any = None,
                     parent: Any = None) -> Any:
    """Add `image` (at.width x at.height) at `at` as a new layer; return the node.

    It goes above `above` when given (the job's previous result), else at the bottom of
    `parent` when given (a group), else above the active layer.
    """
    layer = doc.createNode(name, "paintlayer")
    if not is_rgba8(layer):
        layer.setColorSpace("RGBA", "U8", SRGB)  # results are 8-bit sRGB images
    layer.setPixelData(layer_bytes(image), at.x, at.y, at.width, at.height)
    if above is not None:
        parent, sibling = above.parentNode(), above
    elif parent is None:
        parent, sibling = insertion_point(doc)
    else:
        sibling = None
    parent.addChildNode(layer, sibling)
    # Not made active here: Krita activates a node added to the image itself, once its
    # layer docker knows it; Document.setActiveNode() before that (or in a window whose
    # node manager has no shape for it) only logs a SAFE ASSERT from kis_node_manager.cpp.
    # Results of one job stay in order through `above`.
    return layer


def insertion_point(doc: Any) -> tuple[Any, Any]:
    """(parent, sibling to go above): above the active layer, else on top of the stack."""
    active = doc.activeNode()
    while active is not None and active.type().endswith("mask"):
        active = active.parentNode()  # masks live inside layers; go above their layer
    if active is not None:
        parent = active.parentNode()
        if parent is not None and parent.type() == "grouplayer":
            return parent, active
    root = doc.rootNode()
    children = root.childNodes()
    return root, children[-1] if children else None


def unique_name(doc: Any, base: str) -> str:
    """`base`, or `base (2)`, ... so repeated runs with one seed stay distinguishable."""
    taken = {node.name() for node in doc.topLevelNodes()}
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base} ({n})"
    return name
