"""A document's run history: built at the end of a run, stored as JSON, read back tolerantly,
never holding secrets, and giving back the exact bindings of a run."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from comfyrelay.host.history import (
    MAX_RUNS,
    SECRET_INPUT,
    RunHistory,
    RunRecord,
    add_run,
    bindings_for_rerun,
    history_from_json,
    history_to_json,
    new_run_record,
    record_run,
)
from comfyrelay.jobs.workflow import Bindings, Workflow

from tests.paths import WORKFLOWS

WORKFLOW = WORKFLOWS / "sd15_img2img_api.json"


def record(
    bindings: Bindings | None = None, seed: int | None = 1234, cost: float | None = None
) -> RunRecord:
    return new_run_record(
        workflow_name="sd15_img2img_api",
        workflow_path=WORKFLOW,
        bindings=bindings or Bindings(prompt="a fox", random_seed=True,
                                      values={"3.steps": 12, "KSampler.sampler_name": "euler"}),
        seed=seed,
        backend="comfyui",
        server_version="0.3.64",
        started=1_700_000_000.0,
        ended=1_700_000_012.5,
        cost=cost,
        outputs=[Path("/out/restyle_00001_.png")],
    )


def test_a_record_holds_what_made_the_result() -> None:
    entry = record(cost=0.12)
    assert entry.seed == 1234 and entry.bindings.seed == 1234
    assert entry.bindings.random_seed is False  # the random seed, kept as the one used
    assert entry.bindings.values["3.steps"] == 12 and entry.bindings.prompt == "a fox"
    assert (entry.backend, entry.server_version, entry.seconds) == ("comfyui", "0.3.64", 12.5)
    assert entry.workflow_path == str(WORKFLOW) and entry.outputs == ["/out/restyle_00001_.png"]
    assert entry.cost == 0.12 and len(entry.id) == 12
    assert "seed 1234 · comfyui 0.3.64 · 12.5 s · cost 0.12" in entry.describe()


def test_history_round_trips_through_the_document() -> None:
    stored = record_run(None, record())
    stored = record_run(stored, record(seed=99))
    history = history_from_json(stored)
    assert [r.seed for r in history.runs] == [1234, 99]
    assert history == history_from_json(history_to_json(history))


def test_only_the_last_runs_are_kept() -> None:
    history = RunHistory()
    for seed in range(MAX_RUNS + 5):
        history = add_run(history, record(seed=seed))
    assert len(history.runs) == MAX_RUNS and history.runs[-1].seed == MAX_RUNS + 4
    assert history.runs[0].seed == 5


@pytest.mark.parametrize("stored", ["{not json", b"\xff\xfe", "[1, 2]", '{"runs": 3}'])
def test_damaged_data_gives_an_empty_history_and_a_log_line(
    stored: str | bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert history_from_json(stored).runs == []
    assert "run history" in caplog.text


def test_one_bad_entry_loses_only_itself(caplog: pytest.LogCaptureFixture) -> None:
    data = json.loads(record_run("", record()))
    data["runs"].append({"workflow_name": 3})
    with caplog.at_level(logging.WARNING):
        history = history_from_json(json.dumps(data))
    assert len(history.runs) == 1 and "Dropped an unreadable entry" in caplog.text
    assert history_from_json(None).runs == [] and history_from_json("").runs == []


def test_secret_looking_inputs_never_go_in() -> None:
    bindings = Bindings(values={"5.api_key": "sk-live-123", "6.auth_token": "tok-456",
                                "3.steps": 12})
    stored = record_run(None, record(bindings))
    assert "sk-live-123" not in stored and "tok-456" not in stored
    assert history_from_json(stored).runs[0].bindings.values == {"3.steps": 12}
    # Nor does the record have any place for a setting or a token.
    assert not [name for name in RunRecord.model_fields if SECRET_INPUT.search(name)]


def test_rerun_reproduces_the_runs_graph_exactly() -> None:
    workflow = Workflow.load(WORKFLOW)
    used = Bindings(prompt="a fox", seed=77, values={"3.steps": 12})
    entry = history_from_json(record_run(None, record(used, seed=77))).runs[0]
    again = bindings_for_rerun(entry)
    assert again.random_seed is False and again.seed == 77
    assert workflow.bind(again) == workflow.bind(used)


def test_a_seed_the_bindings_cannot_hold_is_still_kept() -> None:
    big = 2**60  # a workflow's own seed may exceed what the JS frontend (and Bindings) allow
    entry = history_from_json(record_run(None, record(Bindings(), seed=big))).runs[0]
    assert entry.seed == big and entry.bindings.seed is None
