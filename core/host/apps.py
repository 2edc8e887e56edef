"""Per-workflow "app" views: the inputs a user chose to show, in their order, with their labels.

Kept in the user's config folder (apps.json), keyed by the workflow's absolute path, so the
same view comes back in Blender, Krita, and after a restart. Everything not chosen stays
reachable under "All inputs" (AppLayout.others).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..config import config_dir, write_private_json
from ..jobs.workflow import WorkflowInput
from ..net.filelock import file_lock

log = logging.getLogger(__name__)
APPS_FILE = "apps.json"
APPS_VERSION = 1
_lock = threading.Lock()  # one thread per process at the file lock (see net.filelock)


class AppField(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str  # WorkflowInput.key: "node_id.input"
    label: str = ""  # the user's; empty: default_label()


class AppView(BaseModel):
    """The inputs a workflow's app shows, in order. Methods return a changed copy."""

    model_config = ConfigDict(frozen=True)

    fields: list[AppField] = []
    # The output nodes (ids) whose files come back; empty: every saved file, or the
    # previews when the workflow saves none (jobs/outputs.py).
    outputs: list[str] = []

    def with_outputs(self, outputs: list[str]) -> AppView:
        return self.model_copy(update={"outputs": list(outputs)})

    def keys(self) -> list[str]:
        return [f.key for f in self.fields]

    def with_field(self, key: str, label: str = "") -> AppView:
        """Shown last, or relabelled where it is if already shown."""
        if key in self.keys():
            return self._replace([AppField(key=key, label=label) if f.key == key else f
                                  for f in self.fields])
        return self._replace([*self.fields, AppField(key=key, label=label)])

    def without(self, key: str) -> AppView:
        return self._replace([f for f in self.fields if f.key != key])

    def moved(self, key: str, offset: int) -> AppView:
        """`key` moved by `offset` places (-1: up one), clamped to the ends."""
        keys = self.keys()
        if key not in keys:
            return self
        fields = list(self.fields)
        field = fields.pop(keys.index(key))
        fields.insert(max(0, min(len(fields), keys.index(key) + offset)), field)
        return self._replace(fields)

    def _replace(self, fields: list[AppField]) -> AppView:
        return self.model_copy(update={"fields": fields})


@dataclass(frozen=True)
class LabelledInput:
    input: WorkflowInput
    label: str


@dataclass(frozen=True)
class AppLayout:
    shown: list[LabelledInput]  # the app's inputs, in its order, with their labels
    others: list[WorkflowInput]  # every other input, in workflow order ("All inputs")


def default_label(item: WorkflowInput) -> str:
    return f"{item.node_title}: {item.name}"


def arrange(inputs: list[WorkflowInput], app: AppView | None) -> AppLayout:
    """Split a workflow's inputs (typed or plain) by its app view. Chosen inputs the
    workflow no longer has (a node was removed) are skipped, not dropped from the view."""
    by_key = {i.key: i for i in inputs}
    chosen = [f for f in (app.fields if app else []) if f.key in by_key]
    shown = [LabelledInput(by_key[f.key], f.label or default_label(by_key[f.key]))
             for f in chosen]
    keys = {f.key for f in chosen}
    return AppLayout(shown, [i for i in inputs if i.key not in keys])


# ---- storage ----
def workflow_key(workflow_path: str | Path) -> str:
    """The absolute path the view is kept under (symlinks resolved)."""
    return str(Path(workflow_path).expanduser().resolve())


def apps_path(env: Mapping[str, str] | None = None) -> Path:
    return config_dir(env) / APPS_FILE


def load_app(workflow_path: str | Path, env: Mapping[str, str] | None = None) -> AppView:
    """The saved view of this workflow; an empty one if none was saved."""
    return _read(apps_path(env)).get(workflow_key(workflow_path), AppView())


def save_app(
    workflow_path: str | Path, app: AppView, env: Mapping[str, str] | None = None
) -> None:
    """Keep `app` for this workflow (a view with no fields and no outputs picked forgets
    it); other workflows' views are kept, also when another process saved one meanwhile."""
    path = apps_path(env)
    key = workflow_key(workflow_path)
    with _lock, file_lock(path.with_suffix(".lock")):
        apps = _read(path)
        if app.fields or app.outputs:
            apps[key] = app
        else:
            apps.pop(key, None)
        data = {"version": APPS_VERSION,
                "apps": {k: v.model_dump() for k, v in apps.items()}}
        write_private_json(path, data)


def _read(path: Path) -> dict[str, AppView]:
    """Every saved view; damaged ones are logged and skipped, never raised."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("Cannot read the app views in %s (%s); starting without them.", path, exc)
        return {}
    stored = data.get("apps") if isinstance(data, dict) else None
    if not isinstance(stored, dict):
        log.warning("%s holds no app views; starting without them.", path)
        return {}
    apps = {}
    for key, raw in stored.items():
        try:
            apps[key] = AppView.model_validate(raw)
        except ValidationError:
            log.warning("Skipped the unreadable app view of %s in %s.", key, path)
    return apps
