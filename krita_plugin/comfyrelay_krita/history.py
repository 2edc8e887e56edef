"""A document's run history, kept inside its .kra as an annotation.

Krita saves a document's annotations into the .kra (`<image>/annotations/<type>`) and reads
them back on open (checked with Krita 5.1.5: tests/krita/test_workflow.py), so the history
travels with the painting. It holds the runs' workflow input values only (the core leaves out
anything named like a key or token); settings and credentials stay in kritarc.
Krita's API: Qt main thread only.
"""

from __future__ import annotations

from typing import Any

from .core import core
from .qt import QByteArray

ANNOTATION = "comfyrelay-history"  # also its file name inside the .kra
DESCRIPTION = "ComfyRelay run history (JSON)"


def stored(doc: Any) -> bytes:
    """The history's JSON as the document holds it; b"" when it has none."""
    if ANNOTATION not in doc.annotationTypes():
        return b""
    return bytes(doc.annotation(ANNOTATION))


def read_history(doc: Any) -> core.RunHistory:
    """Never fails: damaged data gives an empty history (the core logs it)."""
    return core.history_from_json(stored(doc))


def add_record(doc: Any, record: core.RunRecord) -> None:
    """Append `record`; the document is marked modified, so closing it asks to save."""
    text = core.record_run(stored(doc), record)
    doc.setAnnotation(ANNOTATION, DESCRIPTION, QByteArray(text.encode("utf-8")))
    doc.setModified(True)
