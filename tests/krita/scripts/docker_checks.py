"""Runs inside a full Krita window under Xvfb (tests/krita/test_docker.py through run_gui):
the docker Krita itself made, as an artist meets it in the first minutes. Each function
returns what a user would read off the docker; the test judges it."""

from __future__ import annotations

from functools import partial
from typing import Any

from comfyrelay_krita.qt import QtWidgets
from gui_checks import PAYLOAD, load_payload, shown_document
from krita import Krita
from krita_checks import spin_until


def our_dock() -> Any:
    """The ComfyRelay docker of Krita's window, shown."""
    window = Krita.instance().activeWindow() or Krita.instance().windows()[0]
    docks = window.qwindow().findChildren(QtWidgets.QDockWidget)
    (dock,) = [d for d in docks if d.windowTitle() == "ComfyRelay"]
    dock.show()
    return dock


def connected_panel(url: str) -> Any:
    """The docker's panel with the test server as its ComfyUI, as a user types it in."""
    panel = our_dock().panel
    panel.backend_box.choose("comfyui")
    panel.backend_box.editors["url"].setText(url)
    panel.save_settings()
    return panel


def typed(panel: Any) -> bool:
    """The server's answer has typed the fields."""
    return spin_until(lambda: any(i.type for i in panel.form.inputs), 30)


def ran(panel: Any, runs: int) -> bool:
    """`runs` runs have each left their layer and nothing runs now."""
    return len(panel.jobs.layers) >= runs and not panel.jobs.busy


def three_runs() -> dict[str, Any]:
    """Three runs of a model-free workflow from the docker, each result a layer; the
    layers top-down after each."""
    load_payload()
    doc = shown_document(64, 48)
    panel = connected_panel(PAYLOAD["url"])
    panel.load_workflow(PAYLOAD["workflow"])
    typed(panel)
    stacks = []
    for n in range(1, 4):
        panel.run_button.click()
        spin_until(partial(ran, panel, n), 60)
        spin_until(lambda: False, 0.5)  # what Krita does a moment later, logged too
        stacks.append([node.name() for node in reversed(doc.rootNode().childNodes())])
    doc.setModified(False)
    return {"stacks": stacks, "status": panel.status.text(), "errors": list(panel.jobs.errors)}




def reads(panel: Any) -> dict[str, Any]:
    """What the docker says about the run: the status line (red or not) and the bar."""
    spin_until(lambda: False, 0.3)  # the docker's timer has refreshed it
    return {"status": panel.status.text(), "red": "color" in panel.status.styleSheet(),
            "bar_text": panel.progress.isTextVisible(), "bar": panel.progress.value(),
            "run_enabled": panel.run_button.isEnabled(), "run_tip": panel.run_button.toolTip()}


def switching() -> dict[str, Any]:
    """A run that fails (the server refuses the prompt), then another workflow; a run that
    ends well, then another workflow: what is left of each run after switching."""
    load_payload()
    shown_document(64, 48)
    panel = connected_panel(PAYLOAD["url"])
    found: dict[str, Any] = {}
    for name, workflow in (("failed", PAYLOAD["failing"]), ("done", PAYLOAD["workflow"])):
        panel.load_workflow(workflow)
        typed(panel)
        panel.run_button.click()
        spin_until(lambda: not panel.jobs.busy and panel.session.run is None, 60)
        found[name] = reads(panel)
        panel.load_workflow(PAYLOAD["other"])
        typed(panel)
        found[f"after_{name}"] = reads(panel)
    return found


def run_button() -> dict[str, Any]:
    """Run without a workflow, then with one whose checkpoint the server lacks."""
    load_payload()
    shown_document(64, 48)
    panel = connected_panel(PAYLOAD["url"])
    panel.load_workflow("")
    found = {"none": reads(panel)}
    panel.load_workflow(PAYLOAD["workflow"])
    typed(panel)
    found["flagged"] = reads(panel)
    panel.run_button.click()  # disabled: nothing is sent
    found["busy_after_click"] = panel.jobs.busy
    return found


def app_rows(panel: Any) -> list[str]:
    return list(panel.form.shown_labels())


def tools() -> dict[str, Any]:
    """The small buttons of the first minutes: the results folder back to its default, a
    label renamed in Customize (the form not rebuilt under the typing), Reset to default,
    and × (no workflow)."""
    load_payload()
    shown_document(64, 48)
    panel = connected_panel(PAYLOAD["url"])
    found: dict[str, Any] = {"default_folder": panel.output_name.text()}
    panel.set_output_folder(PAYLOAD["folder"])
    found.update(chosen_folder=panel.output_name.text(),
                 default_shown=not panel.output_default.isHidden())
    panel.output_default.click()
    found.update(reset_folder=panel.output_name.text(), stored=panel.settings.output_folder,
                 default_shown_after=not panel.output_default.isHidden())
    panel.load_workflow(PAYLOAD["workflow"])
    typed(panel)
    found["default_app"] = app_rows(panel)
    panel.customize_button.setChecked(True)
    editor = panel.form.editor
    found["reset_enabled_before"] = editor.reset_button.isEnabled()
    row = editor.rows[PAYLOAD["relabel"]]
    row.label.setText("My prompt")
    row.label.editingFinished.emit()  # what Enter or leaving the field does
    found.update(same_editor=panel.form.editor is editor, relabelled=app_rows(panel))
    panel.form.editor.reset_button.click()
    found.update(after_reset=app_rows(panel), custom=panel.form.app.custom)
    panel.customize_button.setChecked(False)
    found["clear_enabled"] = panel.clear_button.isEnabled()
    panel.clear_button.click()
    found.update(cleared=reads(panel), name=panel.workflow_name.text(),
                 clear_enabled_after=panel.clear_button.isEnabled())
    return found
