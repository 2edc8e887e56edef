"""Everything the docker shows, bound to the host session's view.

A QTimer on the Qt main thread pumps the session and refreshes the widgets from its view;
the network stays on the core's threads (runner, machine actions, typing a workflow's inputs
from the server), so no click ever waits for a server. No `krita` import here: the panel
gets Krita's instance, so it can be built under plain PyQt5 or PyQt6 too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import settings as stored
from .backend_box import BackendBox
from .controls_box import ControlsBoxes
from .core import core
from .elided import ElidedLabel
from .history import read_history
from .history_box import HistoryBox
from .inputs import InputForm
from .qt import (
    DOWN_ARROW,
    ELIDE_LEFT,
    KEEP_ASPECT,
    RIGHT_ARROW,
    SMOOTH,
    TEXT_BESIDE_ICON,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPixmap,
    QProgressBar,
    QPushButton,
    QTimer,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from .results import CanvasJobs, is_open
from .source_box import SourceBox
from .sources import Choice, defaults

POLL_MS = 100
ERROR_STYLE = "color: #d04040;"
PLAIN_FIELDS = ("Plain fields: the server could not be asked what these inputs take. "
                "Refresh once it is reachable.")
NO_DOCUMENT = object()  # the history shown is of no document yet


class Panel(QWidget):
    """The docker's contents; `document` says which document Run works on.
    Owned by the Qt main thread."""

    def __init__(self, krita: Any, document: Callable[[], Any] | None = None) -> None:
        super().__init__()
        self.krita = krita
        self.document = document or krita.activeDocument
        self.settings = stored.load(krita)
        self.session = core.HostSession()
        self.jobs = CanvasJobs(self.session)
        self.workflow: core.Workflow | None = None
        self.path = ""  # the workflow's file, as loaded
        self.message = ""  # an error found here (no document, a bad value), until Run
        self.pending_fill: tuple[str, core.Bindings] | None = None  # once that path is open
        self.history_doc: Any = NO_DOCUMENT
        self._build()
        self.load_workflow(self.settings.workflow, quiet=True)  # also applies the settings
        self.act(lambda: self.session.scan_leftovers(self.settings))
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.pump)
        self.timer.start()

    # ---- layout ----
    def _build(self) -> None:
        root = QVBoxLayout(self)
        server = QGroupBox("Back end")
        box = QVBoxLayout(server)
        self.backend_box = BackendBox(self.settings, self.save_settings)
        box.addWidget(self.backend_box)
        self.check_button = QPushButton("Check connection")
        self.server_status = _wrapping_label()  # own row: beside the button it wraps a lot
        box.addWidget(self.check_button)
        box.addWidget(self.server_status)
        self.details_toggle = _toggle("Details")
        self.details_toggle.setToolTip("What this server lacks, and what is done instead")
        self.details = _wrapping_label()
        self.details.setVisible(False)
        box.addWidget(self.details_toggle)
        box.addWidget(self.details)
        self.details_toggle.toggled.connect(self._show_details)
        root.addWidget(server)
        self.controls_boxes = ControlsBoxes(self.backend_action)
        root.addWidget(self.controls_boxes)
        root.addWidget(self._workflow_box())
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel")
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        root.addLayout(buttons)
        self.status = _wrapping_label()  # right under Run: what it waits for is read first
        self.progress = QProgressBar()
        self.preview = QLabel()
        self.preview.setMinimumWidth(1)  # its pixmap must not keep a narrowed docker wide
        self.history_box = HistoryBox(self.run_again, self.use_settings)
        for widget in (self.status, self.progress, self.preview, self.history_box):
            root.addWidget(widget)
        root.addLayout(self._results_row())
        root.addStretch(1)
        self.check_button.clicked.connect(self.check_connection)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(lambda: self.session.cancel())

    def _results_row(self) -> QHBoxLayout:
        """Where result files go (with the history they belong to): the folder, Choose…,
        Default (back to the default folder)."""
        row = QHBoxLayout()
        row.addWidget(QLabel("Results"))
        self.output_name = ElidedLabel("", elide=ELIDE_LEFT)  # the folder's end matters most
        self.output_button = _tool_button("Choose…", "Where result files are kept (the "
                                          "layers hold the pixels)")
        self.output_default = _tool_button("Default", "Keep result files in the default "
                                           "folder again")
        row.addWidget(self.output_name, 1)
        row.addWidget(self.output_button)
        row.addWidget(self.output_default)
        self._show_output_folder()
        self.output_button.clicked.connect(self.choose_output_folder)
        self.output_default.clicked.connect(lambda _=False: self.set_output_folder(""))
        return row

    def _show_output_folder(self) -> None:
        folder = str(self.settings.results_dir())
        self.output_name.setText(folder)
        self.output_name.setToolTip(folder)
        # Only for a folder of the user's: the default one's path needs the room.
        self.output_default.setVisible(bool(self.settings.output_folder))

    def choose_output_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Results folder",
                                                  str(self.settings.results_dir()))
        if folder:
            self.set_output_folder(folder)

    def set_output_folder(self, folder: str) -> None:
        self.settings.output_folder = folder.strip()
        self._show_output_folder()
        self.save_settings()

    def _workflow_box(self) -> QGroupBox:
        flow = QGroupBox("Workflow")
        box = QVBoxLayout(flow)
        row = QHBoxLayout()
        self.workflow_name = ElidedLabel("")  # the file's name; its path on hover
        # Tool buttons: a push button's minimum width is too wide here. The file dialog
        # also takes a typed or pasted path.
        self.browse_button = _tool_button("Open…", "Choose a workflow: API or UI format, or "
                                          "a ComfyUI image")
        row.addWidget(self.workflow_name, 1)
        row.addWidget(self.browse_button)
        box.addLayout(row)
        self.form = InputForm(self.report, self.session.flag_values)
        box.addLayout(self._workflow_tools())
        self.types_note = _wrapping_label()
        self.types_note.setText(PLAIN_FIELDS)
        self.types_note.setVisible(False)  # shown when the server could not be asked
        box.addWidget(self.types_note)
        self.sources = SourceBox(self.settings.source, self.layer_names, self.sources_changed)
        box.addWidget(self.sources)
        box.addWidget(self.form)
        self.browse_button.clicked.connect(self.browse)
        self.clear_button.clicked.connect(lambda _=False: self.load_workflow(""))
        return flow

    def _workflow_tools(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Ask the server again what the inputs take (its "
                                       "models, samplers, ranges), and read the file again")
        self.customize_button = QPushButton("Customize")
        self.customize_button.setCheckable(True)
        self.customize_button.setToolTip("Choose the inputs shown on top, their labels and "
                                         "order; kept for this workflow")
        # Beside Refresh, not the name: the workflow's name keeps the room to show whole.
        self.clear_button = _tool_button("×", "No workflow")
        row.addWidget(self.refresh_button)
        row.addWidget(self.customize_button)
        row.addWidget(self.clear_button)
        self.refresh_button.clicked.connect(lambda _=False: self.refresh_types())
        self.customize_button.toggled.connect(self.form.customize)
        return row

    # ---- settings and workflow ----
    def save_settings(self) -> None:
        self.backend_box.read_into(self.settings)
        self.settings.source = str(self.sources.region.currentData())
        stored.save(self.krita, self.settings)
        self.act(lambda: self.session.configure(self.settings.backend_settings(),
                                                self.settings.credentials()))

    def sources_changed(self) -> None:
        """A source or the region picked: kept for this workflow (Krita's settings)."""
        if self.path:
            self.settings.keep_sources(self.path, dict(self.sources.choices()))
        self.save_settings()

    def layer_names(self) -> list[str]:
        """The active document's layers and groups, top-down, for the sources' lists."""
        doc = self.document()
        return _layer_names(doc.topLevelNodes()) if doc is not None else []

    def _sources_for(self, workflow: core.Workflow, path: str) -> list[Choice]:
        """The sources shown for the workflow in the docker; another's as kept, else its
        defaults."""
        if path == self.path and self.sources.combos:
            return self.sources.choices()
        kept = self.settings.sources_of(path)
        return [(nid, kept.get(nid, source)) for nid, source in defaults(workflow)]

    def browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "ComfyUI workflow", self.path,
            "Workflows, ComfyUI images (*.json *.png *.webp)",
        )
        if path:
            self.load_workflow(path)

    def load_workflow(self, path: str, quiet: bool = False, refresh: bool = False) -> None:
        """API format at once with plain fields; a UI-format file or a ComfyUI image once
        the session has converted it. Either way, with a ComfyUI server, the fields are typed
        when WorkflowOpened brings the server's answer (`refresh`: asked again)."""
        same = path == self.path
        if not same:
            self.message = ""  # what was said and shown belongs to the workflow left
            self.preview.clear()
        self._show_path(path)
        self.save_settings()  # the back end that converts and types
        workflow, asking = None, False
        try:
            workflow = self.session.open_workflow(path, refresh=refresh) if path else None
            if not path:
                self.session.close_workflow()
            asking = self.session.is_converting(path)  # WorkflowOpened will follow
            self.settings.workflow = path
        except core.ComfyRelayError as exc:
            if not quiet:
                self.message = str(exc)
        self.path, self.workflow = path, workflow
        self.types_note.setVisible(False)  # until the server's answer says otherwise
        if workflow is not None or not same or not asking:
            self.form.set_workflow(workflow, path)  # the same file keeps the values set
            self.sources.set_workflow(workflow, self.settings.sources_of(path))
        self._fill_pending()
        self.save_settings()

    def _show_path(self, path: str) -> None:
        """The workflow's file name (its path on hover)."""
        self.workflow_name.setText(Path(path).name if path else "No workflow chosen")
        self.workflow_name.setToolTip(path)
        self.clear_button.setEnabled(bool(path))

    def refresh_types(self) -> None:
        """The Refresh button: the file and the server's node definitions read again."""
        self.message = ""
        self.load_workflow(self.path, refresh=True)
        self.refresh()

    def report(self, message: str) -> None:
        self.message = message
        self.refresh()

    # ---- actions ----
    def act(self, action: Callable[[], object]) -> None:
        """Do what the user asked; a problem is shown instead of raised into Qt."""
        try:
            action()
        except (core.ComfyRelayError, ValueError) as exc:  # pydantic errors are ValueErrors
            self.message = str(exc)
        self.refresh()

    def backend_action(self, button: core.Button) -> None:
        """A button of a kind's box; Reuse also makes that kind the chosen back end."""
        def act() -> None:
            chosen = self.session.act(button.kind, button.action, button.target)
            if chosen:
                self.backend_box.choose(chosen)
                self.save_settings()

        self.act(act)

    def check_connection(self) -> None:
        self.save_settings()
        self.session.check()
        self.refresh()

    def run(self) -> None:
        self.message = ""
        doc = self.document()
        if doc is None:
            self.message = "Open a document first."
        elif self.workflow is None:  # Run is disabled then: a script's call says why
            self.message = self.session.view.run_tip or "Choose a workflow first."
        else:
            self._start(doc, self.workflow, self.form.bindings(for_run=True), self.path,
                        from_fields=True)
        self.refresh()

    def run_again(self, record: core.RunRecord) -> None:
        """The run's workflow with its values and seed, on the active document's canvas (an
        animation run on the frame range it read)."""
        self.message = ""
        doc = self.document()
        workflow = self._workflow_of(record)
        if doc is None:
            self.message = "Open a document first."
        elif workflow is None:
            self.message = self.message or (
                f"Open {record.workflow_name} first ({record.workflow_path}): a UI-format "
                f"workflow is converted by the server before it runs.")
        else:
            frames = (record.frames[0], record.frames[-1]) if record.frames else None
            self._start(doc, workflow, core.bindings_for_rerun(record), record.workflow_path,
                        frames=frames)
        self.refresh()

    def _workflow_of(self, record: core.RunRecord) -> core.Workflow | None:
        """The run's workflow from its file, as it is now (no network)."""
        if not record.workflow_path:
            self.message = f"The run of {record.workflow_name} did not keep its file's path."
            return None
        try:
            return self.session.workflow(record.workflow_path)
        except core.ComfyRelayError as exc:  # moved or deleted
            self.message = str(exc)
            return None

    def _start(self, doc: Any, workflow: core.Workflow, bindings: core.Bindings, path: str,
               from_fields: bool = False, frames: tuple[int, int] | None = None) -> None:
        """Check the values (the server's rules, when known) and send the canvas; a value it
        would refuse stops it here, flagged in its field when it came from the fields."""
        self.save_settings()
        try:
            self.jobs.run(doc, workflow, bindings, self.sources.use_selection,
                          self.settings.results_dir(), workflow_path=path,
                          sources=self._sources_for(workflow, path), frames=frames)
        except core.InvalidValues as exc:
            self.message = str(exc)
            if from_fields:
                self.form.flag(exc.problems)
            return
        except (core.ComfyRelayError, ValueError) as exc:  # pydantic errors are ValueErrors
            self.message = str(exc)
            return
        if from_fields:
            self.form.show_seeds(bindings)  # the seed this run uses

    def use_settings(self, record: core.RunRecord) -> None:
        """The run's values and seed into the fields (its workflow loaded if need be)."""
        self.message = ""
        self.pending_fill = (record.workflow_path, core.bindings_for_rerun(record))
        if record.workflow_path != self.path:
            self.load_workflow(record.workflow_path)
        self._fill_pending()
        self.refresh()

    def _fill_pending(self) -> None:
        """Fill the fields once the workflow they belong to is shown."""
        if self.pending_fill is None or self.form.workflow is None:
            return
        path, bindings = self.pending_fill
        if path == self.form.path:
            self.pending_fill = None
            self.form.fill(bindings)

    def close_session(self) -> None:
        """Krita quits: close the back end now (a machine launched here is stopped)."""
        self.timer.stop()
        self.jobs.close()
        self.history_box.shutdown()

    # ---- the pump and the view ----
    def pump(self) -> None:
        self.jobs.pump(self.on_event)
        while self.jobs.errors:
            self.message = self.jobs.errors.pop(0)
        if self.history_box.loading:
            self.history_box.pump()
        self.follow_document()
        self.refresh()

    def on_event(self, event: core.HostEvent) -> None:
        if isinstance(event, core.JobPreview):
            self.show_preview(event.data)
        elif isinstance(event, core.WorkflowOpened) and event.path == self.path:
            self.opened(event)
        elif isinstance(event, core.RunEnded) and event.record is not None:
            target = getattr(event.run.data, "doc", None)
            if target is not None and _same(target, self.history_doc):
                self.follow_document(force=True)  # its history has the run now

    def opened(self, event: core.WorkflowOpened) -> None:
        """The server's answer: the converted workflow, its inputs typed (or plain)."""
        if event.workflow is None:
            return  # the session shows event.error
        self.workflow = event.workflow
        self.form.set_workflow(event.workflow, event.path, event.inputs)
        self.sources.set_workflow(event.workflow, self.settings.sources_of(event.path))
        self.types_note.setVisible(not event.typed)
        self._fill_pending()

    def follow_document(self, force: bool = False) -> None:
        """Show the history of the active document (another one, or the same one grown)."""
        doc = self.document()
        if force or not _same(doc, self.history_doc):
            self.history_doc = doc
            shown = doc is not None and is_open(doc)
            self.history_box.show_history(read_history(doc) if shown else core.RunHistory())

    def refresh(self) -> None:
        view = self.session.view
        self.run_button.setEnabled(view.can_run)
        _tip(self.run_button, view.run_tip)
        self.cancel_button.setEnabled(view.can_cancel)
        self.cancel_button.setToolTip(view.cancel_tip)
        self.check_button.setEnabled(view.can_check)
        self._show_progress(view)
        self.preview.setVisible(view.previews)
        _show(self.server_status, view.problem or _connection(view))
        _show(self.details, "" if view.problem else view.connection_details)
        self.details_toggle.setVisible(bool(self.details.text()))
        self._show_details(self.details_toggle.isChecked())
        error = self.message or view.error
        if view.error and view.error_node and not self.message:
            error = f"Failed in {view.error_node}: {view.error}"
        step = f" · {view.node} {view.step}".rstrip() if view.node and not error else ""
        status = _with_notes(f"{view.status}{step}", self.jobs.notes)
        alarm = error or view.state == core.Status.ATTENTION
        _show(self.status, error or status, ERROR_STYLE if alarm else "")
        self.controls_boxes.refresh(view)
        # The session's rule, as Blender's: a past run's own workflow, whatever the flags.
        self.history_box.refresh_buttons(view.can_rerun, view.rerun_tip)

    def _show_progress(self, view: core.View) -> None:
        """Empty and quiet until a run starts here (no "0%", no last run's "100%" after
        switching workflows); without live progress only "working" (Qt's busy bar)."""
        busy = view.progress_shown and not view.progress_known
        if self.progress.maximum() != (0 if busy else 1000):
            self.progress.setRange(0, 0 if busy else 1000)
        self.progress.setValue(int(view.progress * 1000) if view.progress_shown else 0)
        self.progress.setTextVisible(view.progress_shown and not busy)

    def _show_details(self, opened: bool) -> None:
        self.details_toggle.setArrowType(DOWN_ARROW if opened else RIGHT_ARROW)
        self.details.setVisible(opened and not self.details_toggle.isHidden())

    def show_preview(self, data: bytes) -> None:
        pixmap = QPixmap()
        if pixmap.loadFromData(data):
            width = max(64, self.width() - 24)
            self.preview.setPixmap(pixmap.scaled(width, width, KEEP_ASPECT, SMOOTH))


def _same(doc: Any, other: Any) -> bool:
    """Krita hands out a new wrapper for a document on each call: compare what they wrap."""
    if doc is None or other is None or other is NO_DOCUMENT:
        return doc is other
    return bool(doc == other)


def _layer_names(nodes: list[Any]) -> list[str]:
    """Layers and groups, each group followed by what it holds; masks left out."""
    names: list[str] = []
    for node in reversed(nodes):  # Krita lists bottom-up; the Layers docker shows top-down
        if node.type().endswith("mask"):
            continue
        names.append(node.name())
        if node.type() == "grouplayer":
            names += _layer_names(node.childNodes())
    return names


def _connection(view: core.View) -> str:
    """The check's answer; a success says "Connected to ..." itself."""
    return f"Cannot connect: {view.connection}" if view.connected is False else view.connection


def _with_notes(status: str, notes: list[str]) -> str:
    """The run's status and what the results' placing noted ("Done: 1 result(s). Result
    512×512 scaled to the canvas' 64×48.")."""
    if not notes:
        return status
    stop = "" if status.endswith((".", "…")) else "."
    return f"{status}{stop} {' '.join(notes)}"


def _toggle(text: str) -> QToolButton:
    """A flat button with an arrow that folds what is under it."""
    toggle = QToolButton()
    toggle.setText(text)
    toggle.setToolButtonStyle(TEXT_BESIDE_ICON)
    toggle.setCheckable(True)
    toggle.setAutoRaise(True)
    toggle.setArrowType(RIGHT_ARROW)
    return toggle


def _tool_button(text: str, tip: str) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    return button


def _tip(widget: QWidget, tip: str) -> None:
    if widget.toolTip() != tip:
        widget.setToolTip(tip)


def _wrapping_label() -> QLabel:
    label = QLabel("")
    label.setWordWrap(True)
    return label


def _show(label: QLabel, text: str, style: str = "") -> None:
    if label.text() != text:
        label.setText(text)
    if label.styleSheet() != style:
        label.setStyleSheet(style)
