"""The ComfyRelay docker (Settings › Dockers › ComfyRelay).

A QTimer on the Qt main thread pumps the session and refreshes the machine boxes; the network
stays on the core's threads (runner, machine actions), so no click ever waits for a server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from krita import DockWidget, Krita

from . import settings as stored
from .backend_box import BackendBox
from .core import (
    BackendSettings,
    Capabilities,
    ComfyRelayError,
    ConnectionChecked,
    Credentials,
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
    RunComfyMachineBackend,
    Workflow,
    make_backend,
    runcomfy_server,
)
from .inputs import InputForm
from .machines import LeftoverBox, MachineBox
from .qt import (
    KEEP_ASPECT,
    SMOOTH,
    QApplication,
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
    QScrollArea,
    QTimer,
    QVBoxLayout,
    QWidget,
)
from .session import Session

POLL_MS = 100
SOURCES = [("canvas", "Whole canvas"), ("selection", "Selection bounds")]
# Applied to a live machine back end instead of replacing it: replacing one stops its machine.
TUNABLE = {"hourly_price", "idle_stop", "duration"}


class Panel(QWidget):
    """Everything the docker shows; `document` says which document Run works on."""

    def __init__(self, krita: Any, document: Callable[[], Any] | None = None) -> None:
        super().__init__()
        self.krita = krita
        self.document = document or krita.activeDocument
        self.settings = stored.load(krita)
        self.session: Session | None = None
        self._session_key: tuple[Any, ...] | None = None
        self._resync = False  # the settings changed while the back end was busy
        self.backend_problem = ""  # why the settings give no back end
        self.reuse_id = ""  # a running machine the user chose to reuse
        self.caps = Capabilities()
        self.workflow: Workflow | None = None
        self.job_id = ""
        self._build()
        self.load_workflow(self.settings.workflow, quiet=True)  # also builds the back end
        self.scan_machines()
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
        self.server_status = QLabel("")
        self.server_status.setWordWrap(True)
        self.output_edit = QLineEdit(self.settings.output_folder)
        self.output_edit.setPlaceholderText(str(self.settings.results_dir()))
        form.addRow("Results", self.output_edit)
        form.addRow(self.check_button, self.server_status)
        box.addLayout(form)
        root.addWidget(server)
        self.machine_box = MachineBox()
        self.machine_box.stop_button.clicked.connect(self.forget_reused)
        root.addWidget(self.machine_box)
        self.leftover_box = LeftoverBox(self.reuse_machine)
        root.addWidget(self.leftover_box)

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
        self.backend_box.read_into(self.settings)
        self.settings.output_folder = self.output_edit.text().strip()
        self.settings.source = str(self.source_combo.currentData())
        stored.save(self.krita, self.settings)
        self.sync_backend()

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
        """The session for the chosen back end; raises ComfyRelayError when there is none."""
        self.save_settings()
        if self.session is None:
            raise ComfyRelayError(self.backend_problem or "Choose a back end.")
        return self.session

    def busy(self) -> bool:
        """A job, a machine action or a launch is under way: the back end must stay."""
        if self.session is None:
            return False
        backend = self.session.runner.backend
        machine = isinstance(backend, RunComfyMachineBackend) and (
            self.machine_box.actions.working or backend.preparing
        )
        return self.session.busy or machine

    def sync_backend(self) -> None:
        """Build the back end the settings describe, once the current one is idle."""
        if self.busy():
            self._resync = True
            return
        self._resync = False
        try:
            chosen = self.settings.backend_settings(self.reuse_id)
            credentials = self.settings.credentials()
            key = backend_key(chosen, credentials)
            if self.session is not None and key == self._session_key:
                tune(self.session.runner.backend, chosen)
                return
            backend = make_backend(chosen, credentials)
        except (ComfyRelayError, ValueError) as exc:  # pydantic errors are ValueErrors
            self.retire_session()
            self.set_problem(str(exc))
            return
        self.retire_session()
        self.set_problem("")
        self.session, self._session_key = Session(JobRunner(backend)), key
        self.apply_capabilities(backend.capabilities)

    def retire_session(self) -> None:
        """Close the old back end on a thread: closing a machine back end stops its machine."""
        old, self.session, self._session_key = self.session, None, None
        if old is not None:
            threading.Thread(target=old.close, name="comfyrelay-close", daemon=True).start()

    def scan_machines(self) -> None:
        """Machines left running by earlier sessions cost money: look for them at start-up."""
        try:
            credentials = self.settings.credentials()
            if not (credentials.runcomfy_user_id and credentials.runcomfy_tokens):
                return
            server = runcomfy_server(credentials, self.settings.rc_api_url)
        except ComfyRelayError:
            return  # unreadable credentials: the back end's own error says why
        self.leftover_box.scan(server)

    def reuse_machine(self, server_id: str) -> None:
        """Send jobs to a machine found running; its status shows in the machine box."""
        if self.busy():
            return self.show_error("Wait for the current job or machine action to end.")
        self.reuse_id = self.leftover_box.in_use = server_id
        self.backend_box.choose("runcomfy-machine")
        self.save_settings()
        if self.session is not None and isinstance(self.session.runner.backend,
                                                   RunComfyMachineBackend):
            self.machine_box.actions.launch(self.session.runner.backend)  # attach to it

    def forget_reused(self) -> None:
        """A stopped machine cannot be reused: the next back end launches its own."""
        if self.reuse_id:
            self.reuse_id = ""
            self._resync = True

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
        """Krita quits: close the back end now (a machine launched here is stopped)."""
        self.timer.stop()
        self.leftover_box.release()
        if self.session is not None:
            self.session.close()
            self.session = None

    # ---- events ----
    def pump(self) -> None:
        if self._resync and not self.busy():
            self.sync_backend()
        self.refresh_machines()
        if self.session is None:
            return
        for event in self.session.poll():
            self.on_event(event)
        while self.session.errors:
            self.show_error(self.session.errors.pop(0))

    def refresh_machines(self) -> None:
        """Status, time left and cost from memory: cheap enough for every tick."""
        is_machine = self.settings.backend == "runcomfy-machine"
        self.machine_box.setVisible(is_machine)
        if is_machine:
            backend = self.session.runner.backend if self.session else None
            machine = backend if isinstance(backend, RunComfyMachineBackend) else None
            self.machine_box.refresh(machine, self.backend_problem)
        self.leftover_box.refresh()

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
        self.cancel_button.setEnabled(running and self.caps.cancel)
        # Without live progress the bar only says "working" (Qt's busy bar: range 0..0).
        self.progress.setRange(0, 1000 if self.caps.live_progress or not running else 0)
        if running:
            self.progress.setValue(0)

    def apply_capabilities(self, caps: Capabilities) -> None:
        """Grey out what the back end cannot do."""
        self.caps = caps
        self.preview.setVisible(caps.previews)
        self.preview.clear()
        self.cancel_button.setToolTip(
            "" if caps.cancel else "This back end cannot cancel a run once it is sent."
        )

    def set_problem(self, problem: str) -> None:
        """Why the settings give no back end; shown until they do."""
        if problem or self.server_status.text() == self.backend_problem:
            self.server_status.setText(problem)
        self.backend_problem = problem

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


def backend_key(chosen: BackendSettings, credentials: Credentials) -> tuple[Any, ...]:
    """What needs a new back end: the kind, its own settings and the credentials it uses.
    Other back ends' fields and the TUNABLE ones do not (see tune)."""
    part = getattr(chosen, chosen.kind.replace("-", "_"))
    secrets = {
        "comfyui": (credentials.comfyui_token,),
        "runcomfy-machine": (credentials.runcomfy_user_id, credentials.runcomfy_tokens),
        "runcomfy-serverless": (credentials.runcomfy_tokens,),
        "comfyicu": (credentials.comfyicu_api_key,),
    }[chosen.kind]
    return chosen.kind, part.model_dump_json(exclude=TUNABLE), secrets


def tune(backend: Any, chosen: BackendSettings) -> None:
    """Price, idle stop and duration change on the live machine back end (read per use)."""
    if isinstance(backend, RunComfyMachineBackend):
        m = chosen.runcomfy_machine
        backend.hourly_price, backend.idle_stop = m.hourly_price, m.idle_stop
        backend.duration = m.duration


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
        scroll = QScrollArea()  # the back-end fields make the panel taller than most dockers
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.panel)
        self.setWidget(scroll)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.panel.close_session)

    def canvasChanged(self, canvas: Any) -> None:
        pass  # Run always reads the active document
