"""Only a job's real results come back: output nodes' files, previews only when nothing is
saved, or exactly the output nodes the user picked."""

from __future__ import annotations

import pytest
from comfyrelay.errors import WorkflowError
from comfyrelay.jobs.outputs import Produced, check_picked, results
from comfyrelay.jobs.workflow import Workflow

WF = Workflow({
    "1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
    "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}, "_meta": {"title": "Out"}},
}, "wf")


def names(found: list[Produced[str]]) -> list[str]:
    return [p.item for p in found]


def test_a_preview_of_the_input_is_dropped_when_something_is_saved() -> None:
    told = [Produced("2", "preview.png", "temp"), Produced("3", "saved.png", "output")]
    assert names(results(told, WF)) == ["saved.png"]
    untold = [Produced("2", "preview.png"), Produced("3", "saved.png")]  # no type: by class
    assert names(results(untold, WF)) == ["saved.png"]


def test_previews_come_back_when_nothing_is_saved() -> None:
    assert names(results([Produced("2", "preview.png", "temp")], WF)) == ["preview.png"]


def test_picked_output_nodes_by_id_or_title() -> None:
    told = [Produced("2", "preview.png", "temp"), Produced("3", "saved.png", "output")]
    assert names(results(told, WF, ["2"])) == ["preview.png"]
    assert names(results(told, WF, ["Out"])) == ["saved.png"]
    check_picked(WF, ["Out", "2"])
    with pytest.raises(WorkflowError, match="saves no files: pick one of the output nodes"):
        check_picked(WF, ["1"])
