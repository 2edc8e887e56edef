"""Per-workflow "app" views: the inputs a user chose to show, in their order, with their labels.

Kept in the user's config folder (apps.json), keyed by the workflow's absolute path, so the
same view comes back in Blender, Krita, and after a restart. Everything not chosen stays
reachable under "All inputs" (AppLayout.others). A workflow the user has not customised shows
the default app (default_app.py): the inputs people change, labelled in words.

A view is customised once the user changed it (`custom`), also when they then removed every
input: an empty app then stays empty, and saving AppView() (Reset) brings the defaults back.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..comfyui.fields import field_problem
from ..config import config_dir, write_private_json
from ..jobs.workflow import Workflow, WorkflowInput
from ..net.filelock import file_lock
from .default_app import conditioning_roles, default_keys, word_labels
from .status import Flag

log = logging.getLogger(__name__)
APPS_FILE = "apps.json"
APPS_VERSION = 1
_lock = threading.Lock()  # one thread per process at the file lock (see net.filelock)


class AppField(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str  # WorkflowInput.key: "node_id.input"
    label: str = ""  # the user's; empty: the label in words (default_app.word_labels)


class AppView(BaseModel):
    """The inputs a workflow's app shows, in order. Methods return a changed copy."""

    model_config = ConfigDict(frozen=True)

    fields: list[AppField] = []
    custom: bool = False  # the user changed it: shown as it is, never the default app
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
        return self.model_copy(update={"fields": fields, "custom": True})


@dataclass(frozen=True)
class LabelledInput:
    input: WorkflowInput
    label: str
    tip: str = ""  # for hover: the raw input and its node, "3.seed · KSampler (KSampler)"
    word: str = ""  # its label in words, whatever the user's label


@dataclass(frozen=True)
class AppLayout:
    shown: list[LabelledInput]  # the app's inputs, in its order, with their labels
    others: list[LabelledInput]  # every other input, in workflow order ("All inputs")


def tip(item: WorkflowInput) -> str:
    node = item.node_title if item.node_title == item.class_type else \
        f"{item.node_title} ({item.class_type})"
    return f"{item.key} · {node}"


def input_labels(inputs: list[WorkflowInput], workflow: Workflow | None = None,
                 app: Collection[str] = ()) -> dict[str, str]:
    """key -> its label in words (the workflow's links tell a negative prompt apart); the
    app's inputs (`app`: keys) keep their words against inputs outside it."""
    return word_labels(inputs, _roles(workflow), app)


def default_app(inputs: list[WorkflowInput], workflow: Workflow | None = None) -> AppView:
    """The app of a workflow the user has not customised (`workflow`: its links, which tell
    the positive prompt from the negative one, and which prompts reach no sampler)."""
    return AppView(fields=[AppField(key=k) for k in default_keys(inputs, _roles(workflow))])


def _roles(workflow: Workflow | None) -> dict[str, str] | None:
    return conditioning_roles(workflow.graph) if workflow else None


def effective_app(inputs: list[WorkflowInput], app: AppView | None,
                  workflow: Workflow | None = None) -> AppView:
    """The view shown: the saved one once customised, else the default app (with the saved
    outputs). What an app editor starts from."""
    if app is not None and app.custom:
        return app
    outputs = app.outputs if app is not None else []
    return default_app(inputs, workflow).with_outputs(outputs)


def arrange(inputs: list[WorkflowInput], app: AppView | None,
            workflow: Workflow | None = None) -> AppLayout:
    """Split a workflow's inputs (typed or plain) by its app view, the default app when the
    user has not customised it. Chosen inputs the workflow no longer has (a node was
    removed) are skipped, not dropped from the view. Labels are the user's, else words."""
    by_key = {i.key: i for i in inputs}
    chosen = [f for f in effective_app(inputs, app, workflow).fields if f.key in by_key]
    words = input_labels(inputs, workflow, {f.key for f in chosen})
    shown = [LabelledInput(by_key[f.key], f.label or words[f.key], tip(by_key[f.key]),
                           words[f.key]) for f in chosen]
    keys = {f.key for f in chosen}
    others = [LabelledInput(i, words[i.key], tip(i), words[i.key])
              for i in inputs if i.key not in keys]
    return AppLayout(shown, others)


def all_inputs_title(count: int, flagged: int) -> str:
    """The toggle over the inputs the app does not show: "All inputs (12) · 1 flagged"."""
    return f"All inputs ({count})" + (f" · {flagged} flagged" if flagged else "")


def flags(layout: AppLayout, values: Mapping[str, Any]) -> list[Flag]:
    """The values (key -> value, as the fields hold them) the server would refuse, named by
    their labels, the app's first; inputs without a value here are not judged."""
    found = []
    for entry in [*layout.shown, *layout.others]:
        if entry.input.key in values:
            problem = field_problem(entry.input, values[entry.input.key])
            if problem:
                found.append(Flag(entry.input.key, entry.label, problem))
    return found


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
    """Keep `app` for this workflow (a view not customised, with no outputs picked, is
    forgotten: the default app comes back); other workflows' views are kept, also when
    another process saved one meanwhile."""
    path = apps_path(env)
    key = workflow_key(workflow_path)
    with _lock, file_lock(path.with_suffix(".lock")):
        apps = _read(path)
        if not app.custom:  # the default app's inputs are picked anew each time
            app = app.model_copy(update={"fields": []})
        if app.custom or app.outputs:
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
            app = AppView.model_validate(raw)
        except ValidationError:
            log.warning("Skipped the unreadable app view of %s in %s.", key, path)
            continue
        # Saved before `custom` existed: a view with inputs was the user's choice.
        apps[key] = app.model_copy(update={"custom": True}) if app.fields else app
    return apps
