"""Everything the docker shows, bound to the host session's view.

A QTimer on the Qt main thread pumps the session and refreshes the widgets from its view;
the network stays on the core's threads (runner, machine actions), so no click ever waits
for a server. No `krita` import here: the panel gets Krita's instance, so it can be built
under plain PyQt5 or PyQt6 too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import settings as stored
from .backend_box import BackendBox
from .core import core
from .inputs import InputForm
from .machines import LeftoverBox, MachineBox
from .qt import (
    KEEP_ASPECT,
    SMOOTH,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPixmap,
    QProgressBar,
    QPushButton,
    QTimer,
    QVBoxLayout,
    QWidget,
)
from .results import CanvasJobs

POLL_MS = 100
SOURCES = [("canvas", "Whole canvas"), ("selection", "Selection bounds")]
ERROR_STYLE = "color: #d04040;"


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
        self.converting = ""  # the UI-format workflow being converted
        self.message = ""  # an error found here (no document, a bad value), until Run
        self._build()
        self.load_workflow(self.settings.workflow, quiet=True)  # also applies the settings
        self.act(lambda: self.session.scan_leftovers(self.settings.credentials(),
                                                     self.settings.rc_api_url))
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
        form = QFormLayout()
        self.check_button = QPushButton("Check connection")
        self.server_status = _wrapping_label()
        self.output_edit = QLineEdit(self.settings.output_folder)
        self.output_edit.setPlaceholderText(str(self.settings.results_dir()))
        form.addRow("Results", self.output_edit)
        form.addRow(self.check_button, self.server_status)
        box.addLayout(form)
        root.addWidget(server)
        self.machine_box = MachineBox(self.act, self.session)
        root.addWidget(self.machine_box)
        self.leftover_box = LeftoverBox(self.stop_leftover, self.reuse_machine)
        root.addWidget(self.leftover_box)
        root.addWidget(self._workflow_box())
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel")
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        root.addLayout(buttons)
        self.progress = QProgressBar()
        self.status = _wrapping_label()
        self.preview = QLabel()
        for widget in (self.progress, self.status, self.preview):
            root.addWidget(widget)
        root.addStretch(1)
        self.output_edit.editingFinished.connect(self.save_settings)
        self.check_button.clicked.connect(self.check_connection)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(lambda: self.session.cancel())

    def _workflow_box(self) -> QGroupBox:
        flow = QGroupBox("Workflow")
        box = QVBoxLayout(flow)
        row = QHBoxLayout()
        self.workflow_edit = QLineEdit(self.settings.workflow)
        self.browse_button = QPushButton("…")
        row.addWidget(self.workflow_edit)
        row.addWidget(self.browse_button)
        box.addLayout(row)
        self.form = InputForm()
        box.addWidget(self.form)
        self.source_combo = QComboBox()
        for key, label in SOURCES:
            self.source_combo.addItem(label, key)
        self.source_combo.setCurrentIndex(max(0, self.source_combo.findData(self.settings.source)))
        box.addWidget(self.source_combo)
        self.workflow_edit.editingFinished.connect(
            lambda: self.load_workflow(self.workflow_edit.text())
        )
        self.browse_button.clicked.connect(self.browse)
        self.source_combo.currentIndexChanged.connect(self.save_settings)
        return flow

    # ---- settings and workflow ----
    def save_settings(self) -> None:
        self.backend_box.read_into(self.settings)
        self.settings.output_folder = self.output_edit.text().strip()
        self.settings.source = str(self.source_combo.currentData())
        stored.save(self.krita, self.settings)
        self.act(lambda: self.session.configure(self.settings.backend_settings(),
                                                self.settings.credentials()))

    def browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "ComfyUI workflow", self.workflow_edit.text(),
            "Workflows, ComfyUI images (*.json *.png *.webp)",
        )
        if path:
            self.load_workflow(path)

    def load_workflow(self, path: str, quiet: bool = False) -> None:
        """API format at once; a UI-format file or a ComfyUI image once the session has
        converted it with the server's node definitions (WorkflowOpened)."""
        self.workflow = None
        self.workflow_edit.setText(path)
        self.save_settings()  # the back end that converts
        try:
            self.workflow = self.session.open_workflow(path) if path else None
            self.settings.workflow = path
            self.converting = path if path and self.workflow is None else ""
        except core.ComfyRelayError as exc:
            if not quiet:
                self.message = str(exc)
        self.form.set_workflow(self.workflow)
        self.save_settings()

    # ---- actions ----
    def act(self, action: Callable[[], object]) -> None:
        """Do what the user asked; a problem is shown instead of raised into Qt."""
        try:
            action()
        except (core.ComfyRelayError, ValueError) as exc:  # pydantic errors are ValueErrors
            self.message = str(exc)
        self.refresh()

    def reuse_machine(self, server_id: str) -> None:
        """Send jobs to a machine found running; its status shows in the machine box."""
        def reuse() -> None:
            self.session.reuse(server_id)
            self.backend_box.choose("runcomfy-machine")
            self.save_settings()

        self.act(reuse)

    def stop_leftover(self, server_id: str) -> None:
        self.act(lambda: self.session.stop_leftover(server_id))

    def check_connection(self) -> None:
        self.save_settings()
        self.session.check()
        self.refresh()

    def run(self) -> None:
        self.message = ""
        doc = self.document()
        if doc is None:
            self.message = "Open a document first."
        elif self.workflow is None:
            self.message = ("Wait: the workflow is being converted." if self.converting
                            else "Choose a workflow first.")
        else:
            workflow, out_dir = self.workflow, self.settings.results_dir()
            use_selection = self.source_combo.currentData() == "selection"
            self.save_settings()
            self.act(lambda: self.jobs.run(doc, workflow, self.form.bindings(), use_selection,
                                           out_dir))
        self.refresh()

    def close_session(self) -> None:
        """Krita quits: close the back end now (a machine launched here is stopped)."""
        self.timer.stop()
        self.jobs.close()

    # ---- the pump and the view ----
    def pump(self) -> None:
        self.jobs.pump(self.on_event)
        while self.jobs.errors:
            self.message = self.jobs.errors.pop(0)
        self.refresh()

    def on_event(self, event: core.HostEvent) -> None:
        if isinstance(event, core.JobPreview):
            self.show_preview(event.data)
        elif isinstance(event, core.WorkflowOpened) and event.path == self.converting:
            self.workflow, self.converting = event.workflow, ""
            self.form.set_workflow(self.workflow)

    def refresh(self) -> None:
        view = self.session.view
        self.run_button.setEnabled(view.can_run)
        self.cancel_button.setEnabled(view.can_cancel)
        self.cancel_button.setToolTip(view.cancel_tip)
        self.check_button.setEnabled(view.can_check)
        # Without live progress the bar only says "working" (Qt's busy bar: range 0..0).
        self.progress.setRange(0, 1000 if view.progress_known else 0)
        self.progress.setValue(int(view.progress * 1000))
        self.preview.setVisible(view.previews)
        _show(self.server_status, view.problem or _connection(view))
        error = self.message or view.error
        if view.error and view.error_node and not self.message:
            error = f"Failed in {view.error_node}: {view.error}"
        step = f" · {view.node} {view.step}".rstrip() if view.node and not error else ""
        _show(self.status, error or f"{view.status}{step}", ERROR_STYLE if error else "")
        self.machine_box.refresh(view)
        self.leftover_box.refresh(view)

    def show_preview(self, data: bytes) -> None:
        pixmap = QPixmap()
        if pixmap.loadFromData(data):
            width = max(64, self.width() - 24)
            self.preview.setPixmap(pixmap.scaled(width, width, KEEP_ASPECT, SMOOTH))


def _connection(view: core.View) -> str:
    said = {True: "Connected: ", False: "Cannot connect: ", None: ""}[view.connected]
    return f"{said}{view.connection}"


def _wrapping_label() -> QLabel:
    label = QLabel("")
    label.setWordWrap(True)
    return label


def _show(label: QLabel, text: str, style: str = "") -> None:
    if label.text() != text:
        label.setText(text)
    if label.styleSheet() != style:
        label.setStyleSheet(style)
