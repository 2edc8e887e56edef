"""The workflow's inputs as a form, read back as the core's Bindings.

On top, the workflow's app: the inputs the user chose, in their order, with their labels
(kept per workflow with the core's save_app, so they come back after a restart), else the
core's default app (the inputs people change, labelled in words). Every other input stays
under the collapsible "All inputs". Labels are words on one line; the raw node.input shows
on hover. Customize shows the editor of the app.
The form is rebuilt for each workflow, and when the server's typing arrives; values the user
has set are kept across rebuilds of the same workflow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .app_editor import AppEditor
from .core import core
from .elided import ElidedLabel
from .fields import Field, SeedField, TextField, make_field
from .qt import (
    DOWN_ARROW,
    RIGHT_ARROW,
    TEXT_BESIDE_ICON,
    WRAP_LONG_ROWS,
    QFormLayout,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

CANVAS_KINDS = ("image", "video")  # a loader's file: its source is chosen (source_box.py)


class InputForm(QWidget):
    """Owned by the Qt main thread. `report` shows a problem (an app view not saved)."""

    def __init__(self, report: Callable[[str], None] | None = None,
                 flagged: Callable[[list[core.Flag]], None] | None = None) -> None:
        super().__init__()
        self.report = report or (lambda message: None)
        self.flagged = flagged or (lambda flags: None)  # the session's flag_values
        self.root = QVBoxLayout(self)
        self.root.setContentsMargins(0, 0, 0, 0)
        self.body = QWidget()
        self.root.addWidget(self.body)
        self.workflow: core.Workflow | None = None
        self.path = ""
        self.inputs: list[core.WorkflowInput] = []  # typed when the server has said
        self.app = core.AppView()
        self.fields: dict[str, Field] = {}  # input key -> its editor
        self.labels: dict[str, ElidedLabel] = {}  # app input key -> its label
        self.layout_ = core.AppLayout([], [])  # the inputs as arranged last
        self.seed_keys: list[str] = []  # every seed input: the one seed field sets them all
        self.customizing = False
        self.all_open: bool | None = None  # None: open when the app shows nothing
        self.all_toggle: QToolButton | None = None
        self.all_box: QWidget | None = None
        self.editor: AppEditor | None = None  # Customize's, while customizing
        self.others = 0  # inputs under "All inputs"

    # ---- building ----
    def set_workflow(self, workflow: core.Workflow | None, path: str = "",
                     inputs: tuple[core.WorkflowInput, ...] | list[core.WorkflowInput] | None
                     = None) -> None:
        """Show `workflow`'s inputs (`inputs` typed by the server; else its plain ones).
        The same workflow again keeps the values set so far; another brings its app view."""
        same = bool(path) and path == self.path and workflow is not None
        kept = self.values() if same else {}
        if path != self.path:
            self.app = core.load_app(path) if path else core.AppView()
            self.all_open = None
        self.workflow, self.path = workflow, path
        found = list(inputs) if inputs is not None else (workflow.inputs() if workflow else [])
        self.inputs = found
        self.seed_keys = [i.key for i in found if i.kind == "seed"]
        self.rebuild(kept)

    def rebuild(self, values: dict[str, Any] | None = None) -> None:
        """Build the fields anew in a fresh body; the old one goes once Qt is done with it
        (a click in it may be what asked for this)."""
        old, self.body = self.body, QWidget()
        self.fields, self.labels = {}, {}
        self.layout_ = core.AppLayout([], [])
        self.all_toggle, self.all_box, self.editor = None, None, None
        box = QVBoxLayout(self.body)
        box.setContentsMargins(0, 0, 0, 0)
        if self.workflow is not None:
            self._fill(box)
        self.root.replaceWidget(old, self.body)
        old.hide()
        old.deleteLater()
        for key, value in (values or {}).items():
            if key in self.fields:
                self.fields[key].set_value(value)
        self.check()

    def _fill(self, box: QVBoxLayout) -> None:
        offered = self.offered()
        layout = self.layout_ = core.arrange(offered, self.app, self.workflow)
        if layout.shown:
            app_form = wrapping_form()
            for entry in layout.shown:
                self.labels[entry.input.key] = self._add(app_form, entry)
            box.addLayout(app_form)
        if self.customizing:
            wf = self.workflow
            outputs = [(n, wf.title(n)) for n in wf.output_nodes()] if wf is not None else []
            app = core.effective_app(offered, self.app, wf)  # the default app, until changed
            self.editor = AppEditor(app, layout, self.app_changed, outputs)
            box.addWidget(self.editor)
        if layout.others:
            self._all_inputs(box, layout.others, opened=not layout.shown)

    def _all_inputs(self, box: QVBoxLayout, others: list[core.LabelledInput],
                    opened: bool) -> None:
        toggle = self.all_toggle = QToolButton()
        self.others = len(others)
        toggle.setText(core.all_inputs_title(self.others, 0))
        toggle.setToolButtonStyle(TEXT_BESIDE_ICON)
        toggle.setCheckable(True)
        toggle.setAutoRaise(True)
        content = self.all_box = QWidget()
        form = wrapping_form(content)
        form.setContentsMargins(0, 0, 0, 0)
        for entry in others:
            self._add(form, entry)
        toggle.toggled.connect(self.open_all)
        box.addWidget(toggle)
        box.addWidget(content)
        self.open_all(opened if self.all_open is None else self.all_open)

    def _add(self, form: QFormLayout, entry: core.LabelledInput) -> ElidedLabel:
        item = entry.input
        field = self.fields[item.key] = make_field(item)
        field.on_change(self.check)  # flagged as the user edits it
        label = form_label(entry.label)
        label.setToolTip("\n\n".join(t for t in (entry.tip, item.tooltip) if t))
        if isinstance(field, TextField) and field.multiline:  # a prompt gets the full width
            form.addRow(label)
            form.addRow(field.widget)
        else:
            form.addRow(label, field.widget)
        field.show_problem(None)  # the node's tooltip on hover
        return label

    def offered(self) -> list[core.WorkflowInput]:
        """The inputs that get a field: not the canvas's loader input, and one seed only
        (Bindings.seed sets every seed input of the workflow)."""
        first = self.seed_keys[:1]
        return [i for i in self.inputs
                if i.kind not in CANVAS_KINDS and (i.kind != "seed" or [i.key] == first)]

    # ---- the app view ----
    def customize(self, on: bool) -> None:
        self.customizing = on
        self.rebuild(self.values())

    def app_changed(self, app: core.AppView) -> None:
        """Keep the view for this workflow; a new label only renames, anything else
        rebuilds (a label edit keeps its focus). Compared with the view shown, the default
        app until the user changed it; a reset (not customised) always rebuilds."""
        shown = core.effective_app(self.offered(), self.app, self.workflow)
        relabelled = app.custom and app.keys() == shown.keys()
        self.app = app
        try:
            core.save_app(self.path, app)
        except OSError as exc:
            self.report(f"The app view was not saved: {exc}")
        if relabelled:
            self.layout_ = core.arrange(self.offered(), app, self.workflow)
            for entry in self.layout_.shown:
                self.labels[entry.input.key].setText(entry.label)
            self.check()  # the status line names flagged values by their labels
        else:
            self.rebuild(self.values())

    def open_all(self, opened: bool) -> None:
        self.all_open = opened
        if self.all_toggle is None or self.all_box is None:
            return
        if self.all_toggle.isChecked() != opened:
            self.all_toggle.setChecked(opened)  # toggled: calls this again, same value
        self.all_toggle.setArrowType(DOWN_ARROW if opened else RIGHT_ARROW)
        self.all_box.setVisible(opened)

    def shown_labels(self) -> list[str]:
        """The app's labels, in order (what a user sees on top)."""
        return [label.text() for label in self.labels.values()]

    # ---- values ----
    def values(self) -> dict[str, Any]:
        return {key: field.value() for key, field in self.fields.items()}

    @property
    def seed_field(self) -> SeedField | None:
        field = self.fields.get(self.seed_keys[0]) if self.seed_keys else None
        return field if isinstance(field, SeedField) else None

    def bindings(self, for_run: bool = False) -> core.Bindings:
        """What the fields say. `for_run`: seeds as their control makes them for the next
        run (show_seeds() puts them in the fields once the run is sent)."""
        values = {key: field.next_seed() if for_run and isinstance(field, SeedField)
                  else field.value() for key, field in self.fields.items()}
        # A seed too big for a seed field (a text field) goes in as its input's value.
        seed = values.pop(self.seed_keys[0]) if self.seed_field is not None else None
        return core.Bindings(seed=seed, values=values, outputs=list(self.app.outputs))

    def show_seeds(self, bindings: core.Bindings) -> None:
        """The fields show the seeds the run used."""
        for key, field in self.fields.items():
            if isinstance(field, SeedField):
                used = bindings.seed if key == self.seed_keys[0] else bindings.values.get(key)
                if used is not None:
                    field.set_value(used)

    def fill(self, bindings: core.Bindings) -> None:
        """Put a run's values in the fields; seeds become fixed, so Run makes it again."""
        for key, value in bindings.values.items():
            if key in self.fields:
                self.fields[key].set_value(value)
        self.show_seeds(bindings)
        for field in self.fields.values():
            if isinstance(field, SeedField):
                field.set_control("fixed")
        self.check()

    # ---- problems ----
    def check(self) -> list[str]:
        """Flag every value the server would refuse; their keys. A closed "All inputs"
        says how many of its fields are flagged."""
        flagged = [key for key, field in self.fields.items() if field.check()]
        self._count_flags(flagged)
        self.flagged(core.flags(self.layout_, self.values()) if self.workflow else [])
        return flagged

    def _count_flags(self, flagged: list[str]) -> None:
        if self.all_toggle is None or self.all_box is None:
            return
        box = self.all_box
        inside = sum(box.isAncestorOf(self.fields[key].widget) for key in flagged)
        text = core.all_inputs_title(self.others, inside)
        if self.all_toggle.text() != text:
            self.all_toggle.setText(text)

    def flag(self, problems: list[core.ValueProblem]) -> None:
        """Flag the fields of values the core refused (InvalidValues); a flagged field
        under a closed "All inputs" opens it."""
        for problem in problems:
            key = self.seed_keys[0] if problem.key in self.seed_keys else problem.key
            field = self.fields.get(key)
            if field is None:
                continue
            field.show_problem(problem.message)
            if self.all_box is not None and self.all_box.isAncestorOf(field.widget):
                self.open_all(True)


def wrapping_form(parent: QWidget | None = None) -> QFormLayout:
    """A form whose labels go above their fields when the docker is narrow."""
    form = QFormLayout(parent) if parent is not None else QFormLayout()
    form.setRowWrapPolicy(WRAP_LONG_ROWS)
    return form


def form_label(text: str) -> ElidedLabel:
    """A field's label: one line, cut with "…" (whole on hover) when the docker is narrow."""
    return ElidedLabel(text)
