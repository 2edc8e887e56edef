"""Runs inside Krita (kritarunner): the docker's workflow as the artist has it. Fields typed
from the server, values it would refuse, the app view, and the history kept in the .kra.

Same protocol as krita_checks (whose helpers these use): the test passes a JSON payload, each
function reports a JSON verdict.
"""

from __future__ import annotations

import json
from typing import Any

from comfyrelay_krita.fields import ChoiceField, Field, NumberField, SeedField
from comfyrelay_krita.history import stored
from comfyrelay_krita.qt import USER_ROLE, QApplication
from krita import Krita
from krita_checks import (
    KEEP,
    PAYLOAD,
    describe,
    docker_with_settings,
    job_ended,
    reporting,
    spin_until,
)


def watch(panel: Any) -> list[str]:
    """The names of the events the docker sees, in order."""
    events: list[str] = []
    handle = panel.on_event

    def record(event: Any) -> None:
        events.append(type(event).__name__)
        handle(event)

    panel.on_event = record
    return events


def typed(panel: Any) -> bool:
    """Wait until the server's typing has reached the fields."""
    return spin_until(lambda: any(i.type for i in panel.form.inputs), 30)


def field_info(field: Field) -> dict[str, Any]:
    info: dict[str, Any] = {
        "class": type(field).__name__,
        "value": field.value(),
        "problem": field.problem,
        "style": field.editor.styleSheet(),
        "tooltip": field.editor.toolTip(),
        "visible": field.widget.isVisibleTo(field.widget.window()),
    }
    if isinstance(field, ChoiceField):
        info["choices"] = [field.combo.itemText(i) for i in range(field.combo.count())]
    if isinstance(field, NumberField):
        info.update(low=field.spin.minimum(), high=field.spin.maximum(),
                    step=field.spin.singleStep(), slider=field.slider is not None)
    if isinstance(field, SeedField):
        info["control"] = field.control.currentData()
        info["controls"] = [field.control.itemData(i) for i in range(field.control.count())]
    return info


def fields(panel: Any) -> dict[str, dict[str, Any]]:
    return {key: field_info(field) for key, field in panel.form.fields.items()}


@reporting
def typed_fields() -> dict[str, Any]:
    """A workflow's fields once the server has typed them."""
    _doc, panel = docker_with_settings()
    events = watch(panel)
    ok = typed(panel)
    return {"typed": ok, "events": events, "fields": fields(panel),
            "note": panel.types_note.isVisibleTo(panel), "status": panel.status.text()}


@reporting
def refused_values() -> dict[str, Any]:
    """Values the server would refuse: flagged at once and named in the status line, Run
    disabled (a click sends nothing); a corrected value is no longer flagged."""
    doc, panel = docker_with_settings()
    ok = typed(panel)
    spin_until(lambda: bool(panel.session.flags), 5)  # the docker's timer shows them
    before = fields(panel)
    panel.run_button.click()
    QApplication.processEvents()
    refused = {"status": panel.status.text(), "style": panel.status.styleSheet(),
               "run_enabled": panel.run_button.isEnabled(),
               "run_tip": panel.run_button.toolTip(),
               "busy": panel.jobs.busy, "layers": describe(doc)["layers"],
               "fields": fields(panel)}
    steps = panel.form.fields["3.steps"]
    steps.set_value(20)  # as the user does with the spin box
    spin_until(lambda: "Steps" not in panel.status.text(), 5)
    return {"typed": ok, "before": before, "refused": refused, "steps_after": field_info(steps),
            "status_after": panel.status.text()}


@reporting
def plain_then_refresh() -> dict[str, Any]:
    """No server: plain fields and a note; once it is back, Refresh types them."""
    _doc, panel = docker_with_settings()
    events = watch(panel)
    spin_until(lambda: "WorkflowOpened" in events, 30)
    plain = {"fields": fields(panel), "note": panel.types_note.isVisibleTo(panel),
             "refresh_enabled": panel.refresh_button.isEnabled()}
    panel.backend_box.editors["url"].setText(PAYLOAD["server"])
    panel.backend_box.editors["url"].editingFinished.emit()
    panel.refresh_button.click()
    ok = typed(panel)
    return {"plain": plain, "typed": ok, "fields": fields(panel),
            "note": panel.types_note.isVisibleTo(panel)}


def editor_row(panel: Any, key: str) -> Any:
    """The Customize row of `key` (the editor is rebuilt after each change)."""
    return panel.form.editor.rows[key]


@reporting
def app_customize() -> dict[str, Any]:
    """Customize, from the default app: only three inputs left in it, with the user's labels,
    in the order given."""
    _doc, panel = docker_with_settings()
    typed(panel)
    panel.customize_button.click()
    wanted = [key for key, _label in PAYLOAD["app"]]
    for key in list(panel.form.editor.rows):
        if editor_row(panel, key).check.isChecked() != (key in wanted):
            editor_row(panel, key).check.click()
    for key, label in PAYLOAD["app"]:
        row = editor_row(panel, key)
        row.label.setText(label)
        row.label.editingFinished.emit()
    for place, key in enumerate(wanted):
        while panel.form.app.keys().index(key) > place:
            editor_row(panel, key).up.click()
    QApplication.processEvents()
    panel.customize_button.click()  # done
    return {"labels": panel.form.shown_labels(), "all_open": panel.form.all_open}


@reporting
def app_restored() -> dict[str, Any]:
    """A new docker, a new Krita: the same app view."""
    _doc, panel = docker_with_settings()
    ok = typed(panel)
    form = panel.form
    shown = [key for key in form.labels]
    return {"typed": ok, "labels": form.shown_labels(), "keys": shown,
            "all_open": form.all_open, "others": len(form.fields) - len(shown),
            "toggle": form.all_toggle.text() if form.all_toggle else "",
            "sampler": field_info(form.fields["3.sampler_name"])}


def has_icon(item: Any) -> bool:
    return item is not None and not item.icon().isNull()


def history_rows(box: Any) -> list[str]:
    return [box.list.item(i).text() for i in range(box.list.count())]


@reporting
def history_run() -> dict[str, Any]:
    """Run with a random seed: the field shows the seed used; the run's entry goes into the
    document's history, which the .kra keeps."""
    doc, panel = docker_with_settings()
    typed(panel)
    panel.check_button.click()  # the record's server version comes from the check
    spin_until(lambda: panel.server_status.text().startswith(("Connected", "Cannot")), 30)
    seed = panel.form.seed_field
    seed.set_control("random")
    panel.run_button.click()
    finished = job_ended(panel)
    QApplication.processEvents()
    kra = PAYLOAD["out"] + ".kra"
    modified = doc.modified()
    doc.saveAs(kra)
    box = panel.history_box
    return {"finished": finished, "status": panel.status.text(), "seed_shown": seed.value(),
            "modified": modified, "kra": kra, "history": json.loads(stored(doc) or b"{}"),
            "rows": history_rows(box),
            **describe(doc)}


@reporting
def history_rerun() -> dict[str, Any]:
    """Reopen the .kra in a new Krita: its history is listed; Run again on its canvas (the
    earlier result hidden, so the canvas is what the run had), Use these settings, Show
    files."""
    krita = Krita.instance()
    krita.setBatchmode(True)
    for key, value in PAYLOAD["settings"].items():
        krita.writeSetting("ComfyRelay", key, str(value))
    doc = krita.openDocument(PAYLOAD["kra"])
    from comfyrelay_krita.docker import ComfyRelayDocker

    dock = ComfyRelayDocker()
    KEEP.append(dock)
    panel = dock.panel
    panel.document = lambda: doc
    box = panel.history_box
    listed = spin_until(lambda: box.list.count() > 0, 10)
    thumbs = spin_until(lambda: not box.loading and has_icon(box.list.item(0)), 10)
    rows = history_rows(box)
    types = list(doc.annotationTypes())
    for node in doc.topLevelNodes():
        node.setVisible(node.name() == "Background")
    doc.refreshProjection()
    doc.waitForDone()
    box.run_again_button.click()
    finished = job_ended(panel)
    QApplication.processEvents()
    after = history_rows(box)
    ids = [item.data(USER_ROLE) for i in range(box.list.count())
           if (item := box.list.item(i)) is not None]
    return {"listed": listed, "thumbs": thumbs, "rows": rows, "types": types,
            "finished": finished, "status": panel.status.text(), "after": after, "ids": ids,
            "history": json.loads(stored(doc) or b"{}"), **use_and_show(panel),
            **describe(doc)}


def use_and_show(panel: Any) -> dict[str, Any]:
    """Use these settings on the oldest run (the fields changed first), then Show files."""
    form, box = panel.form, panel.history_box
    form.fields["2.strength"].set_value(0.9)
    form.seed_field.set_value(1)
    form.seed_field.set_control("increment")
    box.list.setCurrentRow(box.list.count() - 1)
    box.use_button.click()
    opened: list[str] = []
    box.open_url = lambda url: opened.append(url.toLocalFile())
    box.files_button.click()
    return {"used": fields(panel), "opened": opened}
