"""The docker's sources: the region sent (whole canvas, or the selection's bounds with a
margin) and, per loader of the workflow, a combo labelled with the loader's title saying what
it gets (sources.py). The choices are kept per workflow in Krita's settings (settings.py)."""

from __future__ import annotations

from collections.abc import Callable

from .core import core
from .elided import ElidedCombo, ElidedLabel
from .fields import COMBO_CHARS, short_combo
from .inputs import form_label, wrapping_form
from .qt import SHORT_COMBO, QWidget
from .sources import LAYER, Choice, choices_for, default_source, label

REGIONS = [("canvas", "Whole canvas"), ("selection", "Selection's bounds and a margin")]


class LayerCombo(ElidedCombo):
    """A loader's sources; the document's layers are listed anew each time it opens, so a
    layer added since is there without polling Krita."""

    def __init__(self, fixed: list[str], layers: Callable[[], list[str]]) -> None:
        super().__init__()
        self.fixed = fixed
        self.layers = layers
        self.setSizeAdjustPolicy(SHORT_COMBO)  # as short_combo(): a docker is narrow
        self.setMinimumContentsLength(COMBO_CHARS)

    def fill(self, chosen: str) -> None:
        """The fixed sources, then every layer; `chosen` stays listed even when its layer is
        gone (Run then says so)."""
        names = [f"{LAYER}{name}" for name in self.layers()]
        if chosen.startswith(LAYER) and chosen not in names:
            names.append(chosen)
        self.blockSignals(True)  # refilling is no choice of the user's
        self.clear()
        for source in [*self.fixed, *names]:
            self.addItem(label(source), source)
        self.setCurrentIndex(max(0, self.findData(chosen)))
        self.blockSignals(False)

    def showPopup(self) -> None:  # Qt calls it when the list opens
        self.fill(self.source())
        super().showPopup()

    def source(self) -> str:
        return str(self.currentData())


class SourceBox(QWidget):
    """Owned by the Qt main thread. `changed` is called when the user picks something."""

    def __init__(self, region: str, layers: Callable[[], list[str]],
                 changed: Callable[[], None]) -> None:
        super().__init__()
        self.layers = layers
        self.changed = changed
        self.form = wrapping_form(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.region = short_combo()
        for key, text in REGIONS:
            self.region.addItem(text, key)
        self.region.setCurrentIndex(max(0, self.region.findData(region)))
        self.region.setToolTip("What is sent: the whole canvas, or around the selection "
                               "(results are placed there)")
        self.region_label = form_label("Region")  # with the loaders' sources: what is sent
        self.form.addRow(self.region_label, self.region)
        self.region.currentIndexChanged.connect(lambda _=0: self.changed())
        self.combos: dict[str, LayerCombo] = {}  # loader node id -> its sources
        self.titles: list[ElidedLabel] = []

    def set_workflow(self, workflow: core.Workflow | None, saved: dict[str, str]) -> None:
        """A row per loader, showing `saved` (node id -> source) where it is offered."""
        while self.form.rowCount() > 1:
            self.form.removeRow(1)  # the region's row stays
        self.combos, self.titles = {}, []
        if workflow is None:
            return
        for loader in core.workflow_loaders(workflow):
            layered = loader.kind in ("image", "mask")  # a layer is no video or sound
            combo = LayerCombo(choices_for(loader), self.layers if layered else list)
            combo.fill(_allowed(saved.get(loader.node_id), loader)
                       or default_source(workflow, loader))
            combo.setToolTip(f"What node {loader.node_id} ({loader.class_type}) loads")
            combo.currentIndexChanged.connect(lambda _=0: self.changed())
            self.titles.append(form_label(loader.title))
            self.form.addRow(self.titles[-1], combo)
            self.combos[loader.node_id] = combo

    @property
    def use_selection(self) -> bool:
        return self.region.currentData() == "selection"

    def choices(self) -> list[Choice]:
        return [(nid, combo.source()) for nid, combo in self.combos.items()]

    def labels(self) -> list[str]:
        """The loaders' labels as shown, in order."""
        return [title.text() for title in self.titles]


def _allowed(source: str | None, loader: core.Loader) -> str | None:
    """A saved source still offered for this loader (a workflow edited since may differ)."""
    if source is None:
        return None
    layer = source.startswith(LAYER) and loader.kind in ("image", "mask")
    return source if source in choices_for(loader) or layer else None
