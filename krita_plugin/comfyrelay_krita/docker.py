"""The ComfyRelay docker (Settings › Dockers › ComfyRelay).

A QTimer on the Qt main thread pumps the session; the network stays on the core's runner
thread, so no click ever waits for the server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from krita import DockWidget, Krita

from . import settings as stored
from .core import (
    ComfyRelayError,
    ComfyUIBackend,
    ConnectionChecked,
    Event,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobOutput,
    JobPreview,
    JobProgress,
    JobQueued,
    JobRunner,
    JobStarted,
    Workflow,
)
from .inputs import InputForm
from .qt import (
    KEEP_ASPECT,
    PASSWORD,
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
from .session import Session

POLL_MS = 100
SOURCES = [("canvas", "Whole canvas"), ("selection", "Selection bounds")]


class Panel(QWidget):
    """Everything the docker shows; `document` says which document Run works on."""

    def __init__(self, krita: Any, document: Callable[[], Any] | None = None) -> None:
        super().__init__()
        self.krita = krita
        self.document = document or krita.activeDocument
        self.settings = stored.load(krita)
        self.session: Session | None = None
        self._session_key: tuple[str, str | None] | None = None
        self.workflow: Workflow | None = None
        self.job_id = ""
        self._build()
        self.load_workflow(self.settings.workflow, quiet=True)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.pump)
        self.timer.start()

    # ---- layout ----
    def _build(self) -> None:
        root = QVBoxLayout(self)
        server = QGroupBox("ComfyUI server")
        form = QFormLayout(server)
        self.url_edit = QLineEdit(self.settings.url)
        self.token_edit = QLineEdit(self.settings.token)
        self.token_edit.setEchoMode(PASSWORD)
        self.token_edit.setPlaceholderText("none, or COMFYUI_TOKEN")
        self.check_button = QPushButton("Check connection")
        self.server_status = QLabel("")
        self.server_status.setWordWrap(True)
        form.addRow("URL", self.url_edit)
        form.addRow("Token", self.token_edit)
        self.output_edit = QLineEdit(self.settings.output_folder)
        self.output_edit.setPlaceholderText(str(self.settings.results_dir()))
        form.addRow("Results", self.output_edit)
        form.addRow(self.check_button, self.server_status)
        root.addWidget(server)

        flow = QGroupBox("Workflow (API format)")
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
        root.addWidget(flow)

        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        root.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.preview = QLabel()
        root.addWidget(self.progress)
        root.addWidget(self.status)
        root.addWidget(self.preview)
        root.addStretch(1)

        self.url_edit.editingFinished.connect(self.save_settings)
        self.token_edit.editingFinished.connect(self.save_settings)
        self.output_edit.editingFinished.connect(self.save_settings)
        self.workflow_edit.editingFinished.connect(
            lambda: self.load_workflow(self.workflow_edit.text())
        )
        self.browse_button.clicked.connect(self.browse)
        self.source_combo.currentIndexChanged.connect(self.save_settings)
        self.check_button.clicked.connect(self.check_connection)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)

    # ---- settings and workflow ----
    def save_settings(self) -> None:
        self.settings.url = self.url_edit.text().strip()
        self.settings.token = self.token_edit.text().strip()
        self.settings.output_folder = self.output_edit.text().strip()
        self.settings.source = str(self.source_combo.currentData())
        stored.save(self.krita, self.settings)

    def browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "ComfyUI workflow (API format)", self.workflow_edit.text(), "JSON (*.json)"
        )
        if path:
            self.load_workflow(path)

    def load_workflow(self, path: str, quiet: bool = False) -> None:
        self.workflow = None
        self.workflow_edit.setText(path)
        if path:
            try:
                self.workflow = Workflow.load(path)
            except ComfyRelayError as exc:
                if not quiet:
                    self.show_error(str(exc))
        self.form.set_workflow(self.workflow)
        self.settings.workflow = path if self.workflow else self.settings.workflow
        self.save_settings()

    # ---- actions ----
    def current_session(self) -> Session:
        """The session for the current URL and token; a busy one is kept until it ends."""
        self.save_settings()
        key = (self.settings.url, self.settings.effective_token())
        if self.session is None or (key != self._session_key and not self.session.busy):
            if self.session is not None:
                self.session.close()
            backend = ComfyUIBackend(key[0], token=key[1])
            self.session, self._session_key = Session(JobRunner(backend)), key
        return self.session

    def check_connection(self) -> None:
        self.server_status.setText("Checking…")
        try:
            self.current_session().runner.check_connection()
        except ComfyRelayError as exc:
            self.server_status.setText(str(exc))

    def run(self) -> None:
        doc = self.document()
        if doc is None:
            return self.show_error("Open a document first.")
        if self.workflow is None:
            return self.show_error("Choose an API-format workflow first.")
        use_selection = self.source_combo.currentData() == "selection"
        try:
            bindings = self.form.bindings()
            self.workflow.bind(bindings, "check.png" if self.workflow.image_nodes() else None)
            self.job_id = self.current_session().run(
                doc, self.workflow, bindings, use_selection, self.settings.results_dir()
            )
        except (ComfyRelayError, ValueError) as exc:  # pydantic errors are ValueErrors
            return self.show_error(str(exc))
        self.set_running(True)
        self.show_status("Starting…")

    def cancel(self) -> None:
        if self.session is not None and self.job_id:
            self.session.cancel(self.job_id)
            self.show_status("Cancelling…")

    def close_session(self) -> None:
        self.timer.stop()
        if self.session is not None:
            self.session.close()
            self.session = None

    # ---- events ----
    def pump(self) -> None:
        if self.session is None:
            return
        for event in self.session.poll():
            self.on_event(event)
        while self.session.errors:
            self.show_error(self.session.errors.pop(0))

    def on_event(self, event: Event) -> None:
        if isinstance(event, ConnectionChecked):
            ok = "Connected" if event.ok else "Cannot connect"
            self.server_status.setText(f"{ok}: {event.message}")
        elif isinstance(event, JobStarted):
            self.show_status("Sending the image…")
        elif isinstance(event, JobQueued):
            ahead = f" ({event.position} ahead)" if event.position else ""
            self.show_status(f"Queued{ahead}.")
        elif isinstance(event, JobProgress):
            self.progress.setValue(int(event.fraction * 1000))
            step = f" {event.value}/{event.max}" if event.max else ""
            self.show_status(event.message or f"{event.node_title or 'Running'}{step}")
        elif isinstance(event, JobPreview):
            self.show_preview(event.data)
        elif isinstance(event, JobOutput):
            self.show_status(f"Added {event.path.name} as a layer.")
        elif isinstance(event, JobFinished):
            self.end_job(f"Done: {len(event.outputs)} result(s).")
            self.progress.setValue(1000)
        elif isinstance(event, JobFailed):
            self.end_job()
            self.show_error(failure_text(event))
        elif isinstance(event, JobCancelled):
            self.end_job("Cancelled.")

    def end_job(self, message: str = "") -> None:
        self.set_running(False)
        self.job_id = ""
        if message:
            self.show_status(message)

    # ---- display ----
    def set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        if running:
            self.progress.setValue(0)

    def show_status(self, text: str) -> None:
        self.status.setStyleSheet("")
        self.status.setText(text)

    def show_error(self, text: str) -> None:
        self.status.setStyleSheet("color: #d04040;")
        self.status.setText(text)

    def show_preview(self, data: bytes) -> None:
        pixmap = QPixmap()
        if pixmap.loadFromData(data):
            width = max(64, self.width() - 24)
            self.preview.setPixmap(pixmap.scaled(width, width, KEEP_ASPECT, SMOOTH))


def failure_text(event: JobFailed) -> str:
    """The error with the node that failed, so the user knows where to look."""
    if not event.node_id:
        return event.message
    node = f"node {event.node_id}" + (f" ({event.node_type})" if event.node_type else "")
    return f"Failed in {node}: {event.message}"


class ComfyRelayDocker(DockWidget):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("ComfyRelay")
        self.panel = Panel(Krita.instance())
        self.setWidget(self.panel)

    def canvasChanged(self, canvas: Any) -> None:
        pass  # Run always reads the active document
