"""A workflow's app view: the chosen inputs, their order and labels, kept in the user's config."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest
from comfyrelay.host.apps import (
    AppField,
    AppView,
    all_inputs_title,
    apps_path,
    arrange,
    effective_app,
    flags,
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
        ("6.text", "Prompt"), ("3.seed", "Seed"), ("3.denoise", "Strength")
    ]
    assert layout.shown[1].tip == "3.seed · KSampler"  # the raw input, on hover
    assert [i.input.key for i in layout.others] == [
        i.key for i in inputs if i.key not in ("6.text", "3.seed", "3.denoise")
    ]
    others = {i.input.key: i.label for i in layout.others}
    assert others["9.filename_prefix"] == "File name prefix"
    assert others["11.upscale_method"] == "Upscale method"


def test_a_workflow_not_customised_shows_the_default_app() -> None:
    workflow = Workflow.load(WORKFLOW)
    layout = arrange(workflow.inputs(), AppView().with_outputs(["9"]), workflow)
    assert [(s.input.key, s.label) for s in layout.shown] == [
        ("6.text", "Prompt"), ("7.text", "Negative prompt"), ("3.seed", "Seed"),
        ("3.steps", "Steps"), ("3.cfg", "CFG"), ("3.denoise", "Strength"),
        ("3.sampler_name", "Sampler"), ("3.scheduler", "Scheduler"),
        ("4.ckpt_name", "Checkpoint"),
    ]
    # The image's size is not a latent's: it stays under All inputs, with the loader.
    assert {i.input.key for i in layout.others} >= {"11.width", "11.height", "10.image"}
    assert effective_app(workflow.inputs(), None, workflow).keys()[:2] == ["6.text", "7.text"]


def test_a_customised_app_stays_as_the_user_left_it() -> None:
    workflow = Workflow.load(WORKFLOW)
    inputs = workflow.inputs()
    emptied = effective_app(inputs, None, workflow).without("6.text")
    for field in emptied.fields:
        emptied = emptied.without(field.key)
    assert emptied.custom and emptied.keys() == []
    assert arrange(inputs, emptied, workflow).shown == []  # no defaults slip back in


def test_a_view_saved_before_custom_existed_stays_the_users(env: dict[str, str]) -> None:
    apps_path(env).parent.mkdir(parents=True)
    apps_path(env).write_text(json.dumps({"version": 1, "apps": {
        str(WORKFLOW.resolve()): {"fields": [{"key": "3.steps", "label": ""}], "outputs": []}}}))
    workflow = Workflow.load(WORKFLOW)
    layout = arrange(workflow.inputs(), load_app(WORKFLOW, env), workflow)
    assert [s.input.key for s in layout.shown] == ["3.steps"]


def test_picking_outputs_keeps_the_default_app(env: dict[str, str]) -> None:
    workflow = Workflow.load(WORKFLOW)
    shown = effective_app(workflow.inputs(), load_app(WORKFLOW, env), workflow)
    save_app(WORKFLOW, shown.with_outputs(["9"]), env)  # only the outputs were changed
    saved = load_app(WORKFLOW, env)
    assert saved.outputs == ["9"] and not saved.custom and saved.keys() == []


def test_two_inputs_that_read_the_same_get_their_node_title() -> None:
    workflow = Workflow.load(WORKFLOW)
    layout = arrange(workflow.inputs(), None, workflow)
    labels = {i.input.key: i.label for i in [*layout.shown, *layout.others]}
    assert labels["11.width"] == "Width"  # the only width
    assert labels["9.filename_prefix"] == "File name prefix"
    twice = Workflow({**workflow.graph, "13": {**workflow.graph["3"], "_meta": {"title": "Hires"}}})
    labels = {i.input.key: i.label for i in arrange(twice.inputs(), None, twice).shown}
    assert (labels["3.seed"], labels["13.seed"]) == ("Seed (KSampler)", "Seed (Hires)")
    assert labels["4.ckpt_name"] == "Checkpoint"


def test_values_the_server_would_refuse_are_named_by_their_labels() -> None:
    workflow = Workflow.load(WORKFLOW)
    typed = [i.model_copy(update={"type": "COMBO", "choices": []}) if i.name == "ckpt_name"
             else i for i in workflow.inputs()]
    layout = arrange(typed, None, workflow)
    values = {i.key: i.value for i in typed}
    assert [(f.label, f.problem) for f in flags(layout, values)] == [
        ("Checkpoint", "the server has no checkpoints "
                       "(the workflow names 'v1-5-pruned-emaonly.safetensors')")]


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
    save_app(WORKFLOW, AppView(), env)  # Reset: the default app again
    assert load_app(WORKFLOW, env) == AppView()
    assert load_app(other, env).keys() == ["3.filename_prefix"]
    save_app(other, AppView().with_field("3.filename_prefix").without("3.filename_prefix"), env)
    assert load_app(other, env).custom  # emptied by the user: kept empty


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


def test_all_inputs_reads_the_same_in_both_hosts() -> None:
    assert all_inputs_title(12, 0) == "All inputs (12)"
    assert all_inputs_title(12, 1) == "All inputs (12) · 1 flagged"
