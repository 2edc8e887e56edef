"""The back-end choice and its fields; only the chosen back end's fields are shown."""

from __future__ import annotations

from collections.abc import Callable

from .core import ACCELERATORS, COMFYICU_API, RUNCOMFY_API, SERVER_TYPES
from .qt import (
    PASSWORD,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from .settings import Settings

KIND_LABELS = [
    ("comfyui", "ComfyUI"),
    ("runcomfy-machine", "RunComfy machine"),
    ("runcomfy-serverless", "RunComfy Serverless"),
    ("comfyicu", "ComfyICU"),
]
FROM_ENV = "empty: from the environment or credentials.json"


def _secret(value: str, hint: str = FROM_ENV) -> QLineEdit:
    edit = QLineEdit(value)
    edit.setEchoMode(PASSWORD)
    edit.setPlaceholderText(hint)
    return edit


def _line(value: str, hint: str = "") -> QLineEdit:
    edit = QLineEdit(value)
    edit.setPlaceholderText(hint)
    return edit


def _combo(items: list[tuple[str, str]], current: str) -> QComboBox:
    combo = QComboBox()
    for key, label in items:
        combo.addItem(label, key)
    combo.setCurrentIndex(max(0, combo.findData(current)))
    return combo


def _page(rows: list[tuple[str, QWidget]]) -> QWidget:
    page = QWidget()
    form = QFormLayout(page)
    form.setContentsMargins(0, 0, 0, 0)
    for label, widget in rows:
        form.addRow(label, widget)
    return page


class BackendBox(QWidget):
    """Calls `changed` when the user has finished an edit, so the panel saves and rebuilds."""

    def __init__(self, s: Settings, changed: Callable[[], None]) -> None:
        super().__init__()
        self.kind = _combo(KIND_LABELS, s.backend)
        # ComfyUI
        self.url = _line(s.url)
        self.token = _secret(s.token, "none, or COMFYUI_TOKEN")
        # RunComfy account, shared by machines and Serverless
        self.rc_user = _line(s.rc_user_id, "empty: RUNCOMFY_USER_ID")
        self.rc_token1 = _secret(s.rc_token1)
        self.rc_token2 = _secret(s.rc_token2, "optional")
        self.rc_api = _line(s.rc_api_url, RUNCOMFY_API)
        # RunComfy machine
        self.rc_version = _line(s.rc_workflow_version, "workflow version_id")
        self.rc_type = _combo([(t, t) for t in SERVER_TYPES], s.rc_server_type)
        self.rc_minutes = QSpinBox()
        self.rc_minutes.setRange(1, 24 * 60)
        self.rc_minutes.setSuffix(" min")
        self.rc_minutes.setValue(s.rc_minutes)
        self.rc_idle = QSpinBox()
        self.rc_idle.setRange(0, 24 * 60)
        self.rc_idle.setSuffix(" min")
        self.rc_idle.setSpecialValueText("never")
        self.rc_idle.setValue(s.rc_idle_minutes)
        self.rc_price = QDoubleSpinBox()
        self.rc_price.setRange(0.0, 1000.0)
        self.rc_price.setDecimals(2)
        self.rc_price.setSpecialValueText("not set")  # the cost needs the user's price
        self.rc_price.setValue(s.rc_hourly_price)
        # RunComfy Serverless
        self.rc_deployment = _line(s.rc_deployment, "deployment id")
        # ComfyICU
        self.icu_key = _secret(s.icu_api_key, "empty: COMFYICU_API_KEY")
        self.icu_workflow = _line(s.icu_workflow, "workflow_id from “View API code”")
        self.icu_accelerator = _combo([("", "default"), *((a, a) for a in ACCELERATORS)],
                                      s.icu_accelerator)
        self.icu_api = _line(s.icu_api_url, COMFYICU_API)

        self.pages = {
            "comfyui": _page([("URL", self.url), ("Token", self.token)]),
            "runcomfy": _page([("User id", self.rc_user), ("Token1", self.rc_token1),
                               ("Token2", self.rc_token2), ("API URL (advanced)", self.rc_api)]),
            "runcomfy-machine": _page([
                ("Workflow version", self.rc_version), ("Machine type", self.rc_type),
                ("Duration", self.rc_minutes), ("Idle auto-stop", self.rc_idle),
                ("Hourly price", self.rc_price),
            ]),
            "runcomfy-serverless": _page([("Deployment", self.rc_deployment)]),
            "comfyicu": _page([("API key", self.icu_key), ("Workflow id", self.icu_workflow),
                               ("Accelerator", self.icu_accelerator),
                               ("API URL (advanced)", self.icu_api)]),
        }
        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.addWidget(self.kind)
        for page in self.pages.values():
            root.addWidget(page)
        self.show_kind()

        self.kind.currentIndexChanged.connect(self.show_kind)
        self.kind.currentIndexChanged.connect(changed)
        for combo in (self.rc_type, self.icu_accelerator):
            combo.currentIndexChanged.connect(changed)
        edits: list[QLineEdit | QSpinBox | QDoubleSpinBox] = [
            self.url, self.token, self.rc_user, self.rc_token1, self.rc_token2, self.rc_api,
            self.rc_version, self.rc_minutes, self.rc_idle, self.rc_price, self.rc_deployment,
            self.icu_key, self.icu_workflow, self.icu_api,
        ]
        for edit in edits:
            edit.editingFinished.connect(changed)

    @property
    def chosen(self) -> str:
        return str(self.kind.currentData())

    def show_kind(self) -> None:
        kind = self.chosen
        for name, page in self.pages.items():
            page.setVisible(name == kind or (name == "runcomfy" and kind.startswith(name)))

    def choose(self, kind: str) -> None:
        self.kind.setCurrentIndex(max(0, self.kind.findData(kind)))

    def read_into(self, s: Settings) -> None:
        s.backend = self.chosen
        s.url = self.url.text().strip()
        s.token = self.token.text().strip()
        s.rc_user_id = self.rc_user.text().strip()
        s.rc_token1 = self.rc_token1.text().strip()
        s.rc_token2 = self.rc_token2.text().strip()
        s.rc_api_url = self.rc_api.text().strip()
        s.rc_workflow_version = self.rc_version.text().strip()
        s.rc_server_type = str(self.rc_type.currentData())
        s.rc_minutes = self.rc_minutes.value()
        s.rc_idle_minutes = self.rc_idle.value()
        s.rc_hourly_price = self.rc_price.value()
        s.rc_deployment = self.rc_deployment.text().strip()
        s.icu_api_key = self.icu_key.text().strip()
        s.icu_workflow = self.icu_workflow.text().strip()
        s.icu_accelerator = str(self.icu_accelerator.currentData() or "")
        s.icu_api_url = self.icu_api.text().strip()
