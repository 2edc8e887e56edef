"""A workflow's app view: the chosen inputs, their order and labels, kept in the user's config."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from comfyrelay.host.apps import (
    AppField,
    AppView,
    apps_path,
    arrange,
    load_app,
    save_app,
)
from comfyrelay.jobs.workflow import Workflow

from tests.paths import WORKFLOWS

WORKFLOW = WORKFLOWS / "sd15_img2img_api.json"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"COMFYRELAY_CONFIG_DIR": str(tmp_path / "config")}


def view() -> AppView:
    return AppView().with_field("6.text", "Prompt").with_field("3.seed").with_field("3.denoise")


def test_arrange_orders_and_labels_the_chosen_inputs() -> None:
    inputs = Workflow.load(WORKFLOW).inputs()
    layout = arrange(inputs, view().with_field("99.gone", "Removed node"))
    assert [(s.input.key, s.label) for s in layout.shown] == [
        ("6.text", "Prompt"), ("3.seed", "KSampler: seed"), ("3.denoise", "KSampler: denoise")
    ]
    assert [i.key for i in layout.others] == [
        i.key for i in inputs if i.key not in ("6.text", "3.seed", "3.denoise")
    ]
    assert arrange(inputs, None).others == inputs


def test_editing_a_view() -> None:
    app = view().moved("3.denoise", -5).with_field("3.seed", "Seed").without("6.text")
    assert app.fields == [AppField(key="3.denoise"), AppField(key="3.seed", label="Seed")]
    assert app.moved("3.denoise", 1).keys() == ["3.seed", "3.denoise"]
    assert app.moved("nope", 1) == app


def test_a_view_comes_back_by_the_workflows_absolute_path(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    save_app(WORKFLOW, view(), env)
    monkeypatch.chdir(WORKFLOW.parent)
    assert load_app(Path(WORKFLOW.name), env) == view()  # a relative path to the same file
    assert load_app(WORKFLOWS / "invert_api.json", env) == AppView()
    if os.name == "posix":
        assert stat.S_IMODE(apps_path(env).stat().st_mode) == 0o600


def test_saving_keeps_other_workflows_and_an_empty_view_forgets(env: dict[str, str]) -> None:
    other = WORKFLOWS / "invert_api.json"
    save_app(WORKFLOW, view(), env)
    save_app(other, AppView().with_field("3.filename_prefix", "Name"), env)
    save_app(WORKFLOW, AppView(), env)
    assert load_app(WORKFLOW, env) == AppView()
    assert load_app(other, env).keys() == ["3.filename_prefix"]


def test_a_damaged_file_is_logged_and_replaced(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    apps_path(env).parent.mkdir(parents=True)
    apps_path(env).write_text("{broken")
    with caplog.at_level(logging.WARNING):
        assert load_app(WORKFLOW, env) == AppView()
    assert "Cannot read the app views" in caplog.text
    save_app(WORKFLOW, view(), env)
    assert load_app(WORKFLOW, env) == view()


def test_the_output_nodes_picked_are_kept_with_the_view(tmp_path: Path) -> None:
    workflow = tmp_path / "wf.json"
    save_app(workflow, AppView().with_outputs(["9"]))  # no inputs shown, one output picked
    assert load_app(workflow).outputs == ["9"]
    save_app(workflow, AppView())
    assert load_app(workflow).outputs == []
