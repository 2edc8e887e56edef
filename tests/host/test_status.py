"""What the status line says of a workflow being converted, a refusal meanwhile, the end of
a run, and what a check's answer shows at once and what under its details."""

from __future__ import annotations

from comfyrelay.host.runs import Run
from comfyrelay.host.status import RunStatus, Status, connection_lines
from comfyrelay.jobs.events import JobQueued, JobStarted


def shown(status: RunStatus, running: bool = False, attention: str = "") -> str:
    return str(status.view_fields(running, attention)["status"])


def test_converting_then_ready_and_a_refusal_meanwhile_wins() -> None:
    status = RunStatus()
    assert shown(status) == "No workflow"
    status.converting_file()
    assert shown(status) == "Converting…"
    status.opened("")
    assert shown(status) == "Ready"
    status.converting_file()
    status.refused("Choose a workflow file.")
    status.opened("")  # the conversion ends after the refusal: the refusal stays said
    assert shown(status) == "Not started" and status.error == "Choose a workflow file."


def test_a_failed_conversion_says_why() -> None:
    status = RunStatus()
    status.converting_file()
    status.opened("The server lacks node Foo.")
    assert (shown(status), status.error) == ("Not opened", "The server lacks node Foo.")


def test_ready_and_attention_read_the_same_whatever_the_workflows_format() -> None:
    api, ui = RunStatus(), RunStatus()
    api.chosen(Status.READY)  # an API-format file: open at once
    ui.converting_file()
    ui.opened("")  # a UI-format one: once converted
    assert shown(api) == shown(ui) == "Ready"
    line = "1 input needs attention: Seed — 'x' is not a whole number"
    assert shown(api, attention=line) == line
    assert shown(api, running=True, attention=line) == "Ready"  # a run says its own


def test_the_end_of_a_run_of_frames_counts_them() -> None:
    status = RunStatus()
    status.chosen(Status.READY)
    run = Run("anim", noun="frame")
    run.jobs = {"a": 1, "b": 2}
    run.finished = 2
    status.started(run, feeding=True)
    assert shown(status, running=True) == "Rendering…"
    status.ended(run)
    fields = status.view_fields(False, "")
    assert fields["status"] == "Done — 2 of 2 frames" and fields["progress"] == 1.0


def test_a_late_queued_or_started_event_does_not_hide_a_cancel() -> None:
    status = RunStatus()
    status.chosen(Status.READY)
    run = Run("x")
    run.jobs = {"a": 0}
    status.started(run, feeding=False)
    status.cancelling()
    status.note(run, JobStarted("a", seed=1))
    assert shown(status, running=True) == "Cancelling…"
    status.note(run, JobQueued("a", position=2))
    assert shown(status, running=True) == "Cancelling…"


def test_nothing_ran_keeps_the_bar_quiet_and_a_refusal_empties_it() -> None:
    status = RunStatus()
    assert status.view_fields(False, "")["progress_shown"] is False
    status.started(Run("x"), feeding=False)
    status.progress = 0.5
    status.refused("No render to send.")
    fields = status.view_fields(False, "")
    assert (fields["progress_shown"], fields["progress"]) == (False, 0.0)


def test_a_check_shows_its_first_line_and_keeps_the_rest_as_details() -> None:
    summary, details = connection_lines(
        "Connected to ComfyUI 0.3.64 — ready.\nServer: http://x\nThis server lacks job routes")
    assert summary == "Connected to ComfyUI 0.3.64 — ready."
    assert details == "Server: http://x\nThis server lacks job routes"
    assert connection_lines("Could not connect to the ComfyUI server.") == (
        "Could not connect to the ComfyUI server.", "")
